"""The FaceRes fine-tuning path: network, ONNX export, device-side augmentation, a whole tiny run
(train -> checkpoint -> resume -> ship -> serve), and the input spec it ships with.

Runs on the CPU with a random-weight stand-in for the FaceRes npz (the real weights are a
training-time download, tests/training/test_faceres.py covers their conversion)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_core.preprocess import CAFFE_BGR_MEANS, input_spec, preprocess_faces  # noqa: E402
from training import faceres  # noqa: E402
from training.evaluate import onnx_probs  # noqa: E402
from training.finetune import (  # noqa: E402
    FinetuneConfig,
    augment,
    build_model,
    finetune,
    lr_factor,
    native_bf16,
    param_groups,
    read_pack,
    ship,
    upsample,
    write_pack,
)
from training.mobilenet import BLOCKS, MobileNetV1, build_onnx, caffe_input, feature_sizes  # noqa: E402


def random_backbone(seed: int = 0) -> dict:
    """Arrays in FaceRes layout (`faceres.backbone_arrays`), random but well scaled."""
    rng = np.random.default_rng(seed)
    out, cin = {}, 3

    def unit(name, shape, fan_in, cout):
        out[f"{name}.kernel"] = (rng.normal(0, 1, shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        out[f"{name}.scale"] = rng.uniform(0.8, 1.2, cout).astype(np.float32)
        out[f"{name}.bias"] = rng.normal(0, 0.1, cout).astype(np.float32)

    unit("conv1", (3, 3, 3, 32), 27, 32)
    cin = 32
    for i, (cout, _) in enumerate(BLOCKS, 1):
        unit(f"dw{i}", (3, 3, cin, 1), 9, cin)
        unit(f"pw{i}", (1, 1, cin, cout), cin, cout)
        cin = cout
    return out


@pytest.fixture(scope="module")
def backbone_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("faceres") / "faceres_mobilenet.npz"
    np.savez(path, **random_backbone())
    return path


def test_feature_sizes_follow_tf_same_padding():
    assert feature_sizes(224)[-1] == 7
    assert feature_sizes(160)[-1] == 5
    assert feature_sizes(112)[-1] == 4  # 56 28 14 7 4: odd sizes round up, as TF does


@pytest.mark.parametrize("norm", ["affine", "batch"])
@pytest.mark.parametrize("size", [96, 112])
def test_onnx_export_matches_the_torch_network(norm, size):
    torch.manual_seed(0)
    net = MobileNetV1(7, norm=norm)
    if norm == "affine":
        net.load_arrays(random_backbone(1))
    else:  # BN statistics that are not the identity, so folding them is really tested
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.3, 0.3)
    net.eval()
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    spec = {"size": size, "channels": 3, "scale": "caffe_bgr", "source_size": 48}
    served = preprocess_faces(faces, spec)  # what the app feeds the ONNX model (NHWC)
    with torch.no_grad():
        ref = torch.softmax(net(torch.from_numpy(served).permute(0, 3, 1, 2)), dim=1).numpy()
        # training upsamples on the device; it must see the same pixels serving makes with OpenCV
        trained = caffe_input(upsample(torch.from_numpy(faces).float().div(255).unsqueeze(1), size))
    # OpenCV interpolates in fixed point: on pure noise the two differ by ~0.26 grey levels on average
    assert float(np.abs(trained.permute(0, 2, 3, 1).numpy() - served).mean()) < 0.5
    model = build_onnx(net.folded_arrays(), size)
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": served})[0]
    assert got.shape == (5, 7)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_load_arrays_round_trips_through_folding():
    net = MobileNetV1(8)
    arrays = random_backbone(3)
    net.load_arrays(arrays)
    folded = net.folded_arrays()
    k = arrays["pw5.kernel"] * arrays["pw5.scale"]  # HWIO, scale per output channel
    np.testing.assert_allclose(folded["pw5.kernel"], k, rtol=1e-6)
    np.testing.assert_allclose(
        folded["dw3.kernel"], arrays["dw3.kernel"] * arrays["dw3.scale"].reshape(1, 1, -1, 1), rtol=1e-6
    )
    assert folded["head.kernel"].shape == (1024, 8)


def test_caffe_bgr_spec_and_source_size():
    spec = input_spec({"size": 96, "channels": 3, "scale": "caffe_bgr", "source_size": 48})
    flat = np.full((1, 200, 200), 100, np.uint8)
    x = preprocess_faces(flat, spec)
    assert x.shape == (1, 96, 96, 3)
    np.testing.assert_allclose(x[0, 10, 10], 100 - np.asarray(CAFFE_BGR_MEANS), atol=1e-4)
    # a sharp face goes through the 48 px bottleneck: fine detail is gone, as in FER's faces
    stripes = np.tile(np.array([0, 0, 255, 255] * 50, np.uint8), (200, 1))[None]  # 4 px period
    blurred = preprocess_faces(stripes, spec)[0, :, :, 0]
    sharp = preprocess_faces(stripes, {**spec, "source_size": None})[0, :, :, 0]
    assert blurred.std() < 0.2 * sharp.std()
    with pytest.raises(ValueError):
        input_spec({"size": 96, "channels": 1, "scale": "caffe_bgr"})
    with pytest.raises(ValueError):
        input_spec({"size": 96, "channels": 3, "scale": "caffe_bgr", "source_size": 200})


def test_augment_is_seeded_bounded_and_varied():
    cfg = FinetuneConfig(name="t")
    x = torch.rand(6, 1, 48, 48)
    a = augment(x, 64, cfg, torch.Generator().manual_seed(5))
    b = augment(x, 64, cfg, torch.Generator().manual_seed(5))
    c = augment(x, 64, cfg, torch.Generator().manual_seed(6))
    assert a.shape == (6, 1, 64, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    plain = upsample(x, 64)
    assert float((a - plain).abs().mean()) > 0.02  # it does change the faces


def test_schedule_warms_up_then_anneals_to_zero():
    assert lr_factor(0.0, 0, 10) == pytest.approx(0.1)
    assert lr_factor(0.0, 10, 10) == pytest.approx(1.0)
    assert lr_factor(0.5, 50, 10) == pytest.approx(0.5)
    assert lr_factor(1.0, 99, 10) == pytest.approx(0.0)


def test_a_budgeted_schedule_follows_the_clock_when_it_is_further_on():
    from training.finetune import schedule_position

    # 1000 steps after a 100-step warm-up: by steps, step 550 is half way
    assert schedule_position(550, 100, 1000, None, wall_s=999.0) == 0.5
    # with a 100 s budget the clock wins once it is further on, and only then
    assert schedule_position(550, 100, 1000, 100.0, wall_s=80.0) == 0.8
    assert schedule_position(550, 100, 1000, 100.0, wall_s=20.0) == 0.5


def test_pack_round_trip(tiny_data, tmp_path):
    pack = write_pack(tmp_path / "pack", tiny_data)
    images, votes = read_pack(pack)
    from training.data import read_fer2013_csv

    ref = read_fer2013_csv(tiny_data / "fer2013" / "fer2013.csv.gz")
    n = int((ref.usage != "PrivateTest").sum())
    assert len(images) == n and not (images.usage == "PrivateTest").any()
    np.testing.assert_array_equal(images.images, ref.images[:n])  # lossless by default
    np.testing.assert_array_equal(images.labels, ref.labels[:n])
    assert len(votes.votes) == n


@pytest.fixture(scope="module")
def tiny_run(tiny_data, backbone_npz, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    cfg = FinetuneConfig(
        name="tiny_mbn",
        input_size=64,
        epochs=2,
        batch_size=16,
        seed=3,
        data=str(tiny_data),
        faceres=str(backbone_npz),
        run_dir=str(run_dir),
        threads=2,
    )
    stop = {"after": 1}

    class Interrupted(Exception):
        pass

    def log(msg):  # simulate an interruption right after epoch 1 was checkpointed
        if "epoch 1/2" in msg and stop["after"]:
            stop["after"] = 0
            raise Interrupted

    with pytest.raises(Interrupted):
        finetune(cfg, log=log)
    ckpt = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    first = ckpt["history"][0]
    messages = []
    summary = finetune(cfg, log=messages.append)
    return cfg, run_dir, summary, first, messages


def test_interrupted_run_resumes_from_its_checkpoint(tiny_run):
    _, _, summary, first, messages = tiny_run
    assert any("resuming after epoch 1 of 2" in m for m in messages)
    assert [h["epoch"] for h in summary["history"]] == [1, 2]
    assert summary["history"][0] == first  # epoch 1 was not trained again
    assert 1 <= summary["best_epoch"] <= 2


def test_ship_writes_onnx_card_that_the_app_serves(tiny_run, tiny_data, tmp_path):
    cfg, run_dir, summary, _, _ = tiny_run
    card = ship(run_dir, tmp_path, data=str(tiny_data), verbose=False)
    assert card["input"] == {"size": 64, "channels": 3, "scale": "caffe_bgr", "source_size": 48}
    assert set(card["metrics"]) == {"fer2013_public", "fer2013_private"}
    assert card["recipe"]["command"].startswith("python -m training finetune --name tiny_mbn")
    assert "HSE" in card["attribution"]
    from app.emotion import ModelRegistry

    reg = ModelRegistry(tmp_path, strict=True)
    model = reg.get("tiny_mbn")
    assert model.runtime == "onnxruntime"
    faces = np.random.default_rng(0).integers(0, 256, (3, 90, 90, 3)).astype(np.uint8)
    probs = model.predict_probs(list(faces))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the card's numbers are what the served model scores on that split
    from training.data import load_splits

    s = load_splits(tiny_data)[0]["PrivateTest"]
    p = onnx_probs(tmp_path / card["onnx_file"], s.images, card["input"], card["tta"])
    assert card["metrics"]["fer2013_private"]["accuracy"] == pytest.approx(float((p.argmax(1) == s.labels).mean()))


def test_resume_refuses_a_changed_recipe(tiny_run):
    cfg, _, _, _, _ = tiny_run
    changed = FinetuneConfig(**{**cfg.__dict__, "lr": cfg.lr * 2})
    with pytest.raises(ValueError, match="other settings"):
        finetune(changed, log=lambda m: None)


def test_soft_targets_need_ferplus(tiny_data, backbone_npz, tmp_path):
    cfg = FinetuneConfig(
        name="bad",
        targets="soft",
        input_size=32,
        epochs=1,
        data=str(tiny_data),
        faceres=str(backbone_npz),
        run_dir=str(tmp_path),
    )
    with pytest.raises(ValueError, match="FER\\+"):
        finetune(cfg, log=lambda m: None)


def test_missing_faceres_weights_say_how_to_get_them(tiny_data, tmp_path):
    cfg = FinetuneConfig(
        name="nof",
        input_size=32,
        epochs=1,
        data=str(tiny_data),
        faceres=str(tmp_path / "none.npz"),
        run_dir=str(tmp_path / "r"),
    )
    with pytest.raises(FileNotFoundError, match="python -m training faceres"):
        finetune(cfg, log=lambda m: None)


def test_summary_is_json_with_the_recipe(tiny_run):
    _, run_dir, _, _, _ = tiny_run
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["config"]["input_size"] == 64 and s["classes"][0] == "angry"
    assert s["params"] > 3_000_000


def test_init_picks_the_checkpoint_from_the_weights_folder(tmp_path):
    """`--init faceres-deep` loads the second checkpoint's npz, `--init faceres` the first."""
    for seed, init in ((0, "faceres"), (1, "faceres-deep")):
        np.savez(faceres.default_npz(init, tmp_path), **random_backbone(seed))
    kernels = {}
    for init in ("faceres", "faceres-deep"):
        model = build_model(FinetuneConfig(name="x", init=init, weights_dir=str(tmp_path)), 7)
        kernels[init] = model.units["conv1"].conv.weight.detach().numpy()
    np.testing.assert_allclose(
        kernels["faceres-deep"], random_backbone(1)["conv1.kernel"].transpose(3, 2, 0, 1), rtol=1e-6
    )
    assert not np.allclose(kernels["faceres"], kernels["faceres-deep"])
    with pytest.raises(ValueError, match="faceres-deep"):
        build_model(FinetuneConfig(name="x", init="imagenet", weights_dir=str(tmp_path)), 7)


def test_freeze_groups_keeps_the_first_layers_out_of_the_optimiser(backbone_npz):
    model = build_model(FinetuneConfig(name="x", faceres=str(backbone_npz)), 7)
    cfg = FinetuneConfig(name="x", freeze_groups=4)
    trained = {id(p) for g in param_groups(model, cfg) for p in g["params"]}
    groups = model.groups()
    for i, params in enumerate(groups):
        for p in params:
            assert (id(p) in trained) == (i >= 4) and p.requires_grad == (i >= 4)
    # their backward pass is skipped: after a step, conv1 and blocks 1-3 hold no gradient
    x = caffe_input(torch.rand(2, 1, 64, 64))
    model(x).sum().backward()
    assert all(p.grad is None for g in groups[:4] for p in g)
    assert all(p.grad is not None for p in groups[4])


def test_bfloat16_autocast_only_where_it_is_native():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert native_bf16(gpu)
    assert native_bf16(cpu, "flags : fpu sse avx2 avx512f avx512_bf16 amx_tile")
    assert native_bf16(cpu, "flags : fpu avx2 amx_bf16 amx_tile")
    assert not native_bf16(cpu, "flags : fpu sse avx2 fma avx512f")  # emulated there: ~10x slower
