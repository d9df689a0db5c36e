"""LRP rules against an independent matrix-form implementation written here, conservation,
the BatchNorm canonizer and residual additions."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from attribkit.methods.propagation import Composite, deep_taylor, lrp, rules

Mat = list[tuple[Tensor, Tensor]]


def relu_mlp(seed: int, sizes: tuple[int, ...] = (5, 7, 6, 3), bias: bool = True) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        mods.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).double().eval()


def weights(model: nn.Sequential) -> Mat:
    out = []
    for m in model:
        if isinstance(m, nn.Linear):
            b = m.bias.detach() if m.bias is not None else torch.zeros(m.out_features,
                                                                       dtype=torch.float64)
            out.append((m.weight.detach(), b))
    return out


def stab(z: Tensor, eps: float) -> Tensor:
    return z + eps * torch.where(z >= 0, 1.0, -1.0).double()


# -- the matrix forms: one example a (in,), relevance r (out,), W (out, in), b (out,) -------------
def eps_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor, eps: float) -> Tensor:
    z = w @ a + b
    return a * (w.T @ (r / stab(z, eps)))


def gamma_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor, g: float, eps: float) -> Tensor:
    wg, bg = w + g * w.clamp(min=0), b + g * b.clamp(min=0)
    return eps_step(a, wg, bg, r, eps)


def ab_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor, alpha: float, beta: float) -> Tensor:
    zij = w * a[None, :]                       # (out, in) contributions
    zp = zij.clamp(min=0).sum(1) + b.clamp(min=0)
    zn = zij.clamp(max=0).sum(1) + b.clamp(max=0)
    pos = zij.clamp(min=0) / stab(zp, 1e-9)[:, None]
    neg = zij.clamp(max=0) / stab(zn, 1e-9)[:, None]
    return ((alpha * pos - beta * neg) * r[:, None]).sum(0)


def zplus_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor) -> Tensor:
    zij = (w * a[None, :]).clamp(min=0)
    return (zij / stab(zij.sum(1), 1e-9)[:, None] * r[:, None]).sum(0)


def zbox_step(a: Tensor, w: Tensor, r: Tensor, lo: float, hi: float) -> Tensor:
    zij = w * a[None, :] - lo * w.clamp(min=0) - hi * w.clamp(max=0)
    return (zij / stab(zij.sum(1), 1e-9)[:, None] * r[:, None]).sum(0)


def wsq_step(w: Tensor, r: Tensor) -> Tensor:
    q = w * w
    return (q / q.sum(1, keepdim=True) * r[:, None]).sum(0)


Step = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


def matrix_lrp(model: nn.Sequential, x: Tensor, t: int, step: Step,
               first: Step | None = None) -> tuple[Tensor, list[float]]:
    """Relevance of one example by layers, and the total at each layer (input last)."""
    ws = weights(model)
    acts = [x]
    for i, (w, b) in enumerate(ws):
        z = w @ acts[-1] + b
        acts.append(z.clamp(min=0) if i < len(ws) - 1 else z)
    out = acts[-1]
    r = torch.zeros_like(out)
    r[t] = out[t]
    totals = [float(r.sum())]
    for i in reversed(range(len(ws))):
        w, b = ws[i]
        f = first if (i == 0 and first is not None) else step
        r = f(acts[i], w, b, r)
        totals.append(float(r.sum()))
    return r, totals


CASES: list[tuple[str, rules.Rule, Step]] = [
    ("epsilon", rules.epsilon(0.1), lambda a, w, b, r: eps_step(a, w, b, r, 0.1)),
    ("gamma", rules.gamma(0.25, 1e-6, signed=False),
     lambda a, w, b, r: gamma_step(a, w, b, r, 0.25, 1e-6)),
    ("alpha2_beta1", rules.alpha_beta(2, 1), lambda a, w, b, r: ab_step(a, w, b, r, 2, 1)),
    ("alpha1_beta0", rules.alpha_beta(1, 0), lambda a, w, b, r: ab_step(a, w, b, r, 1, 0)),
]


@pytest.mark.parametrize("name", ["epsilon", "gamma", "alpha2_beta1", "alpha1_beta0"])
def test_rules_match_the_matrix_form(name: str) -> None:
    rule, step = {c[0]: (c[1], c[2]) for c in CASES}[name]
    model = relu_mlp(1)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64)
    ours = lrp(model, x, target=2, rule=rule).values
    for n in range(3):
        ref, _ = matrix_lrp(model, x[n], 2, step)
        torch.testing.assert_close(ours[n], ref, atol=1e-10, rtol=1e-8)


def test_z_plus_matches_the_matrix_form_on_nonnegative_inputs() -> None:
    model = relu_mlp(2)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 5, generator=g, dtype=torch.float64)
    ours = lrp(model, x, target=0, rule="z_plus").values
    for n in range(3):
        ref, _ = matrix_lrp(model, x[n], 0, lambda a, w, b, r: zplus_step(a, w, b, r))
        torch.testing.assert_close(ours[n], ref, atol=1e-10, rtol=1e-8)


def test_deep_taylor_first_layer_rules_match_the_matrix_form() -> None:
    model = relu_mlp(3)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 5, generator=g, dtype=torch.float64)
    box = deep_taylor(model, x, target=1, low=0.0, high=1.0).values
    wsq = deep_taylor(model, x, target=1).values
    for n in range(2):
        hidden = lambda a, w, b, r: zplus_step(a, w, b, r)  # noqa: E731
        ref_box, _ = matrix_lrp(model, x[n], 1, hidden,
                                lambda a, w, b, r: zbox_step(a, w, r, 0.0, 1.0))
        ref_sq, _ = matrix_lrp(model, x[n], 1, hidden, lambda a, w, b, r: wsq_step(w, r))
        torch.testing.assert_close(box[n], ref_box, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(wsq[n], ref_sq, atol=1e-10, rtol=1e-8)


def test_epsilon_without_biases_conserves_relevance_layer_by_layer() -> None:
    model = relu_mlp(4, sizes=(6, 8, 8, 5, 3), bias=False)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 6, generator=g, dtype=torch.float64)
    attr = lrp(model, x, target=0, rule="epsilon", epsilon=1e-12)
    out = model(x)[:, 0].detach()
    layer_totals = attr.extras["relevance"]
    linear_names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    assert set(linear_names) <= set(layer_totals)
    for name in linear_names:  # relevance entering each linear layer's input
        torch.testing.assert_close(layer_totals[name], out, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(attr.total(), out, atol=1e-9, rtol=1e-9)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-9  # F(0) = 0 without biases
    _, totals = matrix_lrp(model, x[0], 0, lambda a, w, b, r: eps_step(a, w, b, r, 1e-12))
    assert max(abs(t - float(out[0])) for t in totals) < 1e-9


def test_bias_absorbs_relevance_and_gap_is_reported() -> None:
    model = relu_mlp(5)
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    attr = lrp(model, x, target=1)
    assert attr.gap is not None and attr.gap.abs().max() > 1e-4


def conv_net(seed: int, bn: bool) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(2, 4, 3, padding=1)]
    if bn:
        layers.append(nn.BatchNorm2d(4))
    layers += [nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(4, 3, 2), nn.ReLU(), nn.Flatten(),
               nn.Linear(12, 3)]
    return nn.Sequential(*layers).double().eval()


def test_conv_epsilon_matches_the_matrix_form_via_jacobians() -> None:
    model = conv_net(6, bn=False)
    x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    ours = lrp(model, x, target=1, rule="epsilon", epsilon=0.01).values[0]
    # every linear map (conv, pool, dense) as an explicit matrix; ReLUs between them
    acts, mats = [x[0]], []
    linear = [model[0], model[2], model[3], model[5], model[6]]
    for m in linear:
        a = acts[-1]
        if isinstance(m, nn.Flatten):
            acts.append(a.flatten())
            mats.append(None)
            continue
        with torch.no_grad():
            if isinstance(m, nn.Conv2d):
                b = m.bias.detach()
                f = lambda t, m=m: torch.nn.functional.conv2d(t, m.weight, None,  # noqa: E731
                                                              m.stride, m.padding)
            elif isinstance(m, nn.Linear):
                b = m.bias.detach()
                f = lambda t, m=m: t @ m.weight.T  # noqa: E731
            else:
                b = None
                f = lambda t, m=m: m(t)  # noqa: E731
        with torch.no_grad():  # the matrix of the linear map: its images of the unit vectors
            basis = torch.eye(a.numel(), dtype=torch.float64).reshape(-1, *a.shape)
            w = f(basis).reshape(a.numel(), -1).T
        z = f(a.unsqueeze(0))[0]
        bias = torch.zeros_like(z) if b is None else (b[:, None, None].expand_as(z)
                                                      if z.dim() == 3 else b)
        mats.append((w, bias.flatten(), a.shape))
        z = z + bias
        acts.append(z.clamp(min=0) if m in (model[0], model[3]) else z)
    out = acts[-1]
    r = torch.zeros_like(out)
    r[1] = out[1]
    for i in reversed(range(len(linear))):
        if mats[i] is None:
            continue
        w, bias, shape = mats[i]
        a = acts[i].flatten()
        r = eps_step(a, w, bias, r.flatten(), 0.01).reshape(shape)
    torch.testing.assert_close(ours, r, atol=1e-10, rtol=1e-8)


def merged_copy(model: nn.Sequential) -> nn.Sequential:
    conv, bn = model[0], model[1]
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    new = nn.Conv2d(2, 4, 3, padding=1).double()
    with torch.no_grad():
        new.weight.copy_(conv.weight * s[:, None, None, None])
        new.bias.copy_((conv.bias - bn.running_mean) * s + bn.bias)
    return nn.Sequential(new, *list(model)[2:]).eval()


@pytest.mark.parametrize("rule", ["epsilon", "alpha2_beta1", "gamma"])
def test_batchnorm_canonizer_equals_a_hand_merged_model(rule: str) -> None:
    model = conv_net(7, bn=True)
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
        model[1].weight.uniform_(0.5, 1.5)
        model[1].bias.uniform_(-0.5, 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    ours = lrp(model, x, target=0, rule=rule).values
    ref = lrp(merged_copy(model), x, target=0, rule=rule).values
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-8)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 4, bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 4, bias=False)
        self.out = nn.Linear(4, 2, bias=False)
        self.act2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.fc1(x))
        h = self.act2(self.fc2(h) + h)
        return self.out(h)


def test_residual_addition_splits_relevance_and_conserves() -> None:
    torch.manual_seed(8)
    model = Residual().double().eval()
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    attr = lrp(model, x, target=1, epsilon=1e-12)
    torch.testing.assert_close(attr.total(), model(x)[:, 1], atol=1e-8, rtol=1e-8)
    # matrix form: at the addition s = fc2(h) + h, R_fc2 = fc2(h) / s * R and R_h = h / s * R
    for n in range(3):
        w1, w2, w3 = model.fc1.weight, model.fc2.weight, model.out.weight
        with torch.no_grad():
            h = (w1 @ x[n]).clamp(min=0)
            u = w2 @ h
            s = u + h
            o = w3 @ s.clamp(min=0)
            r = torch.zeros(2, dtype=torch.float64)
            r[1] = o[1]
            rs = eps_step(s.clamp(min=0), w3, torch.zeros(2, dtype=torch.float64), r, 1e-12)
            ru, rh = u / stab(s, 1e-12) * rs, h / stab(s, 1e-12) * rs
            rh = rh + eps_step(h, w2, torch.zeros(4, dtype=torch.float64), ru, 1e-12)
            rx = eps_step(x[n], w1, torch.zeros(4, dtype=torch.float64), rh, 1e-12)
        torch.testing.assert_close(attr.values[n], rx, atol=1e-9, rtol=1e-8)


def test_composite_by_name_overrides_by_type() -> None:
    model = relu_mlp(9)
    x = torch.rand(2, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    comp = Composite("mixed", (((nn.Linear,), rules.epsilon(1e-9)),),
                     by_name={"0": rules.z_plus()})
    ours = lrp(model, x, target=0, rule=comp).values
    for n in range(2):
        def step(a: Tensor, w: Tensor, b: Tensor, r: Tensor) -> Tensor:
            return eps_step(a, w, b, r, 1e-9)

        ref, _ = matrix_lrp(model, x[n], 0, step, lambda a, w, b, r: zplus_step(a, w, b, r))
        torch.testing.assert_close(ours[n], ref, atol=1e-10, rtol=1e-8)


def test_softmax_last_layer_passes_probability_relevance() -> None:
    model = nn.Sequential(relu_mlp(10, bias=False), nn.Softmax(dim=1)).eval()
    x = torch.randn(2, 5, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    attr = lrp(model, x, target=2, epsilon=1e-12)
    logits = model[0](x)
    # relevance p_t placed on logit t, then conserved down to the input
    torch.testing.assert_close(attr.total(), model(x)[:, 2], atol=1e-9, rtol=1e-8)
    ref = lrp(model[0], x, target=2, epsilon=1e-12).values
    torch.testing.assert_close(attr.values, ref * (model(x)[:, 2] / logits[:, 2])[:, None])


class SameConv(nn.Conv2d):
    """Like EfficientNet's ``Conv2dStaticSamePadding``: a child pads, forward calls F.conv2d."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, bias=False)
        self.pad = nn.ZeroPad2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(self.pad(x), self.weight, self.bias)


class MBChain(nn.Module):
    """Two linear-bottleneck residual blocks in a row (the second adds to an addition)."""

    def __init__(self, same: bool) -> None:
        super().__init__()
        torch.manual_seed(12)
        conv = (lambda: SameConv(3, 3)) if same else (
            lambda: nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 3, 3, bias=False)))
        self.c1, self.c2 = conv(), conv()
        self.bn1, self.bn2 = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
        self.act = nn.ReLU6()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(x)
        h = self.bn1(self.c1(h)) + h
        h = self.bn2(self.c2(h)) + h
        out: Tensor = self.head(h)
        return out


def test_conv_subclass_with_padding_child_and_chained_residuals() -> None:
    a, b = MBChain(same=True).double().eval(), MBChain(same=False).double().eval()
    b.load_state_dict({k.replace("c1.weight", "c1.1.weight").replace("c2.weight", "c2.1.weight"): v
                       for k, v in a.state_dict().items()})
    for m in (a, b):
        for bn in (m.bn1, m.bn2):
            bn.running_mean.fill_(0.2)
            bn.running_var.fill_(1.5)
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x))
    before = {k: v.clone() for k, v in a.state_dict().items()}
    for rule in ("epsilon", "alpha2_beta1"):
        ra = lrp(a, x, target=1, rule=rule).values
        rb = lrp(b, x, target=1, rule=rule).values
        torch.testing.assert_close(ra, rb, atol=1e-10, rtol=1e-8)
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())
    # the BatchNorms were found at run time although they are registered after both convs
    totals = lrp(a, x, target=1).extras["relevance"]
    assert "c1+bn1" in totals and "c2+bn2" in totals
