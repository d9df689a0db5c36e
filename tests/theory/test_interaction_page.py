"""The interaction indices section of docs/unification.md: up to date, and checked on the
Table 2 polynomials against closed forms."""

from __future__ import annotations

import pathlib
import re

import pytest

from attribkit.theory.interaction_page import (
    SECTION,
    TOLERANCE,
    check_polynomials,
    interaction_section,
)

PAGE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "unification.md"


def test_every_index_from_evaluations_equals_its_table_on_the_taylor_effects() -> None:
    checks = check_polynomials(2)
    assert len(checks) == 7 * 6
    for c in checks:
        assert c.difference <= TOLERANCE, (c.function, c.index)
        if c.index in ("STII", "FSII", "k-SII"):  # efficient: orders 1..k add up to the change
            assert c.total == pytest.approx(c.change, abs=1e-10), (c.function, c.index)


def test_the_page_shows_the_current_section() -> None:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {SECTION}:start -->\n(.*?)\n<!-- {SECTION}:end -->", text, re.S)
    assert found is not None, "run python -m attribkit.theory.interaction_page"
    section = interaction_section()
    assert found.group(1) == section.strip(), (
        "docs/unification.md is out of date: run python -m attribkit.theory.interaction_page "
        "--out docs/unification.md")
    # the triple J(x1 x2 x3) = -1.5 in closed form (Grabisch & Roubens; Sundararajan et al.;
    # Tsai et al. Theorem 19: FSII of a t = 3 dividend at k = 2 gives -1/6 to each player and
    # 1/2 to each pair)
    rows = {line.split(" | ")[0].strip("| "): line for line in section.splitlines()
            if line.startswith("| ") and line.count("|") == 5}
    assert rows["SII"].startswith("| SII | -0.5 | -0.75 | 0 |")
    assert rows["STII"].startswith("| STII | 0 | -0.5 | 0 |")
    assert rows["FSII"].startswith("| FSII | 0.25 | -0.75 | 0 |")
    assert rows["Moebius"].startswith("| Moebius | 0 | 0 | 0 |")
