"""Training the LSTM language model (seeded, cached) and its held-out perplexity."""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from attribkit.core.progress import progress_bar
from attribkit.core.threads import one_thread
from attribkit.zoo._cache import cache_dir
from attribkit.zoo.language.config import DEFAULT_CONFIG, MODEL_VERSION, LMConfig, schedule_step
from attribkit.zoo.language.corpus import LanguageCorpus, tweet_corpus
from attribkit.zoo.language.model import LSTMLanguageModel, NextWordModel, TrainedLanguageModel

__all__ = ["TrainingLog", "load_language_model", "perplexity", "train"]


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


@dataclasses.dataclass
class TrainingLog:
    """Everything an interrupted training needs to resume (saved after every epoch)."""

    history: list[float]
    lrs: list[float]
    decays: int
    seconds: float
    best: dict[str, Tensor]
    done: bool = False


def _checkpoint_path(config: LMConfig) -> pathlib.Path:
    return cache_dir("language") / f"lstm_v{MODEL_VERSION}_{config.key()}.ckpt.pt"


def _save(path: pathlib.Path, model: LSTMLanguageModel, opt: torch.optim.Optimizer,
          state: TrainingLog) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                **dataclasses.asdict(state)}, tmp)
    tmp.replace(path)


def train(model: LSTMLanguageModel, corpus: LanguageCorpus, config: LMConfig, *,
          checkpoint: pathlib.Path | None = None, progress: bool = False) -> TrainingLog:
    """Train ``model`` in place under the convergence rule; it ends with the best epoch's weights.

    Each epoch is one pass over the training stream in order (no shuffling, no dropout), then the
    validation perplexity decides (:func:`~attribkit.zoo.language.config.schedule_step`) whether
    to continue, divide the learning rate or stop. Training runs on one thread with deterministic
    kernels, so a seed gives the same weights bit for bit on one machine and torch build.

    Parameters
    ----------
    model : LSTMLanguageModel
        A freshly initialised model (seeded by the caller).
    corpus : LanguageCorpus
        The streams.
    config : LMConfig
        Training settings and the convergence rule.
    checkpoint : pathlib.Path, optional
        File written after every epoch; when it exists, training resumes from it (and gives the
        same weights as an uninterrupted training).
    progress : bool
        Show a progress bar.

    Returns
    -------
    TrainingLog
        The per-epoch validation perplexities and learning rates, the decays and the seconds.
    """
    train_ids = corpus.train[:config.max_train_tokens] if config.max_train_tokens else corpus.train
    data = _batches(train_ids, config.batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    state = TrainingLog(history=[], lrs=[], decays=0, seconds=0.0, best={})
    if checkpoint is not None and checkpoint.is_file():
        blob = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(blob.pop("model"))
        opt.load_state_dict(blob.pop("opt"))
        state = TrainingLog(**blob)
    starts = list(range(0, data.shape[1] - 1, config.bptt))
    with one_thread(), progress_bar(config.epochs * len(starts),
                                    "training the LSTM language model", progress,
                                    unit="batch") as bar:
        bar.update(len(state.history) * len(starts))
        while not state.done:
            t0 = time.perf_counter()
            model.train()
            _epoch(model, data, opt, starts, config, bar.update)
            model.eval()
            state.history.append(perplexity(model, corpus.valid, config.bptt, config.batch))
            state.lrs.append(float(opt.param_groups[0]["lr"]))
            if state.history[-1] <= min(state.history):
                state.best = {k: v.detach().clone() for k, v in model.state_dict().items()}
            step = schedule_step(state.history, state.decays, config)
            if step == "decay":
                state.decays += 1
                for group in opt.param_groups:
                    group["lr"] *= config.lr_decay
            state.done = step == "stop"
            state.seconds += time.perf_counter() - t0
            if checkpoint is not None:
                _save(checkpoint, model, opt, state)
    model.load_state_dict(state.best)
    model.eval()
    return state


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

    Training the default configuration to convergence (see
    :func:`~attribkit.zoo.language.config.schedule_step`) takes about half an hour on one CPU
    core; it is checkpointed after every epoch, so an interrupted training resumes where it
    stopped.

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
    corpus = tweet_corpus(config.vocab_size, config.seed)
    path = cache_dir("language") / f"lstm_v{MODEL_VERSION}_{config.key()}.pt"
    model = LSTMLanguageModel(config)
    if cache and path.is_file():
        blob = torch.load(path, weights_only=True)
        model.load_state_dict(blob["state"])
    else:
        torch.manual_seed(config.seed)
        model = LSTMLanguageModel(config)
        log = train(model, corpus, config, checkpoint=_checkpoint_path(config) if cache else None,
                    progress=progress)
        blob = {"state": model.state_dict(), "valid_history": log.history, "lrs": log.lrs,
                "seconds": log.seconds,
                "valid_ppl": perplexity(model, corpus.valid, config.bptt, config.batch),
                "test_ppl": perplexity(model, corpus.test, config.bptt, config.batch)}
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save(blob, tmp)
            tmp.replace(path)
            _checkpoint_path(config).unlink(missing_ok=True)
    model = model.to(dtype).eval()
    return TrainedLanguageModel(model=model, next_word=NextWordModel(model).eval(),
                                corpus=corpus, config=config,
                                valid_perplexity=float(blob["valid_ppl"]),
                                test_perplexity=float(blob["test_ppl"]),
                                train_seconds=float(blob["seconds"]),
                                valid_history=tuple(float(v) for v in blob["valid_history"]),
                                lr_history=tuple(float(v) for v in blob["lrs"]))
