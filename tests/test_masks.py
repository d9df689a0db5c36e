"""attribkit.masks: grids, superpixels, labels, validation; viz.segment_boundaries."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import segmentation

import attribkit
from attribkit import masks
from attribkit.core.masks import group_to_features, resolve_mask


def test_grid_cells():
    m = masks.grid((3, 4, 6), 2)
    assert m.shape == (3, 4, 6)
    assert bool((m == m[:1]).all())  # channels share the ids
    assert m[0].tolist() == [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2],
                             [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]]
    assert masks.grid((5,), 2).tolist() == [0, 0, 1, 1, 2]  # the edge cell is smaller
    assert masks.grid((2, 6), (1, 3)).tolist() == [[0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3]]
    with pytest.raises(attribkit.InputError, match="larger"):
        masks.grid((3, 4, 4), 5)


def test_superpixels_are_scikit_image_segments_renumbered():
    rng = np.random.default_rng(0)
    img = rng.random((3, 24, 24))
    img[:, :, :12] *= 0.2
    m = masks.superpixels(torch.from_numpy(img), "slic", n_segments=8)
    hwc = img.transpose(1, 2, 0)  # already in [0, 1] up to the per-image rescaling
    scaled = (hwc - hwc.min()) / (hwc.max() - hwc.min())
    ref = segmentation.slic(scaled, n_segments=8, compactness=10.0, sigma=0.5, start_label=0,
                            channel_axis=-1)
    assert m.shape == (1, 24, 24) and m.dtype == torch.int64
    # the same partition (ids renumbered in increasing order)
    _, inv = np.unique(ref, return_inverse=True)
    assert np.array_equal(m[0].numpy(), inv.reshape(ref.shape))
    batch = masks.superpixels(torch.from_numpy(np.stack([img, img[:, ::-1].copy()])),
                              "felzenszwalb", scale=50)
    assert batch.shape == (2, 1, 24, 24)
    assert masks.n_groups(batch[0]) == int(batch[0].max()) + 1
    with pytest.raises(attribkit.InputError, match="method must be one of"):
        masks.superpixels(torch.from_numpy(img), "watershed")


def test_from_labels_and_check():
    m = masks.from_labels(np.array([[7, 7, 3], [-2, 3, 11]]))
    assert m.tolist() == [[1, 1, 0], [-1, 0, 2]]
    assert masks.check(torch.tensor([0, 1, 1]), (2, 4, 3)).shape == (2, 4, 3)
    for bad, words in [(torch.tensor([0.0, 1.0]), "integer group ids"),
                       (torch.tensor([True, False]), "integer group ids"),
                       (torch.zeros(4, dtype=torch.long), "does not broadcast")]:
        with pytest.raises(attribkit.InputError, match=words) as info:
            masks.check(bad, (2, 3))
        assert "\n" not in str(info.value)


def test_resolve_and_spread_by_hand():
    x = torch.zeros(2, 1, 2, 2)
    ids, n, labels = resolve_mask(torch.tensor([[4, 4], [9, -1]]), x)
    assert n == 2 and labels.tolist() == [4, 9]
    assert ids.tolist() == [[0, 0, 1, -1]] * 2
    per_group = torch.tensor([[2.0, 5.0], [1.0, -1.0]])
    whole = group_to_features(per_group, ids, x.shape)
    split = group_to_features(per_group, ids, x.shape, split=True)
    assert whole.reshape(2, 4).tolist() == [[2, 2, 5, 0], [1, 1, -1, 0]]
    assert split.reshape(2, 4).tolist() == [[1, 1, 5, 0], [0.5, 0.5, -1, 0]]


def test_segment_boundaries_draws_where_ids_change():
    img = np.zeros((4, 4, 3), np.uint8)
    mask = torch.tensor([[0, 0, 1, 1]] * 4)[None]
    out = attribkit.viz.segment_boundaries(img, mask, color=(255, 0, 0))
    drawn = (out == [255, 0, 0]).all(-1)
    assert drawn[:, 1].all() and drawn.sum() == 4  # the column before the change only
    big = attribkit.viz.segment_boundaries(np.zeros((8, 8, 3), np.uint8), mask)
    assert (big != 0).any(-1)[:, 3].all()  # resized (nearest) to the picture
