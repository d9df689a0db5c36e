"""The two gamma rules and the two DeepLIFT max-pooling rules, each next to its oracle."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._cases import case
from torch import Tensor, nn

import attribkit
from attribkit.methods.propagation import rules


def stab(z: Tensor, eps: float) -> Tensor:
    return z + eps * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def signed_gamma_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor, g: float,
                      eps: float) -> Tensor:
    """One layer of the sign-aware gamma rule in matrix form, output by output."""
    zij = w * a[None, :]                               # (out, in) contributions x_i w_ij
    z = zij.sum(1) + b
    out = torch.zeros_like(a)
    for j in range(w.shape[0]):
        part = zij[j].clamp(min=0) if z[j] >= 0 else zij[j].clamp(max=0)
        bias = b[j].clamp(min=0) if z[j] >= 0 else b[j].clamp(max=0)
        mod = zij[j] + g * part
        den = mod.sum() + b[j] + g * bias
        out += mod / stab(den, eps) * r[j]
    return out


def classic_gamma_step(a: Tensor, w: Tensor, b: Tensor, r: Tensor, g: float,
                       eps: float) -> Tensor:
    wg, bg = w + g * w.clamp(min=0), b + g * b.clamp(min=0)
    return a * (wg.T @ (r / stab(wg @ a + bg, eps)))


def matrix_lrp(model: nn.Sequential, x: Tensor, target: int, step: object) -> Tensor:
    """LRP through Linear / ReLU layers, starting from the target logit."""
    assert callable(step)
    acts = [x]
    for m in model:
        acts.append(m(acts[-1]))
    r = torch.zeros_like(acts[-1])
    r[target] = acts[-1][target]
    for i in range(len(model) - 1, -1, -1):
        m = model[i]
        if isinstance(m, nn.Linear):
            r = step(acts[i], m.weight, m.bias, r)
    return r


def net() -> nn.Sequential:
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 4)).double().eval()


@case("silent errors", "LRP-gamma on mixed-sign inputs with a negative target logit",
      "the default is the sign-aware rule (contributions of each output's own sign boosted, as "
      "zennit's Gamma describes it): equal to an independent matrix form to 1e-10; "
      "signed_gamma=False keeps the classic w + g w+ (also equal to its matrix form), and the "
      "two differ here")
def test_signed_gamma_matches_its_matrix_form() -> None:
    model = net()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    with torch.no_grad():
        logits = model(x)
    target = int(logits.mean(0).argmin())
    assert (logits[:, target] < 0).any()
    ours = attribkit.lrp(model, x, target=target, rule="gamma", gamma=0.5).values
    classic = attribkit.lrp(model, x, target=target, rule="gamma", gamma=0.5,
                            signed_gamma=False).values
    for n in range(4):
        ref = matrix_lrp(model, x[n], target,
                         lambda a, w, b, r: signed_gamma_step(a, w, b, r, 0.5, 1e-6))
        torch.testing.assert_close(ours[n], ref, atol=1e-10, rtol=1e-8)
        ref_c = matrix_lrp(model, x[n], target,
                           lambda a, w, b, r: classic_gamma_step(a, w, b, r, 0.5, 1e-6))
        torch.testing.assert_close(classic[n], ref_c, atol=1e-10, rtol=1e-8)
    assert float((ours - classic).abs().max()) > 1e-3


@case("silent errors", "LRP-gamma on non-negative inputs and positive outputs",
      "the signed and the classic rule agree (the classic rule's home ground)")
def test_gamma_rules_agree_on_nonnegative_inputs() -> None:
    model = net()
    with torch.no_grad():
        model[2].bias.fill_(5.0)  # every output positive
    x = torch.rand(3, 6, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    with torch.no_grad():
        assert (model(x) > 0).all()
    a = attribkit.lrp(model, x, target=1, rule="gamma").values
    b = attribkit.lrp(model, x, target=1, rule="gamma", signed_gamma=False).values
    # hidden units with a negative pre-activation carry no relevance after the ReLU, and the
    # last layer's outputs are positive: the rules coincide
    torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    assert rules.gamma(0.25).by_sign and not rules.gamma(0.25, signed=False).by_sign


def pool_net(seed: int) -> nn.Sequential:
    """Two Conv -> MaxPool stages, then Linear -> ReLU -> Linear.

    No activation module touches a pooling layer: Captum's backward hooks on two adjacent
    modules interact (its own completeness gap is 0.08 to 0.8 on Conv-ReLU-MaxPool,
    Conv-MaxPool-ReLU and Conv-Tanh-MaxPool networks, measured), so it is an oracle only here.
    """
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.MaxPool2d(2),
                         nn.Conv2d(3, 3, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()


@pytest.mark.filterwarnings("ignore::UserWarning")
@case("silent errors", "DeepLIFT through max pooling: maxpool='single' (the default now) against "
      "Captum's DeepLift on a Conv-MaxPool CNN; both rules against summation-to-delta",
      "'single' equals Captum to 1e-10 and both rules sum to delta y (1e-12) there")
def test_maxpool_single_matches_captum() -> None:
    from captum.attr import DeepLift

    model = pool_net(13)
    g = torch.Generator().manual_seed(13)
    x = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    base = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    single = attribkit.deeplift(model, x, baseline=base, target=0)
    assert single.params["maxpool"] == "single"
    ref = DeepLift(model).attribute(x.clone(), baselines=base.clone(), target=0)
    torch.testing.assert_close(single.values, ref, atol=1e-10, rtol=1e-8)
    shared = attribkit.deeplift(model, x, baseline=base, target=0, maxpool="shared")
    for attr in (single, shared):
        assert attr.gap is not None and float(attr.gap.abs().max()) < 1e-12
    assert float((single.values - shared.values).abs().max()) > 1e-6
    with pytest.raises(attribkit.InputError, match="max-pooling rule"):
        attribkit.deeplift(model, x, maxpool="winner")


@case("silent errors", "DeepLIFT at a max pool whose two winners moved in opposite directions "
      "(x = (3, 2), x' = (1, 3.99) and (1, 4))",
      "the default 'single' rule gives (0, -0.99) and (0, -1), complete; the previous default "
      "('shared', still offered) gives -198 and +197 for a change of -0.99, and loses the "
      "change entirely when its denominator vanishes")
def test_maxpool_single_is_bounded_and_complete() -> None:
    model = nn.Sequential(nn.MaxPool1d(2), nn.Flatten(), nn.Linear(1, 1, bias=False)).double()
    with torch.no_grad():
        model[2].weight.fill_(1.0)
    model.eval()
    x = torch.tensor([[[3.0, 2.0]]], dtype=torch.float64)
    for other, change in ((3.99, -0.99), (4.0, -1.0)):
        base = torch.tensor([[[1.0, other]]], dtype=torch.float64)
        single = attribkit.deeplift(model, x, baseline=base)
        torch.testing.assert_close(single.values.flatten(),
                                   torch.tensor([0.0, change], dtype=torch.float64))
        shared = attribkit.deeplift(model, x, baseline=base, maxpool="shared")
        assert float(shared.values.abs().max()) > 100 or float(shared.gap.abs().max()) > 1
