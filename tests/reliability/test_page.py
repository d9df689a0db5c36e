"""docs/reliability.md is the page the @case records generate."""

from __future__ import annotations

from tests.reliability.page import PAGE, records, render


def test_page_is_up_to_date() -> None:
    recs = records()
    assert len(recs) >= 30
    assert PAGE.read_text(encoding="utf-8") == render(recs), (
        "docs/reliability.md is stale: run `python -m tests.reliability.page`")
