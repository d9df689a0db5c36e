"""``python -m attribkit.demo.language_page [PAGE]``: the language model's numbers for its page.

Measures what the demo's language report shows (:func:`attribkit.demo.language.language_findings`)
and writes it into the ``measured`` section of ``docs/zoo-language.md`` (or ``PAGE``). It is a
module of its own so that running it does not import it twice through ``attribkit.demo``.
"""

from __future__ import annotations

import pathlib
import sys

from attribkit.demo.language import language_findings

__all__ = ["main"]


def main() -> None:
    """Write the measured numbers into ``docs/zoo-language.md``."""
    from attribkit.core.pages import write_section

    f = language_findings(progress=True)
    page = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "docs/zoo-language.md")
    write_section(page, "measured", f.markdown(), title="# Zoo: the LSTM language model")
    print(f.markdown())


if __name__ == "__main__":
    main()
