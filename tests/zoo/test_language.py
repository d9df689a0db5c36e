"""attribkit.zoo.language: the LSTM language model of Gradients of Counterfactuals, section 3.2
(tiny configuration).

The tiny configuration trains in seconds and is little more than a unigram model; the full
model's numbers are in docs/zoo-language.md (produced by
``python -m attribkit.experiments.language_lm``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import attribkit
from attribkit.core.errors import InputError
from attribkit.zoo import language
from attribkit.zoo.language.explain import next_word_saturation, word_table

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


def test_tokenize_normalises_tweets() -> None:
    words = language.tokenize("@Bob I LOVE it!!! 42 times http://x.co/a")
    assert words == ["@user", "i", "love", "it", "!", "!", "!", "N", "times", "<url>"]


def test_corpus_and_perplexity(lm: language.TrainedLanguageModel) -> None:
    c = lm.corpus
    assert c.vocab[:2] == ("<unk>", "<eos>") and len(c.vocab) == language.TINY_CONFIG.vocab_size
    assert len(c.train) > 15 * len(c.test) > 0
    assert c.words(c.ids(["the", "zzzunknownzzz"])) == ["the", "<unk>"]
    # trained: far better than uniform over the vocabulary, and the cache returns the same model
    assert 1.0 < lm.test_perplexity < 0.5 * len(c.vocab)
    again = language.load_language_model(language.TINY_CONFIG, dtype=torch.float64)
    assert again.test_perplexity == lm.test_perplexity
    for p, q in zip(lm.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(InputError, match="vocab_size"):
        language.tweet_corpus(vocab_size=2)


def test_ig_completeness_per_prediction(lm: language.TrainedLanguageModel) -> None:
    secs = language.sections(lm, n=6, seed=1)
    emb = lm.next_word.embed(torch.stack([s.ids for s in secs]))
    target = torch.tensor([s.next_id for s in secs])
    ig = attribkit.integrated_gradients(lm.next_word, emb, target=target)  # default steps
    assert ig.output is not None and ig.baseline_output is not None
    torch.testing.assert_close(ig.output, lm.next_word(emb)[torch.arange(6), target])
    assert ig.relative_gap is not None and float(ig.relative_gap.max()) < 0.01


def test_saturation_starts_near_zero_for_in_vocabulary_words(
        lm: language.TrainedLanguageModel) -> None:
    secs = language.sections(lm, n=20, seed=0)
    alphas, scores = next_word_saturation(lm, secs, alphas=11)
    assert scores.shape == (20, 11) and float(alphas[0]) == 0.0
    # the end of the curve is the prediction itself
    emb = lm.next_word.embed(torch.stack([s.ids for s in secs]))
    target = torch.tensor([s.next_id for s in secs])
    torch.testing.assert_close(scores[:, -1], lm.next_word(emb)[torch.arange(20), target])
    in_vocab = torch.tensor([s.next_id != 0 for s in secs])
    assert in_vocab.any() and (~in_vocab).any()
    # as in the paper: in-vocabulary targets start near 0; the out-of-vocabulary one does not
    assert float(scores[in_vocab, 0].max()) < 0.05
    assert float(scores[~in_vocab, 0].min()) > float(scores[in_vocab, 0].max())


def test_figure_9_table_on_a_fixed_sentence(lm: language.TrainedLanguageModel) -> None:
    words = ["i", "just", "want", "to", "say", "thank", "you", "so", "much", "for"]
    sec = language.Section(ids=lm.corpus.ids(words), next_id=int(lm.corpus.ids(["the"])[0]),
                           words=tuple(words), next_word="the")
    table = word_table(lm, sec)
    rows = table.rows()
    assert [r[0] for r in rows] == ["Sentence", "Integrated gradients", "Gradients"]
    assert all(len(r) == 11 for r in rows) and rows[0][1:] == words
    assert table.integrated_gradients.shape == table.gradients.shape == (10,)
    # the IG total equals the prediction minus the score at alpha = 0
    assert abs(table.ig_total - (table.prediction - table.baseline_score)) <= 0.01 * abs(
        table.prediction - table.baseline_score) + 1e-12
    assert table.caption().startswith("Prediction for the: ")
    md = table.to_markdown()
    assert md.startswith("| Sentence") and md.count("\n| ") == 2
    assert "total integrated gradient" in md


def test_next_word_is_the_full_models_last_position(lm: language.TrainedLanguageModel) -> None:
    secs = language.sections(lm, n=4, seed=2)
    ids = torch.stack([s.ids for s in secs])
    with torch.no_grad():
        logits, _ = lm.model(ids)  # every position decoded, from the token ids
        got = lm.next_word(lm.next_word.embed(ids))
    torch.testing.assert_close(got, torch.softmax(logits[:, -1], dim=-1), rtol=0, atol=1e-12)
    assert lm.valid_history and min(lm.valid_history) == pytest.approx(lm.valid_perplexity)
