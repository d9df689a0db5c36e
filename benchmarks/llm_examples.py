"""The numbers of ``docs/zoo-llm.md``: SmolLM2 explained, with time and peak memory per case.

Each case runs in its own Python process, so that its peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which includes the model, about 0.55 GB) belongs
to that case alone:

* ``paris``: "The capital of France is" -> " Paris" with every method of ``explain_generation``;
* ``chat``: a chat question and SmolLM2's own answer (gradient x input);
* ``needle``: the ~500-token haystack of ``attribkit.zoo.llm.haystack`` with occlusion over its
  sentences and gradient x input summed per sentence;
* ``long``: a ~2,000-token context (the haystack's sentences repeated), saliency and IG (two
  path points; the peak is per chunk of rows, so more steps take longer but no more memory).

Run: ``python benchmarks/llm_examples.py`` (all cases; writes the ``examples`` section of
``docs/zoo-llm.md``) or ``python benchmarks/llm_examples.py --case paris`` (one, printed as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from attribkit.core import pages

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
PAGE = Path(__file__).resolve().parent.parent / "docs" / "zoo-llm.md"
CASES = ("paris", "chat", "needle", "long")
PARIS = "The capital of France is"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _case(name: str) -> dict[str, Any]:
    from attribkit.sequences import explain_generation
    from attribkit.zoo import llm

    model, tok = llm.load_smollm2(progress=False)
    out: dict[str, Any] = {"case": name, "after_load_mb": _rss_mb()}
    if name == "paris":
        for method in ("integrated_gradients", "saliency", "gradient_x_input", "occlusion",
                       "shapley"):
            res, sec = _timed(lambda m=method: explain_generation(model, tok, PARIS, " Paris",
                                                                  method=m))
            rg = res.relative_gap
            out[method] = {"row": [round(float(v), 3) for v in res.matrix[0]], "seconds": sec,
                           "gap": None if rg is None else float(rg.max()),
                           "logp": float(res.logprobs[0]), "params": dict(res.params)}
        out["tokens"] = list(res.prompt_tokens)
    elif name == "chat":
        msgs = [{"role": "user", "content": "What is the capital of France?"}]
        res, sec = _timed(lambda: explain_generation(model, tok, msgs, method="gradient_x_input",
                                                     max_new_tokens=8))
        top = []
        for t, token in enumerate(res.generated_tokens):
            k = res.matrix[t].abs().topk(3).indices.tolist()
            top.append([token, [(res.prompt_tokens[j], round(float(res.matrix[t, j]), 3))
                                for j in k]])
        out.update(seconds=sec, answer=tok.decode(res.generated_ids), top=top,
                   prompt_tokens=len(res.prompt_tokens))
    elif name == "needle":
        hay = llm.haystack()
        groups = hay.token_groups(tok)
        others = [k for k in range(len(groups)) if k != hay.needle]
        blocks = [[j for k in others[i:i + 5] for j in groups[k]]
                  for i in range(0, len(others), 5)]
        res, sec = _timed(lambda: explain_generation(model, tok, hay.prompt, hay.answer,
                                                     method="occlusion",
                                                     groups=[groups[hay.needle], *blocks]))
        occ = res.matrix[0]
        gxi, sec2 = _timed(lambda: explain_generation(model, tok, hay.prompt, hay.answer,
                                                      method="gradient_x_input"))
        per = torch.stack([gxi.matrix[0, g].sum() for g in groups])
        out.update(tokens=int(gxi.shape[1]), needle=hay.needle, sentences=len(groups),
                   occlusion=[round(float(v), 3) for v in occ], occlusion_seconds=sec,
                   occlusion_share=float(occ[0].abs() / occ.abs().sum()),
                   gxi=[round(float(v), 3) for v in per], gxi_seconds=sec2,
                   gxi_share=float(per[hay.needle].abs() / per.abs().sum()),
                   logp=float(res.logprobs[0]))
    else:
        base = llm.haystack()
        text = " ".join([base.prompt.split("\nQuestion")[0]] * 4)
        prompt = text + "\nQuestion: What is the secret password for the vault?\nAnswer:"
        out["tokens"] = len(tok(prompt)["input_ids"])
        _, sec = _timed(lambda: explain_generation(model, tok, prompt, " pineapple",
                                                   method="saliency"))
        out.update(saliency_seconds=sec, saliency_mb=_rss_mb())
        res, sec = _timed(lambda: explain_generation(model, tok, prompt, " pineapple",
                                                     steps=2, rule="gauss_legendre"))
        out.update(ig_seconds=sec, ig_rows_per_pass=1)
    out["peak_mb"] = _rss_mb()
    return out


def _run_all() -> list[dict[str, Any]]:
    results = []
    for name in CASES:
        proc = subprocess.run([sys.executable, __file__, "--case", name], check=True,
                              capture_output=True, text=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    return results


def main() -> None:
    """Run one case (``--case``) or all of them and write the page section."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        print(json.dumps(_case(args.case)))
        return
    res = {r["case"]: r for r in _run_all()}
    body = _markdown(res)
    pages.write_section(PAGE, "examples", body, title="# SmolLM2-135M-Instruct, explained")
    print(body)


def _markdown(res: dict[str, dict[str, Any]]) -> str:
    p, c, n, lo = res["paris"], res["chat"], res["needle"], res["long"]
    head = "| method | " + " | ".join(f"`{t}`" for t in p["tokens"]) + " | gap | time (s) |"
    lines = [head, "|---" * (len(p["tokens"]) + 3) + "|"]
    for m in ("integrated_gradients", "saliency", "gradient_x_input", "occlusion", "shapley"):
        r = p[m]
        gap = f"{r['gap']:.2%}" if m in ("integrated_gradients", "shapley") else ""
        lines.append(f"| {m} | " + " | ".join(f"{v:+.3f}" for v in r["row"]) +
                     f" | {gap} | {r['seconds']:.1f} |")
    chat = "\n".join(f"| `{tok}` | " + ", ".join(f"`{w}` {v:+.3f}" for w, v in top) + " |"
                      for tok, top in c["top"])
    ig = p["integrated_gradients"]["params"]
    return f"""## The numbers (`benchmarks/llm_examples.py`)

Machine: {platform.machine()} CPU, {os.cpu_count()} cores visible, shared with other jobs (load
{os.getloadavg()[0]:.1f} at the end), torch {torch.__version__}, one thread, float32. Each case
runs in its own process; "peak" is that process's largest resident set size, model included
(about {p["after_load_mb"]:.0f} MB right after loading).

**"The capital of France is" -> " Paris"** (log p = {p["integrated_gradients"]["logp"]:.3f}).
IG with its defaults for this model: baseline {ig.get("baseline")} (first token kept:
{ig.get("keep_first")}), rule {ig.get("rule")}, {ig.get("steps")} steps. Peak {p["peak_mb"]:.0f} MB.

{chr(10).join(lines)}

**A chat question** ({c["prompt_tokens"]} prompt tokens with the template): "What is the
capital of France?" -> {c["answer"]!r}; gradient x input, the three prompt tokens with the
largest |attribution| for each answer token ({c["seconds"]:.1f} s, peak {c["peak_mb"]:.0f} MB):

| answer token | top prompt tokens |
|---|---|
{chat}

**The needle** ({n["tokens"]} tokens, {n["sentences"]} sentences, the needle is sentence
{n["needle"]}; log p(" pineapple") = {n["logp"]:.3f}). Occlusion of the needle sentence alone
and of the other sentences in blocks of five: the needle's share of the total |attribution| is
**{n["occlusion_share"]:.0%}** (its score {n["occlusion"][0]:+.2f}, the largest block
{max(abs(v) for v in n["occlusion"][1:]):.2f}; {n["occlusion_seconds"]:.0f} s).
Gradient x input summed per sentence: share {n["gxi_share"]:.0%} ({n["gxi_seconds"]:.0f} s).
Peak {n["peak_mb"]:.0f} MB.

**A {lo["tokens"]}-token context**: saliency {lo["saliency_seconds"]:.0f} s, peak
{lo["saliency_mb"]:.0f} MB; IG (one row per forward pass, the default for this length)
{lo["ig_seconds"]:.0f} s for two path points, peak **{lo["peak_mb"]:.0f} MB** (under 4 GB;
more steps take longer, not more memory).
"""


if __name__ == "__main__":
    main()
