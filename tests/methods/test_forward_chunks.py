"""Forward-only chunks of the perturbation methods: the rows per call and the channels-last layout
change neither the values nor the model."""

from __future__ import annotations

import torch
from torch import nn

import attribkit
from attribkit.core import probes
from attribkit.core.engine import prepare


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4)).eval()


def _state(model: nn.Module) -> list[tuple[str, int, bool, bool, torch.Tensor]]:
    return [(name, t.data_ptr(), t.is_contiguous(), t.requires_grad, t.detach().clone())
            for name, t in [*model.named_parameters(), *model.named_buffers()]]


def test_forward_chunks_go_channels_last_for_cpu_images_only() -> None:
    model = _cnn()
    x = torch.rand(2, 3, 64, 64)
    with prepare(model, x, target=0, black_box=True) as p:
        assert p.channels_last
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.is_contiguous()  # the layout is put back on exit
    with prepare(_cnn().double(), x.double(), target=0, black_box=True) as p:  # float64: as given
        assert not p.channels_last
    with prepare(model, torch.rand(2, 3, 16, 16), target=0, black_box=True) as p:  # small
        assert not p.channels_last
    with prepare(model, x, target=0) as p:  # a gradient method decides for itself
        assert not p.channels_last


def test_forward_rows_follow_the_budget_and_the_user() -> None:
    model = _cnn()
    x = torch.rand(2, 3, 64, 64)
    with prepare(model, x, target=0, black_box=True, batch_size=3) as p:
        assert probes.forward_rows(p, 3) == 3
    with prepare(model, x, target=0, black_box=True, memory_budget=1 << 20) as p:
        small = probes.forward_rows(p, None)
        assert small == min(8 * p.batch_size, probes.CPU_CHUNK_BYTES // (3 * 64 * 64 * 4))
    with prepare(model, x, target=0, black_box=True, memory_budget=1 << 32) as p:
        assert probes.forward_rows(p, None) == probes.CPU_CHUNK_BYTES // (3 * 64 * 64 * 4)


def test_occlusion_and_lime_unchanged_by_chunks_and_layout_model_untouched() -> None:
    model = _cnn()
    before = _state(model)
    x = torch.rand(2, 3, 64, 64)
    occ = attribkit.explain(model, x, method="occlusion", window=16, target=1)
    one = attribkit.explain(model, x, method="occlusion", window=16, target=1, batch_size=1)
    # an independent reference: each window filled with zeros by hand, contiguous layout
    with torch.no_grad():
        full = model(x)[:, 1]
        ref = torch.zeros(2, 4, 4)
        for i in range(4):
            for j in range(4):
                z = x.clone()
                z[:, :, 16 * i:16 * i + 16, 16 * j:16 * j + 16] = 0
                ref[:, i, j] = full - model(z)[:, 1]
    drops = occ.extras["window_drops"][:, 0]  # (N, 1 channel position, 4, 4)
    torch.testing.assert_close(drops, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(one.extras["window_drops"][:, 0], drops, rtol=1e-6, atol=1e-7)
    mask = (torch.arange(64)[:, None] // 16 * 4 + torch.arange(64)[None, :] // 16)[None]
    lime_a = attribkit.explain(model, x, method="lime", feature_mask=mask, n_samples=40,
                               target=2)
    lime_b = attribkit.explain(model, x, method="lime", feature_mask=mask, n_samples=40,
                               target=2, batch_size=7)
    torch.testing.assert_close(lime_a.values, lime_b.values, rtol=1e-5, atol=1e-6)
    after = _state(model)
    assert not model.training
    for (n0, p0, c0, g0, v0), (n1, p1, c1, g1, v1) in zip(before, after, strict=True):
        assert (n0, p0, c0, g0) == (n1, p1, c1, g1)
        assert torch.equal(v0, v1)
