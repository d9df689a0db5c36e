"""Every table of measured numbers in docs/ names the committed command that regenerates it.

A markdown table with a measured number (a decimal, a percentage, a ratio such as ``2.0x``) needs
a command near it: in its section (back to the previous ``#`` or ``##`` heading, the heading
included, and forward to the next heading, at most a few lines after the table) or at the top of
its page, before the first ``##`` heading (a page one command generates says so there). A
command is a backticked ``python -m attribkit.<module>``, ``python -m benchmarks.<script>``,
``python -m tests.<module>``, ``python -m pytest tests/<file>.py``, ``[python]
benchmarks/<script>.py`` or ``attribkit <subcommand>``, and the module, script, test file or
subcommand it names must exist in this repository. Tables that restate a paper or describe an
API say so with ``<!-- not-generated: why -->`` just above them.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
#: A measured number in a cell: 0.123, 12.5 %, 2.0x, 1e-3.
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+\s*(%|x\b)?|\d+(\.\d+)?\s*%|\d(\.\d+)?e-?\d+")
COMMAND = re.compile(r"`(?:nice -n \d+ )?(?:python -m "
                     r"(attribkit[\w.]*|benchmarks[\w.]*|tests[\w.]*)"
                     r"|(?:python -m pytest |python )?((?:benchmarks|tests)/[\w/]+\.py)"
                     r"|attribkit (\w+))[^`]*`")
AFTER = 12  # lines after a table searched for its command
EXEMPT = re.compile(r"<!-- not-generated: [^>]+-->")


def tables(text: str) -> list[tuple[int, int]]:
    """``(first, last)`` line indices of each markdown table (header, separator, rows)."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines) - 1:
        if lines[i].startswith("|") and re.match(r"^\|\s*:?-{3,}", lines[i + 1]):
            j = i + 1
            while j + 1 < len(lines) and lines[j + 1].startswith("|"):
                j += 1
            out.append((i, j))
            i = j + 1
        else:
            i += 1
    return out


def command_exists(match: re.Match[str]) -> bool:
    """The module, script or CLI subcommand a command names is in this repository."""
    module, script, sub = match.group(1), match.group(2), match.group(3)
    if script:
        return (ROOT / script).is_file()
    if module:
        if module.startswith(("benchmarks", "tests")):
            return (ROOT / (module.replace(".", "/") + ".py")).is_file()
        return importlib.util.find_spec(module) is not None
    import contextlib
    import io

    from attribkit.cli import main

    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            main([sub, "--help"])
    except SystemExit as done:
        return done.code == 0
    return True


def unexplained(page: pathlib.Path) -> list[str]:
    """Tables of measured numbers on ``page`` with no existing command near them."""
    lines = page.read_text(encoding="utf-8").splitlines()
    bad = []
    for first, last in tables("\n".join(lines)):
        body = "\n".join(lines[first + 2:last + 1])
        if not NUMBER.search(body):
            continue
        start = first
        while start > 0 and not lines[start].startswith(("# ", "## ")):
            start -= 1
        before = "\n".join(lines[start:first])
        if EXEMPT.search("\n".join(lines[max(0, first - 2):first])):
            continue
        after = []
        for ln in lines[last + 1:last + 1 + AFTER]:
            if ln.startswith("#"):
                break
            after.append(ln)
        head = []
        for ln in lines:
            if ln.startswith("## "):
                break
            head.append(ln)
        near = before + "\n" + "\n".join(after) + "\n" + "\n".join(head)
        found = list(COMMAND.finditer(near))
        if not found or not any(command_exists(m) for m in found):
            bad.append(f"{page.name}:{first + 1}: {lines[first][:70]}")
    return bad


def test_the_check_finds_tables_and_commands(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# A\n\n| a | b |\n|---|---|\n| x | 0.5 |\n\n# B\n\nRegenerate with: "
                    "`python -m attribkit.experiments.chem_seeds`.\n\n| a |\n|---|\n| 12 % |\n"
                    "\n# C\n\n`python -m attribkit.no_such_module`\n\n| a |\n|---|\n| 1.5x |\n"
                    "\n# D\n\n| name | what |\n|---|---|\n| `f` | a function |\n"
                    "\n# E\n\n<!-- not-generated: the paper's table -->\n| a |\n|---|\n| 0.3 |\n")
    assert unexplained(page) == ["p.md:3: | a | b |", "p.md:21: | a |"]


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_every_table_of_numbers_names_its_command(page: pathlib.Path) -> None:
    bad = unexplained(page)
    assert not bad, ("tables of numbers with no `python -m ...` / `python benchmarks/...` "
                     "command near them (add 'Regenerate with: `...`' or a <!-- not-generated: "
                     "why --> marker):\n" + "\n".join(bad))
