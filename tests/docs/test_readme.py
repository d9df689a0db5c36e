"""The README's tour block runs as written."""

from __future__ import annotations

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _tour() -> str:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- readme-tour:start -->\s*```python\n(.*?)```", text, re.S)
    assert block, "the README lost its tested tour block"
    return block.group(1)


def test_readme_tour_runs(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_tour(), "README.md", "exec"), {"__name__": "readme_tour"})
    page = (tmp_path / "out" / "tour.html").read_text(encoding="utf-8")
    assert "IG per feature" in page and "data:image/png;base64," in page
    printed = capsys.readouterr().out
    assert "| integrated_gradients |" in printed and "| saliency |" in printed
