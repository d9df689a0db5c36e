"""Cases that were tried and were already right: the tests keep them so (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, mlp, rows, same, snapshot
from torch import Tensor, nn

import attribkit
from attribkit.core.guard import hook_state

METHODS = sorted(attribkit.methods())


def options(method: str, model: nn.Module) -> dict[str, Any]:
    if method in ("grad_cam", "guided_grad_cam"):
        return {"layer": model[2]}
    if method == "layer_conductance":
        return {"layer": model[1]}
    if method == "neuron_conductance":
        return {"neuron": attribkit.neuron(model[1], 0, average=True)}
    out: dict[str, Any] = {}
    if method in ("prediction_difference", "deepshap", "expected_gradients"):
        out["background"] = images(3, seed=9)
    if method in ("expected_gradients", "smoothgrad", "smoothgrad_squared", "vargrad",
                  "shapley_values"):
        out["n_samples"] = 4
    if method in ("occlusion", "prediction_difference"):
        out["window"] = (2, 3, 3)
    return out


class Bomb(nn.Module):
    """Raises on its third call (inside a chunk loop, after hooks are in place)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("boom")
        return x


@pytest.mark.parametrize("method", METHODS)
@case("model state", "a module that raises in the middle of the run, for each registered method",
      "the exception reaches the caller; every hook dictionary of every module is empty again, "
      "flags, parameters and buffers as given", "held")
def test_failure_midway_leaves_no_hooks(method: str) -> None:
    model = cnn(9)
    model.insert(1, Bomb())
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        attribkit.explain(model, images(2, seed=9), method=method, target=0, batch_size=1,
                          **options(method, model))
    assert same(before, snapshot(model))
    assert all(not any(v) for hooks in hook_state(model).values() for v in hooks.values())


@case("errors", "a callable target returning two values per example",
      "TargetError: one scalar per example", "held")
def test_callable_target_of_wrong_shape() -> None:
    with pytest.raises(attribkit.TargetError, match="one scalar per example"):
        attribkit.integrated_gradients(mlp(), rows(2), target=lambda out: out[:, :2])


@case("errors", "forward_args with 3 rows for 2 examples", "InputError: one row per example",
      "held")
def test_forward_args_of_wrong_length() -> None:
    def model(x: Tensor, mask: Tensor) -> Tensor:
        return mlp()(x * mask)

    with pytest.raises(attribkit.InputError, match="one row per example"):
        attribkit.integrated_gradients(model, rows(2), forward_args=[torch.ones(3, 5)])


@case("errors", "layer= a module that is not part of the model",
      "InputError (the layer never ran, or is not part of the model)", "held")
def test_foreign_layer() -> None:
    with pytest.raises(attribkit.InputError, match="layer"):
        attribkit.integrated_gradients(mlp(), rows(2), layer=nn.Linear(5, 8).double())
    with pytest.raises(attribkit.InputError, match="not part of the model"):
        attribkit.grad_cam(cnn(), images(2), layer=nn.Conv2d(2, 4, 3))


@case("errors", "grad_cam with a misspelt layer name", "InputError listing the last "
      "convolutional layers' names", "held")
def test_grad_cam_wrong_layer_name() -> None:
    with pytest.raises(attribkit.InputError, match="Convolutional layers: 0, 2"):
        attribkit.grad_cam(cnn(), images(2), layer="features.3")


@pytest.mark.parametrize("baseline", [True, "moon", object()])
@case("errors", "baseline=True, an unknown baseline name, an arbitrary object",
      "BaselineError naming what is accepted", "held")
def test_odd_baselines(baseline: object) -> None:
    with pytest.raises(attribkit.BaselineError):
        attribkit.integrated_gradients(mlp(), rows(2), baseline=baseline)


@pytest.mark.parametrize("tolerance", [0, 1, -0.1, True, "0.01"])
@case("bounds", "tolerance=0, 1, -0.1, True and '0.01'",
      "InputError: a relative error in (0, 1)")
def test_bad_tolerances(tolerance: object) -> None:
    with pytest.raises(attribkit.InputError, match="tolerance"):
        attribkit.integrated_gradients(mlp(), rows(2), tolerance=tolerance)


@pytest.mark.parametrize(("method", "option"), [("integrated_gradients", {"rule": "simpson"}),
                                                ("lrp", {"rule": "epsilonn"}),
                                                ("deeplift", {"rule": "linear"})])
@case("errors", "an unknown integration rule, LRP preset or DeepLIFT rule",
      "InputError listing the known ones", "held")
def test_unknown_rules(method: str, option: dict[str, Any]) -> None:
    with pytest.raises(attribkit.InputError, match="unknown"):
        attribkit.explain(mlp(), rows(2), method=method, **option)


@case("errors", "an unknown method name in explain()", "InputError listing the known methods",
      "held")
def test_unknown_method() -> None:
    with pytest.raises(attribkit.InputError, match="Known methods"):
        attribkit.explain(mlp(), rows(2), method="integrated_gradient")


@pytest.mark.parametrize("method", ["deeplift", "lrp", "guided_backprop", "deconvnet"])
@case("errors", "propagation methods on a model with LayerNorm, and on a plain function",
      "UnsupportedModelError naming the module (LayerNorm) or asking for an nn.Module", "held")
def test_propagation_refuses_unsupported_models(method: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 2)).double().eval()
    with pytest.raises(attribkit.UnsupportedModelError, match="LayerNorm"):
        attribkit.explain(model, rows(2), method=method, target=0)
    with pytest.raises(attribkit.UnsupportedModelError, match=r"nn\.Module"):
        attribkit.explain(lambda x: x[:, :2], rows(2), method=method, target=0)


@case("errors", "inputs that already require grad and carry a .grad",
      "the result is the same as for plain inputs; the user's tensor keeps requires_grad and "
      "its .grad untouched", "held")
def test_inputs_requiring_grad() -> None:
    x = rows(2).requires_grad_(True)
    x.grad = torch.ones_like(x)
    got = attribkit.integrated_gradients(mlp(), x, target=0, steps=8).values
    ref = attribkit.integrated_gradients(mlp(), rows(2), target=0, steps=8).values
    torch.testing.assert_close(got, ref, atol=0, rtol=0)
    assert x.requires_grad and torch.equal(x.grad, torch.ones_like(x))


@case("errors", "non-contiguous inputs (a transposed view)", "the same result as contiguous "
      "inputs", "held")
def test_non_contiguous_inputs() -> None:
    x = rows(5, d=2).t()  # (2, 5), not contiguous
    assert not x.is_contiguous()
    got = attribkit.integrated_gradients(mlp(), x, target=1, steps=8).values
    ref = attribkit.integrated_gradients(mlp(), x.contiguous(), target=1, steps=8).values
    torch.testing.assert_close(got, ref, atol=1e-15, rtol=0)


@case("silent errors", "one example attributed alone and inside a batch of four",
      "bit-for-bit the same row for integrated gradients (each row independent of its "
      "batch-mates; float64)", "held")
def test_row_does_not_depend_on_batch() -> None:
    x = rows(4, seed=3)
    alone = attribkit.integrated_gradients(mlp(), x[2:3], target=1, steps=16).values
    batch = attribkit.integrated_gradients(mlp(), x, target=1, steps=16).values
    torch.testing.assert_close(alone[0], batch[2], atol=1e-15, rtol=0)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
@case("silent errors", "batch_size 1, 7 and 1000 on 16 examples x 32 steps",
      "the same attributions to 1e-14 whatever the chunking", "held")
def test_chunking_does_not_change_results(batch_size: int) -> None:
    x = rows(16, seed=4)
    ref = attribkit.integrated_gradients(mlp(), x, target=0, steps=32).values
    got = attribkit.integrated_gradients(mlp(), x, target=0, steps=32,
                                         batch_size=batch_size).values
    torch.testing.assert_close(got, ref, atol=1e-14, rtol=0)


@case("silent errors", "channels_last=True on a CNN", "the same attributions as the default "
      "layout to 1e-12 (float64); the weights come back contiguous", "held")
def test_channels_last_same_values() -> None:
    model = cnn(10)
    x = images(3, seed=10)
    ref = attribkit.integrated_gradients(model, x, target=0, steps=16).values
    got = attribkit.integrated_gradients(model, x, target=0, steps=16, channels_last=True).values
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=0)
    assert all(p.is_contiguous() for p in model.parameters())


@pytest.mark.parametrize("method", ["smoothgrad", "expected_gradients", "shapley_values"])
@case("silent errors", "a stochastic method called twice with the same seed",
      "bit-identical results (no global random state)", "held")
def test_stochastic_methods_are_reproducible(method: str) -> None:
    extra: dict[str, Any] = {"n_samples": 8, "seed": 3}
    if method == "expected_gradients":
        extra["background"] = rows(4, seed=6)
    if method == "shapley_values":
        extra["mode"] = "sampling"
    torch.manual_seed(1)
    a = attribkit.explain(mlp(), rows(2), method=method, target=0, **extra).values
    torch.manual_seed(2)
    b = attribkit.explain(mlp(), rows(2), method=method, target=0, **extra).values
    assert torch.equal(a, b)


@case("errors", "a model with one output per example, (N, 1), and target=None or 0",
      "explains that output; target=1 is refused with TargetError", "held")
def test_single_output_models() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 1)).double().eval()
    a = attribkit.integrated_gradients(model, rows(2), steps=8)
    b = attribkit.integrated_gradients(model, rows(2), steps=8, target=0)
    torch.testing.assert_close(a.values, b.values)
    with pytest.raises(attribkit.TargetError):
        attribkit.integrated_gradients(model, rows(2), target=1)


@case("errors", "viz.feature_bars with 3 names for 5 values, and an image heat map of a "
      "multi-target attribution", "InputError (names vs values; pick one target with "
      "attr.for_target(k))", "held")
def test_viz_mismatches() -> None:
    from attribkit.viz.image import heatmap
    from attribkit.viz.tabular import feature_bars

    with pytest.raises(attribkit.InputError, match="3 feature names but 5 values"):
        feature_bars(["a", "b", "c"], [1.0, 2.0, 3.0, 4.0, 5.0])
    attr = attribkit.integrated_gradients(cnn(), images(1), target=attribkit.top_k(2), steps=4)
    with pytest.raises(attribkit.InputError, match="for_target"):
        heatmap(attr)


@case("model state", "progress=True when stderr is not a terminal", "runs (a progress bar is "
      "drawn or skipped, never an error) with the same values", "held")
def test_progress_bar_does_not_change_values() -> None:
    ref = attribkit.integrated_gradients(mlp(), rows(2), target=0, steps=8).values
    got = attribkit.integrated_gradients(mlp(), rows(2), target=0, steps=8, progress=True).values
    torch.testing.assert_close(got, ref, atol=0, rtol=0)
