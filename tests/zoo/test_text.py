"""attribkit.zoo.text: MiniLM sentiment classifier, baselines, token and word attributions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import attribkit
from attribkit.core.errors import InputError
from attribkit.zoo import text
from attribkit.zoo.text.encoder import tokenizer


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Small batches on a shared machine: one thread is faster (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_word_scores_merges_wordpieces() -> None:
    tokens = ["[CLS]", "un", "##believ", "##able", "movie", "[SEP]", "[PAD]"]
    scores = torch.tensor([9.0, 1.0, 2.0, 3.0, -1.0, 9.0, 9.0])
    assert text.word_scores(tokens, scores) == [("unbelievable", 6.0), ("movie", -1.0)]
    assert text.word_scores(tokens, scores, skip_special=False)[0] == ("[CLS]", 9.0)
    with pytest.raises(InputError, match="tokens but"):
        text.word_scores(tokens, scores[:3])


def test_baseline_ids_keep_specials_and_padding() -> None:
    ids, mask = text.encode(["I love this", "terrible service today , really"])
    tok = tokenizer()
    pad = text.baseline_ids(ids, "pad")
    unk = text.baseline_ids(ids, "unk")
    assert pad is not None and unk is not None and text.baseline_ids(ids, "zero") is None
    special = (ids == tok.cls_token_id) | (ids == tok.sep_token_id) | (mask == 0)
    assert torch.equal(pad[special], ids[special]) and torch.equal(unk[special], ids[special])
    assert (pad[~special] == tok.pad_token_id).all() and (unk[~special] == tok.unk_token_id).all()
    assert text.tokens_of(ids[0])[:5] == ["[CLS]", "i", "love", "this", "[SEP]"]
    with pytest.raises(InputError, match="baseline"):
        text.baseline_ids(ids, "mask")


def test_sentiment_split_is_balanced_disjoint_and_seeded() -> None:
    a = text.sentiment_data(n_train=40, n_test=20, seed=3)
    b = text.sentiment_data(n_train=40, n_test=20, seed=3)
    c = text.sentiment_data(n_train=80, n_test=20, seed=3)
    assert a.train_texts == b.train_texts and a.test_texts == b.test_texts
    assert (a.train_labels == b.train_labels).all()
    assert a.train_labels.sum() == 20 and a.test_labels.sum() == 10
    assert not set(a.train_texts) & set(a.test_texts)
    assert set(a.test_texts) == set(c.test_texts)  # test set independent of n_train


@pytest.fixture(scope="module")
def small_model() -> text.SentimentClassifier:
    """A head trained on 200 tweets (about 20 s), float64 for precise completeness."""
    head = text.train_sentiment_head(n_train=200, n_test=100, seed=0, cache=False)
    model = text.SentimentClassifier(text.load_encoder(), head.weight, head.bias).double().eval()
    model.head_info = head
    return model


@pytest.mark.slow
def test_small_head_accuracy(small_model: text.SentimentClassifier) -> None:
    info = small_model.head_info
    assert info is not None and info.n_train == 200
    assert info.test_accuracy >= 0.7  # 200 tweets; the full head reaches >= 0.8 (docs)
    texts = ["I love this, it is wonderful", "This is terrible and awful"]
    ids, mask = text.encode(texts)
    with torch.no_grad():
        logits = small_model(ids, mask)
    # The logits are antisymmetric and their difference is the logistic regression's score
    # w . e + b on the batched-by-length embeddings of embed().
    torch.testing.assert_close(logits[:, 0], -logits[:, 1])
    emb = torch.as_tensor(text.embed(texts, encoder=small_model.encoder.float())).double()
    small_model.double()
    lin = emb @ info.weight.double() + info.bias
    torch.testing.assert_close(logits[:, 1] - logits[:, 0], lin, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pad", "unk", "zero"])
def test_ig_completeness_at_embedding_layer(small_model: text.SentimentClassifier,
                                            kind: str) -> None:
    ids, mask = text.encode(["the food was great"])
    base = text.baseline_ids(ids, kind)
    attr = attribkit.integrated_gradients(
        small_model, ids, target=1, baseline=base, steps=32, forward_args=(mask,),
        layer=small_model.word_embeddings_module)
    emb = small_model.encoder.embeddings.word_embeddings
    with torch.no_grad():  # F(x) - F(x') computed directly, x' through the embedding table
        fx = small_model(ids, mask)[0, 1]
        if base is None:
            out = small_model.encoder(inputs_embeds=torch.zeros_like(emb(ids)),
                                      attention_mask=mask).last_hidden_state
            m = mask.double().unsqueeze(-1)
            pooled = torch.nn.functional.normalize((out * m).sum(1) / m.sum(1), dim=-1)
            fb = small_model.head(pooled)[0, 1]
        else:
            fb = small_model(base, mask)[0, 1]
    scores = attr.sum_embedding()[0]
    assert scores.shape == ids.shape[1:]
    assert scores.sum().item() == pytest.approx((fx - fb).item(), rel=1e-2, abs=1e-4)
    if kind != "zero":  # [CLS] and [SEP] are the same in input and baseline: exactly zero
        assert scores[0].item() == 0.0 and scores[-1].item() == 0.0


@pytest.mark.slow
def test_explain_text_and_sentiment_word(small_model: text.SentimentClassifier) -> None:
    expl = text.explain_text("I love this phone", baseline="pad", target=1, steps=16,
                             model=small_model)
    words = expl.words()
    assert [w for w, _ in words] == ["i", "love", "this", "phone"]
    assert max(words, key=lambda w: w[1])[0] == "love"
    neg = text.explain_text("the service was terrible", baseline="pad", target=0, steps=16,
                            model=small_model)
    assert max(neg.words(), key=lambda w: w[1])[0] == "terrible"


@pytest.mark.slow
def test_similarity_model() -> None:
    model = text.SimilarityModel("the weather is lovely today").double()
    ids, mask = text.encode(["the weather is lovely today", "stock prices fell sharply"])
    with torch.no_grad():
        sim = model(ids, mask)
    assert sim.shape == (2,)
    assert sim[0].item() == pytest.approx(1.0, abs=1e-6)
    assert sim[1].item() < 0.5
    one, m1 = text.encode(["the weather is nice today"])
    attr = attribkit.integrated_gradients(model, one, baseline=text.baseline_ids(one, "pad"),
                                          steps=32, forward_args=(m1,),
                                          layer=model.word_embeddings_module)
    with torch.no_grad():
        delta = model(one, m1) - model(text.baseline_ids(one, "pad"), m1)  # type: ignore[arg-type]
    assert attr.sum_embedding().sum().item() == pytest.approx(delta.item(), rel=1e-2, abs=1e-4)
