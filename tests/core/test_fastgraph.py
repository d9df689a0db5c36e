"""The forward-only fast path: BatchNorm folded into convolutions, activations in place.

Oracles: the model as given (its own forward), ``nn.BatchNorm`` modules for the affine map, and
every perturbation method run again with the fast path off (:func:`plain_forward`).
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import attribkit
from attribkit.core import batchnorm, fastgraph
from attribkit.core.engine import prepare


class _PadConv(nn.Conv2d):
    """A convolution that pads with a child module (like 'same' padding libraries)."""

    def __init__(self, cin: int, cout: int, pad: tuple[int, int, int, int]) -> None:
        super().__init__(cin, cout, 3, bias=False)
        self.pad = nn.ZeroPad2d(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.b1 = nn.BatchNorm2d(6)
        self.a1 = nn.ReLU6()
        self.c2 = _PadConv(6, 6, (1, 1, 1, 1))
        self.b2 = nn.BatchNorm2d(6, affine=False)
        self.a2 = nn.SiLU()
        self.c3 = _PadConv(6, 6, (0, 2, 0, 2))
        self.b3 = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a1(self.b1(self.c1(x)))
        h = self.a2(self.b2(self.c2(h)))
        h = h + torch.relu(self.b3(self.c3(h)))  # a residual; relu as a function
        return self.head(h.mean(dim=(2, 3)))


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = _Net().double()
    for bn in (m.b1, m.b2, m.b3):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        if bn.weight is not None:
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.3, 0.3)
    return m.eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _state(m: nn.Module) -> dict[str, tuple[int, torch.Tensor, bool]]:
    out = {k: (id(v), v.clone(), v.requires_grad) for k, v in m.state_dict(keep_vars=True).items()}
    out.update({f"{n}.training": (0, torch.tensor(mod.training), False)
                for n, mod in m.named_modules()})
    return out


def _same_state(a: dict[str, tuple[int, torch.Tensor, bool]],
                b: dict[str, tuple[int, torch.Tensor, bool]]) -> bool:
    return a.keys() == b.keys() and all(
        a[k][0] == b[k][0] and torch.equal(a[k][1], b[k][1]) and a[k][2] == b[k][2] for k in a)


def test_bn_affine_is_the_modules_eval_map() -> None:
    torch.manual_seed(2)
    bn = nn.BatchNorm2d(5).double()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 3)
    bn.weight.data.uniform_(-2, 2)
    bn.bias.data.uniform_(-1, 1)
    bn.eval()
    z = torch.randn(3, 5, 4, 4, dtype=torch.float64)
    scale, shift = batchnorm.bn_affine(bn, "bn")
    torch.testing.assert_close(scale[:, None, None] * z + shift[:, None, None], bn(z),
                               rtol=1e-12, atol=1e-12)
    conv = nn.Conv2d(2, 5, 3).double()
    w, b = batchnorm.merge_params(conv, bn, "bn")  # type: ignore[misc]
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(F.conv2d(x, w, b), bn(conv(x)), rtol=1e-12, atol=1e-12)


def test_fold_removes_every_batchnorm_and_keeps_the_outputs() -> None:
    m = _net()
    before = _state(m)
    gm = fastgraph.fold(m)
    assert gm is not None
    used = [type(gm.get_submodule(str(n.target))) for n in gm.graph.nodes
            if n.op == "call_module"]
    assert nn.BatchNorm2d not in used
    assert used.count(nn.ZeroPad2d) == 1  # the symmetric pad went into the convolution
    convs = [n for n in gm.graph.nodes if n.target is torch.conv2d]
    assert len(convs) == 3
    inplace = [n for n in gm.graph.nodes if n.op == "call_function"
               and n.target in (F.hardtanh_, F.silu)]
    assert len(inplace) == 2  # ReLU6 and SiLU modules after a convolution run in place
    x = _x(5)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), m(x), rtol=1e-12, atol=1e-12)
    assert _same_state(before, _state(m))


@pytest.mark.parametrize("method,kwargs", [
    ("occlusion", {"window": (3, 2, 2)}),
    ("lime", {"n_samples": 40, "seed": 0}),
    ("kernel_shap", {"n_samples": 40, "seed": 0}),
])
def test_results_equal_with_and_without_the_fast_path(method: str, kwargs: dict) -> None:
    m = _net()
    before = _state(m)
    x = _x(2)
    extra = {} if method == "occlusion" else {
        "feature_mask": (torch.arange(64).reshape(1, 1, 8, 8) // 16).expand(2, 3, 8, 8)}
    fast = attribkit.explain(m, x, method=method, target=1, baseline=0.0, **kwargs, **extra)
    with fastgraph.plain_forward():
        plain = attribkit.explain(m, x, method=method, target=1, baseline=0.0, **kwargs,
                                  **extra)
    scale = float(plain.values.abs().max())
    assert scale > 0
    assert float((fast.values - plain.values).abs().max()) <= 1e-6 * scale
    assert _same_state(before, _state(m))


def test_integrated_gradients_equal_with_and_without_the_fast_path() -> None:
    m = _net()
    before = _state(m)
    x = _x(2)
    for target in (1, attribkit.all_classes()):
        fast = attribkit.integrated_gradients(m, x, target=target, baseline=0.0, steps=16)
        with fastgraph.plain_forward():
            plain = attribkit.integrated_gradients(m, x, target=target, baseline=0.0, steps=16)
        scale = float(plain.values.abs().max())
        assert scale > 0
        assert float((fast.values - plain.values).abs().max()) <= 1e-6 * scale
    assert _same_state(before, _state(m))
    assert all(p.grad is None for p in m.parameters())  # no weight gradients accumulated


def test_prepare_uses_the_fast_copy_only_where_asked() -> None:
    m = _net()
    with prepare(m, _x(), target=0, baseline=0.0, black_box=True) as p:
        assert p.fast is not None
    with prepare(m, _x(), target=0, baseline=0.0, fast=True) as p:
        assert p.fast is not None
    with prepare(m, _x(), target=0, baseline=0.0) as p:  # hooks may follow: the model as given
        assert p.fast is None
    with prepare(m, _x(), target=attribkit.neuron(m.c1, 0), black_box=True) as p:
        assert p.fast is None
    with fastgraph.plain_forward(), prepare(m, _x(), target=0, black_box=True) as p:
        assert p.fast is None


class _Branchy(_Net):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool((x.abs() > 1e6).any()):  # data-dependent control flow: fx cannot trace it
            x = x.clamp(-1e6, 1e6)
        return super().forward(x)


def test_untraceable_hooked_or_training_models_run_as_given() -> None:
    torch.manual_seed(0)
    branchy = _Branchy().double().eval()
    assert fastgraph.fold(branchy) is None
    x = _x(2)
    fast = attribkit.explain(branchy, x, method="occlusion", target=0, baseline=0.0)
    with fastgraph.plain_forward():
        plain = attribkit.explain(branchy, x, method="occlusion", target=0, baseline=0.0)
    assert torch.equal(fast.values, plain.values)
    hooked = _net()
    handle = hooked.c1.register_forward_hook(lambda *_a: None)
    assert fastgraph.fold(hooked) is None
    handle.remove()
    assert fastgraph.fold(_net().train()) is None
    assert fastgraph.fold(nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU())) is None  # no BatchNorm


def test_an_edited_model_is_folded_again() -> None:
    m = _net()
    x = _x(2)
    first = attribkit.explain(m, x, method="occlusion", target=2, baseline=0.0)
    with torch.no_grad():
        m.b1.running_mean.add_(0.7)  # written in place: a new fingerprint
    again = attribkit.explain(m, x, method="occlusion", target=2, baseline=0.0)
    with fastgraph.plain_forward():
        plain = attribkit.explain(m, x, method="occlusion", target=2, baseline=0.0)
    assert not torch.allclose(first.values, plain.values)
    torch.testing.assert_close(again.values, plain.values, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_is_a_one_by_one_convolution(bias: bool) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 4, 3, dtype=torch.float64, generator=g)
    w = torch.randn(7, 5, 1, 1, dtype=torch.float64, generator=g)
    b = torch.randn(7, dtype=torch.float64, generator=g) if bias else None
    want = F.conv2d(x, w, b)
    got = fastgraph.pointwise(x.contiguous(memory_format=torch.channels_last), w, b)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fastgraph.pointwise(x, w, b), want, rtol=1e-12, atol=1e-12)


def test_a_channels_last_fold_matches_the_model() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3),
                      nn.BatchNorm2d(2), nn.Flatten(), nn.LazyLinear(3)).double()
    x = _x(3)
    m(x)  # materialise the lazy layer
    m[1].running_mean.uniform_(-1, 1)
    m.eval()
    gm = fastgraph.fold(m, channels_last=True)
    assert gm is not None
    assert sum(n.target is fastgraph.pointwise for n in gm.graph.nodes) == 1
    with torch.no_grad():
        torch.testing.assert_close(gm(x.contiguous(memory_format=torch.channels_last)), m(x),
                                   rtol=1e-12, atol=1e-12)


def test_the_kept_copy_goes_with_the_model() -> None:
    m = _net()
    attribkit.explain(m, _x(1), method="occlusion", target=0, baseline=0.0)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None


def test_fast_problems_run_cpu_photos_channels_last_and_restore_the_layout() -> None:
    torch.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.LazyLinear(2))
    x = torch.rand(1, 3, 64, 64)
    m(x)
    m.eval()
    with prepare(m, x, target=0, baseline=0.0, fast=True) as p:
        assert p.channels_last and p.fast is not None
    with prepare(m, x, target=0, baseline=0.0) as p:
        assert not p.channels_last
    assert m[0].weight.is_contiguous()  # the user's layout is back
    fast = attribkit.integrated_gradients(m, x, target=0, baseline=0.0, steps=8)
    with fastgraph.plain_forward():
        plain = attribkit.integrated_gradients(m, x, target=0, baseline=0.0, steps=8)
    torch.testing.assert_close(fast.values, plain.values, rtol=1e-4,
                               atol=1e-5 * float(plain.values.abs().max()))


class _Depthwise(nn.Module):
    """A depthwise convolution after a zero pad with unequal sides, then BatchNorm."""

    def __init__(self, dims: int, k: int, stride: int, pad: tuple[int, ...]) -> None:
        super().__init__()
        conv, bn, zpad = ((nn.Conv1d, nn.BatchNorm1d, nn.ZeroPad1d) if dims == 1
                          else (nn.Conv2d, nn.BatchNorm2d, nn.ZeroPad2d))
        self.pad = zpad(pad)
        self.conv = conv(4, 4, k, stride=stride, groups=4)
        self.bn = bn(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.pad(x))).relu()


@pytest.mark.parametrize("dims,k,stride,pad", [
    (2, 3, 2, (0, 1, 0, 1)),      # TensorFlow 'same' before a stride-2 3 x 3
    (2, 5, 2, (1, 2, 1, 2)),      # ... and before a stride-2 5 x 5
    (2, 3, 1, (2, 0, 1, 1)),      # more before than after on one axis, equal on the other
    (1, 4, 3, (0, 3)),
])
def test_an_unequal_pad_before_a_depthwise_convolution_becomes_its_padding(
        dims: int, k: int, stride: int, pad: tuple[int, ...]) -> None:
    torch.manual_seed(3)
    m = _Depthwise(dims, k, stride, pad).double()
    m.bn.running_mean.uniform_(-0.5, 0.5)
    m.bn.running_var.uniform_(0.5, 2.0)
    m.eval()
    before = _state(m)
    gm = fastgraph.fold(m)
    assert gm is not None
    assert not [n for n in gm.graph.nodes if n.op == "call_module"
                and isinstance(gm.get_submodule(str(n.target)), nn.modules.padding._ConstantPadNd)]
    x = torch.randn((3, 4, 11) if dims == 1 else (3, 4, 11, 12), dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), m(x), rtol=1e-12, atol=1e-12)
    assert _same_state(before, _state(m))
    used = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    assert {b for b in gm._buffers if b.startswith("attribkit_")} == used


def test_an_unequal_pad_before_a_dense_convolution_stays() -> None:
    m = _net()
    gm = fastgraph.fold(m)
    assert gm is not None
    pads = [gm.get_submodule(str(n.target)) for n in gm.graph.nodes if n.op == "call_module"
            and isinstance(gm.get_submodule(str(n.target)), nn.ZeroPad2d)]
    assert [p.padding for p in pads] == [(0, 2, 0, 2)]
