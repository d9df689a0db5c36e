"""Equation 6 as written: the right Riemann sum of Integrated Gradients from 20 to 300 steps.

Sundararajan, Taly & Yan approximate IG by the right Riemann sum ("Gradients of
Counterfactuals", eq. 6; the same sum is eq. 3 of "Axiomatic Attribution for Deep Networks")::

    IG_i ~= (x_i - x'_i) * sum_{k=1..m} dF(x' + (k/m) (x - x')) / dx_i * (1/m)

and say that "somewhere between 20 and 300 steps are enough to approximate the integral (within
5 %)", checked by the completeness gap ``|sum_i IG_i - (F(x) - F(x'))| / |F(x) - F(x')|``. This
module measures that gap on the sample photos with EfficientNet-Lite0 (softmax probability of
the top class, black baseline) for every ``m`` that divides 300: the right Riemann nodes
``k/m`` are a subset of the nodes ``k/300``, so one pass of 300 gradients gives all of them.

``python -m attribkit.experiments.riemann_steps`` rewrites the ``riemann-steps`` section of
docs/zoo-vision.md; ``--photos-table`` also rewrites its two tables of top classes and
Gauss-Legendre completeness (``photos-completeness``).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from attribkit.core.errors import InputError
from attribkit.core.pages import write_section
from attribkit.core.progress import progress_bar

__all__ = ["STEPS", "RiemannSweep", "main", "markdown", "photo_table", "right_riemann_sweep"]

#: The step counts reported: divisors of 300 from the paper's range.
STEPS: tuple[int, ...] = (20, 30, 50, 60, 100, 150, 300)
_WITHIN = 0.05


@dataclasses.dataclass(frozen=True)
class RiemannSweep:
    """Right Riemann sums of IG for several step counts, from one pass of gradients.

    Attributes
    ----------
    steps : tuple of int
        The step counts ``m``.
    attributions : dict of int to Tensor
        ``m`` -> the ``(1, ...)`` attribution of eq. 6 with ``m`` steps.
    f_x, f_baseline : float
        ``F(x)`` and ``F(x')``.
    """

    steps: tuple[int, ...]
    attributions: dict[int, Tensor]
    f_x: float
    f_baseline: float

    def relative_gap(self, m: int) -> float:
        """``|sum IG - (F(x) - F(x'))| / |F(x) - F(x')|`` with ``m`` steps."""
        delta = self.f_x - self.f_baseline
        return abs(float(self.attributions[m].sum()) - delta) / abs(delta)

    def first_within(self, tol: float = _WITHIN) -> int | None:
        """The smallest ``m`` from which every larger reported ``m`` is within ``tol``."""
        ok = [self.relative_gap(m) <= tol for m in self.steps]
        for i, m in enumerate(self.steps):
            if all(ok[i:]):
                return m
        return None


def right_riemann_sweep(f: Callable[[Tensor], Tensor], x: Tensor, baseline: Tensor, *,
                        steps: Sequence[int] = STEPS, batch: int = 10,
                        progress: bool = False) -> RiemannSweep:
    """Eq. 6 for every ``m`` in ``steps`` from the gradients at ``k / max(steps)``.

    Parameters
    ----------
    f : callable
        ``f(inputs) -> (B,)`` the explained score of each row.
    x, baseline : Tensor
        ``(1, ...)`` the input and the baseline.
    steps : sequence of int
        Step counts; each must divide the largest.
    batch : int
        Path points per forward and backward pass.
    progress : bool
        Show a progress bar.

    Returns
    -------
    RiemannSweep
        The attributions for each ``m`` and ``F`` at both ends.
    """
    ms = tuple(sorted(set(int(m) for m in steps)))
    top = ms[-1]
    if ms[0] < 1 or any(top % m for m in ms):
        raise InputError(f"every step count must divide the largest ({top}); got {ms}.")
    if x.shape[0] != 1 or x.shape != baseline.shape:
        raise InputError(f"one input and a baseline of its shape, got {tuple(x.shape)} and "
                         f"{tuple(baseline.shape)}.")
    diff = (x - baseline).detach()
    acc = {m: torch.zeros_like(diff) for m in ms}
    ks = list(range(1, top + 1))
    with progress_bar(top, "gradients on the path", progress, unit="grad") as bar:
        for s in range(0, top, batch):
            kb = ks[s:s + batch]
            alpha = torch.tensor([k / top for k in kb], dtype=x.dtype).reshape(
                -1, *([1] * (x.dim() - 1)))
            path = (baseline + alpha * diff).detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(f(path).sum(), path)
            for m in ms:
                take = [i for i, k in enumerate(kb) if k % (top // m) == 0]
                if take:
                    acc[m] += grad[take].sum(dim=0, keepdim=True).detach() / m
            bar.update(len(kb))
    with torch.no_grad():
        ends = f(torch.cat([x, baseline]))
    return RiemannSweep(steps=ms, attributions={m: acc[m] * diff for m in ms},
                        f_x=float(ends[0]), f_baseline=float(ends[1]))


def markdown(rows: dict[str, RiemannSweep], seconds: float, command: str = (
        "python -m attribkit.experiments.riemann_steps")) -> str:
    """The section: one row per photo, the gap for every ``m``, and what it says."""
    ms = next(iter(rows.values())).steps
    head = ["photo", "F(x)", "F(black)", *(f"m = {m}" for m in ms), "within 5 % from"]
    out = [f"Regenerate with: `{command}`. "
           f"{platform.machine()}, {torch.get_num_threads()} threads, torch "
           f"{torch.__version__}; {len(rows)} photos, {ms[-1]} gradients each, {seconds:.0f} s. "
           "Relative completeness gap of eq. 6 (right Riemann sum, `m` steps) for the top "
           "class's softmax probability, black baseline:", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        first = r.first_within()
        out.append("| " + " | ".join([name, f"{r.f_x:.4f}", f"{r.f_baseline:.4f}",
                                      *(f"{100 * r.relative_gap(m):.1f} %" for m in ms),
                                      "never" if first is None else f"m = {first}"]) + " |")
    n = len(rows)
    at = {m: sum(r.relative_gap(m) <= _WITHIN for r in rows.values()) for m in (ms[0], ms[-1])}
    out += ["", f"Within 5 %: {at[ms[0]]} of {n} photos at m = {ms[0]}, {at[ms[-1]]} of {n} at "
            f"m = {ms[-1]}."]
    return "\n".join(out)


def photo_table(model: torch.nn.Module, photos: dict[str, Tensor], black: float,
                class_name: Callable[[int], str], progress: bool = False) -> str:
    """Top-3 classes and Gauss-Legendre completeness on the photos (docs/zoo-vision.md)."""
    import attribkit

    head = ["photo", "top-3 classes (probability)", "F(x)", "F(black)", "sum of IG",
            "relative gap (32 steps)"]
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    gaps: dict[str, dict[str, float]] = {}
    for name, x in photos.items():
        with torch.no_grad():
            p = model(x)[0]
        top = p.argsort(descending=True)[:3].tolist()
        base = torch.full_like(x, black)
        cells = "; ".join(f"{i} {class_name(i)} {float(p[i]):.3f}" for i in top)
        row: dict[str, float] = {}
        for label, kw in (("gl32", {"steps": 32}), ("gl128", {"steps": 128}),
                          ("adaptive64", {"steps": 64, "rule": "adaptive"})):
            if label != "gl32" and name not in ("china", "astronaut", "motorcycle"):
                continue
            a = attribkit.integrated_gradients(model, x, target=top[0], baseline=base,
                                               batch_size=16, progress=progress, **kw)
            gap = a.relative_gap
            row[label] = float(gap[0]) if gap is not None else float("nan")
            if label == "gl32":
                total = float(a.values.sum())
                f0 = float(a.baseline_output[0]) if a.baseline_output is not None else 0.0
        gaps[name] = row
        out.append(f"| {name} | {cells} | {float(p[top[0]]):.4f} | {f0:.4f} | {total:.4f} | "
                   f"{100 * row['gl32']:.1f} % |")
    out += ["", "| photo | Gauss-Legendre 32 steps | Gauss-Legendre 128 steps | "
            "`rule=\"adaptive\"`, 64 steps |", "| --- | --- | --- | --- |"]
    out += [f"| {n} | {100 * g['gl32']:.1f} % | {100 * g['gl128']:.2f} % | "
            f"{100 * g['adaptive64']:.2f} % |" for n, g in gaps.items() if "gl128" in g]
    return "\n".join(out)


def _run(args: Any) -> None:
    from attribkit.zoo import vision

    torch.set_num_threads(args.threads)
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0()).eval()
    photos = vision.sample_photos(list(args.photos))
    if args.photos_table:
        text = photo_table(model, photos, vision.BLACK, vision.class_name, progress=True)
        write_section(args.out, "photos-completeness",
                      "Regenerate with: `python -m attribkit.experiments.riemann_steps "
                      "--photos-table`.\n\n" + text)
        print(text, flush=True)
    t0 = time.perf_counter()
    rows = {}
    for name, x in photos.items():
        with torch.no_grad():
            cls = int(model(x)[0].argmax())

        def f(inp: Tensor, cls: int = cls) -> Tensor:
            out: Tensor = model(inp)[:, cls]
            return out

        rows[name] = right_riemann_sweep(f, x, torch.full_like(x, vision.BLACK),
                                         progress=True)
        print(name, {m: round(rows[name].relative_gap(m), 4) for m in STEPS}, flush=True)
    command = "python -m attribkit.experiments.riemann_steps"
    if list(args.photos) != list(vision.PHOTOS):
        command += " --photos " + " ".join(args.photos)
    text = markdown(rows, time.perf_counter() - t0, command)
    write_section(args.out, "riemann-steps", text)
    print(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sweep on the photos and rewrite the page's section(s)."""
    from attribkit.zoo import vision

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", default="docs/zoo-vision.md")
    ap.add_argument("--photos", nargs="*", default=list(vision.PHOTOS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--photos-table", action="store_true",
                    help="also rewrite the top-classes and Gauss-Legendre tables")
    _run(ap.parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
