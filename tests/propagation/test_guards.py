"""Every propagation method leaves the model as it found it; unsupported constructs are named."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attribkit.core.errors import TargetError, UnsupportedModelError
from attribkit.core.guard import hook_state
from attribkit.methods import methods
from attribkit.sequences.tiny import tiny_model

PROPAGATION = sorted(k for k, v in methods().items() if v.family == "propagation")


def test_all_six_methods_are_registered() -> None:
    assert set(PROPAGATION) >= {"lrp", "deep_taylor", "deeplift", "deepshap", "deconvnet",
                                "guided_backprop"}
    for name in PROPAGATION:
        info = methods()[name]
        assert info.needs_module
        assert "implementation_invariance" not in info.axioms
    assert methods()["deeplift"].complete and methods()["deepshap"].complete
    assert not methods()["lrp"].complete


class Bomb(nn.Module):
    """Raises when called during the attributed (gradient-carrying) forward pass."""

    def forward(self, x: Tensor) -> Tensor:
        if x.requires_grad:
            raise RuntimeError("boom")
        return x


def net(bomb: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    mods: list[nn.Module] = [nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 4), nn.Tanh()]
    if bomb:
        mods.append(Bomb())
    mods.append(nn.Linear(4, 3))
    return nn.Sequential(*mods).double().eval()


class Transformer(nn.Module):
    """Embeddings -> a one-block GPT-2 -> the last position -> [Bomb] -> 3 logits."""

    def __init__(self, bomb: bool = False) -> None:
        super().__init__()
        self.gpt2 = tiny_model("tiny-gpt2", vocab_size=16, hidden=8, layers=1, heads=2,
                               dtype=torch.float64).transformer
        self.bomb = Bomb() if bomb else nn.Identity()
        torch.manual_seed(0)
        self.head = nn.Linear(8, 3).double()
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.bomb(self.gpt2(inputs_embeds=x).last_hidden_state[:, -1]))
        return out


def case(name: str, bomb: bool = False) -> tuple[nn.Module, Tensor]:
    """The test's model and inputs: a CNN with BatchNorm (its running mean moved off 0), or,
    for AttnLRP, which explains transformers only, a tiny GPT-2 (its final LayerNorm's bias
    moved off 0)."""
    g = torch.Generator().manual_seed(0)
    model: nn.Module
    if name == "attnlrp":
        model = Transformer(bomb)
        model.gpt2.ln_f.bias.data.fill_(0.1)
        return model, torch.randn(2, 4, 8, generator=g, dtype=torch.float64)
    model = net(bomb)
    model[1].running_mean.fill_(0.1)
    return model, torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64)


def call(name: str, model: nn.Module, x: Tensor, **kw: Any) -> Any:
    if name == "deepshap":
        kw["background"] = torch.zeros(2, *x.shape[1:], dtype=x.dtype)
    return methods()[name].fn(model, x, **kw)


def snapshot(model: nn.Module) -> tuple[Any, dict[str, Tensor], list[bool], list[bool]]:
    return (hook_state(model), {k: v.clone() for k, v in model.state_dict().items()},
            [p.requires_grad for p in model.parameters()], [m.training for m in model.modules()])


def same(a: Any, b: Any) -> bool:
    return bool(a[0] == b[0] and a[1].keys() == b[1].keys()
                and all(torch.equal(a[1][k], b[1][k]) for k in a[1])
                and a[2] == b[2] and a[3] == b[3])


@pytest.mark.parametrize("name", PROPAGATION)
def test_model_unchanged_after_success_bad_target_and_raising_module(name: str) -> None:
    model, x = case(name)
    before = snapshot(model)
    attr = call(name, model, x, target=1)
    assert torch.isfinite(attr.values).all() and attr.values.shape == x.shape
    assert same(before, snapshot(model))
    with pytest.raises(TargetError):
        call(name, model, x, target=7)
    assert same(before, snapshot(model))

    def late_bad_target(out: Tensor) -> Tensor:  # fails only once the hooks are in place
        return out[:, 99] if out.requires_grad else out[:, 0]

    with pytest.raises(IndexError):
        call(name, model, x, target=late_bad_target)
    assert same(before, snapshot(model))
    bombed, _ = case(name, bomb=True)
    before = snapshot(bombed)
    with pytest.raises(RuntimeError, match="boom"):
        call(name, bombed, x, target=0)
    assert same(before, snapshot(bombed))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x)))


class Product(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.fc1(x) * self.fc2(x))


@pytest.mark.parametrize("name", PROPAGATION)
def test_functional_calls_are_reported_not_ignored(name: str) -> None:
    x = torch.randn(2, 3, dtype=torch.float64)
    model = Functional().double().eval()
    before = snapshot(model)
    with pytest.raises(UnsupportedModelError, match=r"Relu.*'fc1'.*'fc2'"):
        call(name, model, x, target=0)
    assert same(before, snapshot(model))
    with pytest.raises(UnsupportedModelError, match="Mul"):
        call(name, Product().double().eval(), x, target=0)


@pytest.mark.parametrize("name", PROPAGATION)
def test_unsupported_module_and_non_module_are_reported(name: str) -> None:
    x = torch.randn(2, 3, dtype=torch.float64)
    # AttnLRP has a rule for LayerNorm (the constant-deviation rule), not for GroupNorm
    norm = nn.GroupNorm(1, 4) if name == "attnlrp" else nn.LayerNorm(4)
    model = nn.Sequential(nn.Linear(3, 4), norm, nn.Linear(4, 2)).double().eval()
    kind = type(norm).__name__
    with pytest.raises(UnsupportedModelError, match=rf"'1' \({kind}\)"):
        call(name, model, x, target=0)
    fn: Callable[[Tensor], Tensor] = lambda t: t.sum(1, keepdim=True)  # noqa: E731
    with pytest.raises(UnsupportedModelError, match=r"nn\.Module"):
        call(name, fn, x, target=0)


def test_softmax_in_the_middle_is_rejected() -> None:
    from attribkit.methods.propagation import deeplift, lrp
    model = nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=1), nn.Linear(4, 2)).double().eval()
    x = torch.randn(2, 3, dtype=torch.float64)
    for fn in (deeplift, lrp):
        with pytest.raises(UnsupportedModelError, match="last layer"):
            fn(model, x, target=0)


def test_two_models_in_two_threads_do_not_interfere() -> None:
    from attribkit.methods.propagation import deeplift, lrp
    torch.manual_seed(1)
    m1 = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).double().eval()
    m2 = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                       nn.Linear(16, 3)).double().eval()
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    jobs = [(deeplift, m1), (lrp, m2), (lrp, m1), (deeplift, m2)]
    expected = [fn(m, x, target=0).values for fn, m in jobs]
    results: dict[int, list[Tensor]] = {i: [] for i in range(len(jobs))}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def work(i: int) -> None:
        fn, m = jobs[i]
        try:
            barrier.wait()
            for _ in range(5):
                results[i].append(fn(m, x, target=0, batch_size=2).values)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, exp in enumerate(expected):
        for got in results[i]:
            torch.testing.assert_close(got, exp, atol=1e-12, rtol=0)
    assert all(not any(d for d in v.values()) for v in hook_state(m1).values())


class LinearOps(nn.Module):
    """Functional *linear* operations: exact for gradient-style methods, refused by LRP."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.fc1(x))
        return self.fc2(2.0 * h - h.mean(1, keepdim=True) + 1.0)


def test_functional_linear_ops_pass_for_deeplift_but_not_for_lrp() -> None:
    from attribkit.methods.propagation import deeplift, guided_backprop, lrp
    torch.manual_seed(3)
    model = LinearOps().double().eval()
    x = torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    attr = deeplift(model, x, target=0, baseline=0.5)
    assert attr.gap is not None and attr.gap.abs().max() < 1e-12
    g = guided_backprop(model, x, target=0).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from captum.attr import GuidedBackprop
        ref = GuidedBackprop(model).attribute(x.clone().requires_grad_(True), target=0)
    torch.testing.assert_close(g, ref, atol=1e-12, rtol=1e-10)
    with pytest.raises(UnsupportedModelError, match=r"Mul|Mean|Sub|Add"):
        lrp(model, x, target=0)


def test_inplace_relus_give_the_same_results() -> None:
    from attribkit.methods.propagation import deconvnet, deeplift, deepshap, guided_backprop, lrp

    def build(inplace: bool) -> nn.Sequential:
        torch.manual_seed(4)
        return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3),
                             nn.ReLU(inplace=inplace), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(12, 6), nn.ReLU(inplace=inplace),
                             nn.Linear(6, 3)).double().eval()

    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    bg = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for fn, kw in ((deeplift, {"baseline": 0.3}), (deeplift, {"rule": "reveal_cancel"}),
                   (deepshap, {"background": bg}), (lrp, {"rule": "alpha2_beta1"}),
                   (guided_backprop, {}), (deconvnet, {})):
        a = fn(build(True), x, target=1, **kw)  # type: ignore[operator]
        b = fn(build(False), x, target=1, **kw)  # type: ignore[operator]
        torch.testing.assert_close(a.values, b.values, atol=1e-12, rtol=0)
