"""Local forward passes: only the box of each activation that a changed box of the image reaches.

Oracle: the traced model's own forward pass on the whole images (float64, to 1e-12), and
occlusion computed with the fast path off (whole passes of the model as given).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

import attribkit
from attribkit.core import fastgraph, localforward
from attribkit.core.localforward import Local


class _Block(nn.Module):
    """Inverted-residual style: 1 x 1 up, depthwise, 1 x 1 down, plus the input."""

    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.up = nn.Conv2d(c, 2 * c, 1)
        self.dw = nn.Conv2d(2 * c, 2 * c, k, padding=k // 2, groups=2 * c)
        self.bn = nn.BatchNorm2d(2 * c)
        self.down = nn.Conv2d(2 * c, c, 1)
        self.drop = nn.Dropout2d(0.3)  # the identity in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu6(self.bn(self.dw(torch.relu(self.up(x))))))
        return x + self.down(h) * 0.5


class _Cnn(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.stem = nn.Conv2d(3, 4, 3, stride=2)
        self.b1 = _Block(4, 3)
        self.dil = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.bias = nn.Parameter(torch.linspace(-0.2, 0.2, 4).reshape(1, 4, 1, 1))
        self.b2 = _Block(4, 5)
        self.down = nn.Conv2d(4, 6, 5, stride=3, padding=1)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.b1(self.stem(self.pad(x)))
        h = torch.sigmoid(self.dil(h) + self.bias)
        h = self.down(self.b2(h))
        return self.head(h.mean(dim=(2, 3)))


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = _Cnn().double()
    for bn in (m.b1.bn, m.b2.bn):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _rows(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    rows = x.repeat(len(top), 1, 1, 1)
    for r, (t, le) in enumerate(zip(top.tolist(), left.tolist(), strict=True)):
        rows[r, :, t:t + h, le:le + w] = torch.randn(3, h, w, dtype=x.dtype, generator=g)
    return rows


@pytest.mark.parametrize("h,w", [(4, 4), (3, 7), (1, 1)])
def test_local_passes_equal_whole_passes(h: int, w: int) -> None:
    m = _model()
    gm = fx.symbolic_trace(m)
    x = torch.randn(1, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    # corners, edges, both alignments of the stride-2 and stride-3 convolutions, the middle
    top = torch.tensor([0, 0, 40 - h, 40 - h, 17, 18, 19, 9])
    left = torch.tensor([0, 44 - w, 0, 44 - w, 20, 21, 22, 30])
    rows = _rows(x, top, left, h, w)
    local = Local(gm, x, (h, w))
    assert local.usable
    with torch.no_grad():
        got = local(rows, top, left)
        want = m(rows)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the early layers really ran on boxes: convolutions, the residual sums, the activations
    assert local.local_nodes >= 12


def test_local_passes_of_the_fast_copy_and_channels_last() -> None:
    m = _model(1)
    gm = fastgraph.fold(m, channels_last=True)
    assert gm is not None
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(2)).contiguous(
                        memory_format=torch.channels_last)
    top, left = torch.tensor([3, 28, 11]), torch.tensor([28, 0, 12])
    rows = _rows(x, top, left, 4, 4).contiguous(memory_format=torch.channels_last)
    local = Local(gm, x, (4, 4))
    with torch.no_grad():
        torch.testing.assert_close(local(rows, top, left), m(rows), rtol=1e-12, atol=1e-12)
    assert local.local_nodes >= 8


def test_an_in_place_write_to_a_shared_activation_is_not_run_locally() -> None:
    class Shared(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.c(x)
            return (torch.relu_(h) + h).sum(dim=(1, 2, 3))  # h read after the in-place write

    local = Local(fx.symbolic_trace(Shared().double().eval()),
                  torch.zeros(1, 3, 8, 8, dtype=torch.float64), (2, 2))
    assert not local.usable


def _spy_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = Local.__call__

    def spy(self: Local, rows: object, top: torch.Tensor, left: torch.Tensor,
            **kw: object) -> object:
        out = real(self, rows, top, left, **kw)
        calls.append(self.local_nodes)
        return out

    monkeypatch.setattr(localforward.Local, "__call__", spy)
    return calls


def test_occlusion_with_local_passes_equals_whole_passes(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    m = _model(2)
    x = torch.randn(2, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    seen: list[int] = []
    whole_rows = [0]
    real = Local.__call__

    def spy(self: Local, rows: object, top: torch.Tensor, left: torch.Tensor,
            **kw: object) -> object:
        if callable(rows):  # count the whole images made
            make = rows
            rows = lambda: (whole_rows.__setitem__(0, whole_rows[0] + 1), make())[1]  # noqa: E731
        out = real(self, rows, top, left, **kw)
        seen.append(self.local_nodes)
        return out

    monkeypatch.setattr(localforward.Local, "__call__", spy)
    kw = {"window": (3, 5, 6), "stride": (3, 4, 5), "baseline": 0.0, "target": 1}
    fast = attribkit.explain(m, x, method="occlusion", **kw)
    assert len(seen) > 2 and min(seen) > 0  # the local passes ran, past each first call
    assert whole_rows[0] == 0  # on the windows' boxes alone: no whole images made
    seen.clear()
    with fastgraph.plain_forward():
        plain = attribkit.explain(m, x, method="occlusion", **kw)
    assert not seen
    torch.testing.assert_close(fast.values, plain.values, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(fast.extras["window_drops"], plain.extras["window_drops"],
                               rtol=1e-10, atol=1e-12)
    assert fast.params["forward_evaluations"] == plain.params["forward_evaluations"]


def test_local_passes_that_disagree_with_the_model_are_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model(3)
    x = torch.randn(1, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    real = Local.__call__
    calls = [0]

    def wrong(self: Local, rows: object, top: torch.Tensor, left: torch.Tensor,
              **kw: object) -> torch.Tensor:
        calls[0] += 1
        return real(self, rows, top, left, **kw) * 1.001  # type: ignore[no-any-return]

    monkeypatch.setattr(localforward.Local, "__call__", wrong)
    kw = {"window": (3, 8, 8), "baseline": 0.0, "target": 0}
    got = attribkit.explain(m, x, method="occlusion", **kw)
    assert calls[0] == 1  # compared on the first call, then never used
    with fastgraph.plain_forward():
        want = attribkit.explain(m, x, method="occlusion", **kw)
    torch.testing.assert_close(got.values, want.values, rtol=1e-10, atol=1e-12)


def test_a_given_batch_size_bounds_the_local_passes_too(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model(4)
    x = torch.randn(1, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    sizes: list[int] = []
    real = Local.__call__

    def spy(self: Local, rows: object, top: torch.Tensor, left: torch.Tensor,
            **kw: object) -> object:
        sizes.append(int(top.shape[0]))
        return real(self, rows, top, left, **kw)

    monkeypatch.setattr(localforward.Local, "__call__", spy)
    got = attribkit.explain(m, x, method="occlusion", window=(3, 4, 4), baseline=0.0, target=2,
                            batch_size=5)
    assert len(sizes) == -(-got.params["windows"] // 5) and max(sizes) == 5


def test_a_model_without_batchnorm_is_traced_for_local_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(7)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).double().eval()
    x = torch.randn(1, 3, 48, 48, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    seen = _spy_calls(monkeypatch)
    kw = {"window": 6, "baseline": 0.0, "target": 3}
    got = attribkit.explain(m, x, method="occlusion", **kw)
    assert seen and min(seen) >= 2
    n_local = len(seen)
    with fastgraph.plain_forward():
        want = attribkit.explain(m, x, method="occlusion", **kw)
    assert len(seen) == n_local  # the fast path off: no local passes either
    torch.testing.assert_close(got.values, want.values, rtol=1e-10, atol=1e-12)


def test_no_local_passes_where_nothing_runs_on_boxes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Resize(nn.Module):  # resizes first: no operation after it can work on boxes
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.c(F.interpolate(x, scale_factor=0.5, mode="bilinear"))
            return h.mean(dim=(2, 3))

    m = Resize().double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    calls = _spy_calls(monkeypatch)
    got = attribkit.explain(m, x, method="occlusion", window=4, baseline=0.0, target=1)
    assert len(calls) == 1  # tried on the first call, found to run whole, then not used
    with fastgraph.plain_forward():
        want = attribkit.explain(m, x, method="occlusion", window=4, baseline=0.0, target=1)
    torch.testing.assert_close(got.values, want.values, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pool", ["module", "mean", "mean_keepdim", "function"])
def test_a_global_mean_of_a_box_needs_no_whole_map(pool: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.c2 = nn.Conv2d(6, 5, 3, padding=1)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.c2(torch.relu(self.c1(x)))
            if pool == "module":
                return self.pool(h).flatten(1)
            if pool == "mean":
                return h.mean(dim=(-2, -1))
            if pool == "mean_keepdim":
                return torch.mean(h, dim=(2, 3), keepdim=True).flatten(1)
            return F.adaptive_avg_pool2d(h, 1).flatten(1)

    m = Net().double().eval()
    x = torch.randn(1, 3, 30, 34, dtype=torch.float64, generator=torch.Generator().manual_seed(10))
    top, left = torch.tensor([0, 26, 13]), torch.tensor([30, 0, 17])
    rows = _rows(x, top, left, 4, 4)
    whole: list[int] = []
    real = Local._assemble

    def spy(self: Local, ref: torch.Tensor, v: object, t: object, *a: object,
            **k: object) -> torch.Tensor:
        whole.append(int(t is None))
        return real(self, ref, v, t, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(localforward.Local, "_assemble", spy)
    local = Local(fx.symbolic_trace(m), x, (4, 4))
    with torch.no_grad():
        torch.testing.assert_close(local(rows, top, left), m(rows), rtol=1e-12, atol=1e-12)
    assert whole and sum(whole) == 0  # convolutions assembled windows, never a whole map


def test_other_inputs_of_the_forward_keep_their_defaults() -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 2, 3, padding=1)

        def forward(self, x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
            return (self.c(x) * scale).mean(dim=(2, 3))

    class Needs(Scaled):
        def forward(self, x: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
            return super().forward(x, scale)

    x = torch.randn(1, 3, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    m = Scaled().double().eval()
    local = Local(fx.symbolic_trace(m), x, (3, 3))
    top, left = torch.tensor([0, 9]), torch.tensor([4, 9])
    rows = _rows(x, top, left, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(local(rows, top, left), m(rows), rtol=1e-12, atol=1e-12)
    assert not Local(fx.symbolic_trace(Needs().double().eval()), x, (3, 3)).usable


def test_feature_ablation_of_compact_groups_runs_local_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model(5)
    x = torch.randn(2, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(12))
    rr, cc = torch.meshgrid(torch.arange(40), torch.arange(44), indexing="ij")
    cells = (rr // 8) * 6 + cc // 8  # 5 x 6 grid cells of up to 8 x 8
    other = ((rr + 3) // 7) * 9 + (cc + 5) // 6  # another grid for the second example
    other[:5, :5] = -1  # never occluded
    mask = torch.stack([cells, other])[:, None].expand(2, 3, 40, 44).clone()
    mask[1, 2][mask[1, 2] % 2 == 0] = -1  # the last channel keeps only the odd groups
    calls = _spy_calls(monkeypatch)
    got = attribkit.explain(m, x, method="occlusion", feature_mask=mask, baseline=0.0, target=1)
    # beyond the first call of each example (the one checked against a whole pass)
    assert len(calls) > 2 and min(calls) > 0
    n_calls = len(calls)
    with fastgraph.plain_forward():
        want = attribkit.explain(m, x, method="occlusion", feature_mask=mask, baseline=0.0,
                                 target=1)
    assert len(calls) == n_calls
    torch.testing.assert_close(got.extras["group_drops"], want.extras["group_drops"],
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.values, want.values, rtol=1e-10, atol=1e-12)


def test_a_large_group_runs_whole_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _model(6)
    x = torch.randn(1, 3, 40, 44, dtype=torch.float64, generator=torch.Generator().manual_seed(13))
    halves = (torch.arange(44) >= 22).long().expand(1, 1, 40, 44)  # two groups, half each
    calls = _spy_calls(monkeypatch)
    got = attribkit.explain(m, x, method="occlusion", feature_mask=halves, baseline=0.0,
                            target=0)
    assert not calls
    with torch.no_grad():
        left = x.clone()
        left[..., :22] = 0.0
        torch.testing.assert_close(got.extras["group_drops"][0, 0],
                                   m(x)[0, 0] - m(left)[0, 0], rtol=1e-12, atol=1e-12)
