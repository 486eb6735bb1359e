"""The assistant as a package, a library and a command (issue 25): `pip install .` (its wheel), the
`emotion` command's `analyze` / `video` / `models`, and `Analyzer` returning the server's objects."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tomllib
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest

from app.command import main
from app.pipeline import FaceResult
from benchmarks.clips import encode, make_clip
from tests.app import imagegen as g

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _need_model(request, has_model):
    if "no_model_needed" not in request.keywords and not has_model:
        pytest.skip("no model card to serve (models/ is empty)")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder: the smiling astronaut, a photo with no face, a corrupt JPEG, a text file named .png,
    and a sub-folder with three faces."""
    root = tmp_path_factory.mktemp("photos")
    (root / "astronaut.jpg").write_bytes(g.jpeg(g.astronaut()))
    (root / "coffee.png").write_bytes(g.png(g.no_face()))
    (root / "broken.jpg").write_bytes(g.jpeg(g.astronaut())[:300])
    (root / "notes.png").write_bytes(b"not a photo at all")
    (root / "readme.txt").write_text("ignored: not a photo suffix")
    (root / "more").mkdir()
    (root / "more" / "three.jpg").write_bytes(g.jpeg(g.several_faces()))
    return root


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([*argv, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the library --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer(models_dir):
    from app.analyzer import Analyzer

    return Analyzer(models_dir=models_dir)


def test_analyzer_returns_the_servers_objects_for_a_path_bytes_and_an_array(analyzer, client, photos):
    path = photos / "astronaut.jpg"
    by_path, by_bytes = analyzer.analyze(path), analyzer.analyze(path.read_bytes())
    by_array = analyzer.analyze(g.astronaut())
    assert all(isinstance(r, FaceResult) for r in by_path + by_array)
    assert by_path == by_bytes and len(by_array) == 1 and by_array[0].emotion == "happy"
    # the same faces, labels and scores as POST /api/predict for the same bytes
    body = client.post(
        "/api/predict", data={"image": (io.BytesIO(path.read_bytes()), "a.jpg")}, content_type="multipart/form-data"
    ).get_json()
    assert [(f["box"], f["emotion"], f["scores"], f["confident"]) for f in body["faces"]] == [
        (r.face.box, r.emotion, r.scores, analyzer.confident(r)) for r in by_path
    ]
    reply = analyzer.reply(by_path)
    assert reply.id == body["reply"]["id"] and reply.text == body["reply"]["text"]


def test_analyzer_takes_grey_float_and_rgba_arrays(analyzer):
    rgb = g.astronaut()
    grey = analyzer.analyze(rgb.mean(axis=2).astype(np.uint8))
    floats = analyzer.analyze(rgb.astype(np.float32) / 255.0)
    rgba = analyzer.analyze(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))
    assert len(grey) == len(floats) == len(rgba) == 1 and floats[0].emotion == rgba[0].emotion == "happy"
    with pytest.raises(ValueError):
        analyzer.analyze(np.zeros((4, 4, 4, 4), np.uint8))


def test_analyzer_refuses_unknown_models_and_languages(models_dir):
    from app.analyzer import Analyzer

    with pytest.raises(ValueError, match="no model"):
        Analyzer(model="nope", models_dir=models_dir)
    with pytest.raises(ValueError, match="language"):
        Analyzer(lang="xx", models_dir=models_dir)


def test_speak_makes_a_wav_in_the_analyzers_language(models_dir):
    from app.analyzer import Analyzer

    vi = Analyzer(lang="vi", models_dir=models_dir)
    reply = vi.reply(vi.analyze(g.astronaut()))
    assert reply.lang == "vi" and reply.emotion == "happy"
    with wave.open(io.BytesIO(vi.speak(reply))) as w:
        assert w.getnframes() / w.getframerate() > 0.5


# -- emotion analyze ---------------------------------------------------------------------------------


def test_analyze_a_folder_as_a_table_one_row_per_face_and_a_row_per_bad_file(capsys, photos):
    code, out, err = run(capsys, "analyze", str(photos))
    lines = out.splitlines()
    assert lines[0].split() == ["file", "face", "box", "emotion", "score", "confident", "error"]
    by_file: dict[str, list[str]] = {}
    for line in lines[1:]:
        by_file.setdefault(Path(line.split()[0]).name, []).append(line)
    assert set(by_file) == {"astronaut.jpg", "coffee.png", "broken.jpg", "notes.png", "three.jpg"}  # not readme.txt
    assert len(by_file["three.jpg"]) == 3 and "happy" in by_file["astronaut.jpg"][0]
    assert "(no face)" in by_file["coffee.png"][0]
    assert "bad_image" in by_file["broken.jpg"][0] and "unsupported_type" in by_file["notes.png"][0]
    assert code == 1  # some inputs failed; every row is still there


def test_analyze_csv_and_json_carry_every_score(capsys, photos):
    code, out, _ = run(capsys, "analyze", str(photos / "astronaut.jpg"), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1
    row = rows[0]
    assert row["emotion"] == "happy" and row["confident"] == "True" and float(row["happy"]) > 0.5
    assert {"neutral", "happy", "sad"} <= set(row) and int(row["w"]) > 50
    code, out, _ = run(capsys, "analyze", str(photos / "more"), str(photos / "notes.png"), "--format", "json")
    rows = json.loads(out)
    assert [r["face"] for r in rows] == [1, 2, 3, None] and rows[3]["error"].startswith("unsupported_type")
    assert abs(sum(rows[0]["scores"].values()) - 1) < 0.01


def test_analyze_speak_writes_a_wav_per_photo(capsys, photos, tmp_path):
    code, _, _ = run(
        capsys,
        "analyze",
        str(photos / "astronaut.jpg"),
        str(photos / "coffee.png"),
        "--speak",
        str(tmp_path / "voice"),
        "--lang",
        "vi",
    )
    assert code == 0
    wavs = sorted(p.name for p in (tmp_path / "voice").iterdir())
    assert wavs == ["astronaut.wav", "coffee.wav"]
    for name in wavs:
        with wave.open(str(tmp_path / "voice" / name)) as w:
            assert w.getnframes() > 1000


def test_analyze_shows_a_progress_bar_when_asked(capsys, photos):
    assert main(["analyze", str(photos / "more"), "--progress"]) == 0
    assert "1/1" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys, photos):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(photos), "--model", "no-such-model"])
    assert exc.value.code == 2 and "no model" in capsys.readouterr().err
    assert main(["video", "x.mp4", "--fps", "0"]) == 2


# -- emotion video -----------------------------------------------------------------------------------


def test_video_writes_the_report_and_the_spoken_summary(capsys, tmp_path):
    clip = tmp_path / "walk.webm"
    clip.write_bytes(encode(make_clip("walk", n_frames=24).frames, "webm-vp9"))
    code, out, _ = run(
        capsys, "video", str(clip), "--out", str(tmp_path / "report"), "--fps", "4", "--speak", str(tmp_path / "report")
    )
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert files == ["chart.png", "report.json", "summary.wav", "timeline.csv"]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["analysed_frames"] == 8 and report["tracks"][0]["id"] == 1 and report["emotion"] == "happy"
    assert out.startswith("face 1: happy") and "assistant: " in out
    rows = list(csv.DictReader((tmp_path / "report" / "timeline.csv").open()))
    assert len(rows) == 8 and {r["track"] for r in rows} == {"1"}


def test_video_of_a_bad_file_is_one_clear_line(capsys, tmp_path):
    bad = tmp_path / "song.m4a"
    from benchmarks.clips import audio_only

    bad.write_bytes(audio_only(1.0))
    code, out, err = run(capsys, "video", str(bad), "--out", str(tmp_path / "r"))
    assert code == 1 and "no_video_stream" in err and not (tmp_path / "r").exists()


def test_models_lists_the_default_first_marked(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and any(line.startswith("* ") for line in out.splitlines())


# -- the package -------------------------------------------------------------------------------------


@pytest.mark.no_model_needed
def test_pyproject_dependencies_mirror_requirements_serve():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements-serve.txt").read_text().splitlines()]
    assert sorted(project["dependencies"]) == sorted(p for p in pins if p)
    assert project["scripts"] == {"emotion": "app.command:main"}


@pytest.mark.no_model_needed
def test_the_wheel_holds_the_code_models_and_page_and_runs_from_outside_the_repository(tmp_path):
    """`pip install .` builds this wheel: installed (here unpacked into a folder on its own, run from
    elsewhere), it finds its models and page inside the package and answers."""
    import shutil

    source = tmp_path / "source"  # a copy, so that setuptools' build/ and egg-info stay out of the checkout
    for name in ("app", "model_core", "models", "templates", "static"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "_data"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("emotion_assistant-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped_models = sorted(p.name for p in (ROOT / "models").iterdir() if p.suffix in (".json", ".onnx"))
    assert sorted(n.split("/")[-1] for n in names if n.startswith("app/_data/models/")) == shipped_models
    assert "app/_data/templates/index.html" in names and "app/_data/static/app.js" in names
    assert any(n.startswith("app/_data/static/vendor/onnxruntime-web/") and n.endswith(".wasm") for n in names)
    assert "app/video.py" in names and "model_core/predictor.py" in names
    assert not any(n.startswith(("training/", "tests/", "benchmarks/")) for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "emotion = app.command:main" in zipfile.ZipFile(wheel).read(entry).decode()
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.jpg").write_bytes(g.jpeg(g.astronaut()))
    code = (
        "import sys, app; from app.command import main; "
        "assert app.data_dir('models').parent.parent.parent == __import__('pathlib').Path(sys.argv[1]), app.data_dir('models'); "
        "sys.exit(main(['analyze', 'a.jpg', '--format', 'json', '--no-progress']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run(
        [sys.executable, "-c", code, str(site)], capture_output=True, text=True, timeout=300, cwd=elsewhere, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)[0]["emotion"] == "happy"
