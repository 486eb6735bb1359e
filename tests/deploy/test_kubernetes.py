"""Issue 24: deploy/kubernetes/, the kustomize base, checked without a cluster (none is reachable here).

Every manifest is validated against the Kubernetes JSON schemas that the `kubernetes-validate` package
bundles (strict: an unknown or misspelt field fails; offline: the test forbids the network), for the
oldest and the newest Kubernetes it is meant for. The rest checks what the schema cannot: the security
settings, that the pieces point at each other (labels, ports, names), that the numbers agree with the
app's (body limit, worker memory guard, metrics port, user id), and, where kubectl is installed, that
the base builds with kustomize.
"""

from __future__ import annotations

import copy
import re
import shutil
import socket
import subprocess

import pytest
import yaml

from app import DEFAULTS
from tests.conftest import ROOT

kubernetes_validate = pytest.importorskip("kubernetes_validate")
from kubernetes_validate import utils as kv  # noqa: E402

BASE = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes these files are written for (autoscaling/v2 behavior, PDB
# unhealthyPodEvictionPolicy, namespaces labelled kubernetes.io/metadata.name) and the newest schema
# the validator ships.
VERSIONS = ["1.29.0", kv.latest_version()]
pytestmark = pytest.mark.no_model_needed


def load(name: str) -> dict:
    docs = [d for d in yaml.safe_load_all((BASE / name).read_text()) if d]
    assert len(docs) == 1, f"{name}: one resource per file"
    return docs[0]


def resources() -> dict[str, dict]:
    """{kind: manifest} of the files kustomization.yaml lists."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    out = {}
    for name in kustomization["resources"]:
        doc = load(name)
        assert doc["kind"] not in out, f"two {doc['kind']}s"
        out[doc["kind"]] = doc
    return out


@pytest.fixture
def no_network(monkeypatch):
    """Validation must not fetch a schema: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network used during validation: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def validate(doc: dict, version: str) -> None:
    kv.validate(doc, version, strict=True)


# ---- schemas ---------------------------------------------------------------------------------------


def test_kustomization_lists_every_manifest_and_nothing_else():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert set(resources()) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Ingress",
    }


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(p.name for p in BASE.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_every_manifest_is_valid_against_the_kubernetes_schema(name, version, no_network):
    validate(load(name), version)


@pytest.mark.parametrize(
    "break_it, field",
    [
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(
                readOnlyRootFileSystem=True
            ),
            "readOnlyRootFileSystem",
        ),  # misspelt: strict validation refuses unknown fields
        (lambda d: d["spec"].update(replicas="two"), "two"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "name"),
        (lambda d: d["spec"]["template"]["spec"]["securityContext"].update(runAsUser="root"), "root"),
    ],
)
def test_the_validator_really_refuses_a_broken_manifest(break_it, field, no_network):
    doc = copy.deepcopy(load("deployment.yaml"))
    validate(doc, VERSIONS[-1])
    break_it(doc)
    with pytest.raises(kv.ValidationError) as err:
        validate(doc, VERSIONS[-1])
    assert field in str(err.value.message) or field in ".".join(map(str, err.value.path)), err.value.message


@pytest.mark.skipif(
    not (shutil.which("kubectl") or shutil.which("kustomize")),
    reason="kubectl or kustomize is not installed (the base is still schema-checked above)",
)
def test_the_base_builds_with_kustomize():
    cmd = [shutil.which("kustomize"), "build"] if shutil.which("kustomize") else [shutil.which("kubectl"), "kustomize"]
    out = subprocess.run(cmd + [str(BASE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert {d["kind"] for d in built} == set(resources())
    for doc in built:
        validate(doc, VERSIONS[-1])
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "emotion-assistant"


# ---- security ----------------------------------------------------------------------------------------


def pod_spec() -> dict:
    return resources()["Deployment"]["spec"]["template"]["spec"]


def container() -> dict:
    containers = pod_spec()["containers"]
    assert len(containers) == 1 and not pod_spec().get("initContainers")
    return containers[0]


def env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container()["env"]}


def test_the_pod_runs_locked_down():
    spec, c = pod_spec(), container()
    pod_sc, sc = spec["securityContext"], c["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] != 0 and pod_sc["runAsGroup"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"} == sc["seccompProfile"]
    assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    assert all("hostPath" not in v for v in spec["volumes"])


def test_the_user_is_the_images_own():
    uid = re.search(r"useradd\b.*--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1)
    assert pod_spec()["securityContext"]["runAsUser"] == int(uid)


def test_writable_places_are_emptydirs_for_tmp_and_the_metrics_files():
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    assert all("emptyDir" in v for v in volumes.values())
    assert "/tmp" in mounts
    assert env()["PROMETHEUS_MULTIPROC_DIR"] in mounts
    assert env()["XDG_CACHE_HOME"].startswith("/tmp/")
    for v in volumes.values():  # bounded: memory-backed volumes count against the memory limit
        assert v["emptyDir"].get("sizeLimit"), v


# ---- the numbers agree with the app's --------------------------------------------------------------------


def nginx_size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value.strip())
    assert m, value
    return int(m.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()]


def test_the_ingress_body_limit_is_the_apps_cap():
    notes = resources()["Ingress"]["metadata"]["annotations"]
    assert nginx_size(notes["nginx.ingress.kubernetes.io/proxy-body-size"]) == DEFAULTS["MAX_CONTENT_LENGTH"]
    # and a body of that size stays in memory, as behind deploy/nginx
    assert nginx_size(notes["nginx.ingress.kubernetes.io/client-body-buffer-size"]) == DEFAULTS["MAX_CONTENT_LENGTH"]
    assert notes["nginx.ingress.kubernetes.io/proxy-max-temp-file-size"] == "0"
    assert resources()["Ingress"]["spec"]["ingressClassName"] == "nginx"


def test_the_shipped_nginx_has_the_same_body_limit():
    template = (ROOT / "deploy" / "nginx" / "emotion.conf.template").read_text()
    assert nginx_size(re.search(r"client_max_body_size (\S+);", template).group(1)) == DEFAULTS["MAX_CONTENT_LENGTH"]


def mib(quantity: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity)
    assert m, quantity
    return float(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


def test_memory_fits_every_worker_up_to_its_guard():
    """The limit holds every worker at the RSS where gunicorn.conf.py's guard replaces it, plus the
    master and the memory-backed volumes: the guard acts before the kernel's OOM killer would."""
    resources_ = container()["resources"]
    workers, guard = int(env()["WEB_CONCURRENCY"]), float(env()["GUNICORN_MAX_WORKER_RSS_MB"])
    volumes = sum(mib(v["emptyDir"]["sizeLimit"]) for v in pod_spec()["volumes"])
    master = 64
    assert mib(resources_["limits"]["memory"]) >= workers * guard + master + volumes
    # the request covers the measured working size (~290 MB a worker under live load, ~35 MB master)
    assert mib(resources_["requests"]["memory"]) >= workers * 290 + 35
    assert resources_["requests"]["cpu"] and resources_["limits"]["cpu"]


def test_probes_use_health_on_the_app_port():
    c = container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["http"] == int(env()["PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] == "/api/health" and get["port"] == "http", probe
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 60  # warm-up took 14 s on a busy VM
    assert env()["EMOTION_WARMUP"] == "background"  # /api/health is 503 until the models are loaded


def test_metrics_are_scraped_from_the_pod_and_not_offered_by_the_service():
    c, meta = container(), resources()["Deployment"]["spec"]["template"]["metadata"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["metrics"] == int(env()["METRICS_PORT"]) == int(meta["annotations"]["prometheus.io/port"])
    service_ports = resources()["Service"]["spec"]["ports"]
    assert [p["targetPort"] for p in service_ports] == ["http"]


def test_graceful_shutdown_fits_the_grace_period():
    graceful = int(re.search(r"^graceful_timeout = (\d+)", (ROOT / "gunicorn.conf.py").read_text(), re.M).group(1))
    pre_stop = int(container()["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod_spec()["terminationGracePeriodSeconds"] > graceful + pre_stop


# ---- the pieces point at each other ------------------------------------------------------------------------


def test_selectors_names_and_ports_match():
    r = resources()
    deployment = r["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    for kind in ("Service",):
        assert r[kind]["spec"]["selector"].items() <= pod_labels.items()
    for kind in ("PodDisruptionBudget",):
        assert r[kind]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert r["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()

    target = r["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    assert r["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2  # the PDB then always leaves one
    assert r["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1

    container_ports = {p["name"] for p in container()["ports"]}
    backend = r["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == r["Service"]["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in r["Service"]["spec"]["ports"]}
    for rule in r["NetworkPolicy"]["spec"]["ingress"]:
        assert {p["port"] for p in rule["ports"]} <= container_ports


def test_network_policy_admits_the_ingress_and_monitoring_only_and_no_egress():
    policy = resources()["NetworkPolicy"]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"} and policy["egress"] == []
    by_port = {
        rule["ports"][0]["port"]: rule["from"][0]["namespaceSelector"]["matchLabels"] for rule in policy["ingress"]
    }
    assert by_port == {
        "http": {"kubernetes.io/metadata.name": "ingress-nginx"},
        "metrics": {"kubernetes.io/metadata.name": "monitoring"},
    }


def test_the_autoscaler_scales_on_cpu():
    hpa = resources()["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert 50 <= metric["resource"]["target"]["averageUtilization"] <= 80
