"""AttnLRP: attribkit against lxt 2.1 (the authors' library), one forward and one backward pass.

Each side runs in its own process (lxt in its own environment, see ``lxt_env.py``; attribkit
in this one), on the same weights and input embeddings, alternately, ``--rounds`` times; each
process times ``--repeats`` passes after one warm-up. Reported: the medians, their ratio, and the
largest difference of the relevances. Writes ``docs/benchmarks-attnlrp.md``.

    python benchmarks/attnlrp.py [--rounds 3] [--repeats 3] [--length 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lxt_env

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks-attnlrp.md"

#: The small Llama of the oracle test, a random Llama of SmolLM2-135M's shape, and SmolLM2 itself.
SPECS: dict[str, dict[str, Any]] = {
    "small Llama (2 layers, hidden 32), float64": {
        "arch": "llama", "seed": 0, "vocab_size": 40, "hidden_size": 32,
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2},
    "random Llama of SmolLM2-135M's shape (30 layers, hidden 576), float32": {
        "arch": "llama", "seed": 0, "dtype": "float32", "vocab_size": 49152,
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True,
        "rope_theta": 100000.0, "rms_norm_eps": 1e-5},
    "SmolLM2-135M-Instruct (its dequantised weights), float32": {
        "arch": "llama", "seed": 0, "dtype": "float32", "weights": "smollm2",
        "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "tie_word_embeddings": True, "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
        "max_position_embeddings": 8192},
}


def _cases(length: int, names: list[str]) -> list[dict[str, Any]]:
    out = []
    for spec in (SPECS[n] for n in names):
        model = lxt_env.build(spec)
        if spec.get("weights") == "smollm2":  # the real model's weights, from attribkit's zoo
            from attribkit.zoo import llm

            model.load_state_dict(llm.load_smollm2(progress=False)[0].state_dict())
        g = torch.Generator().manual_seed(7)
        ids = torch.randint(0, int(spec["vocab_size"]), (1, length), generator=g)
        embeds = model.get_input_embeddings()(ids).detach()
        with torch.no_grad():
            target = lxt_env.last_logits(model, embeds).argmax(1)
        out.append({"spec": spec, "state": model.state_dict(), "embeds": embeds,
                    "target": target})
    return out


def _ours(job: str, out: str, repeats: int) -> None:
    """The attribkit side (run in its own process)."""
    from attribkit.methods.propagation import attnlrp

    class LastLogit(torch.nn.Module):
        def __init__(self, lm: torch.nn.Module) -> None:
            super().__init__()
            self.lm = lm

        def forward(self, embeds: torch.Tensor) -> torch.Tensor:
            return lxt_env.last_logits(self.lm, embeds)

    results = []
    for case in torch.load(job):
        model = lxt_env.build(case["spec"])
        model.load_state_dict(case["state"])
        wrapped = LastLogit(model)

        def once(w: torch.nn.Module = wrapped, c: dict[str, Any] = case) -> torch.Tensor:
            return attnlrp(w, c["embeds"], target=c["target"]).values

        rel = once()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            once()
            times.append(time.perf_counter() - t)
        results.append({"relevance": rel, "times": times})
    torch.save(results, out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--length", type=int, default=64)
    ap.add_argument("--only", default="", help="run the models whose name contains this")
    ap.add_argument("--ours", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ours:
        _ours(args.ours[0], args.ours[1], int(args.ours[2]))
        return
    lxt_env.lxt_python()
    names = [n for n in SPECS if args.only in n]
    times: dict[str, dict[str, list[float]]] = {n: {"lxt": [], "attribkit": []} for n in names}
    diffs: dict[str, float] = {}
    load = []
    with tempfile.TemporaryDirectory(prefix="attnlrp-bench-") as d:
        job = Path(d) / "job.pt"
        torch.save(_cases(args.length, names), job)
        for r in range(args.rounds):
            load.append(os.getloadavg()[0])
            theirs = lxt_env.run_job(job, Path(d) / "lxt.pt", args.repeats)
            subprocess.run([sys.executable, __file__, "--ours", str(job), str(Path(d) / "o.pt"),
                            str(args.repeats)], check=True)
            ours = torch.load(Path(d) / "o.pt")
            for n, a, b in zip(names, ours, theirs, strict=True):
                times[n]["attribkit"] += a["times"]
                times[n]["lxt"] += b["times"]
                ref = b["relevance"]
                diffs[n] = float((a["relevance"] - ref).abs().max() / ref.abs().max())
            print(f"round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    for n in names:
        ta, tl = statistics.median(times[n]["attribkit"]), statistics.median(times[n]["lxt"])
        rows.append(f"| {n} | {args.length} | {tl * 1e3:.1f} | {ta * 1e3:.1f} | {ta / tl:.2f} | "
                    f"{diffs[n]:.1e} |")
    text = "\n".join([
        "# AttnLRP: attribkit against lxt 2.1",
        "",
        "Generated by `python benchmarks/attnlrp.py`. One AttnLRP explanation of the last "
        "position's top logit: one forward and one backward pass. attribkit runs "
        "`attribkit.methods.propagation.attnlrp` (transformers "
        f"{__import__('transformers').__version__}); lxt 2.1 runs `lxt.efficient.monkey_patch` "
        "in its own environment (transformers 4.57.6, eager attention on both sides). Each side "
        f"in its own process, alternating, {args.rounds} rounds x {args.repeats} timed passes "
        "after a warm-up; medians. Goal: attribkit <= 1.2x lxt's time, equal values.",
        "",
        f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores visible, torch "
        f"{torch.__version__}, Python {platform.python_version()}; 1-minute load average "
        f"during the rounds: {', '.join(f'{x:.1f}' for x in load)} (the cores are shared).",
        "",
        "| model | tokens | lxt (ms) | attribkit (ms) | attribkit / lxt | max |diff| / max |R| |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "attribkit's time includes its input validation (one extra no-grad forward pass to "
        "resolve the target and check the output) and the check of the autograd graph; the "
        "relevances agree to float32 rounding (the small model is float64, but Llama's RMSNorm "
        "and eager softmax compute in float32 in both implementations).",
        "",
    ])
    DOC.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
