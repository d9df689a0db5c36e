"""``python -m attribkit.cli``."""

import contextlib
import sys

from attribkit.cli import main

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
