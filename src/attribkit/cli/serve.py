"""``attribkit serve``: explore a run store in the browser (and explain new inputs live)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from attribkit.cli._common import UsageError

__all__ = ["register"]


def _cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from attribkit.serve import create_app
        from attribkit.serve.store import RunStore, StoreError
    except ImportError as err:
        raise RuntimeError(f"the explorer needs the serve extra ({err.name} is missing); "
                           "pip install 'attribkit[serve]'") from err
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise UsageError(f"--max-upload-mb must be positive, got {args.max_upload_mb}")
    try:
        store = RunStore(args.store)
        others = [RunStore(o) for o in args.others]
    except StoreError as err:
        raise RuntimeError(str(err)) from err
    for problem in store.problems:  # unreadable shards: named, and left out
        print(f"attribkit: {problem}", file=sys.stderr)
    model = None
    if args.model:
        from attribkit.cli.models import load_model

        model = load_model(args.model)
    hosts = {args.host.lower(), "localhost", "127.0.0.1", "[::1]"}
    app = create_app(store, model=model, hosts=sorted(hosts),
                     max_upload=int(args.max_upload_mb * 1024 * 1024), others=others)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"attribkit explorer for {store.root} ({len(store.items)} items"
          f"{', live model ' + args.model if args.model else ''})")
    print(f"open http://{shown}:{args.port}/  (Ctrl+C to stop)")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this address can read the "
              "store" + (" and run the model" if args.model else ""))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    s = sub.add_parser("serve", help="explore a run store in the browser",
                       description="Serve a local web explorer of the run store STORE (written "
                                   "by `attribkit run --out STORE`): the data set's items sorted "
                                   "and filtered, every method's map per item, interior "
                                   "gradients; with --model, explain new inputs live.")
    s.add_argument("store", metavar="STORE", help="the run store folder, e.g. runs/NAME")
    s.add_argument("others", metavar="STORE2", nargs="*",
                   help="more run stores to compare with STORE (the compare page)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--model", default=None,
                   help="live mode: a zoo name or module:callable to explain uploaded inputs "
                        "(results are added to the store)")
    s.add_argument("--max-upload-mb", type=float, default=8.0,
                   help="largest accepted upload in MiB (default 8)")
    s.set_defaults(func=_cmd_serve)
