"""Regenerating docs/unification.md keeps the sections other scripts wrote between markers
(e.g. benchmarks/guided_ig_allocation.py's ``guided-ig-allocation``)."""

from __future__ import annotations

from attribkit.core.pages import write_section
from attribkit.theory import unification


def test_marked_sections_survive_regeneration(tmp_path):
    page = tmp_path / "unification.md"
    page.write_text("# old page\n\nstale text\n", encoding="utf-8")
    write_section(page, "guided-ig-allocation", "## Measured\n\n| a | b |\n|---|---|")
    assert unification.main(["--out", str(page), "--only", "Gradient x Input"]) == 0
    text = page.read_text(encoding="utf-8")
    assert "stale text" not in text
    assert text.startswith("# How attribution methods allocate effects")
    assert ("<!-- guided-ig-allocation:start -->\n## Measured\n\n| a | b |\n|---|---|\n"
            "<!-- guided-ig-allocation:end -->") in text
    assert text.count("guided-ig-allocation:start") == 1
