"""The Python examples of docs/visualisation.md and docs/saving.md run as written."""

from __future__ import annotations

import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def _blocks(page: str) -> str:
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, f"{page} lost its examples"
    return "\n".join(blocks)


@pytest.mark.parametrize("page", ["visualisation.md", "saving.md"])
def test_page_examples_run(page: str, tmp_path: pathlib.Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_blocks(page), page, "exec"), {"__name__": "docs_example"})
    written = {p.name for p in tmp_path.iterdir()}
    expected = ({"grid.png", "beeswarm.png", "dose.png", "batch.html"}
                if page == "visualisation.md" else {"ig.safetensors"})
    assert expected <= written
