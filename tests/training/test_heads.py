"""training.heads: the refitted last layer sees exactly what is served, balancing moves the minority
classes, calibration and the confidence rule do what they say, and a shipped head is the one chosen."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_core.card import load_card, write_card  # noqa: E402
from model_core.labels import FERPLUS_CLASSES  # noqa: E402
from model_core.predictor import Predictor  # noqa: E402
from training import heads  # noqa: E402
from training.balance import class_weights  # noqa: E402
from training.mobilenet import MobileNetV1, arrays_from_onnx, build_onnx  # noqa: E402

from .test_finetune import random_backbone  # noqa: E402


def tiny_card(folder, name="tiny_fp", seed=0, size=64):
    torch.manual_seed(seed)
    net = MobileNetV1(len(FERPLUS_CLASSES))
    net.load_arrays(random_backbone(seed))
    arrays = net.folded_arrays()
    build_onnx(arrays, size, folder / f"{name}.onnx", storage="float16")
    write_card(
        folder / f"{name}.json",
        {
            "name": name,
            "kind": "single",
            "file": f"{name}.onnx",
            "onnx_file": f"{name}.onnx",
            "classes": FERPLUS_CLASSES,
            "label_scheme": "ferplus",
            "input": {"size": size, "channels": 3, "scale": "caffe_bgr", "source_size": 48},
            "tta": ["flip"],
            "metrics": {},
            "recipe": {"arch": "mobilenet_v1_faceres"},
        },
    )
    return load_card(folder / f"{name}.json")


def test_onnx_arrays_round_trip(tmp_path):
    card = tiny_card(tmp_path)
    back = arrays_from_onnx(card.onnx_path)
    again = build_onnx(back, 64, tmp_path / "again.onnx", storage="float16")
    assert again is not None and arrays_from_onnx(tmp_path / "again.onnx").keys() == back.keys()
    for k, v in back.items():
        np.testing.assert_array_equal(arrays_from_onnx(tmp_path / "again.onnx")[k], v)
    assert back["head.kernel"].shape == (1024, 8) and back["dw1.kernel"].shape == (3, 3, 32, 1)


def test_features_reproduce_the_served_probabilities(tmp_path):
    card = tiny_card(tmp_path)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    feats = heads.extract_features(card, faces)
    assert feats.shape == (5, 2, 1024)  # flip TTA: two views
    a = arrays_from_onnx(card.onnx_path)
    served = Predictor.from_card(card).predict_probs(list(faces))
    np.testing.assert_allclose(heads.head_probs(feats, a["head.kernel"], a["head.bias"]), served, atol=1e-5)


def imbalanced(seed=0, n_major=600, n_minor=30, dim=16):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1.0, (3, dim))
    counts = [n_major, n_major, n_minor]
    labels = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
    x = means[labels] + rng.normal(0, 1.2, (len(labels), dim))
    return x.astype(np.float32), labels


def test_class_weights_and_logit_adjustment_raise_minority_recall():
    x, y = imbalanced()
    xt, yt = imbalanced(seed=1, n_major=300, n_minor=300)  # a balanced test set
    onehot = np.eye(3, dtype=np.float32)[y]
    w0, b0 = np.zeros((16, 3)), np.zeros(3)
    plain = heads.fit_head(x, onehot, w0, b0, steps=400, lr=0.05, l2=0.0)
    cw = class_weights(y, 3)
    weights = np.array([cw[int(c)] for c in y])
    weighted = heads.fit_head(x, onehot, w0, b0, sample_weight=weights, steps=400, lr=0.05, l2=0.0)

    def minority_recall(w, b):
        return float((heads.head_probs(xt[:, None], w, b).argmax(1)[yt == 2] == 2).mean())

    prior = np.bincount(y) / len(y)
    base = minority_recall(*plain)
    assert minority_recall(*weighted) > base + 0.1
    assert minority_recall(plain[0], plain[1] - 1.0 * np.log(prior)) > base + 0.1


def test_fit_head_follows_the_gradient_autograd_gives():
    """fit_head writes the gradient out (for speed); one step of it must be the step Adam takes on the
    same weighted soft-target loss differentiated by autograd, L2 pull included."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 12)).astype(np.float32)
    y = rng.dirichlet(np.ones(4), 200).astype(np.float32)
    sw = rng.uniform(0.2, 3.0, 200)
    w0, b0 = rng.normal(size=(12, 4)) * 0.3, rng.normal(size=4) * 0.1
    for steps in (1, 25):
        w, b = heads.fit_head(x, y, w0, b0, sample_weight=sw, steps=steps, lr=0.01, l2=0.05)
        tw, tb = torch.tensor(w0, dtype=torch.float32), torch.tensor(b0, dtype=torch.float32)
        pw, pb = tw.clone().requires_grad_(True), tb.clone().requires_grad_(True)
        opt = torch.optim.Adam([pw, pb], lr=0.01)
        tx, ty, tsw = torch.tensor(x), torch.tensor(y), torch.tensor(sw / sw.mean(), dtype=torch.float32)
        for _ in range(steps):
            loss = (tsw * -(ty * torch.log_softmax(tx @ pw + pb, 1)).sum(1)).mean() + 0.05 * ((pw - tw) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert np.abs(w - w0).max() > 1e-3  # it moved
        np.testing.assert_allclose(w, pw.detach().numpy(), atol=2e-5)
        np.testing.assert_allclose(b, pb.detach().numpy(), atol=2e-5)


def test_temperature_ece_and_confidence_rule():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.0, (4000, 1, 5))
    p_true = heads.head_probs(logits, np.eye(5), np.zeros(5))
    labels = np.array([rng.choice(5, p=p) for p in p_true])
    over = logits * 3.0  # three times too confident
    assert heads.fit_temperature(over, labels) == pytest.approx(3.0, rel=0.15)
    probs_over = heads.head_probs(over, np.eye(5), np.zeros(5))
    assert (
        heads.expected_calibration_error(p_true, labels) < 0.03 < heads.expected_calibration_error(probs_over, labels)
    )
    rule = heads.confidence_thresholds(p_true, labels, target=0.8)
    share = heads.confident_share(p_true, labels, rule)
    assert share["accuracy_confident"] >= 0.8 > share["accuracy_hedged"]
    assert 0 < share["coverage"] < 1 and share["coverage"] == pytest.approx(rule["coverage"])


def test_calm_face_rate_counts_negative_calls_on_strong_neutral_faces_only():
    classes = FERPLUS_CLASSES
    pred = np.array([classes.index(c) for c in ("neutral", "sad", "happy", "contempt", "angry")])
    strong = np.array([True, True, True, True, False])
    assert heads.calm_face_rate(pred, strong, classes) == pytest.approx(0.5)  # sad + contempt of 4
    fer7 = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert heads.calm_face_rate(np.array([4, 6]), np.array([True, True]), fer7) == pytest.approx(0.5)


def test_refit_then_ship_serves_the_chosen_calibrated_head(tmp_path, tiny_data):
    card = tiny_card(tmp_path)
    report = heads.refit(
        card.path,
        methods=("original", "logit_adjust", "none", "class_weights", "oversample"),
        data_dir=tiny_data,
        cache_dir=tmp_path / "cache",
        tta=[],
        log=lambda *_: None,
    )
    methods = [r["method"] for r in report["rows"]]
    assert methods == ["original", "logit_adjust", "none", "class_weights", "oversample"]
    for r in report["rows"]:
        assert {"accuracy", "macro_f1", "calm_face_rate", "ece", "per_class"} <= set(r["val"]) and r["test"]
    assert report["selection"]["chosen"] in methods
    assert report["calibration"]["temperature"] > 0
    assert "|" in heads.table(report)
    out = heads.ship_head(card.path, report, "tiny_fp_cal", data_dir=tiny_data)
    shipped = load_card(tmp_path / "tiny_fp_cal.json")
    assert shipped.confidence and shipped.calibration["temperature"] == report["calibration"]["temperature"]
    assert report["tta"] == [] and shipped.tta == []  # served without the mirror, as asked
    assert "--tta none" in out["recipe"]["head"]["command"]
    assert "calm_face_rate" in out["metrics"]["ferplus_test"] and "ece" in out["metrics"]["ferplus_val"]
    assert out["recipe"]["head"]["command"].startswith("python -m training heads --card")
    faces = np.random.default_rng(1).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    feats = heads.extract_features(card, faces)
    w, b = report["_head"]
    np.testing.assert_allclose(
        Predictor.from_card(shipped).predict_probs(list(faces)), heads.head_probs(feats[:, :1], w, b), atol=2e-3
    )  # float16 storage of the head


def test_calibrate_card_fits_a_temperature_that_serving_applies(tmp_path, tiny_data):
    from model_core.card import read_card

    card = tiny_card(tmp_path)
    raw = heads.calibrate_card(card.path, data_dir=tiny_data, log=lambda *_: None)
    served = load_card(card.path)
    cal = served.calibration
    assert cal["applied"] == "at_serving" and cal["temperature"] > 0
    assert set(cal["ece_before"]) == set(cal["ece_after"]) == {"ferplus_val", "ferplus_test"}
    assert served.confidence["min_top"] > 0 and "ferplus_test" in raw["confidence"]
    faces = np.random.default_rng(2).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    z = heads.view_logits(read_card(card.path), faces, tmp_path)
    assert z.shape == (6, 2, 8)
    np.testing.assert_allclose(
        Predictor.from_card(served).predict_probs(list(faces)),
        heads.head_probs(z, np.eye(8), np.zeros(8), cal["temperature"]),
        atol=1e-6,
    )
    # the card's numbers are the calibrated model's, as served
    from training.data import load_splits

    val = load_splits(tiny_data, "ferplus", progress=False)[0]["PublicTest"]
    acc = float((Predictor.from_card(served).predict_probs(list(val.images)).argmax(1) == val.labels).mean())
    assert raw["metrics"]["ferplus_val"]["accuracy"] == pytest.approx(acc)
