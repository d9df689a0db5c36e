"""The experiments registry: sections are added in order, and a failing experiment is a note."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from attribkit import experiments as ex
from attribkit.report import Report


@pytest.fixture
def registry() -> Iterator[dict[str, ex.ExperimentInfo]]:
    saved = dict(ex.EXPERIMENTS)
    ex.EXPERIMENTS.clear()
    yield ex.EXPERIMENTS
    ex.EXPERIMENTS.clear()
    ex.EXPERIMENTS.update(saved)


def test_sections_in_order_and_failure_is_a_note(registry: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ex, "_MODULES", ())
    seen: list[tuple[str, bool]] = []

    @ex.experiment("first", "First experiment", task="vision")
    def first(rep: Report, setup: Any, *, quick: bool, progress: bool) -> list[str]:
        seen.append(("first", quick))
        rep.text(f"setup is {setup}")
        return ["first: fine"]

    @ex.experiment("broken", "Broken experiment", task="vision")
    def broken(rep: Report, setup: Any, *, quick: bool, progress: bool) -> list[str]:
        raise ValueError("no photos\nsecond line")

    @ex.experiment("other", "Chemistry only", task="chem")
    def other(rep: Report, setup: Any, *, quick: bool, progress: bool) -> list[str]:
        seen.append(("other", quick))
        return []

    rep = Report("t")
    notes = ex.add_to_report(rep, "vision", "S", quick=False)
    assert seen == [("first", False)]
    assert notes == ["first: fine", "broken: not run (ValueError: no photos)"]
    html = rep.to_html()
    body = html[html.index("</ol>"):]  # past the contents list, which names the sections too
    assert body.index("First experiment") < body.index("setup is S") < body.index(
        "Broken experiment") < body.index("not run: ValueError: no photos")
    assert "Chemistry only" not in html
    assert list(ex.experiments("chem")) == ["other"]
