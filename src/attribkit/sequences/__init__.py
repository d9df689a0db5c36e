"""Attribution for sequence generation: which prompt tokens made the model write each token.

:func:`explain_generation` works on Hugging Face causal LMs (GPT-2, Llama-style) and
encoder-decoders (T5, Marian): the target of row ``t`` is the log-probability of generated token
``t`` given its prefix (teacher forcing), and the result is a (generated x prompt) matrix with
Integrated Gradients (completeness reported per token), saliency, gradient x input, occlusion or
Shapley values over groups of tokens. :mod:`attribkit.sequences.tiny` builds small random models
and a word-level tokenizer in code (no downloads). ``transformers`` is imported only when used.

The LSTM language model of "Gradients of Counterfactuals" (section 3.2) is a zoo model:
:mod:`attribkit.zoo.language`.
"""

from __future__ import annotations

from attribkit.sequences.explain import GENERATION_METHODS, explain_generation
from attribkit.sequences.result import GenerationAttribution

__all__ = ["GENERATION_METHODS", "GenerationAttribution", "explain_generation"]
