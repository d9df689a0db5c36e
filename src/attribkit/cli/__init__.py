"""The ``attribkit`` command: a thin layer over the public API.

One module per command (``explain``, ``methods``, ``demo``, ``audit``, ...), each with a
``register(sub)`` that adds its sub-parser; this module assembles them and maps outcomes to exit
codes: 0 success; 2 bad usage (an unknown command, option, method or model name, or an option
value that cannot be right); 1 a failure while running (a file that is missing or does not load,
an input that does not fit the model, a method that fails); 130 interrupted (Ctrl-C, also while
the command starts: see :mod:`attribkit.startup`); 141 (quietly) when the reader of its output
has gone (``attribkit methods --json | head -1``). The reason
is one line on stderr; with ``--json`` it is also one object ``{"error", "exit_code"}`` on stdout.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
from collections.abc import Sequence

from attribkit.cli._common import Parser, UsageError, one_line

__all__ = ["COMMANDS", "UsageError", "main"]

#: The command modules under ``attribkit.cli``, in the order ``--help`` lists them.
COMMANDS = ("explain", "methods", "demo", "audit", "run", "report", "serve", "generation")


def _parser() -> Parser:
    p = Parser(prog="attribkit",
               description="Attribution methods for PyTorch models (Integrated Gradients and "
                           "more). Exit codes: 0 ok, 2 bad usage, 1 failure.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"attribkit.cli.{name}").register(sub)
    return p


def _fail(message: str, code: int, as_json: bool) -> int:
    """One line on stderr; with ``--json`` also one JSON object on stdout."""
    print(message, file=sys.stderr)
    if as_json:
        print(json.dumps({"error": message.removeprefix("attribkit: "), "exit_code": code}))
    return code


def _quiet_stdout() -> None:
    """Point stdout at the null device, so that the exit's flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured output)
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    from attribkit.startup import release

    release()  # from here on, Ctrl-C is a KeyboardInterrupt handled below
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.version:
            from attribkit import __version__

            print(f"attribkit {__version__}")
            return 0
        if args.command is None:
            raise UsageError(f"a command is required: {', '.join(COMMANDS)} "
                             "(see `attribkit --help`)")
        if getattr(args, "method", "") is None and hasattr(args, "default_methods"):
            args.method = list(args.default_methods)
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:  # `attribkit methods --json | head -1`: the reader has gone
        _quiet_stdout()
        return 141
    except SystemExit as e:  # --help
        return int(e.code) if isinstance(e.code, int) else 0
    except UsageError as err:
        return _fail(f"attribkit: usage error: {err}", 2, as_json)
    except KeyboardInterrupt:
        return _fail("attribkit: interrupted", 130, as_json)
    except Exception as err:
        return _fail(f"attribkit: error: {one_line(err)}", 1, as_json)


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
