"""Training the LSTM language model: the convergence rule on hand-made perplexity sequences, and
a training interrupted after an epoch resumes from its checkpoint to the same weights, bit for
bit, as one that ran through (a small configuration, seconds)."""

from __future__ import annotations

import dataclasses
import pathlib

import pytest
import torch

from attribkit.core.threads import one_thread
from attribkit.zoo import language
from attribkit.zoo.language import training
from attribkit.zoo.language.config import schedule_step

pytest.importorskip("pandas")

RULE = language.LMConfig(epochs=30, plateau=0.02, max_decays=2, lr_decay=0.25)
#: A small, quick training with enough epochs for the rule to act (seconds on one core).
SMALL = dataclasses.replace(language.TINY_CONFIG, max_train_tokens=6_000, epochs=6, plateau=0.05)


def _decisions(history: list[float], config: language.LMConfig) -> list[str]:
    out, decays = [], 0
    for k in range(1, len(history) + 1):
        out.append(schedule_step(history[:k], decays, config))
        decays += out[-1] == "decay"
        if out[-1] == "stop":
            break
    return out


def test_rule_decays_on_a_plateau_and_stops_after_two_decays() -> None:
    # gains: 25 %, 13.3 %, 1.5 % (decay), 6.25 %, 0.83 % (decay), 0.42 % (stop); 117 never read
    seq = [200.0, 150.0, 130.0, 128.0, 120.0, 119.0, 118.5, 117.0]
    assert _decisions(seq, RULE) == ["continue", "continue", "continue", "decay", "continue",
                                     "decay", "stop"]


def test_rule_compares_with_the_best_epoch_and_caps_the_epochs() -> None:
    # 95 is worse than 90 (decay); 89 gains 6 % on 95 but only 1.1 % on the best, 90 (decay)
    assert _decisions([100.0, 90.0, 95.0, 89.0], RULE) == ["continue", "continue", "decay",
                                                           "decay"]
    assert schedule_step([100.0, 98.0], 0, RULE) == "continue"  # exactly 2 %: enough
    assert schedule_step([100.0, 98.5], 2, RULE) == "stop"
    capped = dataclasses.replace(RULE, epochs=3)
    assert _decisions([100.0, 50.0, 25.0], capped) == ["continue", "continue", "stop"]


def _fresh(seed: int) -> language.LSTMLanguageModel:
    torch.manual_seed(seed)
    return language.LSTMLanguageModel(SMALL)


@pytest.fixture(scope="module")
def through() -> tuple[language.LSTMLanguageModel, training.TrainingLog]:
    """The small configuration trained without interruption."""
    corpus = language.tweet_corpus(SMALL.vocab_size, SMALL.seed)
    model = _fresh(SMALL.seed)
    return model, training.train(model, corpus, SMALL)


def test_training_follows_the_rule_and_keeps_the_best_epoch(
        through: tuple[language.LSTMLanguageModel, training.TrainingLog]) -> None:
    corpus = language.tweet_corpus(SMALL.vocab_size, SMALL.seed)
    model, log = through
    steps = _decisions(log.history, SMALL)
    assert steps[-1] == "stop" and "stop" not in steps[:-1] and len(steps) == len(log.history)
    expected_lr, lrs = SMALL.lr, []
    for step in steps:
        lrs.append(expected_lr)
        expected_lr *= SMALL.lr_decay if step == "decay" else 1.0
    assert log.lrs == pytest.approx(lrs, rel=1e-12)
    assert "decay" in steps  # the small run is long enough for the rule to act
    with one_thread():
        valid = training.perplexity(model, corpus.valid, SMALL.bptt, SMALL.batch)
    assert valid == pytest.approx(min(log.history), rel=1e-9)


def test_an_interrupted_training_resumes_to_the_same_weights(
        through: tuple[language.LSTMLanguageModel, training.TrainingLog],
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = language.tweet_corpus(SMALL.vocab_size, SMALL.seed)
    model, log = through

    ckpt = tmp_path / "lstm.ckpt.pt"
    real = training.perplexity
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> float:
        calls["n"] += 1
        if calls["n"] == 3:  # during the third epoch's validation: two epochs checkpointed
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training, "perplexity", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(_fresh(SMALL.seed), corpus, SMALL, checkpoint=ckpt)
    monkeypatch.setattr(training, "perplexity", real)
    assert ckpt.is_file()
    resumed = _fresh(seed=123)  # its own initial weights are replaced by the checkpoint's
    again = training.train(resumed, corpus, SMALL, checkpoint=ckpt)
    assert again.history == log.history and again.lrs == log.lrs
    for (name, p), q in zip(model.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.equal(p, q), name
