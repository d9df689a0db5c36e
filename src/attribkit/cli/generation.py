"""``attribkit explain-generation MODEL "prompt" [--target "continuation"]``.

MODEL is ``smollm2`` (SmolLM2-135M-Instruct from the ``llm`` extra: a dequantised copy of its 4-bit
GGUF file), a local Hugging Face checkpoint folder (loaded with ``from_pretrained(path)``,
offline) or a tiny random built-in model for demos: ``tiny-gpt2``, ``tiny-llama``, ``tiny-t5``.
``--chat`` wraps the prompt as one user message in the tokenizer's chat template, so the
explained continuation is the assistant's answer.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

from attribkit.cli._common import UsageError

__all__ = ["register"]


#: Zoo language models by name (and aliases).
LLM_NAMES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct")


def _load(name: str, progress: bool = False) -> tuple[Any, Any]:
    from attribkit.sequences.tiny import TINY_MODELS, tiny_model, tiny_tokenizer

    if name.lower() in LLM_NAMES:
        from attribkit.zoo import llm

        try:
            return llm.load_smollm2(progress=progress)
        except ImportError as err:
            raise UsageError(str(err)) from err
    if name in TINY_MODELS:
        return tiny_model(name), tiny_tokenizer()
    path = pathlib.Path(name)
    if not path.is_dir():
        raise UsageError(f"MODEL {name!r} is neither a checkpoint folder nor one of "
                         f"smollm2, {', '.join(TINY_MODELS)}")
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    cfg = AutoConfig.from_pretrained(path, local_files_only=True)
    auto = AutoModelForSeq2SeqLM if cfg.is_encoder_decoder else AutoModelForCausalLM
    model = auto.from_pretrained(path, local_files_only=True).eval()
    return model, AutoTokenizer.from_pretrained(path, local_files_only=True)


def _baseline(text: str | None) -> Any:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def _cmd(args: argparse.Namespace) -> int:
    from attribkit.sequences import GENERATION_METHODS, explain_generation

    if args.steps < 1 or args.max_new_tokens < 1:
        raise UsageError("--steps and --max-new-tokens must be positive integers")
    method = args.method.lower().replace("-", "_")
    if method not in (*GENERATION_METHODS, "ig"):
        raise UsageError(f"unknown method {args.method!r}; choose one of "
                         f"{', '.join(GENERATION_METHODS)}")
    model, tok = _load(args.model, progress=not args.quiet)
    prompt: Any = args.prompt
    if args.chat:
        if getattr(tok, "chat_template", None) is None:
            raise UsageError(f"--chat needs a tokenizer with a chat template; {args.model!r} "
                             "has none")
        prompt = [{"role": "user", "content": args.prompt}]
    res = explain_generation(model, tok, prompt, args.target, method=method,
                             max_new_tokens=args.max_new_tokens, steps=args.steps,
                             baseline=_baseline(args.baseline), progress=not args.quiet)
    if args.json:
        print(json.dumps(res.to_dict()))
    else:
        print(res.to_text())
        print(res.completeness())
    if args.out:
        from attribkit.viz import generation_heatmap

        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        generation_heatmap(res).savefig(out / "generation.png", dpi=110)
        (out / "generation.json").write_text(json.dumps(res.to_dict(), indent=1))
        _report(args, res, out / "report.html")
        if not args.quiet:
            print(f"wrote {out / 'report.html'}, {out / 'generation.png'}, "
                  f"{out / 'generation.json'}")
    if args.report:
        _report(args, res, pathlib.Path(args.report))
        if not args.quiet:
            print(f"wrote {args.report}")
    return 0


def _report(args: argparse.Namespace, res: Any, path: pathlib.Path) -> None:
    """The HTML report of one answer: its heat map ("Answers, token by token") and its table."""
    from attribkit.cli.report_generation import add_answers
    from attribkit.report import Report
    from attribkit.viz import generation_html

    rep = Report(f"attribkit explain-generation {args.model}")
    rep.text(f"Prompt: {args.prompt!r}" + (" (as a chat message)" if args.chat else "") +
             f"; method {res.method}.")
    rep.text(res.completeness())
    add_answers(rep, [res])
    if res.matrix.shape[1] <= 30:  # the numbers; a longer prompt is summed up in the map
        rep.raw(generation_html(res))
    path.parent.mkdir(parents=True, exist_ok=True)
    rep.save(path)


def register(sub: Any) -> None:
    """Add this command to the ``attribkit`` sub-parsers."""
    p = sub.add_parser("explain-generation",
                       help="attribute each generated token of a language model to the prompt",
                       description="Rows: generated (or given) tokens, each explained by its "
                                   "log-probability given its prefix; columns: prompt tokens.")
    p.add_argument("model", help="smollm2 (SmolLM2-135M-Instruct, extra llm), a local Hugging "
                                 "Face checkpoint folder, or tiny-gpt2 / tiny-llama / tiny-t5 "
                                 "(random, built in code)")
    p.add_argument("prompt", help="the prompt (source sentence for encoder-decoders)")
    p.add_argument("--target", "-t", default=None,
                   help="the continuation to explain (default: the model's greedy generation)")
    p.add_argument("--chat", action="store_true",
                   help="send the prompt as a user message through the chat template and "
                        "explain the assistant's answer")
    p.add_argument("--method", "-m", default="integrated_gradients",
                   help="integrated_gradients (default), saliency, gradient_x_input, "
                        "occlusion, shapley, attnlrp or attention_rollout")
    p.add_argument("--steps", type=int, default=100,
                   help="IG gradient evaluations (default 100, on refined panels)")
    p.add_argument("--max-new-tokens", type=int, default=10,
                   help="tokens to generate without --target (default 10)")
    p.add_argument("--baseline", default=None,
                   help="zeros (default), a token id, or a special token name: pad, unk, eos")
    p.add_argument("--out", "-o", default=None,
                   help="folder for report.html, generation.png and generation.json")
    p.add_argument("--report", default=None, metavar="FILE",
                   help="write the HTML report (the token x token heat map) to FILE")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd)
