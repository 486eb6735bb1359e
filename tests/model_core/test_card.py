"""model_core.card: cards are validated on load, with errors that say which file and what is wrong."""

from __future__ import annotations

import json

import pytest

from model_core.card import FIXED_KEYS, CardError, load_cards, parse_card

FER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FERPLUS = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]


def card(name="m1", classes=FER, **extra):
    data = {
        "name": name,
        "title": name,
        "kind": "single",
        "file": f"{name}.onnx",
        "classes": classes,
        "label_scheme": "fer2013",
        "input": {"size": 48, "channels": 1, "scale": "unit"},
        "tta": ["flip"],
        "metrics": {"fer2013_private": {"accuracy": 0.6, "macro_f1": 0.5, "per_class": {}, "confusion": []}},
    }
    data.update(extra)
    return data


def write(folder, data, model_file=True):
    (folder / f"{data['name']}.json").write_text(json.dumps(data))
    if model_file and data.get("kind", "single") == "single":
        (folder / data["file"]).write_bytes(b"not really onnx")


def test_good_cards_load(tmp_path):
    write(tmp_path, card("a"))
    write(tmp_path, card("b", classes=FERPLUS, label_scheme="ferplus"))
    write(
        tmp_path,
        {
            "name": "ens",
            "kind": "ensemble",
            "classes": FER,
            "input": {},
            "metrics": {},
            "members": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 0.5}],
        },
    )
    cards = load_cards(tmp_path)
    assert list(cards) == ["a", "b", "ens"]
    assert cards["a"].model_path == cards["a"].onnx_path == tmp_path / "a.onnx"
    assert cards["ens"].members[1] == {"name": "b", "weight": 0.5}
    summary = cards["a"].summary()
    assert summary["metrics"]["fer2013_private"]["accuracy"] == 0.6
    assert summary["input"] == {"size": 48, "channels": 1, "scale": "unit"}


@pytest.mark.parametrize("key", FIXED_KEYS)
def test_missing_fixed_key_is_rejected(tmp_path, key):
    data = card("broken")
    (tmp_path / "broken.onnx").write_bytes(b"x")
    del data[key]
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(CardError, match=key):
        load_cards(tmp_path)


@pytest.mark.parametrize(
    "change, words",
    [
        ({"classes": ["happy"]}, "classes"),
        ({"classes": ["Happy", "sad"]}, "classes"),
        ({"classes": ["sad", "sad"]}, "duplicates"),
        ({"input": {"size": 48, "channels": 2}}, "input"),
        ({"input": "48x48"}, "input"),
        ({"metrics": {"fer2013_private": {"accuracy": "high"}}}, "metrics"),
        ({"kind": "committee"}, "kind"),
        ({"tta": ["rotate"]}, "tta"),
        ({"file": "../../etc/passwd"}, "file"),
        ({"name": "has space"}, "name"),
    ],
)
def test_bad_values_are_rejected(change, words):
    with pytest.raises(CardError, match=words):
        parse_card({**card(), **change})


def test_missing_model_file_is_rejected(tmp_path):
    write(tmp_path, card("ghost"), model_file=False)
    with pytest.raises(CardError, match="not found"):
        load_cards(tmp_path)


def test_ensemble_members_must_exist_and_share_labels(tmp_path):
    write(tmp_path, card("a"))
    write(
        tmp_path,
        {
            "name": "ens",
            "kind": "ensemble",
            "classes": FER,
            "input": {},
            "metrics": {},
            "members": [{"name": "a", "weight": 1}, {"name": "nobody", "weight": 1}],
        },
    )
    with pytest.raises(CardError, match="nobody"):
        load_cards(tmp_path)
    write(
        tmp_path,
        {
            "name": "ens",
            "kind": "ensemble",
            "classes": FER + ["contempt"],
            "input": {},
            "metrics": {},
            "members": [{"name": "a", "weight": 1}],
        },
    )
    with pytest.raises(CardError, match="contempt"):
        load_cards(tmp_path)


def test_lenient_loading_skips_bad_cards(tmp_path, caplog):
    write(tmp_path, card("good"))
    (tmp_path / "bad.json").write_text("{not json")
    write(
        tmp_path,
        {
            "name": "ens",
            "kind": "ensemble",
            "classes": FER,
            "input": {},
            "metrics": {},
            "members": [{"name": "missing", "weight": 1}],
        },
    )
    cards = load_cards(tmp_path, strict=False)
    assert list(cards) == ["good"]
    assert "bad.json" in caplog.text and "missing" in caplog.text


def test_default_flag_and_titles_per_language(tmp_path):
    write(tmp_path, card("a"))
    write(tmp_path, card("b", default=True, titles={"vi": "Mô hình B"}))
    cards = load_cards(tmp_path)
    assert cards["b"].default and not cards["a"].default
    assert cards["b"].summary()["titles"] == {"vi": "Mô hình B"} and cards["a"].summary()["titles"] == {}
    assert cards["b"].summary()["default"] is True
    from app.emotion import ModelRegistry

    assert ModelRegistry(tmp_path).default == "b"  # the flagged card, not the first one
    for bad in ({"default": "yes"}, {"titles": {"vi": ""}}, {"titles": ["vi"]}):
        with pytest.raises(CardError):
            parse_card(card("c", **bad), "c.json")


def test_shipped_cards_name_one_default_and_have_vietnamese_titles():
    from tests.conftest import ROOT

    cards = load_cards(ROOT / "models", strict=True)
    assert [n for n, c in cards.items() if c.default] == ["ferplus_mobilenet_cal"]
    assert all(c.titles.get("vi") for c in cards.values())


# Words a title must not use: the default is the card's "default": true, so a title that says
# "default" goes stale when another card becomes it (it did: "(live default)"), and the serving
# budget is not what a user chooses a model by ("no mirror: the live budget").
NOT_IN_A_TITLE = ("default", "mặc định", "budget", "mirror", "seed", "head", "px", "v1", "FaceRes")


def test_shipped_titles_are_plain_words():
    from tests.conftest import ROOT

    for c in load_cards(ROOT / "models", strict=True).values():
        for text in (c.title, *c.titles.values(), *c.short.values()):
            used = [w for w in NOT_IN_A_TITLE if w.lower() in text.lower()]
            assert not used, f"{c.name}: {text!r} says {used}"


def test_menu_names_purpose_and_confidence_rule():
    c = parse_card(
        card(
            "a",
            short={"en": "A", "vi": "Á"},
            purpose={"en": "for tests"},
            menu=False,
            confidence={"min_top": 0.5, "min_margin": 0.2},
        ),
        "a.json",
    )
    s = c.summary()
    assert s["short"] == {"en": "A", "vi": "Á"} and s["purpose"] == {"en": "for tests"} and s["menu"] is False
    assert s["confidence"] == {"min_top": 0.5, "min_margin": 0.2}
    # the rule: hedge when the top probability or the margin to the runner-up is low
    assert c.confident([0.7, 0.2, 0.1]) is True
    assert c.confident([0.45, 0.1, 0.45]) is False  # top below 0.5
    assert c.confident({"happy": 0.55, "sad": 0.4, "x": 0.05}) is False  # margin 0.15 < 0.2
    assert parse_card(card("b"), "b.json").confident([0.3, 0.3, 0.4]) is True  # no rule: always sure
    for bad in (
        {"menu": "no"},
        {"short": {"en": ""}},
        {"purpose": ["en"]},
        {"confidence": {"min_top": 1.5, "min_margin": 0.1}},
        {"confidence": {"min_top": 0.5}},
        {"calibration": {"temperature": -1}},
        {"default": True, "menu": False},
        {"calibration": {"temperature": 1.2, "applied": "somewhere"}},
    ):
        with pytest.raises(CardError):
            parse_card(card("c", **bad), "c.json")


def test_shipped_menu_offers_every_card_but_ensemble_only_members():
    from tests.conftest import ROOT

    cards = load_cards(ROOT / "models", strict=True)
    members = {m["name"] for c in cards.values() if c.kind == "ensemble" for m in c.members}
    hidden = {n for n, c in cards.items() if not c.menu}
    assert hidden and hidden <= members
    for c in cards.values():
        assert c.short.get("en") and c.short.get("vi") and len(c.short["en"]) <= 40, c.name
        assert c.purpose.get("en") and c.purpose.get("vi"), c.name


@pytest.mark.parametrize(
    "change, words",
    [
        ({"file": "m1.keras"}, "must be an .onnx file"),  # issue 17: Keras left; every card is ONNX
        ({"onnx_file": "other.onnx"}, "same file as 'file'"),
    ],
)
def test_a_model_file_is_an_onnx_file(tmp_path, change, words):
    data = card(**change)
    (tmp_path / data["file"]).write_bytes(b"x")
    (tmp_path / "m1.json").write_text(json.dumps(data))
    with pytest.raises(CardError, match=words):
        load_cards(tmp_path)
