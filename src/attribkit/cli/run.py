"""``attribkit run``: attribute a whole data set into a resumable run store."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from attribkit.cli._common import UsageError
from attribkit.runs.sources import DEFAULT_MAX_PIXELS

__all__ = ["parse_method", "register"]


def parse_method(text: str) -> tuple[str, dict[str, Any]]:
    """``"ig"`` or ``"ig:rule=adaptive,steps=32"`` -> ``("ig", {"rule": "adaptive", ...})``."""
    name, _, rest = text.partition(":")
    params: dict[str, Any] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"method settings are key=value pairs after ':', got {part!r} in "
                             f"{text!r} (e.g. ig:rule=adaptive,steps=32)")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return name.strip(), params


def _target(text: str | None) -> Any:
    if text is None:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    if text.startswith("top_k:") and text[6:].isdigit():
        return text
    raise UsageError(f"--target is a class index or top_k:K, got {text!r}")


def _cmd_run(args: argparse.Namespace) -> int:
    import attribkit.runs as runs
    from attribkit.methods import get

    methods = [parse_method(m) for m in args.method]
    try:
        plain, _ = runs.split_interactions(methods)  # -m interactions: stored per item
    except ValueError as err:
        raise UsageError(str(err)) from err
    for name, _params in plain:
        try:
            get(name)
        except Exception as err:
            raise UsageError(str(err)) from err
    try:
        runs.normalise_methods(plain, args.steps)
    except ValueError as err:
        raise UsageError(str(err)) from err
    for opt in ("batch_size", "concurrency", "steps", "num_cpus", "max_image_pixels",
                "max_new_tokens"):
        v = getattr(args, opt)
        if v is not None and v < 1:
            raise UsageError(f"--{opt.replace('_', '-')} must be a positive integer, got {v}")
    if args.engine == "local" and (args.address or args.num_cpus):
        raise UsageError("--address and --num-cpus need --engine ray")
    try:
        result = runs.run(args.model, args.inputs, methods, out=args.out, engine=args.engine,
                          target=_target(args.target), steps=args.steps,
                          batch_size=args.batch_size, progress=not args.quiet,
                          address=args.address, concurrency=args.concurrency,
                          num_cpus=args.num_cpus, retry_failed=args.retry_failed,
                          wait=args.wait, max_image_pixels=args.max_image_pixels,
                          max_new_tokens=args.max_new_tokens)
    except (runs.ConfigMismatch, runs.MethodError) as err:
        raise UsageError(str(err)) from err
    done = ("nothing to do: the store is complete" if result.computed == 0 else
            f"computed {result.computed} item(s) in {result.seconds:.1f} s "
            f"({result.items_per_second:.2f} items/s)")
    print(f"{result.path}: {result.items} items x {len(methods)} method(s); {done}")
    if result.failed:
        failed = runs.open(result.path).failed
        first = failed.iloc[0]
        print(f"attribkit: {result.failed} result(s) failed, e.g. {first['item_id']} "
              f"({first['method']}): {first['error']}; all are in {result.path}/results "
              "(status == 'failed'); --retry-failed computes them again", file=sys.stderr)
        return 1
    return 0


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    from attribkit.zoo.specs import ZOO

    r = sub.add_parser("run", help="attribute a whole data set into a resumable run store",
                       description="Attribute every item of INPUTS with every --method into the "
                                   "store --out (Parquet shards, see docs/runs.md). Started "
                                   "again with the same command, it computes only what is "
                                   "missing. Exit code 1 when any item failed.")
    r.add_argument("model", metavar="MODEL",
                   help="zoo name (" + ", ".join(ZOO) + ") or module:callable")
    r.add_argument("inputs", metavar="INPUTS",
                   help="a folder of images, a .csv, a .txt (one sentence per line) or a .smi "
                        "file")
    r.add_argument("--method", "-m", action="append", default=None,
                   help="method name or alias, optionally with settings: "
                        "ig:rule=adaptive,steps=32 (repeatable; default integrated_gradients); "
                        "interactions[:index=FSII,order=2] beside them stores each item's "
                        "top interactions")
    r.add_argument("--out", "-o", required=True, help="the store folder, e.g. runs/NAME")
    r.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (this machine, default) or ray")
    r.add_argument("--address", default=None, help="ray: join this cluster (default: start a "
                                                    "local Ray instance)")
    r.add_argument("--concurrency", type=int, default=None,
                   help="model copies at once: local, worker processes (default 1; on a "
                        "CPU one per core is usually fastest); ray, actors (default one per "
                        "CPU or GPU)")
    r.add_argument("--num-cpus", type=int, default=None,
                   help="ray: CPUs of the local Ray instance (default all)")
    r.add_argument("--batch-size", type=int, default=8, help="items per batch (default 8)")
    r.add_argument("--steps", type=int, default=None, help="path steps for path methods")
    r.add_argument("--target", "-t", default=None,
                   help="class index or top_k:K (default: the predicted class)")
    r.add_argument("--retry-failed", action="store_true",
                   help="compute the failed rows of the store again")
    r.add_argument("--wait", action="store_true",
                   help="when another run is writing the store, wait for it (default: refuse)")
    r.add_argument("--max-image-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="an image larger than this (width x height) fails as one item "
                        f"(default {DEFAULT_MAX_PIXELS:,}, Pillow's limit)")
    r.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="language models: tokens generated (greedy) and explained per prompt "
                        "(default 20, recorded in the store); refused for a model that does not "
                        "generate")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run, default_methods=["integrated_gradients"])
