import numpy as np
import pytest

from training import data as fer
from training.data import DataError

from .conftest import SPLIT_SIZES, synthetic_faces, write_fer_csv


def test_reads_gz_csv_with_splits_labels_and_pixels(tiny_data):
    d = fer.read_fer2013_csv(tiny_data / "fer2013" / "fer2013.csv.gz")
    assert d.images.shape == (sum(SPLIT_SIZES.values()), 48, 48) and d.images.dtype == np.uint8
    assert {s: int((d.usage == s).sum()) for s in fer.SPLITS} == SPLIT_SIZES
    expected = np.concatenate([np.arange(n) % 7 for n in SPLIT_SIZES.values()])
    assert (d.labels == expected).all()
    assert d.images[3].max() == 0 and d.images[4].std() > 5


def test_plain_csv_and_cache_give_the_same_arrays(tmp_path):
    labels = np.array([3, 0, 6])
    imgs = synthetic_faces(3, labels)
    path = write_fer_csv(tmp_path / "fer2013.csv", imgs, labels, ["Training", "PublicTest", "PrivateTest"])
    first = fer.read_fer2013_csv(path, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    again = fer.read_fer2013_csv(path, cache_dir=tmp_path / "cache")
    assert (first.images == imgs).all() and (again.images == imgs).all()
    assert list(again.usage) == ["Training", "PublicTest", "PrivateTest"]


@pytest.mark.parametrize(
    "row, message",
    [
        ("3,1 2 3,Training", "row 1 (line 3): 3 pixel values, expected 2304"),
        ("9," + " ".join(["0"] * 2304) + ",Training", "row 1 (line 3): emotion 9 outside 0..6"),
        ("x," + " ".join(["0"] * 2304) + ",Training", "row 1 (line 3): emotion 'x' is not an integer"),
        ("3," + " ".join(["0"] * 2303) + " 300,Training", "row 1 (line 3): pixel values must lie in 0..255"),
        ("3," + " ".join(["0"] * 2303) + " a,Training", "row 1 (line 3): pixels contain a non-integer"),
        ("3," + " ".join(["0"] * 2304) + ",Elsewhere", "row 1 (line 3): unknown split 'Elsewhere'"),
        ("3," + " ".join(["0"] * 2304), "row 1 (line 3): expected 3 fields, got 2"),
    ],
)
def test_malformed_rows_name_the_file_and_row(tmp_path, row, message):
    good = "0," + " ".join(["7"] * 2304) + ",Training"
    path = tmp_path / "bad.csv"
    path.write_text(f"emotion,pixels,Usage\n{good}\n{row}\n")
    with pytest.raises(DataError) as e:
        fer.read_fer2013_csv(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_missing_file_and_bad_header_are_clear(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        fer.read_fer2013_csv(tmp_path / "nope.csv")
    (tmp_path / "h.csv").write_text("label,data\n1,2\n")
    with pytest.raises(DataError, match="lacks one of"):
        fer.read_fer2013_csv(tmp_path / "h.csv")
    (tmp_path / "v.csv").write_text("Usage,Image name,a\n")
    with pytest.raises(DataError, match="12-column header"):
        fer.read_ferplus_votes(tmp_path / "v.csv")


def test_ferplus_filtering_and_label_mapping(tiny_data):
    votes = fer.read_ferplus_votes(tiny_data / "ferplus" / "fer2013new.csv")
    keep, majority, dist = fer.ferplus_targets(votes)
    assert not keep[5] and not keep[8] and not keep[10]  # NF top, no name, unknown top
    assert keep.sum() == len(keep) - 3
    # FER-2013 label 3 (happy) was voted as FER+ "happiness" -> class "happy"
    assert fer.FERPLUS_CLASSES[majority[3 + 14]] == "happy"
    assert np.allclose(dist[keep].sum(axis=1), 1.0)
    images = fer.read_fer2013_csv(tiny_data / "fer2013" / "fer2013.csv.gz")
    splits = fer.build_splits(images, "ferplus", votes)
    assert sum(len(s) for s in splits.values()) == len(images) - 3
    assert splits["Training"].soft.shape[1] == 8


def test_ferplus_ties_go_to_the_earlier_column():
    v = fer.FerPlusVotes(
        np.array(["Training"]), np.array(["a.png"]), np.array([[0, 0, 5, 5, 0, 0, 0, 0, 0, 0]], np.float32)
    )
    keep, majority, _ = fer.ferplus_targets(v)
    assert keep[0] and fer.FERPLUS_CLASSES[majority[0]] == "surprise"


def test_misaligned_votes_are_rejected(tiny_data, tmp_path):
    images = fer.read_fer2013_csv(tiny_data / "fer2013" / "fer2013.csv.gz")
    votes = fer.read_ferplus_votes(tiny_data / "ferplus" / "fer2013new.csv")
    short = fer.FerPlusVotes(votes.usage[:-1], votes.names[:-1], votes.votes[:-1])
    with pytest.raises(DataError, match="row-aligned"):
        fer.build_splits(images, "ferplus", short)


def test_image_folder_layout(tmp_path):
    import cv2

    labels = np.array([3, 5, 0, 6])
    imgs = synthetic_faces(4, labels)
    for i, (img, lab) in enumerate(zip(imgs, labels, strict=True)):
        split = ["train", "val", "test", "train"][i]
        folder = tmp_path / split / (fer.FER2013_CLASSES[lab] if i % 2 else str(lab))
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{100 + i}.png"), img)
    (tmp_path / "train" / "3" / "notes.txt").write_text("ignored")
    d = fer.read_image_folder(tmp_path)
    assert sorted(d.rows.tolist()) == [100, 101, 102, 103]
    by_row = {int(r): (int(lab), u) for r, lab, u in zip(d.rows, d.labels, d.usage, strict=True)}
    assert by_row[100] == (3, "Training") and by_row[101] == (5, "PublicTest")
    assert by_row[102] == (0, "PrivateTest")
    assert (d.images[list(d.rows).index(100)] == imgs[0]).all()  # PNG is lossless
    (tmp_path / "train" / "grumpy").mkdir()
    with pytest.raises(DataError, match="grumpy: folder name is not a class"):
        fer.read_image_folder(tmp_path)


def test_one_path_rule_either_form_and_a_clear_miss(tmp_path):
    (tmp_path / "fer2013").mkdir()
    with pytest.raises(DataError, match="neither fer2013.csv.gz nor fer2013.csv is there"):
        fer.fer2013_csv(tmp_path)
    plain = write_fer_csv(
        tmp_path / "fer2013" / "fer2013.csv",
        synthetic_faces(3, np.arange(3)),
        np.arange(3),
        ["Training", "PublicTest", "PrivateTest"],
    )
    assert fer.fer2013_csv(tmp_path) == plain
    gz = write_fer_csv(
        tmp_path / "fer2013" / "fer2013.csv.gz",
        synthetic_faces(3, np.arange(3)),
        np.arange(3),
        ["Training", "PublicTest", "PrivateTest"],
        gz=True,
    )
    assert fer.fer2013_csv(tmp_path) == gz  # both there: the gzipped one, as before


def test_load_splits_is_the_one_loader(tiny_data, tmp_path):
    splits, votes, source = fer.load_splits(tiny_data, cache_dir=None, progress=False)
    assert source == str(tiny_data / "fer2013" / "fer2013.csv.gz") and votes is not None
    assert {k: len(s) for k, s in splits.items()} == SPLIT_SIZES
    plus = fer.load_splits(tiny_data, "ferplus", cache_dir=None, progress=False)[0]
    assert plus["Training"].soft is not None and len(plus["Training"]) < SPLIT_SIZES["Training"]
    small = fer.load_splits(tiny_data, limit=5, seed=3, cache_dir=None, progress=False)[0]
    again = fer.load_splits(tiny_data, limit=5, seed=3, cache_dir=None, progress=False)[0]
    assert all(len(s) == 5 and (s.rows == again[k].rows).all() for k, s in small.items())
    # FER+ without its votes file says which file it needs
    (tmp_path / "fer2013").mkdir()
    (tmp_path / "fer2013" / "fer2013.csv.gz").write_bytes((tiny_data / "fer2013" / "fer2013.csv.gz").read_bytes())
    with pytest.raises(DataError, match="fer2013new.csv: file not found"):
        fer.load_splits(tmp_path, "ferplus", cache_dir=None, progress=False)
