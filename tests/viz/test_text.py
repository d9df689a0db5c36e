"""Token highlighting: HTML (escaped) and ANSI."""

from __future__ import annotations

import html.parser

import pytest

from attribkit import viz
from attribkit.core.errors import InputError


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_tokens_html_escapes_every_token() -> None:
    toks = ["<script>alert(1)</script>", "good", "&amp;", '"q"']
    out = viz.tokens_html(toks, [1.0, 0.5, -1.0, 0.0], title="<b>t</b>")
    assert "<script>" not in out and "<b>t</b>" not in out
    p = _Collect()
    p.feed(out)
    assert "script" not in p.tags
    assert set(p.tags) <= {"div", "span", "b"}
    assert toks[0] in p.text and "&amp;" in p.text  # the text round-trips exactly


def test_token_colours_by_sign_and_size() -> None:
    c = viz.token_colors([2.0, 1.0, 0.0, -2.0])
    assert c[2] == (255, 255, 255)
    assert c[0][1] == 255 and c[0][0] < c[1][0] < 255  # green, stronger for larger
    assert c[3][0] == 255 and c[3][1] < 255  # red for negative


def test_tokens_ansi() -> None:
    s = viz.tokens_ansi(["a", "b"], [1.0, -1.0])
    assert s.count("\x1b[0m") == 2 and "a" in s and "48;2;" in s
    with pytest.raises(InputError):
        viz.tokens_ansi(["a"], [1.0, 2.0])


def test_tokens_html_has_a_colour_key_and_the_numbers() -> None:
    out = viz.tokens_html(["a", "b"], [0.25, -0.05], target="positive", output=0.9,
                          baseline_output=0.7)
    assert "supports the explained class (positive)" in out and "speaks against it" in out
    assert "F(x) = 0.9, F(x&#x27;) = 0.7, F(x) - F(x&#x27;) = 0.2" in out
    assert "sum of attributions = 0.2" in out
    (g, _, _), (r, _, _) = viz.token_colors([1.0, -1.0])
    assert f"rgb({g}," in out and f"rgb({r}," in out
    assert "ak-key" not in viz.tokens_html(["a"], [1.0], key=False)
