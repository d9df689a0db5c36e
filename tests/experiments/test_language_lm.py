"""The language-model experiment (Gradients of Counterfactuals, section 3.2) on the tiny model:
its counts are checked against direct recomputation, and its rules on hand-made cases."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
import torch

from attribkit.experiments import experiments
from attribkit.experiments.language_lm import (
    NOT_WORDS,
    curve_counts,
    language_study,
    markdown,
    repeat_study,
)
from attribkit.zoo import language

pytest.importorskip("pandas")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def lm(tiny_lm: language.TrainedLanguageModel) -> language.TrainedLanguageModel:
    """The shared tiny model (``tests/conftest.py``)."""
    return tiny_lm


def test_curve_counts_on_hand_made_curves() -> None:
    a = torch.linspace(0, 1, 11)
    flat = 0.9 * torch.clamp(a / 0.5, max=1.0)          # saturates at alpha = 0.5
    rising = 0.5 * a                                     # linear: 20 % of its rise in the tail
    high = 0.3 + 0.0 * a                                 # starts high, constant: flat
    k = curve_counts(torch.stack([flat, rising, high]), near_zero=0.01, late=0.1)
    assert k == {"curves": 3, "start_near_zero": 2, "flat": 2, "rising_late": 1}


def test_repeat_study_counts_where_the_top_word_sits(lm: language.TrainedLanguageModel) -> None:
    v = lm.corpus.vocab
    w = next(x for x in v[2:] if x not in NOT_WORDS)
    other = [x for x in v[2:] if x not in NOT_WORDS and x != w][:9]

    def sec(words: list[str], nxt: str) -> language.Section:
        ids = lm.corpus.ids(words)
        return language.Section(ids=ids, next_id=int(lm.corpus.ids([nxt])[0]),
                                words=tuple(words), next_word=nxt)

    repeated = sec([*other[:4], w, *other[4:9]], w)       # w at position 4, next word w
    repeated2 = sec([*other[:2], w, *other[2:9]], w)      # w at position 2, next word w
    plain = sec([*other[:9], other[0]], w)             # w does not occur: not counted
    secs = [repeated, repeated2, plain]
    ig = torch.zeros(3, 10)
    gx = torch.zeros(3, 10)
    ig[0, 4] = ig[1, 9] = 1.0                              # IG top: the repeat, then the last
    gx[0, 2] = gx[1, 2] = 1.0                              # gradient top: a miss, then the repeat
    r = repeat_study(lm, secs, ig, gx, torch.tensor([0.1, 0.2, 0.9]), steps=4)
    assert (r.sections, r.ig_top_repeat, r.gradient_top_repeat, r.last_top_ig) == (2, 1, 1, 1)
    assert r.chance == pytest.approx(0.2)
    # the rule: the most confident qualifying section (0.2), not the most confident (0.9)
    assert r.example is not None and r.example.words == repeated2.words


def test_study_matches_a_direct_computation(lm: language.TrainedLanguageModel) -> None:
    s = language_study(lm, curves=6, pool=40, steps=16, alphas=11)
    assert s.scores.shape == (6, 11)
    emb = lm.next_word.embed(torch.stack([x.ids for x in s.secs]))
    target = torch.tensor([x.next_id for x in s.secs])
    with torch.no_grad():
        torch.testing.assert_close(s.scores[:, -1], lm.next_word(emb)[torch.arange(6), target])
        torch.testing.assert_close(s.scores[:, 0], s.p0[target])  # F(0) is one distribution
    assert float(s.p0.sum()) == pytest.approx(1.0)
    draws = language.sections(lm, n=40, length=10, seed=1)
    assert s.oov_count == sum(x.next_id == 0 for x in draws)
    if s.oov is not None:  # the rule: the pool's first section whose next word is <unk>
        assert s.oov[0].words == next(x for x in draws if x.next_id == 0).words
        assert float(s.oov[1][0]) == pytest.approx(float(s.p0[0]))
    # Figure 9's example is the most confident word prediction of the pool
    with torch.no_grad():
        p = lm.next_word(lm.next_word.embed(torch.stack([x.ids for x in draws])))
    conf = [float(p[i, x.next_id]) for i, x in enumerate(draws) if x.next_word not in NOT_WORDS]
    assert s.fig9.prediction == pytest.approx(max(conf), rel=1e-9)
    rep = [float(p[i, x.next_id]) for i, x in enumerate(draws)
           if x.next_word not in NOT_WORDS and x.next_word in x.words]
    assert s.repeat.sections == len(rep)
    if rep:
        assert s.repeat.example is not None
        assert s.repeat.example.prediction == pytest.approx(max(rep), rel=1e-9)
    assert s.max_gap < 0.05 and (s.large_gaps == 0) == (s.max_gap <= 0.01)
    text = markdown(s)
    assert "Figure 9" in text and "| Figure 8" in text


def test_registered_for_the_language_demo() -> None:
    assert "language_lm" in experiments("language")


@pytest.mark.slow
def test_the_demo_runs_this_experiment(lm: language.TrainedLanguageModel,
                                       tmp_path: pathlib.Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from attribkit.demo.language import language_task

    monkeypatch.setattr(language, "load_language_model", lambda *a, **k: lm)
    result = language_task(tmp_path, quiet=True)
    html = result.report.read_text(encoding="utf-8")
    # the experiment's section (its rule stated), not a second copy, and its summary note
    assert "Chosen by rule: the most confident prediction of a word among 100" in html
    assert "explain_generation" in html
    assert len(result.notes) == 1 and result.notes[0].startswith("language_lm: validation")
    assert f"{lm.valid_perplexity:.1f}" in result.notes[0]
