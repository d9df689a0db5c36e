"""Training the LSTM language model (seeded, cached) and its held-out perplexity."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.progress import progress_bar
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.language.config import DEFAULT_CONFIG, MODEL_VERSION, LMConfig
from attribkit.zoo.language.corpus import LanguageCorpus, tweet_corpus
from attribkit.zoo.language.model import LSTMLanguageModel, NextWordModel, TrainedLanguageModel

__all__ = ["load_language_model", "perplexity"]


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
           progress: bool) -> list[float]:
    """Train up to ``config.epochs`` epochs; keep the best validation epoch; its history."""
    train = corpus.train
    if config.max_train_tokens:
        train = train[:config.max_train_tokens]
    data = _batches(train, config.batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=config.lr_decay)
    starts = list(range(0, data.shape[1] - 1, config.bptt))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many small LSTM kernels: one thread is faster on a shared machine
    history: list[float] = []
    best: dict[str, Tensor] = {}
    try:
        with progress_bar(config.epochs * len(starts), "training the LSTM language model",
                          progress, unit="batch") as bar:
            for _ in range(config.epochs):
                model.train()
                _epoch(model, data, opt, starts, config, bar.update)
                sched.step()
                model.eval()
                history.append(perplexity(model, corpus.valid, config.bptt, config.batch))
                if history[-1] <= min(history):
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    finally:
        torch.set_num_threads(threads)
        model.eval()
    model.load_state_dict(best)
    return history


def _epoch(model: LSTMLanguageModel, data: Tensor, opt: torch.optim.Optimizer,
           starts: list[int], config: LMConfig, tick: Callable[[int], object]) -> None:
    state: Any = None
    for s in starts:
        x = data[:, s:s + config.bptt]
        y = data[:, s + 1:s + 1 + x.shape[1]]
        x = x[:, :y.shape[1]]
        logits, state = model(x, state)
        state = tuple(h.detach() for h in state)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        opt.step()
        tick(1)


def load_language_model(config: LMConfig = DEFAULT_CONFIG, *, cache: bool = True,
                        progress: bool = False,
                        dtype: torch.dtype = torch.float32) -> TrainedLanguageModel:
    """The trained LSTM language model: from the cache, or trained now (seeded) and cached.

    Training the default configuration (three epochs, the best kept) takes about ten minutes on
    one CPU core.

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
        history = [float(v) for v in blob["valid_history"]]
    else:
        torch.manual_seed(config.seed)
        model = LSTMLanguageModel(config)
        t0 = time.perf_counter()
        history = _train(model, corpus, config, progress)
        info = {"seconds": time.perf_counter() - t0,
                "valid_ppl": perplexity(model, corpus.valid, config.bptt, config.batch),
                "test_ppl": perplexity(model, corpus.test, config.bptt, config.batch)}
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"state": model.state_dict(), "valid_history": history, **info}, tmp)
            tmp.replace(path)
    model = model.to(dtype).eval()
    return TrainedLanguageModel(model=model, next_word=NextWordModel(model).eval(),
                                corpus=corpus, config=config, valid_perplexity=info["valid_ppl"],
                                test_perplexity=info["test_ppl"], train_seconds=info["seconds"],
                                valid_history=tuple(history))
