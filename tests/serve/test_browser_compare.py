"""Two stores in a real headless Chromium: compare, slice, sort by AOPC, follow the order on
the item pages, export. Screenshots of each page go to ``$AK_SCREENSHOTS`` when it is set."""

from __future__ import annotations

import io
import os
import pathlib
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from tests.serve.browser import checked_page, chromium, serving
from tests.serve.synthetic import write_store
from tests.serve.test_browser import _ready

from attribkit.serve import create_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("two")
    a = write_store(tmp / "runA", 40, size=24, failed=[3], seed=1, folders=True)
    b = write_store(tmp / "runB", 40, size=24, failed=[3, 7], seed=2, folders=True)
    with serving(create_app(a, others=[b])) as base:
        yield base


@pytest.fixture(scope="module")
def page(two: str) -> Iterator[Any]:
    with chromium() as b, checked_page(b, viewport={"width": 1360, "height": 1000},
                                       accept_downloads=True) as pg:
        yield pg


def _shot(pg: Any, name: str) -> None:
    folder = os.environ.get("AK_SCREENSHOTS")
    if folder:
        pathlib.Path(folder).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(pathlib.Path(folder) / f"{name}.png"), full_page=True)


def test_compare_two_runs(two: str, page: Any) -> None:
    page.goto(two + "/compare")
    _ready(page, "compare")
    _shot(page, "compare")
    cells = page.locator("#aggregate-table tbody tr")
    assert cells.count() == 4  # relative gap, AOPC, deletion, insertion
    assert "[" in cells.first.locator("td").nth(5).inner_text()  # the interval
    assert page.locator("#compare-items tbody tr").count() == 40  # every matched item
    assert cells.first.locator("td").nth(1).inner_text() == "38"  # items 3 and 7 failed
    row = page.locator("#compare-items tbody tr").nth(2)
    picked = row.get_attribute("data-id")
    row.click()
    # the new picture, not the first row's: its alt names the picked item, and it is decoded
    page.wait_for_function("(id) => { const i = document.getElementById('diff-map'); return i "
                           "&& i.alt === `difference map of ${id}` && i.complete && "
                           "i.naturalWidth > 0; }", arg=picked)
    assert page.evaluate("document.getElementById('diff-map').naturalWidth") >= 24
    assert f"item={picked}" in page.url
    with page.expect_response(lambda r: "/api/compare?" in r.url and "mb=saliency" in r.url):
        page.select_option("#method-b", "saliency")  # two methods
    # drawn from that response: the heading names method B
    page.wait_for_function("() => (document.querySelector('#aggregate h2') || {}).textContent"
                           "?.endsWith('saliency')")
    page.wait_for_selector("#compare-items tbody tr", state="attached")
    page.wait_for_function("() => { const i = document.getElementById('diff-map'); "
                           "return !i || i.complete; }")  # nothing left loading
    _ready(page, "compare")
    _shot(page, "compare-methods")


def test_slices_and_the_sliced_table(two: str, page: Any) -> None:
    page.goto(two + "/slices?by=label")
    _ready(page, "slices")
    _shot(page, "slices")
    keys = page.locator(".card.slice").evaluate_all("els => els.map(e => e.dataset.key)")
    assert sorted(keys) == ["cats", "cups", "dogs"]
    page.locator('.card.slice[data-key="dogs"] h3 a').click()
    _ready(page, "table")
    assert page.locator(".chip").inner_text() == "label = dogs"
    assert "13 of 40 items" in page.locator("#count").inner_text()  # items 1, 4, ..., 37
    _shot(page, "table-sliced")


def test_sort_by_aopc_next_follows_the_order_and_export(two: str, page: Any) -> None:
    page.goto(two + "/?slice=label&value=cats")
    _ready(page, "table")
    page.locator('th[data-sort="aopc:saliency"] button').click()  # worst (lowest) first
    page.wait_for_selector('th[data-sort="aopc:saliency"][aria-sort=ascending]')
    page.locator('th[data-sort="aopc:saliency"] button').click()
    page.wait_for_selector('th[data-sort="aopc:saliency"][aria-sort=descending]')
    rows = page.locator("#items tbody tr")
    order = [rows.nth(i).get_attribute("data-item") for i in range(rows.count())]
    with page.expect_download() as dl:
        page.locator("#export-csv").click()
    csv = pd.read_csv(io.BytesIO(pathlib.Path(dl.value.path()).read_bytes()))
    assert [str(i) for i in csv["item"]] == order
    aopc = csv["aopc:saliency"].dropna().tolist()
    assert aopc == sorted(aopc, reverse=True) and set(csv["label"]) == {"cats"}
    with page.expect_download() as dl:
        page.locator("#export-parquet").click()
    back = pd.read_parquet(pathlib.Path(dl.value.path()))
    assert [str(i) for i in back["item"]] == order
    badge = page.locator("#items tbody tr").first.locator(".gap").first
    assert badge.inner_text().endswith("%")  # the badge shows the number its colour is from
    _shot(page, "table-aopc")
    rows.nth(1).click()
    page.wait_for_url(f"**/item/{order[1]}?*")
    _ready(page, "item")
    _shot(page, "item")
    page.locator("#next").click()
    page.wait_for_url(f"**/item/{order[2]}?*")
    _ready(page, "item")
    page.locator("#prev").click()
    page.wait_for_url(f"**/item/{order[1]}?*")
