"""The text report (``attribkit demo --task text``): MiniLM sentiment, token attributions."""

from __future__ import annotations

import math
import pathlib
import time

from attribkit.demo.result import DemoResult, log

__all__ = ["DEMO_TEXTS", "text_task"]

DEMO_TEXTS = (
    "I love this phone, the battery lasts all day!",
    "Worst service ever, I am never coming back.",
    "The movie was not bad at all.",
)
"""The sentences the report explains."""


def text_task(out: pathlib.Path, quiet: bool, photos: int = 3) -> DemoResult:
    """IG and gradient x input per token of :data:`DEMO_TEXTS` (``photos`` is not used)."""
    from attribkit.report import Report
    from attribkit.viz import tokens_ansi, tokens_html
    from attribkit.zoo import text

    del photos
    t0 = time.perf_counter()
    result = DemoResult(report=out / "report.html")
    rep = Report("attribkit demo: MiniLM sentiment, token attributions")
    rep.text("Integrated Gradients at the word-embedding layer from the [PAD] baseline, and "
             "gradient x input, for the positive class. Green tokens push towards positive, "
             "red towards negative.")
    log("[1/1] loading the MiniLM sentiment classifier (trains its head once, then cached)",
        quiet)
    model = text.load_sentiment_classifier()
    for sentence in DEMO_TEXTS:
        ex = text.explain_text(sentence, steps=48, model=model, progress=not quiet)
        attr = ex.attribution
        gap, rg = attr.gap, attr.relative_gap
        p_pos = float(attr.output[0]) if attr.output is not None else math.nan
        rep.heading(sentence, 3)
        f0 = attr.baseline_output
        rep.raw(tokens_html(ex.tokens, ex.scores, title="integrated gradients",
                            target="positive", output=p_pos,
                            baseline_output=float(f0[0]) if f0 is not None else None))
        row = {"text": sentence[:30], "F(x)": p_pos,
               "sum IG": float(attr.total()[0]),
               "gap": float(gap[0]) if gap is not None else math.nan,
               "rel_gap": float(rg[0]) if rg is not None else math.nan}
        try:
            gx = text.explain_text(sentence, method="gradient_x_input", model=model)
            rep.raw(tokens_html(gx.tokens, gx.scores, title="gradient x input",
                                target="positive", output=p_pos))
            row["sum grad*x"] = float(gx.attribution.total()[0])
        except Exception as err:
            result.notes.append(f"gradient_x_input on text: {str(err).splitlines()[0][:120]}")
        rep.table(["word", "IG"], [[w, v] for w, v in ex.words()])
        result.rows.append(row)
        if not quiet:
            print(tokens_ansi(ex.tokens, ex.scores))
    result.seconds = time.perf_counter() - t0
    rep.save(result.report)
    return result
