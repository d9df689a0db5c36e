"""``attribkit serve``: explore a run store in the browser (and explain new inputs live)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from attribkit.cli._common import UsageError

__all__ = ["allowed_hosts", "exposure", "register"]


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
    hosts = allowed_hosts(args.host, args.allow_host or [])
    app = create_app(store, model=model, hosts=sorted(hosts),
                     max_upload=int(args.max_upload_mb * 1024 * 1024), others=others)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"attribkit explorer for {store.root} ({len(store.items)} items"
          f"{', live model ' + args.model if args.model else ''})")
    print(f"open http://{shown if args.host not in _ANY else 'localhost'}:{args.port}/  "
          "(Ctrl+C to stop)")
    for line in exposure(args.host, hosts, bool(args.model)):
        print(line)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


#: Bind addresses that listen on every interface.
_ANY = ("0.0.0.0", "::", "")
_LOOPBACK = {"localhost", "127.0.0.1", "[::1]"}


def allowed_hosts(host: str, allow: list[str]) -> set[str]:
    """The ``Host`` header names the explorer answers: the loopback names, the bound address
    (unless it is a wildcard, which no browser sends) and each ``--allow-host`` (``*``: any)."""
    names = set(_LOOPBACK)
    if host not in _ANY:
        names.add(f"[{host.lower()}]" if ":" in host else host.lower())
    for name in allow:
        name = name.strip().lower()
        if not name or "/" in name:
            raise UsageError(f"--allow-host takes a host name or address (no scheme, no "
                             f"port), got {name!r}")
        names.add(f"[{name}]" if ":" in name and not name.startswith("[") else name)
    return names


def exposure(host: str, hosts: set[str], model: bool) -> list[str]:
    """What the warning says: who can read the store, and which addresses are answered."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return []
    what = "read the store" + (" and run the model" if model else "")
    if "*" in hosts:
        return [f"warning: serving on {host} for any Host name (--allow-host '*'): anyone who "
                f"can reach this machine can {what}, and web pages they open can too (no "
                "DNS-rebinding check)"]
    named = sorted(hosts - _LOOPBACK)
    if host in _ANY and not named:
        return [f"warning: listening on {host}, but only requests addressed to localhost are "
                "answered (others get 403): add --allow-host NAME for each name or address "
                f"others will type (anyone who can reach them can then {what})"]
    return [f"warning: serving on {host}: anyone who can reach {', '.join(named)} can {what} "
            "(other addresses get 403; add them with --allow-host NAME)"]


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
    s.add_argument("--allow-host", action="append", metavar="NAME",
                   help="also answer requests addressed to this host name or address (repeat "
                        "for several; '*' for any); with --host 0.0.0.0 name the addresses "
                        "others will type, e.g. --allow-host 192.168.1.5")
    s.add_argument("--model", default=None,
                   help="live mode: a zoo name or module:callable to explain uploaded inputs "
                        "(results are added to the store)")
    s.add_argument("--max-upload-mb", type=float, default=8.0,
                   help="largest accepted upload in MiB (default 8)")
    s.set_defaults(func=_cmd_serve)
