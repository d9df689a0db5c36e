"""Integrated Gradients of a generated continuation: attribkit against Captum's LLMAttribution.

A GPT-2 with a few million parameters (random initialisation, built in code: nothing is
downloaded), a 30-token prompt and a 20-token continuation (teacher forcing). Both libraries
attribute each continuation token's log-probability to the prompt's token embeddings with
Integrated Gradients, the same Gauss-Legendre rule and the same number of steps, all steps in one
batch; so equal steps means equal accuracy, which the script checks (the largest difference of
the two matrices and the completeness gaps). Captum's ``LLMGradientAttribution`` runs one
``LayerIntegratedGradients`` per generated token; attribkit scores all generated tokens from one
forward pass per chunk of path points and takes their gradients in one vectorised backward pass.

Run: ``python benchmarks/generation.py [--quick]``; writes ``docs/benchmarks-generation.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from _common import SAME_AS_CAPTUM
from attribkit.core import pages
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-generation.md"


def _captum(model: object, tok: object, prompt: str, target: str, steps: int) -> torch.Tensor:
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    lig = LayerIntegratedGradients(model, model.get_input_embeddings())  # type: ignore[attr-defined]
    res = LLMGradientAttribution(lig, tok).attribute(TextTokenInput(prompt, tok), target=target,
                                                     n_steps=steps)
    out: torch.Tensor = res.token_attr
    return out


def main() -> None:
    """Time both libraries, alternating runs, and write the page section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one repeat, smaller model")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vocab, hidden, layers = (2000, 128, 2) if args.quick else (8000, 256, 4)
    repeats = 1 if args.quick else args.repeats
    steps, n_prompt, n_new = 50, 30, 20
    tok = tiny_tokenizer(vocab)
    model = tiny_model("tiny-gpt2", vocab_size=vocab, hidden=hidden, layers=layers, heads=4)
    n_params = sum(p.numel() for p in model.parameters())
    gen = torch.Generator().manual_seed(0)
    words = tok.convert_ids_to_tokens(torch.randint(200, vocab, (n_prompt + n_new,),
                                                    generator=gen).tolist())
    prompt, target = " ".join(words[:n_prompt]), " ".join(words[n_prompt:])

    def ours() -> object:
        return explain_generation(model, tok, prompt, target, baseline=0, steps=steps,
                                  batch_size=steps, **SAME_AS_CAPTUM)

    def theirs() -> object:
        return _captum(model, tok, prompt, target, steps)

    # a cheap warm-up of both code paths (2 steps), so that neither pays first-call costs
    explain_generation(model, tok, prompt, target, baseline=0, steps=2, batch_size=2,
                       **SAME_AS_CAPTUM)
    _captum(model, tok, prompt, target, 2)
    for _ in range(args.warmup):
        ours()
        theirs()
    load0 = os.getloadavg()[0]
    ta, tb, ca, cb = [], [], [], []
    a: object = None
    b: object = None
    for r in range(repeats):  # alternating which goes first
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            t, c = time.perf_counter(), time.process_time()
            if side == 0:
                a = ours()
                ta.append(time.perf_counter() - t)
                ca.append(time.process_time() - c)
            else:
                b = theirs()
                tb.append(time.perf_counter() - t)
                cb.append(time.process_time() - c)
    ratio = statistics.median(y / x for x, y in zip(ta, tb, strict=True))
    res = a
    assert hasattr(res, "matrix") and hasattr(res, "relative_gap")
    assert isinstance(b, torch.Tensor)
    diff = float((res.matrix - b).abs().max())
    scale = float(res.matrix.abs().max())
    rg = res.relative_gap
    gap = float(rg.max()) if rg is not None else float("nan")
    load = os.getloadavg()[0]
    body = f"""## IG of a 20-token continuation of a 30-token prompt

Machine: {platform.machine()} CPU, {os.cpu_count()} cores visible, **shared with other jobs and
noisy** (1-minute load average {load0:.1f} before the runs, {load:.1f} after); torch {torch.__version__} with
{torch.get_num_threads()} thread(s), float32. Model: GPT-2, {layers} layers, width {hidden},
vocabulary {vocab} ({n_params / 1e6:.1f} M parameters, random initialisation). Prompt
{n_prompt} tokens, continuation {n_new} tokens (teacher forcing), Gauss-Legendre, {steps} steps,
all steps in one batch in both libraries, baseline: token 0 at every prompt position (Captum's
default). Medians over {repeats} pairs (which side goes first alternates) after {args.warmup}
full warm-up run(s) each (and one 2-step warm-up of each). attribkit chose the loop of backward passes here (the
problem is above its limit for the vectorised backward).

| | attribkit `explain_generation` | Captum `LLMGradientAttribution` + `LayerIntegratedGradients` |
|---|---|---|
| wall time (s, median) | {statistics.median(ta):.2f} | {statistics.median(tb):.2f} |
| CPU time (s, median, this process) | {statistics.median(ca):.2f} | {statistics.median(cb):.2f} |
| model forward calls | {res.model_calls} | about {2 * n_new + n_new} (per token: input, baseline, path) |
| speed-up (median of paired ratios) | **{ratio:.2f}x** | 1 |

Equal accuracy: the two (20 x 30) matrices differ by at most {diff:.1e} (largest entry
{scale:.2e}); the largest completeness gap per generated token is {gap:.2%} of
`log p(y_t | x) - log p(y_t | x')` in both (the same quadrature).
"""
    print(body)
    if args.quick or repeats < 5 or args.warmup < 1:  # the page shows the defaults only
        print("not written to the page: it publishes at least 5 pairs after a warm-up")
        return
    pages.write_section(PAGE, "generation", body,
                        title="# Benchmarks: attribution of generated text "
                              "(`benchmarks/generation.py`)")


if __name__ == "__main__":
    main()
