"""``python -m attribkit.cli``."""

import contextlib
import sys

try:
    from attribkit.cli import main
except KeyboardInterrupt:  # Ctrl-C while torch is being imported
    print("attribkit: interrupted", file=sys.stderr)
    sys.exit(130)

with contextlib.suppress(BrokenPipeError):
    sys.exit(main())
