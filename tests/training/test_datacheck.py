"""`python -m training data` (issue 11): finds each form of FER-2013 people have, counts rows per split,
names checksums, says exactly what is missing and where to get it, and --prepare writes the layout the
trainer reads. All data here is tiny and written by the tests (no dataset file is in the repository)."""

from __future__ import annotations

import gzip
import hashlib

import cv2
import numpy as np
import pytest

from training import data as fer, datacheck
from training.cli import main as cli

from .conftest import SPLIT_SIZES, synthetic_faces, write_fer_csv


def test_complete_folder_is_ready(tiny_data, capsys):
    assert cli(["data", "--data", str(tiny_data)]) == 0
    out = capsys.readouterr().out
    assert "FER-2013  ok" in out and "FER+      ok" in out
    assert "Training 70, PublicTest 21, PrivateTest 21 (total 112)" in out
    assert "expected 28,709 for the full dataset" in out  # tiny data is not the real thing
    assert "not a known file" in out  # md5 compared with Kaggle's
    assert "ready: FER-2013 scheme, FER+ scheme" in out


def test_empty_folder_says_what_is_missing_and_where_to_get_it(tmp_path, capsys):
    assert cli(["data", "--data", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FER-2013  MISSING" in out and "FER+      MISSING" in out
    # it names both forms it reads, where it looks (issue 17: it reported .csv.gz missing, asked for .csv)
    wanted = f"{tmp_path}/fer2013/fer2013.csv or {tmp_path}/fer2013/fer2013.csv.gz"
    assert f"FER-2013  MISSING  {wanted}\n" in out
    assert f"put Kaggle's fer2013.csv, plain or gzipped, at {wanted} (either is read)" in out
    assert "kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge" in out
    assert "github.com/microsoft/FERPlus" in out and f"{tmp_path}/ferplus/fer2013new.csv" in out
    assert "ready: nothing yet" in out


def test_known_checksum_is_recognised(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(b"hello\n")
    datacheck.KNOWN_MD5[hashlib.md5(b"hello\n").hexdigest()] = "a file we know"
    try:
        assert datacheck._checksum_note(path, True).endswith("a file we know")
        gz = tmp_path / "x.csv.gz"
        gz.write_bytes(gzip.compress(b"hello\n"))
        assert datacheck._checksum_note(gz, True).endswith("a file we know")  # content, not the gzip bytes
    finally:
        del datacheck.KNOWN_MD5[hashlib.md5(b"hello\n").hexdigest()]


def _tiny_fer(tmp_path):
    usage = np.concatenate([[s] * n for s, n in SPLIT_SIZES.items()])
    labels = np.concatenate([np.arange(n) % 7 for n in SPLIT_SIZES.values()])
    return synthetic_faces(len(labels), labels, seed=3), labels, usage


def test_icml_face_data_is_read_and_prepared_byte_for_byte(tmp_path, capsys):
    images, labels, usage = _tiny_fer(tmp_path)
    reference = write_fer_csv(tmp_path / "reference.csv", images, labels, usage)
    (tmp_path / "d" / "fer2013").mkdir(parents=True)
    # Kaggle's later file: columns reordered, the header's names with a leading space
    icml = ["emotion, Usage, pixels"] + [
        f"{lab},{u},{' '.join(map(str, im.ravel()))}" for im, lab, u in zip(images, labels, usage, strict=True)
    ]
    (tmp_path / "d" / "fer2013" / "icml_face_data.csv").write_text("\n".join(icml) + "\n")

    assert cli(["data", "--data", str(tmp_path / "d")]) == 1  # FER+ is missing
    out = capsys.readouterr().out
    assert "form: icml_face_data.csv (emotion, Usage, pixels)" in out
    assert "Training 70, PublicTest 21, PrivateTest 21" in out
    assert "--prepare" in out

    assert cli(["data", "--data", str(tmp_path / "d"), "--prepare"]) == 1
    out = capsys.readouterr().out
    prepared = tmp_path / "d" / "fer2013" / "fer2013.csv"
    assert prepared.read_bytes() == reference.read_bytes()
    assert f"wrote {prepared}" in out and "form: fer2013.csv (emotion, pixels, Usage)" in out
    back = fer.read_fer2013_csv(prepared, progress=False)
    assert (back.images == images).all() and (back.labels == labels).all()
    with pytest.raises(fer.DataError, match="already exists"):
        datacheck.prepare(tmp_path / "d")


def test_image_folder_form_explains_evaluation_and_prepares_a_validation_split(tmp_path, capsys):
    images, labels, _ = _tiny_fer(tmp_path)
    root = tmp_path / "d" / "fer2013"
    for i, (img, label) in enumerate(zip(images[:84], labels[:84], strict=True)):
        split = "train" if i < 70 else "test"
        folder = root / split / fer.FER2013_CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"im{i}.jpg"), img)

    assert cli(["data", "--data", str(tmp_path / "d"), "--no-checksum"]) == 1
    out = capsys.readouterr().out
    assert "form: image folder (train/<label>/, test/<label>/)" in out
    assert "rows: train 70, test 14" in out
    assert "PublicTest and PrivateTest together" in out and "not comparable" in out
    assert f"--image-folder {root}" in out

    out_path = datacheck.prepare(tmp_path / "d", seed=0)
    back = fer.read_fer2013_csv(out_path, progress=False)
    counts = {s: int((back.usage == s).sum()) for s in fer.SPLITS}
    assert counts == {"Training": 63, "PublicTest": 7, "PrivateTest": 14}, counts  # 10% of each class held out
    note = (root / datacheck.PREPARED_NOTE).read_text()
    assert "held out as PublicTest" in note and "not Kaggle's file" in note


def test_default_data_dir_prefers_the_repo_folder_then_the_shared_one(tmp_path, monkeypatch):
    repo, shared = tmp_path / "repo" / "data", tmp_path / "shared" / "data"
    monkeypatch.setattr(fer, "REPO_DATA_DIR", repo)
    monkeypatch.setattr(fer, "SHARED_DATA_DIR", shared)
    monkeypatch.delenv("EMOTION_DATA", raising=False)
    assert fer.default_data_dir() == repo  # neither exists: the documented place
    shared.mkdir(parents=True)
    assert fer.default_data_dir() == shared  # the team's set-up keeps working
    repo.mkdir(parents=True)
    assert fer.default_data_dir() == repo  # data/ in the repository wins
    monkeypatch.setenv("EMOTION_DATA", str(tmp_path / "elsewhere"))
    assert fer.default_data_dir() == tmp_path / "elsewhere"
