"""Table 2 in the paper's own frames: verdicts on closed-form cases (REFERENCE.md section 4)."""

from __future__ import annotations

import pytest
import torch

from attribkit.methods.registry import methods
from attribkit.theory.allocation import run_method
from attribkit.theory.frames import audit_background, first_order_audit, relevance_audit
from attribkit.theory.frames_page import (
    ONE_NEURON,
    cam_flat_net,
    cam_gap_net,
    frame_verdicts,
    relevance_toys,
    render_frames,
    sign_group_net,
)
from attribkit.theory.unification import Row, UnificationResult
from attribkit.toys import Polynomial

X11 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
F = Polynomial([[2, 1]])  # x1^2 x2


def _holds(rep: object) -> tuple[bool | None, ...]:
    return tuple(c.holds for c in rep.criteria)  # type: ignore[attr-defined]


def test_gradient_x_input_is_complete_in_the_first_order_frame() -> None:
    # first-order terms of x1^2 x2 at (1, 1) toward 0: x1 * 2 x1 x2 = 2, x2 * x1^2 = 1; they sum
    # to 3 while F(x) - F(0) = 1: the remainder -2 is the approximation error (criterion 1 no);
    # each term goes whole to its own feature (2 yes) and the shares add up to it (3 yes)
    rep = first_order_audit("gradient_x_input", F, X11, tolerance=1e-9)
    assert rep.attribution == pytest.approx((2.0, 1.0), abs=1e-12)
    assert [e.effect for e in rep.effects] == pytest.approx([2.0, 1.0], abs=1e-12)
    assert _holds(rep) == (False, True, True)
    assert "remainder -2" in rep.criteria[0].evidence


def test_integrated_gradients_is_not_an_allocation_of_first_order_terms() -> None:
    # IG gives (2/3, 1/3): not the sum of its shares of the terms (2, 1), so (3) fails there
    rep = first_order_audit("integrated_gradients", F, X11, tolerance=1e-6)
    assert rep.attribution == pytest.approx((2 / 3, 1 / 3), abs=1e-6)
    assert rep.criteria[2].holds is False
    assert rep.additivity_error == pytest.approx(abs(2 - 2 / 3) / 3, abs=1e-6)


@pytest.mark.skipif("deep_taylor" not in methods() or "lrp" not in methods(),
                    reason="propagation methods are registered by attribkit.methods")
def test_relevance_frame_closed_forms() -> None:
    one = dict((n, (m, x)) for n, m, x in relevance_toys())[ONE_NEURON]
    # ReLU(x1 + x2) at (1, 1): F(x) = 2; Deep Taylor conserves it, alpha2-beta1 has no negative
    # group at either layer and passes alpha = 2 times the relevance twice: 8
    dt = relevance_audit("deep_taylor", one[0], one[1], tolerance=1e-6)
    ab = relevance_audit("lrp", one[0], one[1], options={"rule": "alpha2_beta1"},
                         tolerance=1e-6)
    assert sum(dt.attribution) == pytest.approx(2.0, rel=1e-6)
    assert dt.criteria[2].holds is True
    assert sum(ab.attribution) == pytest.approx(8.0, rel=1e-6)
    assert ab.criteria[2].holds is False


@pytest.mark.skipif("deep_taylor" not in methods(), reason="deep_taylor not registered")
def test_sign_groups_move_a_negative_effect_to_unrelated_features() -> None:
    # F = ReLU(x1 + x2) + ReLU(2 x3 + x4) - ReLU(x3) at 1: output contributions 2, 3, -1 and
    # F = 4; the z+ rule gives the first hidden unit 4 * 2 / 5 = 1.6, i.e. 0.8 to x1 and x2,
    # although block 1 alone (F_1 = 2) gives them 1 each: -x3's effect reaches x1, x2
    full, (p1, _) = sign_group_net()
    x = torch.ones(1, 4, dtype=torch.float64)
    zero = torch.zeros_like(x)
    a = run_method("deep_taylor", full, x, zero)
    a1 = run_method("deep_taylor", p1, x, zero)
    assert a[:2].tolist() == pytest.approx([0.8, 0.8], rel=1e-6)
    assert a1[:2].tolist() == pytest.approx([1.0, 1.0], rel=1e-6)


@pytest.mark.skipif("grad_cam" not in methods(), reason="grad_cam not registered")
def test_grad_cam_first_order_frame_on_nets_with_a_positive_map() -> None:
    img = torch.rand(1, 1, 4, 4, generator=torch.Generator().manual_seed(5),
                     dtype=torch.float64)
    gap = cam_gap_net()
    layer = gap[2]
    cam = run_method("grad_cam", gap, img, torch.zeros_like(img),
                     options={"layer": layer, "upsample": False})
    assert bool((cam > 0).all())  # never clipped: the verdicts are not about an all-zero map
    # independent closed form after global average pooling: d F / d A_cp = w_c / 16 for every
    # p, so the map is sum_c A_cp * dF/dA_cp: check by a finite difference on the pooled vector
    with torch.no_grad():
        a_map = gap[:3](img)
        pooled = a_map.mean((2, 3))
        head = gap[5:]
        eps = 1e-6
        grads = torch.stack([(head(pooled + eps * torch.eye(2, dtype=torch.float64)[c])
                              - head(pooled - eps * torch.eye(2, dtype=torch.float64)[c]))[0, 0]
                             / (2 * eps) for c in range(2)]) / 16
    expect = (a_map[0] * grads[:, None, None]).sum(0).reshape(-1)
    assert cam.tolist() == pytest.approx(expect.tolist(), rel=1e-6)
    rep = first_order_audit("grad_cam", gap, img, layer=layer,
                            options={"layer": layer, "upsample": False}, tolerance=1e-6)
    assert _holds(rep) == (False, True, True)  # tanh head: higher-order remainder
    flat = cam_flat_net()
    rep2 = first_order_audit("grad_cam", flat, img, layer=flat[2],
                             options={"layer": flat[2], "upsample": False}, tolerance=1e-6)
    assert _holds(rep2) == (True, False, False)  # linear head, position-wise gradients


def test_background_sets_average_of_baselines() -> None:
    bg = torch.tensor([[0.0, 0.0], [0.5, -0.3], [-0.4, 0.2]], dtype=torch.float64)
    # Prediction Difference = Occlusion-1 averaged over rows: a_1 = F(x) - F(b1, x2) = 1 - b1^2,
    # a_2 = F(x) - F(x1, b2) = 1 - b2
    pd = audit_background("prediction_difference", F, X11, bg, tolerance=1e-6)
    a = run_method("prediction_difference", F, X11, bg[:1], options={"background": bg})
    assert a.tolist() == pytest.approx([float((1 - bg[:, 0] ** 2).mean()),
                                        float((1 - bg[:, 1]).mean())], abs=1e-12)
    assert pd.average_gap == pytest.approx(0.0, abs=1e-12)
    assert tuple(c.holds for c in pd.criteria) == (True, True, False)
    eg = audit_background("expected_gradients", F, X11, bg, options={"n_samples": 2000},
                          tolerance=5e-2)
    assert tuple(c.holds for c in eg.criteria) == (True, True, True)
    assert eg.average_gap < 5e-2


def test_unknown_methods_do_not_break_the_frames() -> None:
    rows = (Row("Not a method", "no_such_method_xyz", {}, (True, True, True)),)
    frames, bgs = frame_verdicts(rows)
    assert frames == [] and bgs == {}
    text = render_frames(UnificationResult((), (), 0.0), frames, bgs)
    assert "## Table 2 in both frames" in text


#: Rows of "Table 2 in both frames" the committed page must show (base / own / paper per cell).
BOTH = {
    "Gradient x Input": ("no / no / no", "yes / yes / yes", "no / yes / yes"),
    "LRP-epsilon": ("no / no / no", "yes / yes / yes", "no / yes / yes"),
    "Expected Gradients": ("yes / yes / yes", "yes / yes / yes", "yes / yes / yes"),
    "Prediction Difference": ("yes / yes / yes", "yes / yes / yes", "no / no / no"),
}


@pytest.mark.parametrize("label", [k for k in BOTH if k != "LRP-epsilon" or "lrp" in methods()])
def test_committed_page_has_both_frames(label: str) -> None:
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "unification.md"
    text = doc.read_text(encoding="utf-8")
    section = text.split("## Table 2 in both frames", 1)[1]
    line = next(ln for ln in section.splitlines() if ln.startswith(f"| {label} |"))
    cells = tuple(c.strip() for c in line.strip("|").split("|"))[2:5]
    assert cells == BOTH[label]
