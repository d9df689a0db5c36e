"""Bad input to the third wave's entry points (a real language model's prompts, interactions):
one ``InputError`` line each, said before any model work."""

from __future__ import annotations

import pytest
import torch
from tests.reliability._cases import case

import attribkit
from attribkit.core.errors import InputError
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def lm() -> tuple[torch.nn.Module, object]:
    return tiny_model("tiny-llama", dtype=torch.float64), tiny_tokenizer()


def _one_line(err: pytest.ExceptionInfo[InputError]) -> str:
    text = str(err.value)
    assert "\n" not in text.strip()
    return text


@case("errors", "explain_generation with an empty or blank prompt",
      "InputError: the prompt is empty (one line), before the model is called")
def test_empty_prompt(lm: tuple[torch.nn.Module, object]) -> None:
    model, tok = lm
    with pytest.raises(InputError) as err:
        explain_generation(model, tok, "  \n", "cat", method="saliency")
    assert "prompt is empty" in _one_line(err)


@case("errors", "explain_generation with a prompt longer than the model's context",
      "InputError naming the prompt's and the context's lengths in tokens")
def test_prompt_longer_than_the_context(lm: tuple[torch.nn.Module, object]) -> None:
    model, tok = lm
    with pytest.raises(InputError) as err:
        explain_generation(model, tok, "the cat " * 130, "dog", method="saliency")
    assert "longer than the model's context of 256 tokens" in _one_line(err)


@case("errors", "explain_generation with a target token id outside the vocabulary",
      "InputError naming the id and the vocabulary's range")
def test_target_id_outside_the_vocabulary(lm: tuple[torch.nn.Module, object]) -> None:
    model, tok = lm
    with pytest.raises(InputError) as err:
        explain_generation(model, tok, "the cat", [3, 256], method="saliency")
    assert "256 outside the vocabulary" in _one_line(err)


@case("errors", "explain_generation with a float target (3.0, or a float tensor of ids)",
      "InputError: token ids must be integers, naming the type given")
def test_float_target(lm: tuple[torch.nn.Module, object]) -> None:
    model, tok = lm
    for target in (3.0, torch.tensor([3.0])):
        with pytest.raises(InputError) as err:
            explain_generation(model, tok, "the cat", target, method="saliency")
        assert "float" in _one_line(err)


@case("errors", "attribkit.interactions on 21 players without budget=",
      "InputError with the cost (2^21 coalitions) and the fix (budget= or feature_mask=)")
def test_interactions_over_the_exact_limit() -> None:
    x = torch.rand(1, 21, dtype=torch.float64)
    with pytest.raises(InputError) as err:
        attribkit.interactions(lambda t: t.sum(1, keepdim=True), x, target=0)
    text = _one_line(err)
    assert "budget" in text and ("2097152" in text or "2^21" in text or "2,097,152" in text)


@case("errors", "attribkit.interactions with order above the number of players",
      "InputError naming the order and the number of players")
def test_interactions_order_above_players() -> None:
    x = torch.rand(1, 3, dtype=torch.float64)
    with pytest.raises(InputError) as err:
        attribkit.interactions(lambda t: t.sum(1, keepdim=True), x, target=0, order=4)
    assert "order" in _one_line(err)
