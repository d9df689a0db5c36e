"""The generated parts of docs/ match the code that generates them."""

from __future__ import annotations

import pathlib

from attribkit.methods import methods
from attribkit.methods.catalogue import markdown_table, method_parameters

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"


def test_methods_page_matches_the_registry() -> None:
    page = (DOCS / "methods.md").read_text(encoding="utf-8")
    assert markdown_table() in page, (
        "docs/methods.md is out of date: run python -m attribkit.methods.catalogue "
        "--out docs/methods.md")


def test_catalogue_lists_every_method_and_its_own_parameters() -> None:
    table = markdown_table()
    rows = table.splitlines()[2:]
    assert len(rows) == len(methods())
    for name, info in methods().items():
        row = next(r for r in rows if r.startswith(f"| `{name}`"))
        assert info.summary in row
        for p in method_parameters(info):
            assert f"`{p}`" in row
    ig = methods()["integrated_gradients"]
    assert {"steps", "rule", "tolerance"} <= set(method_parameters(ig))
    assert "model" not in method_parameters(ig)


def test_write_section_keeps_the_prose_around_it(tmp_path: pathlib.Path) -> None:
    from attribkit.core.pages import write_section

    page = tmp_path / "p.md"
    write_section(page, "t", "first", title="# T")
    assert page.read_text() == "# T\n\n<!-- t:start -->\nfirst\n<!-- t:end -->\n"
    page.write_text("# T\nintro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n")
    write_section(page, "t", "\nnew\n")
    assert page.read_text() == "# T\nintro\n<!-- t:start -->\nnew\n<!-- t:end -->\noutro\n"
    write_section(page, "u", "other")
    assert page.read_text().endswith("outro\n\n<!-- u:start -->\nother\n<!-- u:end -->\n")


def test_readme_method_count_is_the_registry_s() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    import re

    found = re.findall(r"`docs/methods\.md` lists all (\d+) with their parameters", readme)
    assert found == [str(len(methods()))], (
        f"README.md says {found} methods; the registry has {len(methods())}: update the README.")
