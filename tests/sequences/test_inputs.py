"""explain_generation's input checks on the tiny models: one InputError line, or a warning."""

from __future__ import annotations

import warnings

import pytest
import torch

from attribkit.core.errors import InputError
from attribkit.sequences import explain_generation
from attribkit.sequences.inputs import TOKENS_PER_PASS, rows_per_pass
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def llama():
    return tiny_model("tiny-llama", dtype=torch.float64)


@pytest.mark.parametrize(("prompt", "target", "message"), [
    ("", "cat", "prompt is empty"),
    (" \n", "cat", "prompt is empty"),
    (42, "cat", "prompt must be a non-empty string or a list of chat messages"),
    ("the cat " * 130, "dog", "prompt .260 tokens. plus the continuation .1. is longer than the "
                              "model's context of 256 tokens"),
    ("the cat", [3, 256], "token id 256 outside the vocabulary .0..255."),
    ("the cat", torch.tensor([3.0]), "must be integers, got a torch.float32 tensor"),
    ("the cat", 3.0, "got float"),
    ("the cat", [3, 4.5], "must be ints, got float"),
    ("the cat", [True], "must be ints, got bool"),
    ("the cat", "", "empty string"),
])
def test_bad_input_is_one_line(tok, llama, prompt, target, message):
    with pytest.raises(InputError, match=message) as err:
        explain_generation(llama, tok, prompt, target, method="saliency")
    assert "\n" not in str(err.value)


def test_too_long_for_generation_and_bad_max_new_tokens(tok, llama):
    with pytest.raises(InputError, match="longer than the model's context of 256"):
        explain_generation(llama, tok, "the cat " * 125, method="saliency", max_new_tokens=10)
    with pytest.raises(InputError, match="max_new_tokens must be a positive integer"):
        explain_generation(llama, tok, "the cat", method="saliency", max_new_tokens=0)
    with pytest.raises(InputError, match="batch_size must be a positive integer or None"):
        explain_generation(llama, tok, "the cat", "dog", batch_size=0)


def test_unknown_target_token_warns_with_the_tokens(tok, llama):
    with pytest.warns(UserWarning, match=r"contains the unknown token '\[UNK\]' .*'zebra'|"
                                         r"contains the unknown token '\[UNK\]'"):
        res = explain_generation(llama, tok, "the cat", "zebraxq", method="saliency")
    assert res.generated_tokens == ("[UNK]",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # words of the vocabulary, several of them: no warning
        explain_generation(llama, tok, "the cat", "happy dog ran", method="saliency")


def test_rows_per_pass_bounds_tokens():
    assert rows_per_pass(None, 10) == TOKENS_PER_PASS // 10
    assert rows_per_pass(None, 5000) == 1  # one row even when it alone exceeds the budget
    assert rows_per_pass(7, 5000) == 7


def test_chat_messages_need_a_template(tok, llama):
    with pytest.raises(InputError, match="no chat template"):
        explain_generation(llama, tok, [{"role": "user", "content": "the cat"}], "dog",
                           method="saliency")


@pytest.mark.parametrize(("tokenizer", "baseline", "message"), [
    (None, None, "needs the model's Hugging Face tokenizer as its second argument .* got "
                 "NoneType"),
    ("gpt2", None, "needs the model's Hugging Face tokenizer .* got str"),
    ("tok", 256, "the baseline has token id 256 outside the vocabulary .0..255."),
    ("tok", -1, "the baseline has token id -1 outside the vocabulary"),
    ("tok", 1.5, "baseline 1.5 is neither 'zeros', a token id"),
    ("tok", "nan", "baseline embeddings contain NaN or inf"),
    ("tok", "shape", r"baseline embeddings must be \(2, 32\), got \(3, 7\)"),
])
@pytest.mark.parametrize("interactions", [False, True])
def test_bad_tokenizer_or_baseline_is_one_line(tok, llama, tokenizer, baseline, message,
                                               interactions):
    from attribkit.sequences.interactions import prompt_interactions

    width = llama.get_input_embeddings().weight.shape[1]
    given = {"nan": torch.full((2, width), float("nan"), dtype=torch.float64),
             "shape": torch.zeros(3, 7, dtype=torch.float64)}.get(baseline, baseline)
    t = tok if tokenizer == "tok" else tokenizer
    with pytest.raises(InputError, match=message) as err:
        if interactions:
            prompt_interactions(llama, t, "the cat", "dog", baseline=given, spans=[[0], [1]])
        else:
            explain_generation(llama, t, "the cat", "dog", baseline=given, steps=8)
    assert "\n" not in str(err.value)
