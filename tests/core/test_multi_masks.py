import torch
from captum.attr import FeatureAblation
from tests.core.test_multi import TARGET, ImageAndMeta, _close, _data

import attribkit


def test_occlusion_with_a_tuple_of_feature_masks_matches_captum():
    net = ImageAndMeta().double().eval()
    x, b = _data(seed=2), _data(seed=3)
    m_img = torch.tensor([[[0, 0, 1], [0, 0, 1], [2, 2, 3]]])  # broadcast over channels
    m_meta = torch.tensor([0, 0, 1, 1])
    ours = attribkit.occlusion(net, x, baseline=b, target=TARGET, feature_mask=(m_img, m_meta))
    theirs = FeatureAblation(net).attribute(
        x, baselines=b, target=TARGET,
        feature_mask=(m_img.expand(2, 3, 3)[None], (m_meta + 4)[None]))
    _close(ours.values, theirs)
    sh = attribkit.shapley_values(net, x, baseline=b, target=1, feature_mask=(m_img, None))
    assert sh.params["players"] == 4 + 4
