"""The metric families against Quantus 0.6 and Captum on the same inputs: deterministic metrics
exactly, stochastic ones given the same perturbations (replayed or injected)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import quantus
import torch
from torch import nn

from attribkit import evaluate

warnings.filterwarnings("ignore")


def _cnn(channels: int) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 8 * 8, 3))
    return net.eval()


RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(3, 3, 8, 8)).astype(np.float32)
X1 = RNG.normal(size=(3, 1, 8, 8)).astype(np.float32)
A3 = RNG.normal(size=(3, 3, 8, 8))
A1 = RNG.normal(size=(3, 1, 8, 8))
Y = np.array([0, 2, 1])


def _q(metric: object, model: nn.Module, x: np.ndarray, a: np.ndarray, **kw: object) -> object:
    return metric(model=model, x_batch=x, y_batch=Y, a_batch=a, device="cpu", softmax=False,
                  **kw)  # type: ignore[operator]


def test_sparseness_and_complexity_equal_quantus_per_example() -> None:
    a = RNG.normal(size=(4, 1, 6, 6))
    a[1, 0, :3] = 0.0
    ours_s, ours_c = evaluate.sparseness(torch.tensor(a)), evaluate.complexity(torch.tensor(a))
    for i in range(4):  # Quantus divides by the largest magnitude of the whole batch: one each
        qs = quantus.Sparseness(disable_warnings=True)
        qc = quantus.Complexity(disable_warnings=True)
        xi = np.zeros((1, 1, 6, 6), np.float32)
        s = qs(model=None, x_batch=xi, y_batch=Y[:1], a_batch=a[i:i + 1], device="cpu")
        c = qc(model=None, x_batch=xi, y_batch=Y[:1], a_batch=a[i:i + 1], device="cpu")
        assert float(ours_s.scores[i]) == pytest.approx(s[0], rel=1e-12, abs=1e-15)
        assert float(ours_c.scores[i]) == pytest.approx(c[0], rel=1e-12, abs=1e-15)
    assert ours_s.higher_is_better and not ours_c.higher_is_better


def test_relevance_mass_and_rank_accuracy_equal_quantus() -> None:
    a = np.abs(A1)
    s = np.zeros_like(a)
    s[:, :, 2:6, 1:5] = 1
    s[2] = 0
    s[2, :, :3, :3] = 1
    kw = {"disable_warnings": True}
    for name, ours_fn in (("RelevanceMassAccuracy", evaluate.relevance_mass_accuracy),
                          ("RelevanceRankAccuracy", evaluate.relevance_rank_accuracy)):
        theirs = getattr(quantus, name)(**kw)(model=None, x_batch=X1, y_batch=Y, a_batch=a,
                                              s_batch=s, device="cpu")
        ours = ours_fn(torch.tensor(a), torch.tensor(s))
        np.testing.assert_allclose(ours.scores.numpy(), np.asarray(theirs), rtol=1e-12)


def test_faithfulness_correlation_equals_quantus_on_replayed_subsets() -> None:
    model = _cnn(3)
    runs, size, d = 20, 30, 3 * 8 * 8
    np.random.seed(7)
    draws = [np.random.choice(d, size, replace=False) for _ in range(runs * 3)]
    subsets = torch.tensor(np.stack(draws).reshape(runs, 3, size).transpose(1, 0, 2))
    np.random.seed(7)
    theirs = _q(quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size,
                                                perturb_baseline=0.0, disable_warnings=True,
                                                return_aggregate=False), model, X3, A3)
    ours = evaluate.faithfulness_correlation(model, torch.tensor(X3), torch.tensor(A3),
                                             target=torch.tensor(Y), subsets=subsets)
    np.testing.assert_allclose(ours.scores.numpy(), np.asarray(theirs), rtol=1e-5, atol=1e-6)
    seeded = evaluate.faithfulness_correlation(model, torch.tensor(X3), torch.tensor(A3),
                                               subset_size=size, n_runs=runs, seed=1)
    assert seeded.scores.shape == (3,) and seeded.higher_is_better


def test_pixel_flipping_and_region_perturbation_equal_quantus() -> None:
    model = _cnn(3)
    pf = _q(quantus.PixelFlipping(features_in_step=16, perturb_baseline=0.0,
                                  disable_warnings=True), model, X3, A3)
    ours = evaluate.pixel_flipping(model, torch.tensor(X3), torch.tensor(A3),
                                   target=torch.tensor(Y), features_in_step=16)
    np.testing.assert_allclose(ours.curve.numpy(), np.asarray(pf), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.scores.numpy(), np.trapezoid(np.asarray(pf), dx=1, axis=1),
                               rtol=1e-5, atol=1e-5)
    rp = _q(quantus.RegionPerturbation(patch_size=2, regions_evaluation=10,
                                       perturb_baseline=0.0, disable_warnings=True),
            model, X3, A3)
    ours = evaluate.region_perturbation(model, torch.tensor(X3), torch.tensor(A3),
                                        target=torch.tensor(Y), patch_size=2,
                                        regions_evaluation=10)
    np.testing.assert_allclose(ours.curve.numpy(), np.asarray(rp), rtol=1e-5, atol=1e-6)


def test_road_imputation_and_curve_equal_quantus_without_noise() -> None:
    from quantus.functions.perturb_func import noisy_linear_imputation

    img = RNG.normal(size=(2, 7, 9))
    removed = np.array([0, 1, 9, 10, 11, 30, 31, 40, 62, 61, 53])
    theirs = noisy_linear_imputation(img.copy(), removed, noise=0.0)
    ours = evaluate.noisy_linear_imputation(torch.tensor(img), torch.tensor(removed), 0.0)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-10, atol=1e-12)
    model = _cnn(1)
    x1 = np.concatenate([X1, X1 * 2, X1[:, :, ::-1] * 3]).copy()
    y = model(torch.tensor(x1)).argmax(1).numpy()  # the predicted classes: curves start at 1
    a1 = np.concatenate([A1, -A1, A1 ** 2])
    pcts = [5, 20, 40, 60, 80, 95]
    q = quantus.ROAD(percentages=pcts, noise=0.0, disable_warnings=True)(
        model=model, x_batch=x1, y_batch=y, a_batch=a1, device="cpu", softmax=False)
    ours = evaluate.road(model, torch.tensor(x1), torch.tensor(a1), target=torch.tensor(y),
                         percentages=pcts, noise=0.0)
    np.testing.assert_allclose(ours.curve.mean(0).numpy(), [q[p] for p in pcts], atol=1e-12)
    assert 0 < float(ours.curve.mean()) < 1  # some predictions survive, some do not
    noisy = evaluate.noisy_linear_imputation(torch.tensor(img), torch.tensor(removed), 0.5,
                                                torch.Generator().manual_seed(0))
    resid = (noisy - ours_imp(img, removed)).numpy()[:, removed // 9, removed % 9]
    assert 0.2 < resid.std() < 0.9  # the noise is there, with about the right spread


def ours_imp(img: np.ndarray, removed: np.ndarray) -> torch.Tensor:
    return evaluate.noisy_linear_imputation(torch.tensor(img), torch.tensor(removed), 0.0)


def test_infidelity_equals_captum_with_the_same_perturbations() -> None:
    from captum.metrics import infidelity

    model = _cnn(3).double()
    x, a = torch.tensor(X3, dtype=torch.float64), torch.tensor(A3)
    pert = torch.randn((3, 5, 3, 8, 8), generator=torch.Generator().manual_seed(3),
                       dtype=torch.float64) * 0.1
    flat = pert.reshape(15, 3, 8, 8)

    def perturb(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return flat, inp - flat

    for normalize in (False, True):
        theirs = infidelity(model, perturb, x, a, target=torch.tensor(Y), n_perturb_samples=5,
                            normalize=normalize)
        ours = evaluate.infidelity(model, x, a, target=torch.tensor(Y), perturbations=pert,
                                   normalize=normalize)
        np.testing.assert_allclose(ours.scores.numpy(), theirs.numpy(), rtol=1e-10)


def test_max_sensitivity_equals_captum_with_the_same_perturbations() -> None:
    from captum.attr import Saliency
    from captum.metrics import sensitivity_max

    model = _cnn(3).double()
    x = torch.tensor(X3, dtype=torch.float64)
    pert = (torch.rand((3, 4, 3, 8, 8), generator=torch.Generator().manual_seed(1),
                       dtype=torch.float64) * 2 - 1) * 0.05
    flat = pert.reshape(12, 3, 8, 8)  # Captum repeats each example n_perturb times

    def perturb(inp: torch.Tensor, perturb_radius: float = 0.0) -> torch.Tensor:
        return inp + flat

    theirs = sensitivity_max(Saliency(model).attribute, x, perturb_func=perturb,
                             n_perturb_samples=4, target=torch.tensor(Y))
    ours = evaluate.max_sensitivity("saliency", model, x, target=torch.tensor(Y),
                                    perturbations=pert, options={"absolute": True})
    np.testing.assert_allclose(ours.scores.numpy(), theirs.numpy(), rtol=1e-10)
