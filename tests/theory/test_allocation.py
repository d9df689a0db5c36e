"""The allocation audit: measured weights against REFERENCE.md's Table 1 (closed forms)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from attribkit.methods.registry import methods
from attribkit.theory.allocation import (
    allocation_report,
    audit_blocks,
    audit_polynomial,
    run_method,
)
from attribkit.theory.taylor import taylor_terms
from attribkit.toys import Polynomial

MONOMIALS = [[2, 1], [1, 1, 1], [3, 1, 2], [1, 4], [2, 0, 1, 1]]


def _point(n: int) -> torch.Tensor:
    return torch.tensor([[1.3, -0.7, 0.9, 1.1][:n]], dtype=torch.float64)


def _ig(kap: list[int]) -> list[float]:
    return [k / sum(kap) for k in kap]


def _shapley(kap: list[int]) -> list[float]:
    s = sum(1 for k in kap if k)
    return [1 / s if k else 0.0 for k in kap]


def _occlusion(kap: list[int]) -> list[float]:
    return [1.0 if k else 0.0 for k in kap]


def _gxi(kap: list[int]) -> list[float]:
    return [float(k) for k in kap]


#: Table 1 weights of a monomial x^kappa at a zero baseline, per registered method name.
EXPECTED_WEIGHTS: dict[str, Callable[[list[int]], list[float]]] = {
    "integrated_gradients": _ig,
    "shapley_values": _shapley,
    "occlusion": _occlusion,
    "gradient_x_input": _gxi,
}
PRESENT = [m for m in EXPECTED_WEIGHTS if m in methods()]


@pytest.mark.parametrize("method", PRESENT)
@pytest.mark.parametrize("kappa", MONOMIALS)
def test_monomial_weights_match_table_1(method: str, kappa: list[int]) -> None:
    model = Polynomial([kappa], [1.7])
    report = audit_polynomial(method, model, _point(len(kappa)))
    (effect,) = report.effects
    assert effect.players == tuple(i for i, k in enumerate(kappa) if k)
    assert list(effect.weights) == pytest.approx(EXPECTED_WEIGHTS[method](kappa), abs=1e-9)


def test_x1sq_x2_case_of_the_reference() -> None:
    model = Polynomial([[2, 1]])
    x = torch.ones(1, 2, dtype=torch.float64)
    expect = {"integrated_gradients": (2 / 3, 1 / 3), "shapley_values": (0.5, 0.5),
              "occlusion": (1.0, 1.0), "gradient_x_input": (2.0, 1.0)}
    for name in PRESENT:
        attr = run_method(name, model, x, torch.zeros_like(x))
        assert attr.tolist() == pytest.approx(expect[name], abs=1e-9), name


def test_verdicts_on_a_monomial() -> None:
    model = Polynomial([[2, 1, 0]])
    x = torch.tensor([[1.2, 0.8, -0.5]], dtype=torch.float64)
    expected = {"integrated_gradients": (True, True, True), "shapley_values": (True, True, True),
                "occlusion": (True, True, False), "gradient_x_input": (True, True, False)}
    for name in PRESENT:
        rep = audit_polynomial(name, model, x)
        assert tuple(v.holds for v in rep.criteria) == expected[name], name
        assert rep.additivity_error < 1e-9


def test_gradient_x_input_keeps_only_the_first_order_terms_at_the_input() -> None:
    model = Polynomial([[2, 1]])
    x = torch.ones(1, 2, dtype=torch.float64)
    b = torch.zeros_like(x)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xr).sum(), xr)
    gxi = (x * grad)[0]  # written here; the registered method must agree when it exists
    if "gradient_x_input" in methods():
        torch.testing.assert_close(run_method("gradient_x_input", model, x, b), gxi)
    # expand F at x and evaluate it at the baseline: first-order terms are grad F(x) (b - x)
    at_x = taylor_terms(model, b, baseline=x, order=1)
    first = torch.zeros(2, dtype=torch.float64)
    for t in at_x.terms:
        first[t.support[0]] += t.value
    torch.testing.assert_close(gxi, -first)
    # what it leaves out is the remainder of that expansion: F(x) - F(b) - sum(a) = -2
    assert float(1.0 - gxi.sum()) == pytest.approx(-at_x.residual)
    assert at_x.residual == pytest.approx(2.0)


def test_saturated_effect_is_covered_by_ig() -> None:
    model = Polynomial([[1, 0], [2, 0], [0, 1]], [2.0, -1.0, 1.0])
    x = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    rep = audit_polynomial("integrated_gradients", model, x)
    assert all(v.holds for v in rep.criteria)
    psi1 = next(e for e in rep.effects if e.players == (0,))
    assert psi1.effect == pytest.approx(1.0) and psi1.weights[0] == pytest.approx(1.0)


def test_allocation_report_on_a_network(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp(n_in=4, n_out=2, seed=4, act=nn.ReLU)
    with torch.no_grad():
        model[0].weight[:, 3] = 0.0  # input 4 is a dummy
    x = torch.tensor([[0.6, -0.3, 1.2, 0.9]], dtype=torch.float64)
    rep = allocation_report(model, x, "integrated_gradients", target=1,
                            options={"steps": 400})
    assert rep.source == "harsanyi"
    c1, c2, c3 = rep.criteria
    assert c1.holds is None and c2.holds is True and c3.holds is True
    assert rep.attribution[3] == 0.0
    assert sum(e.effect for e in rep.effects) == pytest.approx(rep.output_change, abs=1e-12)
    if "shapley_values" in methods():
        sh = allocation_report(model, x, "shapley_values", target=1)
        assert sh.closest_rule == "shapley" and sh.rule_distances["shapley"] < 1e-10


def _separable() -> tuple[nn.Module, tuple[nn.Module, nn.Module], torch.Tensor]:
    """F = F1(x1, x2) + F2(x3, x4) written in the test: F1 pushes up, F2 pushes down."""
    torch.manual_seed(11)
    f1 = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    f2 = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        for f, sign in ((f1, 1.0), (f2, -1.0)):
            f[0].bias.fill_(0.5)
            f[2].weight.copy_(sign * f[2].weight.abs() + sign * 0.2)
            f[2].bias.zero_()
    full = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1)).double()
    with torch.no_grad():
        full[0].weight.zero_()
        full[0].weight[:3, :2] = f1[0].weight
        full[0].weight[3:, 2:] = f2[0].weight
        full[0].bias.copy_(torch.cat([f1[0].bias, f2[0].bias]))
        full[2].weight.copy_(torch.cat([f1[2].weight, f2[2].weight], dim=1))
        full[2].bias.zero_()

    def part(keep: int) -> nn.Module:
        p = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1)).double()
        p.load_state_dict(full.state_dict())
        with torch.no_grad():
            p[2].weight[:, 3 - 3 * keep:6 - 3 * keep] = 0.0
        return p

    x = torch.tensor([[0.4, -0.8, 1.1, 0.3]], dtype=torch.float64)
    with torch.no_grad():
        assert float(full(x)[0]) == pytest.approx(float(f1(x[:, :2])[0] + f2(x[:, 2:])[0]))
    return full, (part(0), part(1)), x


def test_separable_network_ig_gives_no_effect_to_the_other_block() -> None:
    full, parts, x = _separable()
    rep = audit_blocks("integrated_gradients", full, parts, ((0, 1), (2, 3)), x)
    assert rep.criteria[1].holds is True and rep.criteria[1].worst < 1e-12


#: Criterion 2 on the separable network: (method, options) -> expected verdict.
BLOCK_CASES = [("integrated_gradients", {}, True), ("deeplift", {"rule": "rescale"}, True),
               ("lrp", {"rule": "alpha2_beta1"}, False), ("lrp", {"rule": "epsilon"}, True)]


@pytest.mark.parametrize(("name", "options", "holds"),
                         [c for c in BLOCK_CASES if c[0] in methods()])
def test_separable_network_criterion_2(name: str, options: dict[str, str], holds: bool) -> None:
    full, parts, x = _separable()
    rep = audit_blocks(name, full, parts, ((0, 1), (2, 3)), x, options=options)
    assert rep.criteria[1].holds is holds


#: Criterion 1 on the saturated unit 1 - ReLU(1 - x) at x = 2 (Linear/ReLU layers).
SATURATED_CASES = [("integrated_gradients", {}, True), ("occlusion", {}, True),
                   ("gradient_x_input", {}, False), ("lrp", {"rule": "epsilon"}, False),
                   ("deeplift", {"rule": "rescale"}, True)]


@pytest.mark.parametrize(("name", "options", "holds"),
                         [c for c in SATURATED_CASES if c[0] in methods()])
def test_saturated_unit_criterion_1(name: str, options: dict[str, str], holds: bool) -> None:
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)).double()
    with torch.no_grad():
        for m in (net[0], net[2]):
            m.weight.fill_(-1.0)
            m.bias.fill_(1.0)
    x = torch.tensor([[2.0]], dtype=torch.float64)
    rep = allocation_report(net, x, name, options=options)
    assert rep.output_change == pytest.approx(1.0)
    assert rep.criteria[0].holds is holds
    assert rep.attribution[0] == pytest.approx(1.0 if holds else 0.0, abs=1e-9)


def test_report_to_dict_is_json_ready() -> None:
    import json

    import attribkit.theory as th

    rep = th.allocation_report(Polynomial([[2, 1]]), torch.ones(1, 2, dtype=torch.float64),
                               "integrated_gradients")
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["effects"][0]["weights"] == pytest.approx([2 / 3, 1 / 3])
    assert [c["holds"] for c in d["criteria"]] == [True, True, True]
    assert d["closest_rule"] == "integrated_gradients"
    assert set(th.__all__) <= set(dir(th))
