"""Layer and neuron attribution leave the model exactly as given, after success and failure."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._cases import case
from tests.reliability._nets import cnn, images
from torch import Tensor, nn

import attribkit
from attribkit.core.guard import hook_state


class FailsLater(nn.Module):
    """Wraps a model and raises on its fourth call (after the hooks are in place)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == 4:
            raise RuntimeError("boom")
        out: Tensor = self.inner(x)
        return out


RUNS = {
    "layer_conductance": lambda m, x: attribkit.layer_conductance(
        m, x, layer=m.inner[2], target=0, steps=6, batch_size=2),
    "ig at a layer input": lambda m, x: attribkit.integrated_gradients(
        m, x, layer=m.inner[2], attribute_to="layer_input", target=0, steps=6, batch_size=2),
    "saliency of a neuron": lambda m, x: attribkit.saliency(
        m, x, target=attribkit.neuron(m.inner[1], 3), batch_size=1),
    "neuron_conductance": lambda m, x: attribkit.neuron_conductance(
        m, x, neuron=attribkit.neuron(m.inner[1], 1, average=True), target=0, steps=6,
        batch_size=2),
}


@case("model state", "layer conductance, attribute_to='layer_input', a neuron target and neuron "
      "conductance, each run to the end and each failing midway (the model raises on its fourth "
      "call)", "hooks, training flags, requires_grad and parameters are as given both times",
      verdict="held")
@pytest.mark.parametrize("name", sorted(RUNS))
def test_layer_methods_leave_the_model_as_given(name: str) -> None:
    model = FailsLater(cnn(0))
    x = images(2)
    before = hook_state(model)
    params = [p.detach().clone() for p in model.parameters()]
    flags = [(m.training, [p.requires_grad for p in m.parameters(recurse=False)])
             for m in model.modules()]
    model.calls = -100  # success first
    attr = RUNS[name](model, x)
    assert torch.isfinite(attr.values).all()
    for attempt in ("success", "failure"):
        assert hook_state(model) == before, attempt
        assert [(m.training, [p.requires_grad for p in m.parameters(recurse=False)])
                for m in model.modules()] == flags, attempt
        assert all(torch.equal(a, b) for a, b in zip(params, model.parameters(), strict=True))
        if attempt == "success":
            model.calls = 0
            with pytest.raises(Exception, match="boom"):
                RUNS[name](model, x)
