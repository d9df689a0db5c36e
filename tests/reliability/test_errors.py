"""Raw torch errors that became attribkit errors naming the problem (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images, mlp, rows
from torch import Tensor, nn

import attribkit


@case("errors", "one example without its batch axis: a (5,) vector into Linear(5, 3)",
      "ModelOutputError: the model returned shape (3,) for a batch of 5 examples; says to use "
      "inputs.unsqueeze(0)")
def test_vector_without_batch_axis() -> None:
    with pytest.raises(attribkit.ModelOutputError, match=r"unsqueeze\(0\)"):
        attribkit.integrated_gradients(mlp(), rows(1)[0])


@case("errors", "one image without its batch axis: (2, 6, 6) into a Conv2d/Linear CNN",
      "ModelCallError (an InputError and a RuntimeError) naming the shape, torch's own line "
      "(mat1 and mat2 shapes cannot be multiplied) and the unsqueeze(0) fix")
def test_image_without_batch_axis() -> None:
    with pytest.raises(attribkit.ModelCallError, match=r"\(2, 6, 6\).*unsqueeze\(0\)") as info:
        attribkit.integrated_gradients(cnn(), images(1)[0], target=0)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, attribkit.InputError)


@pytest.mark.parametrize("target", ["cat", ["a", "b", "c"]])
@case("errors", "target given as a string ('cat') or a list of strings",
      "TargetError: give the class index (labels.index(name))")
def test_string_targets(target: object) -> None:
    with pytest.raises(attribkit.TargetError, match=r"index|indices"):
        attribkit.integrated_gradients(mlp(), rows(3), target=target)


@pytest.mark.parametrize("target", [np.int64(2), np.int32(2), np.array([2, 2, 2]),
                                    torch.tensor(2)])
@case("errors", "target given as numpy.int64, numpy.int32, a numpy array or a 0-d tensor",
      "works, equal to target=2")
def test_numpy_targets_work(target: object) -> None:
    ref = attribkit.integrated_gradients(mlp(), rows(3), target=2, steps=8).values
    got = attribkit.integrated_gradients(mlp(), rows(3), target=target, steps=8).values
    torch.testing.assert_close(got, ref, atol=0, rtol=0)


@pytest.mark.parametrize("reduce", ["sum", "mean0"])
@case("errors", "a model returning a scalar (loss-style .sum()) or a batch-reduced output "
      "(.mean(0))",
      "ModelOutputError: one row per example is needed; asks whether it sums or averages over "
      "the batch")
def test_batch_reduced_outputs(reduce: str) -> None:
    net = mlp()

    def model(x: Tensor) -> Tensor:
        return net(x).sum() if reduce == "sum" else net(x).mean(0)

    with pytest.raises(attribkit.ModelOutputError, match="one row per example"):
        attribkit.integrated_gradients(model, rows(4))


@case("errors", "a batch-reduced output whose length happens to equal the batch size "
      "(mean(0) of 3 classes over 3 examples)",
      "refused by the 2-row batch-independence probe (its output has 3 rows for 2 examples: "
      "ModelOutputError asking whether it averages over the batch), not silently explained")
def test_batch_reduced_output_of_matching_length() -> None:
    net = mlp()
    with pytest.raises(attribkit.ModelOutputError, match="average over the batch"):
        attribkit.integrated_gradients(lambda x: net(x).mean(0), rows(3))


@case("errors", "a baseline on the 'meta' device",
      "BaselineError: a shape without data")
def test_meta_baseline() -> None:
    with pytest.raises(attribkit.BaselineError, match="meta"):
        attribkit.integrated_gradients(mlp(), rows(2),
                                       baseline=torch.zeros(2, 5, dtype=torch.float64,
                                                            device="meta"))


@case("errors", "inputs on the 'meta' device, and a model whose weights are on 'meta'",
      "InputError naming the meta device (and load_state_dict for the model)")
def test_meta_inputs_and_model() -> None:
    with pytest.raises(attribkit.InputError, match="meta"):
        attribkit.integrated_gradients(mlp(), torch.zeros(2, 5, dtype=torch.float64,
                                                          device="meta"))
    with torch.device("meta"):
        model = nn.Linear(5, 3).double()
    with pytest.raises(attribkit.InputError, match="meta"):
        attribkit.integrated_gradients(model, rows(2))


class TinyText(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(10, 4)
        self.out = nn.Linear(4, 2)

    def forward(self, ids: Tensor) -> Tensor:
        return self.out(self.emb(ids).mean(1))


@pytest.mark.parametrize("bad", [10, -1])
@case("errors", "token ids out of the embedding's range (id 10 for 10 rows, and id -1), as "
      "inputs and as baseline ids",
      "InputError naming the id and the range 0..9 (a tokenizer that does not match?)")
def test_token_ids_out_of_range(bad: int) -> None:
    model = TinyText().eval()
    ids = torch.tensor([[1, 2, bad]])
    with pytest.raises(attribkit.InputError, match=rf"{bad}.*0\.\.9"):
        attribkit.integrated_gradients(model, ids, layer=model.emb, target=0)
    good = torch.tensor([[1, 2, 3]])
    with pytest.raises(attribkit.InputError, match=rf"{bad}.*0\.\.9"):
        attribkit.integrated_gradients(model, good, layer=model.emb, target=0, baseline=ids)


@case("errors", "feature names containing $ (price ($), $x_$, cost $ per $ unit) in "
      "viz.feature_bars",
      "drawn verbatim: $ is escaped, no mathtext parse error, the tick labels read as given")
def test_dollar_signs_in_feature_names() -> None:
    from attribkit.viz._common import figure_to_png
    from attribkit.viz.tabular import feature_bars

    names = ["price ($)", "$x_$", "cost $ per $ unit", "plain"]
    fig = feature_bars(names, np.array([1.0, -2.0, 3.0, 0.5]))
    png = figure_to_png(fig)
    assert png[:4] == b"\x89PNG"
    labels = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert labels == {n.replace("$", r"\$") for n in names}


@case("errors", "NumPy arrays as inputs (float64 into a float32 model) and as baseline",
      "converted once at the door (floats to the model's dtype); equal to the tensor result")
def test_numpy_inputs_and_baselines() -> None:
    model = mlp().float()
    x = rows(3).numpy()
    base = np.full((5,), 0.1)
    ref = attribkit.integrated_gradients(model, torch.as_tensor(x, dtype=torch.float32),
                                         baseline=torch.full((5,), 0.1), target=1, steps=8)
    got = attribkit.integrated_gradients(model, x, baseline=base, target=1, steps=8)
    torch.testing.assert_close(got.values, ref.values, atol=0, rtol=0)
    for method in ("saliency", "deeplift", "occlusion", "smoothgrad", "lrp"):
        out = attribkit.explain(model, x, method=method, target=1)
        assert isinstance(out.values, Tensor) and out.values.shape == (3, 5)


@case("errors", "a NumPy array of strings as inputs", "InputError: give numbers")
def test_numpy_strings_refused() -> None:
    with pytest.raises(attribkit.InputError, match="numbers"):
        attribkit.integrated_gradients(mlp(), np.array([["a"] * 5]))
