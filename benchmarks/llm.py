"""IG of SmolLM2's answer: attribkit against Captum's LLMGradientAttribution and inseq.

SmolLM2-135M-Instruct (``attribkit.zoo.llm``: the float32 dequantised copy of the wheel's 4-bit
GGUF file), a prompt of about 60 tokens and the model's own greedy answer of 20 tokens, fixed as
token ids so that every library explains the same tokens (teacher forcing). All three attribute
each answer token's log-probability to the prompt's token embeddings with Integrated Gradients,
Gauss-Legendre, the same number of steps, baseline token 0 at every prompt position (Captum's
default), each library batching as it does by default (Captum and inseq: all steps in one
batch; attribkit: as many path points per pass as keep rows x tokens within its
``TOKENS_PER_PASS``). Runs alternate (attribkit, Captum, inseq, attribkit, ...) in
one process after one warm-up run of each.

Peak memory of a run is the largest resident set size seen by a sampling thread (every 2 ms)
during the run, minus the resident size just before it; glibc's free memory is returned to the
system (``malloc_trim``) before each run so that one run's peak does not hide in the previous
one's heap.

Run: ``python benchmarks/llm.py [--steps 8] [--prompt-tokens 60] [--answer-tokens 20]
[--pairs 3]``; writes ``docs/benchmarks-llm.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from _common import SAME_AS_CAPTUM
from attribkit.core import pages
from attribkit.sequences import explain_generation
from attribkit.sequences.inputs import TOKENS_PER_PASS, rows_per_pass
from attribkit.zoo import llm

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-llm.md"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_PROMPT = ("The history of the printing press begins in the fifteenth century, when Johannes "
           "Gutenberg combined movable metal type, oil-based ink and a screw press adapted from "
           "wine making. Books became cheaper, literacy spread across Europe, and scientific "
           "ideas travelled faster than ever before. Explain in one sentence why the printing "
           "press mattered so much for science and for ordinary readers:")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE_SIZE


def _trim() -> None:
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measured(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time (s), peak resident memory above the start (MB) and the result of ``fn()``."""
    _trim()
    start = _rss()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss())

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    try:
        out = fn()
    finally:
        elapsed = time.perf_counter() - t
        done.set()
        th.join()
    peak[0] = max(peak[0], _rss())
    return elapsed, (peak[0] - start) / 2**20, out


def _captum(model: Any, tok: Any, prompt: str, target: torch.Tensor, steps: int) -> torch.Tensor:
    from captum.attr import LayerIntegratedGradients, LLMGradientAttribution, TextTokenInput

    lig = LayerIntegratedGradients(model, model.get_input_embeddings())
    res = LLMGradientAttribution(lig, tok).attribute(TextTokenInput(prompt, tok), target=target,
                                                     n_steps=steps)
    out: torch.Tensor = res.token_attr
    return out


def _inseq(model: Any, tok: Any, prompt: str, target_text: str, steps: int) -> Any:
    import inseq

    m = inseq.load_model(model, "integrated_gradients", tokenizer=tok)
    return m.attribute(prompt, prompt + target_text, n_steps=steps, attributed_fn="probability",
                       logprob=True, show_progress=False, internal_batch_size=steps)


def main() -> None:
    """Time the libraries, alternating runs, and write the page section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=60)
    ap.add_argument("--answer-tokens", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-inseq", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tok = llm.load_smollm2(progress=True)
    ids = tok(_PROMPT)["input_ids"][:args.prompt_tokens]
    prompt = tok.decode(ids)
    assert tok(prompt)["input_ids"] == ids, "the cut prompt does not round-trip"
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=args.answer_tokens,
                             min_new_tokens=args.answer_tokens, do_sample=False)
    target = out[0, len(ids):]
    target_text = tok.decode(target)
    steps = args.steps
    rows = min(steps, rows_per_pass(None, len(ids) + len(target)))

    runs: dict[str, Callable[[], Any]] = {
        "attribkit": lambda: explain_generation(model, tok, prompt, target, baseline=0,
                                                steps=steps, **SAME_AS_CAPTUM),
        "captum": lambda: _captum(model, tok, prompt, target, steps),
    }
    inseq_note = ""
    if not args.no_inseq:
        try:
            _inseq(model, tok, prompt, target_text, 2)
            runs["inseq"] = lambda: _inseq(model, tok, prompt, target_text, steps)
        except Exception as err:  # report why, do not hide it
            inseq_note = f"inseq 0.7.1 failed on this model: {type(err).__name__}: {err}"
    times: dict[str, list[float]] = {k: [] for k in runs}
    peaks: dict[str, list[float]] = {k: [] for k in runs}
    results: dict[str, Any] = {}
    for rep in range(args.pairs + 1):  # the first round is the warm-up
        for name, fn in runs.items():
            sec, mb, res = measured(fn)
            print(f"{'warm-up' if rep == 0 else f'pair {rep}'} {name}: {sec:.1f} s, "
                  f"{mb:.0f} MB", flush=True)
            if rep:
                times[name].append(sec)
                peaks[name].append(mb)
            results[name] = res
    ours = results["attribkit"]
    theirs = results["captum"]
    diff = float((ours.matrix - theirs).abs().max())
    scale = float(ours.matrix.abs().max())
    rg = ours.relative_gap
    load = os.getloadavg()[0]
    gap_text = "not measured"
    if rg is not None and ours.delta is not None:
        worst = int(rg.argmax())
        gap_text = (f"median {float(rg.median()):.1%} over the {len(target)} answer tokens, "
                    f"largest {float(rg[worst]):.1%} (a token whose log-probability changes "
                    f"by only {float(ours.delta[worst].abs()):.3f})")
    lines = []
    for name in runs:
        ratio = statistics.median(t / a for t, a in zip(times[name], times["attribkit"],
                                                        strict=True))
        label = {"attribkit": "attribkit `explain_generation`",
                 "captum": "Captum `LLMGradientAttribution(LayerIntegratedGradients)`",
                 "inseq": "inseq `integrated_gradients`"}[name]
        lines.append(f"| {label} | {statistics.median(times[name]):.1f} | "
                     f"{max(peaks[name]):.0f} | {ratio:.2f}x |")
    table = "\n".join(lines)
    body = f"""## IG of a {len(target)}-token answer to a {len(ids)}-token prompt

Machine: {platform.machine()} CPU, {os.cpu_count()} cores visible, **shared with other jobs**
(1-minute load average {load:.1f} when the run ended); torch {torch.__version__} with
{torch.get_num_threads()} thread(s), float32. Model: SmolLM2-135M-Instruct (dequantised 4-bit
GGUF, frozen weights). Gauss-Legendre, {steps} steps, baseline token 0 at each prompt position,
each library at its own batching: Captum and inseq all steps in one batch, attribkit
{rows} path points per pass (its default: rows x tokens within {TOKENS_PER_PASS}); medians over
{args.pairs} alternating rounds after one warm-up round. Peak memory: the largest resident set size during a run above the size before it.

| | wall time (s, median) | peak memory above start (MB, largest) | time / attribkit's |
|---|---|---|---|
{table}

attribkit and Captum agree: the ({len(target)} x {len(ids)}) matrices differ by at most
{diff:.1e} (largest entry {scale:.2e}, float32). attribkit's completeness gap at {steps} steps
(a row's sum against the answer token's log-probability change, relative to that change):
{gap_text} (few steps on a rough path: see `docs/zoo-llm.md`). inseq interpolates the answer's prefix too, so its matrix is a
different quantity (same cost model). {inseq_note}
"""
    pages.write_section(PAGE, "llm-ig", body,
                        title="# Benchmarks: SmolLM2-135M explained (`benchmarks/llm.py`)")
    print(body)


if __name__ == "__main__":
    main()
