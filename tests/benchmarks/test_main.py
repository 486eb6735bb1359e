"""python -m benchmarks: the safe thing is the default (issue 17)."""

from __future__ import annotations

import pytest

import benchmarks.__main__ as bench


def test_no_argument_lists_and_runs_nothing(monkeypatch, capsys):
    def forbidden(*a, **k):
        raise AssertionError("nothing may run or be written without a name")

    monkeypatch.setattr(bench, "save", forbidden)
    monkeypatch.setattr(bench, "report", forbidden)
    monkeypatch.setattr(bench.importlib, "import_module", forbidden)
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    for name, _ in bench.ORDER:
        assert f"  {name} " in out
    assert "all" in out and "report" in out


def test_unknown_name_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(bench, "save", lambda *a: pytest.fail("ran"))
    with pytest.raises(SystemExit) as e:
        bench.main(["acuracy"])
    assert e.value.code == 2
