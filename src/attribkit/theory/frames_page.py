"""Table 2 in both frames, and the background-set audit, as sections of ``docs/unification.md``.

The baseline-frame verdicts come from :func:`attribkit.theory.suite.run_unification`; this
module adds each row's own frame (:mod:`attribkit.theory.frames`), the toys that decide it, and
the explanation of every difference that remains, with the measured function that shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.methods.registry import get, methods
from attribkit.theory.allocation import AllocationReport, CriterionVerdict, audit_blocks
from attribkit.theory.examples import relu_net, sparse_poly
from attribkit.theory.frames import (
    FIRST_ORDER,
    OWN_FRAME,
    RELEVANCE,
    BackgroundAudit,
    audit_background,
    first_order_audit,
    relevance_audit,
)
from attribkit.theory.paper_table import PAPER_TABLE, Row
from attribkit.theory.suite import UnificationResult
from attribkit.toys import Polynomial

__all__ = [
    "OWN_EXPLANATIONS",
    "FrameVerdicts",
    "background_rows",
    "cam_flat_net",
    "cam_gap_net",
    "frame_verdicts",
    "relevance_toys",
    "render_frames",
    "sign_group_net",
    "zero_bias",
]

BACKGROUND_LABEL = "average over background rows"


@dataclass(frozen=True)
class FrameVerdicts:
    """One row's verdicts in its own frame, with the evidence per function."""

    row: Row
    frame: str
    evidence: dict[str, tuple[CriterionVerdict, ...]]
    skipped: dict[str, str]

    def verdict(self, k: int) -> bool | None:
        """Criterion ``k`` holds on every function where it was decided."""
        got = [v[k].holds for v in self.evidence.values() if v[k].holds is not None]
        return None if not got else all(got)


def zero_bias(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every bias zeroed (``F(0) = 0``: the relevance frame's setting)."""
    import copy

    out = copy.deepcopy(net)
    with torch.no_grad():
        for m in out.modules():
            b = getattr(m, "bias", None)
            if isinstance(b, Tensor):
                b.zero_()
    return out


def _positive_at(net: nn.Sequential, x: Tensor) -> nn.Sequential:
    """Flip the last layer's sign if ``F(x) < 0`` (Deep Taylor explains positive outputs)."""
    with torch.no_grad():
        if float(net(x).reshape(-1)[0]) < 0:
            last = net[-1]
            assert isinstance(last, nn.Linear)
            last.weight.neg_()
            last.bias.neg_()
    return net


def _seeded(shape: Sequence[int], seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def cam_gap_net() -> nn.Sequential:
    """Conv, ReLU, conv (Grad-CAM's layer, positive), global average pool, tanh head.

    The feature map is positive and every pooled gradient is positive, so the Grad-CAM map is
    positive everywhere (never clipped); after the pooling the gradient of a channel is the same
    at every position, so the map equals the first-order term of each position. The tanh makes
    the head non-linear: the first-order terms do not cover ``F(x) - F(0)``.
    """
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3), nn.Tanh(),
                        nn.Linear(3, 1)).double().eval()
    _fill(net, 11)
    return net


def cam_flat_net() -> nn.Sequential:
    """As :func:`cam_gap_net` but the head reads every position with its own weight (flatten +
    linear): pooled gradients stay positive, per-position gradients differ."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1),
                        nn.ReLU(), nn.Flatten(), nn.Linear(32, 1)).double().eval()
    _fill(net, 12)
    return net


def _fill(net: nn.Sequential, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        first = True
        for m in net:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = torch.randn(m.weight.shape, generator=g, dtype=torch.float64) * 0.5
                m.weight.copy_(w if first else w.abs() + 0.05)
                assert m.bias is not None
                m.bias.copy_(torch.rand(m.bias.shape, generator=g, dtype=torch.float64) * 0.2
                             + (0.0 if first else 0.1))
                first = False


def _image(seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 1, 4, 4, generator=g, dtype=torch.float64)


def _last_conv(net: nn.Module) -> nn.Module:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]


def _poly_cases() -> list[tuple[str, nn.Module, Tensor]]:
    exps, coefs = sparse_poly(0)
    return [
        ("x1^2 x2 at (1, 1)", Polynomial([[2, 1]]), torch.tensor([[1.0, 1.0]],
                                                                 dtype=torch.float64)),
        ("x1 x2 x3 (x4 dummy)", Polynomial([[1, 1, 1, 0]]),
         torch.tensor([[1.5, -0.5, 2.0, 0.8]], dtype=torch.float64)),
        ("x1 + x2^2 + x1 x2", Polynomial([[1, 0], [0, 2], [1, 1]], [1.0, -0.5, 2.0]),
         torch.tensor([[0.8, 1.2]], dtype=torch.float64)),
        ("random sparse polynomial 0", Polynomial(exps, coefs),
         torch.tensor([[-1.19, 0.4, 0.712, 0.402, 0.964]], dtype=torch.float64)),
    ]


def _net_cases() -> list[tuple[str, nn.Sequential, Tensor]]:
    out = []
    for seed in (0, 1):
        x = _seeded((1, 5), 200 + seed)
        out.append((f"ReLU network {seed} with biases (x5 dummy)", _positive_at(relu_net(seed), x),
                    x))
        nb = zero_bias(relu_net(seed))
        assert isinstance(nb, nn.Sequential)
        out.append((f"bias-free ReLU network {seed} (x5 dummy)", _positive_at(nb, x), x))
    return out


def _own_first_order(row: Row, opts: dict[str, Any], tol: float
                     ) -> tuple[dict[str, tuple[CriterionVerdict, ...]], dict[str, str]]:
    ev: dict[str, tuple[CriterionVerdict, ...]] = {}
    sk: dict[str, str] = {}
    info = get(row.method)
    if row.method == "grad_cam":
        for name, net in (("Grad-CAM net, global-average-pool head", cam_gap_net()),
                          ("Grad-CAM net, flatten + linear head", cam_flat_net())):
            layer = _last_conv(net)
            o = {"layer": layer, "upsample": False}
            _run(ev, sk, name, first_order_audit, info, net, _image(5), layer=layer, options=o,
                 tolerance=1e-6)
        return ev, sk
    cases: list[tuple[str, nn.Module, Tensor]] = [*_poly_cases(), *_net_cases()]
    for name, model, x in cases:
        t = 1e-6 if isinstance(model, Polynomial) else tol
        _run(ev, sk, name, first_order_audit, info, model, x, options=opts, tolerance=t)
    return ev, sk


def _run(ev: dict[str, tuple[CriterionVerdict, ...]], sk: dict[str, str], name: str,
         fn: Callable[..., AllocationReport], *args: Any, **kwargs: Any) -> None:
    try:
        ev[name] = fn(*args, **kwargs).criteria
    except Exception as exc:  # a method that cannot run there is recorded
        sk[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"


def _own_relevance(row: Row, opts: dict[str, Any], tol: float
                   ) -> tuple[dict[str, tuple[CriterionVerdict, ...]], dict[str, str]]:
    ev: dict[str, tuple[CriterionVerdict, ...]] = {}
    sk: dict[str, str] = {}
    info = get(row.method)
    for name, model, x0 in _net_cases():
        _run(ev, sk, name, relevance_audit, info, model, x0, options=opts, tolerance=tol)
    net, parts = sign_group_net()
    x = torch.ones(1, 4, dtype=torch.float64)
    _run(ev, sk, SIGN_GROUP, audit_blocks, info, net, parts, ((0, 1), (2, 3)), x,
         torch.zeros_like(x), options=opts, tolerance=tol)
    for name, model, xx in relevance_toys():
        _run(ev, sk, name, relevance_audit, info, model, xx, options=opts, tolerance=tol)
    return ev, sk


SIGN_GROUP = ("bias-free x1 + x2 block and 2 x3 + x4 - x3 block at (1, 1, 1, 1): "
              "F = ReLU(x1 + x2) + ReLU(2 x3 + x4) - ReLU(x3)")
ONE_NEURON = "one neuron ReLU(x1 + x2) at (1, 1) (no negative contribution anywhere)"
BIAS_CARRIES = "ReLU(2 - x1) at x1 = 1 (F(x) = 1 carried by the bias; gradient -1)"
SATURATED = "saturated unit 1 - ReLU(1 - x) at x = 2"


def _seq(w1: list[list[float]], w2: list[list[float]], b1: list[float] | None = None,
         b2: list[float] | None = None) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(len(w1[0]), len(w1)), nn.ReLU(),
                        nn.Linear(len(w2[0]), 1)).double().eval()
    with torch.no_grad():
        for m, w, b in ((net[0], w1, b1), (net[2], w2, b2)):
            assert isinstance(m, nn.Linear)
            m.weight.copy_(torch.tensor(w, dtype=torch.float64))
            m.bias.copy_(torch.tensor(b if b is not None else [0.0] * len(w),
                                      dtype=torch.float64))
    return net


def sign_group_net() -> tuple[nn.Sequential, tuple[nn.Sequential, nn.Sequential]]:
    """``F_1 + F_2`` with ``F_1 = ReLU(x1 + x2)``, ``F_2 = ReLU(2 x3 + x4) - ReLU(x3)``, bias-free,
    and each block alone: at ``(1, 1, 1, 1)`` both blocks give 2, and the negative term of block
    2 is the only negative contribution at the output."""
    w1 = [[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 0.0]]
    return (_seq(w1, [[1.0, 1.0, -1.0]]),
            (_seq(w1, [[1.0, 0.0, 0.0]]), _seq(w1, [[0.0, 1.0, -1.0]])))


def relevance_toys() -> list[tuple[str, nn.Sequential, Tensor]]:
    """Small networks of the relevance frame (besides the random ReLU networks)."""
    one = torch.ones(1, 2, dtype=torch.float64)
    return [
        (ONE_NEURON, _seq([[1.0, 1.0]], [[1.0]]), one),
        (BIAS_CARRIES, _seq([[-1.0]], [[1.0]], [2.0], [0.0]),
         torch.ones(1, 1, dtype=torch.float64)),
        (SATURATED, _seq([[-1.0]], [[-1.0]], [1.0], [1.0]),
         torch.full((1, 1), 2.0, dtype=torch.float64)),
    ]


def background_rows() -> list[tuple[str, nn.Module, Tensor, Tensor]]:
    """The functions and background sets (3 rows each) of the background audit."""
    cases = []
    for i, (name, model, x) in enumerate(_poly_cases()[:3]):
        cases.append((name, model, x, 0.5 * _seeded((3, x.shape[1]), 600 + i)))
    net = relu_net(0)
    x = _seeded((1, 5), 200)
    cases.append(("ReLU network 0 (x5 dummy)", net, x, _seeded((3, 5), 700)))
    sat = relevance_toys()[2][1]
    cases.append((SATURATED, sat, torch.full((1, 1), 2.0, dtype=torch.float64),
                  torch.tensor([[0.0], [0.5], [-1.0]], dtype=torch.float64)))
    return cases


def _own_background(row: Row, tol: float
                    ) -> tuple[dict[str, tuple[CriterionVerdict, ...]], dict[str, str],
                               dict[str, BackgroundAudit]]:
    ev: dict[str, tuple[CriterionVerdict, ...]] = {}
    sk: dict[str, str] = {}
    full: dict[str, BackgroundAudit] = {}
    info = get(row.method)
    opts = {k: v for k, v in row.options.items() if k != "background"}
    if "n_samples" in opts:
        opts["n_samples"] = 2000
    for name, model, x, bg in background_rows():
        try:
            ba = audit_background(info, model, x, bg, options=opts, tolerance=tol)
        except Exception as exc:  # a method that cannot run there is recorded
            sk[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:120]}"
            continue
        ev[name], full[name] = ba.criteria, ba
    return ev, sk, full


def frame_verdicts(rows: Sequence[Row] = PAPER_TABLE
                   ) -> tuple[list[FrameVerdicts], dict[str, dict[str, BackgroundAudit]]]:
    """Each Table 2 row (that is registered and has an own frame) audited in that frame."""
    out: list[FrameVerdicts] = []
    bgs: dict[str, dict[str, BackgroundAudit]] = {}
    registered = set(methods())
    for row in rows:
        if row.method not in registered:
            continue
        frame = OWN_FRAME.get(row.label)
        tol = 5e-2 if get(row.method).stochastic else 2e-2
        if frame == FIRST_ORDER:
            ev, sk = _own_first_order(row, {k: v for k, v in row.options.items()
                                            if not isinstance(v, str) or not v.startswith("<")},
                                      tol)
        elif frame == RELEVANCE:
            ev, sk = _own_relevance(row, dict(row.options), tol)
        elif "background" in row.options:
            frame = BACKGROUND_LABEL
            ev, sk, bgs[row.label] = _own_background(row, tol)
        else:
            continue
        out.append(FrameVerdicts(row, frame, ev, sk))
    return out, bgs


def _yn(v: bool | None) -> str:
    return "n/a" if v is None else ("yes" if v else "no")


_BIAS = (
    "Relevance of F(x) that a bias holds never reaches the inputs. In the saturated unit the "
    "hidden unit is dead at x = 2 and all of F(x) = 1 is the output bias, so the rule has no "
    "contribution to pass on and the input receives 0. The paper's derivation expands each "
    "unit's relevance around a root point inside its sign group; a unit whose output is a "
    "constant has none. ")
#: Why an own-frame verdict still differs from the paper: (label, criterion) -> explanation.
OWN_EXPLANATIONS: dict[tuple[str, int], str] = {
    ("Grad-CAM", 1): (
        "The paper reads the map as the first-order term of each feature-map position, which "
        "holds when a channel's gradient is the same at every position: on the net with global "
        "average pooling right after the layer the map equals the terms exactly. Where the head "
        "reads each position with its own weight (flatten + linear), Grad-CAM replaces each "
        "position's gradient by the channel mean, so the first-order term of one position, "
        "written as its own model, is spread over every position in proportion to its "
        "activations (the share to non-members above)."),
    ("Grad-CAM", 2): (
        "Same net: with the mean gradient the map sums to sum_c mean_p(g_cp) sum_p A_cp instead "
        "of the terms' sum_{c,p} g_cp A_cp; the two agree only when gradients are uniform over "
        "positions (global average pooling) or uncorrelated with the activations."),
    ("LRP-alpha-beta", 0): _BIAS + (
        "ReLU(2 - x1) at x1 = 1 is a second case: its only input contribution is negative and "
        "the bias carries F(x), so the rule sends negative relevance to x1. On the "
        "bias-free networks nothing is lost."),
    ("LRP-alpha-beta", 2): (
        "alpha - beta = 1 conserves relevance at a neuron only when both sign groups are "
        "non-empty; with no negative contribution the rule passes alpha = 2 times the relevance "
        "down, at every layer (one neuron ReLU(x1 + x2) and a linear read-out: 2 x 2 x F(x)). "
        "The random bias-free network 1 shows the same; bias-free network 0 conserves F(x)."),
    ("Deep Taylor", 0): _BIAS + (
        "Only the saturated unit shows it: on the seven other networks (random ReLU networks "
        "with and without biases, ReLU(2 - x1), the one-neuron net) the z+ rule gives the inputs "
        "all of F(x)."),
    ("Deep Taylor", 2): _BIAS + (
        "Only the saturated unit shows it: on the seven other networks the relevances add up "
        "to F(x)."),
}


def render_frames(result: UnificationResult, frames: Sequence[FrameVerdicts],
                  backgrounds: dict[str, dict[str, BackgroundAudit]]) -> str:
    """The sections: Table 2 cell by cell in both frames, differences, background sets."""
    base = {au.row.label: au for au in result.audits}
    own = {f.row.label: f for f in frames}
    lines = [
        "## Table 2 in both frames", "",
        "The table above scores every method in the baseline frame (`F(x) - F(b)`). The paper "
        "reads Gradient x Input, LRP-epsilon and Grad-CAM in the first-order expansion at the "
        "input, LRP-alpha-beta and Deep Taylor in the relevance of `F(x)`, and Expected "
        "Gradients, DeepSHAP and Prediction Difference as averages over a background set "
        "(`attribkit.theory.frames`). Each cell: baseline frame / own frame / paper; rows "
        "without an own frame are read in the baseline frame by the paper too.", "",
        "| method | own frame | (1) base / own / paper | (2) base / own / paper | "
        "(3) base / own / paper | own frame agrees |",
        "|---|---|---|---|---|---|",
    ]
    diffs: list[tuple[FrameVerdicts, int]] = []
    for row in PAPER_TABLE:
        au = base.get(row.label)
        if au is None or row.paper is None:
            continue
        fv = own.get(row.label)
        cells = []
        agree = []
        for k in range(3):
            b = _yn(au.verdict(k))
            o = _yn(fv.verdict(k)) if fv else b
            cells.append(f"{b} / {o} / {_yn(row.paper[k])}")
            ov = fv.verdict(k) if fv else au.verdict(k)
            if ov is not None and ov != row.paper[k]:
                agree.append(f"({k + 1})")
                if fv:
                    diffs.append((fv, k))
        lines.append(f"| {row.label} | {fv.frame if fv else 'baseline'} | {' | '.join(cells)} | "
                     f"{'yes' if not agree else 'no: ' + ', '.join(agree)} |")
    lines += ["", "### Differences that remain in the own frame, with the function that shows "
              "each", ""]
    if not diffs:
        lines.append("None.")
    for fv, k in diffs:
        fails = [(n, v[k]) for n, v in fv.evidence.items() if v[k].holds is False]
        shown = "; ".join(f"{n}: {v.evidence}" for n, v in fails[:3])
        why = OWN_EXPLANATIONS.get((fv.row.label, k), "measured; no explanation recorded")
        lines.append(f"* **{fv.row.label}, criterion ({k + 1})** - measured "
                     f"{_yn(fv.verdict(k))}, paper "
                     f"{_yn(fv.row.paper[k] if fv.row.paper else None)}. Shown by: {shown}. "
                     f"Why: {why}")
    lines += ["", "### Own-frame evidence per method", ""]
    for fv in frames:
        lines.append(f"**{fv.row.label}** ({fv.frame}):")
        lines.append("")
        for n, crit in fv.evidence.items():
            cell = "; ".join(f"({k + 1}) {_yn(c.holds)}: {c.evidence}" for k, c in enumerate(crit))
            lines.append(f"* {n}: {cell}")
        for n, why in fv.skipped.items():
            lines.append(f"* {n}: not run ({why})")
        lines.append("")
    lines += [
        "## Background sets: Expected Gradients, DeepSHAP, Prediction Difference", "",
        "Each function is audited with a background set of 3 rows. The decomposition is the "
        "average over the rows of each row's decomposition (Table 1); on polynomials each row's "
        "effects are measured with that row alone and averaged by support. *average gap*: the "
        "attribution with the whole set against the mean of the one-row runs (the premise of "
        "the averaged frame); *closest averaged rule*: relative L2 distance to each rule "
        "averaged over the rows.", "",
        "| method | function | (1) | (2) | (3) | average gap | completeness gap | closest "
        "averaged rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, audits in backgrounds.items():
        for n, ba in audits.items():
            best = min(ba.rule_distances, key=lambda r: ba.rule_distances[r])
            lines.append(f"| {label} | {n} | " + " | ".join(_yn(c.holds) for c in ba.criteria)
                         + f" | {ba.average_gap:.2g} | {ba.completeness_gap:.2g} | {best} "
                         f"({ba.rule_distances[best]:.2g}) |")
    lines.append("")
    return "\n".join(lines)
