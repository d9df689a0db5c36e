"""Generated sections of markdown pages: text between ``<!-- name:start -->`` and ``end`` markers.

Used by the generators of ``docs/`` (the method catalogue, the benchmark scripts) so that the
hand-written prose around a generated table survives regeneration.
"""

from __future__ import annotations

import pathlib
import re

__all__ = ["write_section"]


def write_section(path: str | pathlib.Path, name: str, body: str,
                  title: str = "") -> pathlib.Path:
    """Replace the section ``name`` of the page at ``path`` (appended if it has none).

    Parameters
    ----------
    path
        The markdown page; created (with ``title`` as its first line) if missing.
    name
        The section's marker name: ``<!-- name:start -->`` ... ``<!-- name:end -->``.
    body
        The new text between the markers (surrounding blank lines stripped).
    title
        First line of a page that does not exist yet, e.g. ``"# Methods"``.
    """
    p = pathlib.Path(path)
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = p.read_text(encoding="utf-8") if p.exists() else f"{title}\n"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    p.write_text(text, encoding="utf-8")
    return p
