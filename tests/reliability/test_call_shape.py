"""One call shape for every method (issue 26): the common keywords never give a raw error."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images

import attribkit
from attribkit.core.errors import AttribkitError
from attribkit.methods import methods
from attribkit.methods.calls import COMMON

VALUES = {"target": 1, "baseline": 0.0, "batch_size": 3, "progress": False, "seed": 0}

def _needs(method: str, model: torch.nn.Module) -> dict[str, object]:
    """The method's own options that the call cannot leave out."""
    if method in ("expected_gradients", "prediction_difference", "deepshap"):
        return {"background": images(3, seed=1)}
    if method == "neuron_conductance":
        return {"neuron": attribkit.neuron(model[2], (0, 1, 1))}
    return {}


@pytest.mark.parametrize("keyword", COMMON)
@pytest.mark.parametrize("method", list(methods()))
@case("errors", "explain(model, x, method=M, K=...) for every registered method M and each "
      "common keyword K (target, baseline, batch_size, progress, seed)",
      "runs, or refuses in one line saying why (\"lrp takes no baseline ...\", \"saliency draws "
      "no random numbers, so it takes no seed\"); never Python's raw unexpected-keyword "
      "TypeError")
def test_common_keywords_never_raw(method: str, keyword: str) -> None:
    model, x = (_transformer_mlp() if method == "attnlrp" else cnn()), images(2)
    try:
        with _quiet():
            attr = attribkit.explain(model, x, method=method, **_needs(method, model),
                                     **{keyword: VALUES[keyword]})
    except AttribkitError as err:
        text = str(err)
        assert "\n" not in text.strip()
        assert "unexpected keyword" not in text
        assert keyword in text, text
        return
    assert torch.isfinite(attr.values).all()


def _transformer_mlp() -> torch.nn.Module:
    """A network AttnLRP has rules for (it refuses convolutions and pooling in one line)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(72, 16), torch.nn.LayerNorm(16), torch.nn.GELU(),
        torch.nn.Linear(16, 3),
    ).double().eval()


class _quiet:
    def __enter__(self) -> None:
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc: object) -> None:
        self._w.__exit__(*exc)


@case("errors", "explain(model, x, method=\"grad_cam\") without layer=",
      "uses the model's last convolution, as the CLI does, and says so in a one-line note "
      "(a raw TypeError before)")
def test_grad_cam_without_layer_uses_last_conv() -> None:
    model, x = cnn(), images(2)
    with pytest.warns(UserWarning, match="last convolution '2'"):
        got = attribkit.explain(model, x, method="grad_cam", target=0)
    want = attribkit.grad_cam(model, x, layer=model[2], target=0)
    torch.testing.assert_close(got.values, want.values, rtol=0, atol=0)


@case("errors", "explain(model, x, method=\"lrp\", baseline=...)",
      "refused in one line: LRP takes no baseline (a raw unexpected-keyword TypeError before)")
def test_lrp_with_baseline_says_why() -> None:
    with pytest.raises(attribkit.InputError, match="lrp takes no baseline"):
        attribkit.explain(cnn(), images(2), method="lrp", baseline=0.0)


@case("errors", "explain(mlp, x, method=\"grad_cam\") on a model with no convolution",
      "refused in one line asking for layer=")
def test_grad_cam_without_conv_asks_for_layer() -> None:
    from tests.reliability._nets import mlp, rows

    with pytest.raises(attribkit.InputError, match="needs layer="):
        attribkit.explain(mlp(), rows(2), method="grad_cam")
