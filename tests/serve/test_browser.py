"""The explorer in a real headless Chromium (Debian's, driven by Playwright) against uvicorn.

The pages run under their own Content-Security-Policy (no ``bypass_csp``), so a script that
broke it would show up here as a console error.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image
from tests.serve.browser import checked_page, chromium, serving
from tests.serve.synthetic import write_store

from attribkit.cli.models import load_model
from attribkit.serve import create_app

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, pathlib.Path]]:
    root = write_store(tmp_path_factory.mktemp("b") / "run", 80, size=32, failed=[3], alphas=10)
    with serving(create_app(root, model=load_model("tests.serve.tiny_model:build"))) as base:
        yield base, root


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with checked_page(browser, viewport={"width": 1360, "height": 1000}) as pg:
        yield pg


def _ready(pg: Any, name: str) -> None:
    pg.wait_for_selector(f"body[data-ready*={name}]", state="attached", timeout=20000)


def test_sort_by_gap_and_open_an_item(served: tuple[str, pathlib.Path], page: Any) -> None:
    base, root = served
    page.goto(base + "/")
    _ready(page, "summary")
    assert page.locator("#items tbody tr").count() == 50
    assert page.locator(".hist").count() == 2
    page.locator('th[data-sort="rel_gap:integrated_gradients"] button').click()
    page.wait_for_selector('th[data-sort="rel_gap:integrated_gradients"][aria-sort=descending]')
    # oracle: the largest |relative gap| read from the shards with pyarrow
    res = pd.concat(pq.read_table(p).to_pandas() for p in
                    (root / "results").glob("part-integrated_gradients-*.parquet"))
    res = res[res["relative_gap"].notna()]
    top = int(res.loc[res["relative_gap"].abs().idxmax(), "item"])
    first = page.locator("#items tbody tr").first
    assert first.get_attribute("data-item") == str(top)
    assert "sort=rel_gap" in page.url
    first.click()
    page.wait_for_url(f"**/item/{top}?*")
    _ready(page, "item")
    assert page.locator("figure.map-card img.overlay").count() == 2
    assert page.locator("h1").inner_text() == f"photo_{top:05d}"


def test_alpha_slider_and_sign_toggle(served: tuple[str, pathlib.Path], page: Any) -> None:
    base, _ = served
    page.goto(base + "/item/0")
    _ready(page, "item")
    page.wait_for_selector("#alpha")
    stack = page.locator("#interior .stack")
    page.wait_for_function("() => document.getElementById('frame').complete")
    before_src = page.locator("#frame").get_attribute("src")
    before = stack.screenshot()
    page.locator("#alpha").focus()
    page.keyboard.press("Home")  # alpha to its smallest value
    assert page.locator("#alpha").input_value() == "0"
    page.wait_for_function("() => document.getElementById('frame').complete")
    assert page.locator("#frame").get_attribute("src") != before_src
    assert "α = 0.1" in page.locator("#alpha-value").inner_text()
    after = stack.screenshot()
    assert _differs(before, after), "the interior-gradient picture did not change"

    card = page.locator('figure.map-card[data-method="integrated_gradients"]')
    signed = card.screenshot()
    page.locator("#sign-absolute").click()
    assert page.locator("#sign-absolute").get_attribute("aria-pressed") == "true"
    overlay = page.locator('figure.map-card[data-method="integrated_gradients"] img.overlay')
    assert "sign=absolute" in (overlay.get_attribute("src") or "")
    page.wait_for_function("() => [...document.querySelectorAll('img.overlay')]"
                           ".every((i) => i.complete)")
    assert _differs(signed, card.screenshot())
    page.locator("#opacity").fill("20")
    assert overlay.evaluate("(i) => i.style.opacity") == "0.2"


def test_upload_a_photo_in_live_mode(served: tuple[str, pathlib.Path], page: Any,
                                     tmp_path: pathlib.Path) -> None:
    base, root = served
    photo = tmp_path / "sunset.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(photo)
    page.goto(base + "/live")
    _ready(page, "live")
    page.set_input_files("#file", str(photo))
    page.locator('input[name=method][value=saliency]').check()
    page.locator("#go").click()
    page.wait_for_selector("#result-link", timeout=60000)
    assert "done" in page.locator("#stage").inner_text()
    page.locator("#result-link").click()
    _ready(page, "item")
    assert page.locator("h1").inner_text() == "sunset"
    assert page.locator("figure.map-card img.overlay").count() == 2
    assert list((root / "items").glob("part-00000080-00000080.parquet"))


def _differs(a: bytes, b: bytes) -> bool:
    import io

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int32)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int32)
    return x.shape != y.shape or float(np.abs(x - y).mean()) > 1.0
