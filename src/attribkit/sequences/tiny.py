"""Tiny, randomly initialised Hugging Face models and a word-level tokenizer, built in code.

For tests, demos and benchmarks that must not download anything: a GPT-2, a Llama-style and a T5
model with a few layers, and a whitespace word-level tokenizer over a fixed vocabulary (common
English words, then filler tokens ``w0, w1, ...`` up to ``vocab_size``). Words outside the
vocabulary become ``[UNK]``. The weights are random (seeded): the models are for exercising the
machinery, not for meaningful text.
"""

from __future__ import annotations

from typing import Any

import torch

from attribkit.core.errors import InputError

__all__ = ["TINY_MODELS", "WORDS", "tiny_model", "tiny_tokenizer"]

#: Names accepted by :func:`tiny_model` (and by the CLI as MODEL).
TINY_MODELS = ("tiny-gpt2", "tiny-llama", "tiny-t5")

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
#: The real words of the tiny vocabulary (after the special tokens).
WORDS = tuple("""the a an and or but of to in on at for with from by as is are was were be been
it its this that these those he she they we you i me him her them us my your our their his
cat dog bird fish tree house car road city river sea sky sun moon star rain snow wind day night
sat ran saw ate went came made took gave said found kept left told asked felt knew thought
big small old new good bad long short red blue green white black happy sad fast slow hot cold
one two three four five six seven eight nine ten first last next more most less than then
not no yes very so too also only just still again here there now when where why how what who
paris france london england berlin germany rome italy capital language french english german
water food bread milk tea coffee book story word name music song game time year week home
. , ! ? ' " -""".split())  # noqa: SIM905 - a word list reads best as text


def tiny_tokenizer(vocab_size: int = 256) -> Any:
    """A word-level ``PreTrainedTokenizerFast`` over :data:`WORDS` plus filler tokens.

    Parameters
    ----------
    vocab_size
        Total vocabulary (special tokens, the words, then ``w0, w1, ...``); at least
        ``len(WORDS) + 4``.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
        Splits on whitespace and punctuation, lower-cases, adds no special tokens to the text.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    base = [*SPECIALS, *WORDS]
    if vocab_size < len(base):
        raise InputError(f"vocab_size must be at least {len(base)}, got {vocab_size}.")
    vocab = {tok: i for i, tok in enumerate(base)}
    for i in range(vocab_size - len(base)):
        vocab[f"w{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]",
        eos_token="[EOS]")


def tiny_model(name: str = "tiny-gpt2", *, vocab_size: int = 256, hidden: int = 32,
               layers: int = 2, heads: int = 4, seed: int = 0,
               dtype: torch.dtype = torch.float32) -> Any:
    """A randomly initialised (seeded) tiny causal LM or encoder-decoder, in eval mode.

    Parameters
    ----------
    name
        ``"tiny-gpt2"`` (``GPT2LMHeadModel``), ``"tiny-llama"`` (``LlamaForCausalLM``) or
        ``"tiny-t5"`` (``T5ForConditionalGeneration``).
    vocab_size
        Vocabulary size; must match the tokenizer's (:func:`tiny_tokenizer`).
    hidden
        Width of the embeddings and hidden states.
    layers
        Transformer blocks (per stack for T5).
    heads
        Attention heads.
    seed
        Seed of the random initialisation.
    dtype
        Parameter dtype (float64 for precise checks).

    Returns
    -------
    transformers.PreTrainedModel
        The model, eval mode, with the tokenizer's special ids in its configuration.
    """
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        T5Config,
        T5ForConditionalGeneration,
    )

    if name not in TINY_MODELS:
        raise InputError(f"unknown tiny model {name!r}; choose one of {TINY_MODELS}.")
    pad, bos, eos = SPECIALS.index("[PAD]"), SPECIALS.index("[BOS]"), SPECIALS.index("[EOS]")
    torch.manual_seed(seed)
    model: Any
    if name == "tiny-gpt2":
        model = GPT2LMHeadModel(GPT2Config(
            vocab_size=vocab_size, n_positions=256, n_embd=hidden, n_layer=layers, n_head=heads,
            bos_token_id=bos, eos_token_id=eos, pad_token_id=pad, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0))
    elif name == "tiny-llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads // 2,
            max_position_embeddings=256, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad))
    else:
        model = T5ForConditionalGeneration(T5Config(  # type: ignore[call-arg]
            vocab_size=vocab_size, d_model=hidden, d_kv=hidden // heads, d_ff=2 * hidden,
            num_layers=layers, num_decoder_layers=layers, num_heads=heads, dropout_rate=0.0,
            pad_token_id=pad, eos_token_id=eos, decoder_start_token_id=pad))
    model.generation_config.pad_token_id = pad
    return model.to(dtype).eval()
