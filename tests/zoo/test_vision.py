"""Tests of attribkit.zoo.vision: preprocessing, the real EfficientNet-Lite0, class names."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("skimage")

from attribkit.core.errors import InputError
from attribkit.zoo import vision

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian Mau
COFFEE_CLASSES = {967, 968, 504}  # espresso, cup, coffee mug


def _independent_crop(a: np.ndarray) -> np.ndarray:
    """Shorter side to 224 with PIL bilinear, then the central 224 x 224 (written for the test)."""
    h, w = a.shape[:2]
    size = (round(w * 224 / h), 224) if h <= w else (224, round(h * 224 / w))
    img = Image.fromarray(a).resize(size, Image.Resampling.BILINEAR)
    x0 = (size[0] - 224) // 2
    y0 = (size[1] - 224) // 2
    return np.asarray(img)[y0 : y0 + 224, x0 : x0 + 224]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return vision.load_efficientnet_lite0()


def test_black_constant_and_baseline() -> None:
    assert vision.BLACK == -127 / 128
    black = np.zeros((50, 80, 3), dtype=np.uint8)
    x = vision.preprocess(black)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert torch.all(x == -127 / 128)
    assert torch.equal(vision.black_baseline(x), x)
    assert torch.equal(vision.BLACK_BASELINE.build(x), x)
    white = vision.preprocess(np.full((30, 30, 3), 255, dtype=np.uint8))
    assert torch.all(white == 1.0)


@pytest.mark.parametrize("shape", [(300, 451, 3), (451, 300, 3), (224, 224, 3), (100, 90)])
def test_preprocess_matches_independent_crop_and_round_trips(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    rgb = a if a.ndim == 3 else np.repeat(a[:, :, None], 3, axis=2)
    expected = _independent_crop(rgb)
    x = vision.preprocess(a)
    assert x.shape == (1, 3, 224, 224)
    manual = (torch.from_numpy(expected.astype(np.float32)).permute(2, 0, 1) - 127.0) / 128.0
    torch.testing.assert_close(x[0], manual, rtol=0, atol=0)
    np.testing.assert_array_equal(vision.deprocess(x), expected)
    np.testing.assert_array_equal(vision.center_crop(Image.fromarray(rgb)), expected)


def test_preprocess_rejects_float_arrays() -> None:
    with pytest.raises(InputError, match="uint8"):
        vision.preprocess(np.zeros((10, 10, 3), dtype=np.float64))


def test_load_image_reads_files_and_reports_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = vision.load_photo("coffee")
    path = tmp_path / "coffee.png"
    Image.fromarray(a).save(path)
    torch.testing.assert_close(vision.load_image(path), vision.preprocess(a), rtol=0, atol=0)
    with pytest.raises(InputError, match="not found"):
        vision.load_image(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(InputError, match="cannot read"):
        vision.load_image(junk)


def test_photos_are_colour_images() -> None:
    for name in vision.PHOTOS:
        a = vision.load_photo(name)
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3, name
    photos = vision.sample_photos()
    assert tuple(photos) == vision.DEFAULT_PHOTOS
    with pytest.raises(InputError, match="unknown photo"):
        vision.sample_photos(["horse"])


def test_class_names() -> None:
    assert vision.class_name(967) == "espresso"
    assert vision.class_name(0) == "tench"
    with pytest.raises(InputError):
        vision.class_name(1000)


@pytest.mark.slow
def test_model_is_memoised_eval_float32_and_quiet(
    model: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    assert vision.load_efficientnet_lite0() is model
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())
    fresh = vision.load_efficientnet_lite0(fresh=True)
    assert fresh is not model
    assert capsys.readouterr().out == ""
    for (n1, p1), (n2, p2) in zip(
        model.state_dict().items(), fresh.state_dict().items(), strict=True
    ):
        assert n1 == n2 and torch.equal(p1, p2)


@pytest.mark.slow
def test_top1_of_chelsea_and_coffee(model: torch.nn.Module) -> None:
    photos = vision.sample_photos(["chelsea", "coffee"])
    x = torch.cat(list(photos.values()))
    with torch.no_grad():
        logits = model(x)
    cat = vision.top_classes(logits[0], k=5)
    coffee = vision.top_classes(logits[1:2], k=5)
    assert cat[0][0] in CAT_CLASSES
    assert coffee[0][0] in COFFEE_CLASSES
    # probabilities: an independent float64 softmax, sorted
    p = torch.exp(logits[1].double() - logits[1].double().max())
    p = p / p.sum()
    order = torch.argsort(p, descending=True)[:5]
    assert [c for c, _, _ in coffee] == order.tolist()
    np.testing.assert_allclose([q for _, _, q in coffee], p[order].numpy(), rtol=1e-9)
    # SoftmaxModel and probability_of agree with the same softmax
    with torch.no_grad():
        probs = vision.SoftmaxModel(model)(x)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2), atol=1e-5, rtol=0)
    c = int(order[0])
    torch.testing.assert_close(vision.probability_of(c)(logits), probs[:, c])
    with pytest.raises(InputError):
        vision.probability_of(torch.tensor([1, 2]))  # type: ignore[arg-type]


@pytest.mark.slow
def test_integrated_gradients_completeness_on_a_photo(model: torch.nn.Module) -> None:
    import attribkit

    x = vision.sample_photos(["chelsea"])["chelsea"]
    black = vision.black_baseline(x)
    with torch.no_grad():
        p_x = model(x).softmax(-1)[0]
        p_black = model(black).softmax(-1)[0]
    top = int(p_x.argmax())
    flags = [q.requires_grad for q in model.parameters()]
    attr = attribkit.integrated_gradients(
        vision.SoftmaxModel(model), x, target=top, baseline=black, steps=32, batch_size=16
    )
    assert attr.values.shape == x.shape
    torch.testing.assert_close(attr.output, p_x[top : top + 1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(attr.baseline_output, p_black[top : top + 1], atol=1e-5, rtol=1e-4)
    gap = float(attr.values.sum()) - float(p_x[top] - p_black[top])
    assert abs(gap) < 0.02 * float(p_x[top] - p_black[top])
    # the shared model is left as it was
    assert [q.requires_grad for q in model.parameters()] == flags and not model.training
