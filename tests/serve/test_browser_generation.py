"""The generation item page in a real headless Chromium (Debian's, driven by Playwright).

A run of the tiny random GPT-2 is served by uvicorn; the page must colour the prompt by the
selected generated token's row of the matrix the API returns, switch on a click, keep its state
in the address and keep the item navigation. It runs under its own Content-Security-Policy, so a
broken script shows up as a console error.
"""

from __future__ import annotations

import json
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from tests.serve.browser import checked_page, chromium, serving
from tests.serve.test_generation_page import PROMPTS, generation_store

from attribkit.serve import create_app

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(create_app(generation_store(tmp_path_factory.mktemp("bg")))) as url:
        yield url


@pytest.fixture
def page(base: str) -> Iterator[Any]:
    with chromium() as b, checked_page(b, viewport={"width": 1200, "height": 900}) as pg:
        yield pg


def _api(base: str, n: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/items/{n}/generation") as r:
        data: dict[str, Any] = json.loads(r.read())
    return {m["method"]: m for m in data["methods"]}


def _shown(pg: Any) -> np.ndarray[Any, Any]:
    pg.wait_for_selector("#gen-prompt .tok")
    return np.asarray([float(v) for v in pg.eval_on_selector_all(
        "#gen-prompt .tok", "els => els.map(e => e.dataset.value)")])


def _ready(pg: Any) -> None:
    pg.wait_for_selector("body[data-ready*=item]", state="attached", timeout=20000)


def test_click_a_generated_token_and_keep_the_state(base: str, page: Any,
                                                    tmp_path: pathlib.Path) -> None:
    methods = _api(base, 1)
    page.goto(f"{base}/item/1?sort=item&desc=1")
    _ready(page)
    assert page.locator("#gen-answer .gen-tok").count() == 4
    assert page.locator("#gen-prompt .tok").count() == len(PROMPTS[1].split())
    assert page.locator('#gen-answer [data-token="0"]').get_attribute("aria-pressed") == "true"
    gxi = np.asarray(methods["gradient_x_input"]["matrix"])
    np.testing.assert_allclose(_shown(page), gxi[0], rtol=1e-12)
    # the most positive prompt token is the reddest, the most negative the bluest
    colours = page.eval_on_selector_all("#gen-prompt .tok", "els => els.map(e => getComputedStyle"
                                        "(e).backgroundColor.match(/\\d+/g).map(Number))")
    red = [c[0] - c[2] for c in colours]
    assert int(np.argmax(red)) == int(np.argmax(gxi[0]))
    assert int(np.argmin(red)) == int(np.argmin(gxi[0]))

    page.locator('#gen-answer [data-token="2"]').click()
    page.wait_for_url("**token=2**")
    np.testing.assert_allclose(_shown(page), gxi[2], rtol=1e-12)
    assert "token 3 of 4" in page.locator("#gen-readout").inner_text()
    page.keyboard.press("ArrowRight")  # focus stays on the answer: the next token
    page.wait_for_url("**token=3**")
    np.testing.assert_allclose(_shown(page), gxi[3], rtol=1e-12)

    page.select_option("#gen-method", "occlusion")
    page.wait_for_url("**method=occlusion**")
    occ = methods["occlusion"]
    np.testing.assert_allclose(_shown(page), np.asarray(occ["matrix"])[3], rtol=1e-12)
    key = page.locator("#gen-key .key-num").last.inner_text()
    page.locator("#gen-scale-matrix").click()
    page.wait_for_url("**scale=matrix**")
    assert page.locator("#gen-key .key-num").last.inner_text() != key
    assert "over every generated token" in page.locator("#gen-key").inner_text()
    page.screenshot(path=str(tmp_path / "generation.png"), full_page=True)

    page.reload()  # the address holds the state
    _ready(page)
    page.wait_for_selector('#gen-answer [data-token="3"][aria-pressed=true]')
    assert page.locator("#gen-method").input_value() == "occlusion"
    assert page.locator("#gen-scale-matrix").get_attribute("aria-pressed") == "true"
    # previous / next keep the table's order, the method and the scale, not the token
    href = page.locator("#next").get_attribute("href")
    assert href is not None and href.startswith("/item/0?")
    assert "sort=item" in href and "method=occlusion" in href and "token=" not in href
    assert page.locator("#back").get_attribute("href") == "/?sort=item&desc=1"
    page.locator("#next").click()
    page.wait_for_url("**/item/0?**")
    _ready(page)
    page.wait_for_selector('#gen-answer [data-token="0"][aria-pressed=true]')
    np.testing.assert_allclose(_shown(page), np.asarray(_api(base, 0)["occlusion"]["matrix"])[0],
                               rtol=1e-12)


def test_a_long_prompt_wraps_within_the_page(base: str, page: Any) -> None:
    page.goto(f"{base}/item/3")
    _ready(page)
    spans = page.locator("#gen-prompt .tok")
    spans.first.wait_for()
    assert spans.count() == len(PROMPTS[3].split())
    assert page.evaluate("document.documentElement.scrollWidth") <= 1200
    first, last = spans.first.bounding_box(), spans.last.bounding_box()
    assert first is not None and last is not None and last["y"] > first["y"] + 100
