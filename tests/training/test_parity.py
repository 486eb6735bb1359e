"""Train/serve parity (issue 17, item 4): the trainer selects epochs through its own preprocessing
(`finetune.evaluate_device`: `upsample` + `mobilenet.caffe_input`, in PyTorch); the app serves through
`model_core.preprocess` + ONNX Runtime. On real faces both must agree, or the epoch chosen is not the
model served.

Faces: the two real faces scikit-image ships (the astronaut, the cameraman; boxes from the app's MTCNN
detector, cropped as the app crops them), the astronaut mirrored and dimmed, and four real non-faces
(the cat, a coffee cup, a rocket, printed text), each brought to 48x48 grey as FER faces are. The
shipped FER+ and FER-2013 MobileNets run in PyTorch from `arrays_from_onnx` and in ONNX Runtime from
their cards.

What holds, measured: the two networks agree to ~1e-5 on the same input, and the labels are identical
on every face here. The probabilities differ by up to ~1e-2 (so the 1e-3 bound does not hold, the
identical-labels one does): serving upsamples the 48 px face with OpenCV on uint8, rounding each pixel
to a grey level in fixed point (up to 0.76 of one), the trainer interpolates in float
(`test_the_gap_is_the_uint8_rounding_of_the_upsampled_face`). On the first 800 FER+ validation faces
(not run here: the data is not in the repository) the same gap changed 2 labels of 800 (99.75% agree;
accuracy 83.25% trainer, 83.13% served; largest probability gap 0.034): epoch selection can be off by
about 0.1 point. Closing it means one preprocessing for both (the trainer's evaluation through
`model_core.preprocess`, or serving interpolating in float), which changes served numbers: not done here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
skdata = pytest.importorskip("skimage.data")
cv2 = pytest.importorskip("cv2")

from model_core.card import load_card  # noqa: E402
from model_core.predictor import Predictor, onnx_forward  # noqa: E402
from model_core.preprocess import crop_face, preprocess_faces, to_grey  # noqa: E402
from training.finetune import evaluate_device, upsample  # noqa: E402
from training.mobilenet import MobileNetV1, arrays_from_onnx, caffe_input  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"
CARDS = ["ferplus_mobilenet", "fer2013_mobilenet"]
PROB_GAP = 0.02  # measured 0.0095 (FER+) and 0.0084 (FER-2013) on these faces; see the docstring
NET_GAP = 1e-4  # the same input through PyTorch and ONNX Runtime


def real_crops() -> dict[str, np.ndarray]:
    astronaut, camera = skdata.astronaut(), skdata.camera()
    face = crop_face(astronaut, [181, 62, 85, 110])  # MTCNN's box (app.faces), cropped as served
    return {
        "astronaut": face,
        "astronaut mirrored": crop_face(astronaut[:, ::-1], [512 - 181 - 85, 62, 85, 110]),
        "astronaut dimmed": (face.astype(np.float32) * 0.55).astype(np.uint8),
        "cameraman": crop_face(camera, [199, 116, 56, 80]),
        "cat (not a FER face)": skdata.chelsea()[40:230, 120:310],
        "coffee cup": skdata.coffee()[20:380, 120:480],
        "rocket": skdata.rocket()[100:400, 200:500],
        "printed text": skdata.text()[:, 100:272],
    }


def fer_like(crops) -> np.ndarray:
    """(N, 48, 48) uint8 grey, as the FER data is: what the trainer's evaluation reads."""
    return np.stack([cv2.resize(to_grey(c), (48, 48), interpolation=cv2.INTER_AREA) for c in crops])


@pytest.fixture(scope="module")
def faces():
    crops = real_crops()
    return list(crops), list(crops.values()), fer_like(crops.values())


@pytest.fixture(scope="module", params=CARDS)
def shipped(request):
    # parity is about preprocessing: compare the network's own probabilities, without the card's
    # serving-time temperature (the trainer selects epochs on uncalibrated outputs)
    card = dataclasses.replace(load_card(MODELS / f"{request.param}.json"), calibration={})
    if card.onnx_path is None or not card.onnx_path.exists() or card.input.get("scale") != "caffe_bgr":
        pytest.skip(f"{request.param}: no shipped MobileNet ONNX file")
    net = MobileNetV1(len(card.classes))
    net.load_arrays(arrays_from_onnx(card.onnx_path))
    net.eval()
    return card, net


def trainer_probs(net, faces48, card):
    """Exactly what epoch selection computes (finetune.evaluate_device), in float32 on the CPU."""
    return evaluate_device(net, faces48, card.input["size"], card.tta, torch.device("cpu"), amp=False)


def test_trainer_and_server_give_the_same_labels_on_real_faces(faces, shipped):
    names, crops, faces48 = faces
    card, net = shipped
    served = Predictor.from_card(card).predict_probs(crops)  # the app's path, from the raw crops
    served48 = Predictor.from_card(card).predict_probs(list(faces48))
    np.testing.assert_array_equal(served, served48)  # serving brings a crop to 48 px itself (source_size)
    trained = trainer_probs(net, faces48, card)
    assert trained.shape == served.shape == (len(names), len(card.classes))
    got = {
        n: (card.classes[a], card.classes[b])
        for n, a, b in zip(names, trained.argmax(1), served.argmax(1), strict=True)
    }
    assert all(a == b for a, b in got.values()), got
    assert np.abs(trained - served).max() < PROB_GAP, np.abs(trained - served).max(1)
    # the faces are the ones people see: the astronaut's broad smile reads as happy on both paths
    assert got["astronaut"][0] == "happy" and got["astronaut mirrored"][0] == "happy"


def test_the_two_networks_agree_on_the_same_input(faces, shipped):
    """PyTorch from `arrays_from_onnx` vs ONNX Runtime on the trainer's own input tensor: the weights,
    the graph (TF 'SAME' padding, ReLU6, folded norms) and the softmax are the same."""
    _, _, faces48 = faces
    card, net = shipped
    x = caffe_input(upsample(torch.from_numpy(faces48).float().div(255.0).unsqueeze(1), card.input["size"]))
    with torch.no_grad():
        ours = torch.softmax(net(x), dim=1).numpy()
    theirs = onnx_forward(card.onnx_path)(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
    assert np.abs(ours - theirs).max() < NET_GAP


def test_the_gap_is_the_uint8_rounding_of_the_upsampled_face(faces, shipped):
    """The only difference left is in the input: serving's upsampled face is OpenCV's uint8 result
    (fixed-point, rounded to grey levels), the trainer's is float; they differ by under one grey
    level, about a quarter of one on average."""
    _, _, faces48 = faces
    card, _ = shipped
    served_x = preprocess_faces(list(faces48), card.input)
    up = upsample(torch.from_numpy(faces48).float().div(255.0).unsqueeze(1), card.input["size"])
    trainer_x = caffe_input(up).permute(0, 2, 3, 1).numpy()
    gap = np.abs(served_x - trainer_x)  # grey levels, on the 0-255 scale both use
    assert gap.max() < 1.0 and gap.mean() < 0.35, (gap.max(), gap.mean())
