"""lxt 2.1 (the AttnLRP authors' library) as an oracle, in its own virtual environment.

lxt needs transformers < 5 and imports torchvision's ViT classes, so it cannot share
attribkit's environment. :func:`lxt_python` builds a venv once (in ``.cache/``, keyed by
:data:`REQUIREMENTS`; a later call reuses it) with torch pinned by ``constraints.txt``,
transformers 4.57.6 and lxt installed without its optional dependencies, plus a torchvision stub.
:func:`run_lxt` writes a job (model specs, float64 state dicts, input embeddings, targets) to a
file, runs this very file in that venv (``python lxt_env.py job out``), where lxt's
``monkey_patch`` is applied and ``inputs_embeds * grad`` computed, and returns the relevances.

This file imports only torch and transformers (it runs on both sides); it is used by
``tests/propagation/test_attnlrp_lxt.py`` and ``benchmarks/attnlrp.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
#: What the oracle environment holds (the cache key); lxt itself goes in without dependencies.
REQUIREMENTS = ("torch==2.13.0", "transformers==4.57.6", "numpy<3")
LXT = "lxt==2.1"
_STUB = {
    "torchvision/__init__.py": "from torchvision import models\n",
    "torchvision/models/__init__.py": "from torchvision.models import vision_transformer\n",
    # lxt.efficient.models.vit_torch reads torch's nn classes through this module only
    "torchvision/models/vision_transformer.py": "from torch import nn\n",
}


def cache_dir() -> Path:
    """Where the oracle venv lives (``ATTRIBKIT_LXT_CACHE`` or ``<repo>/.cache``)."""
    return Path(os.environ.get("ATTRIBKIT_LXT_CACHE", ROOT / ".cache"))


def _key() -> str:
    text = "\n".join((*REQUIREMENTS, LXT, *sorted(_STUB), sys.version.split()[0]))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def lxt_python(log: Any = None) -> Path:
    """The Python of the oracle venv, built on first use (a few minutes; then cached)."""
    env = cache_dir() / f"lxt-venv-{_key()}"
    py = env / "bin" / "python"
    if (env / ".ready").exists():
        return py
    cache_dir().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lxt-venv-build-", dir=cache_dir()))
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(tmp)], check=True)
        pip = [str(tmp / "bin" / "python"), "-m", "pip", "install", "-q",
               "--disable-pip-version-check"]
        cons = ROOT / "constraints.txt"
        subprocess.run([*pip, "-c", str(cons), *REQUIREMENTS], check=True, stdout=log,
                       stderr=log)
        subprocess.run([*pip, "--no-deps", LXT], check=True, stdout=log, stderr=log)
        for rel, text in _STUB.items():
            f = tmp / "stub" / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(text)
        (tmp / ".ready").write_text(" ".join((*REQUIREMENTS, LXT)))
        # `python -m pip` and `bin/python` work from the moved folder (its console scripts
        # would not, and are not used)
        if env.exists():
            shutil.rmtree(env)
        os.replace(tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return py


# -- the small models both sides build ----------------------------------------------------------

def build(spec: dict[str, Any]) -> torch.nn.Module:
    """A random model in eval mode from ``spec`` (same code under transformers 4 and 5).

    ``spec``: ``{"arch": "llama" | "gpt2", "seed": int, "dtype": "float64" (default) or
    "float32", "weights": where the caller's weights come from (not a config field), ...config
    fields}``.
    """
    import transformers as tf

    fields = {k: v for k, v in spec.items() if k not in ("arch", "seed", "dtype", "weights")}
    torch.manual_seed(int(spec["seed"]))
    if spec["arch"] == "llama":
        cfg: Any = tf.LlamaConfig(**fields)
        cls: Any = tf.LlamaForCausalLM
    elif spec["arch"] == "gpt2":
        cfg = tf.GPT2Config(**fields)
        cls = tf.GPT2LMHeadModel
    else:
        raise ValueError(f"unknown arch {spec['arch']!r}")
    cfg._attn_implementation = "eager"
    model = cls(cfg).to(getattr(torch, spec.get("dtype", "float64"))).eval()
    return model


def last_logits(model: torch.nn.Module, embeds: torch.Tensor) -> torch.Tensor:
    """The logits ``(N, V)`` at the last position for input embeddings ``(N, L, D)``."""
    out = model(inputs_embeds=embeds, use_cache=False)
    logits: torch.Tensor = out.logits[:, -1]
    return logits


def run_lxt(cases: list[dict[str, Any]], repeats: int = 0, timeout: float = 900,
            log: Any = None) -> list[dict[str, Any]]:
    """Relevances from lxt for each case, computed in the oracle venv.

    Parameters
    ----------
    cases
        ``{"spec", "state" (float64 state dict), "embeds" (N, L, D), "target" (N,)}`` each.
    repeats
        Also time ``repeats`` forward + backward passes of each case (``"times"``, seconds).
    timeout
        Seconds the subprocess may take.
    log
        Where pip's output goes (a file object; default: inherited).

    Returns
    -------
    list of dict
        ``{"relevance": (N, L, D), "logit": (N,), "times": [...]}`` per case.
    """
    with tempfile.TemporaryDirectory(prefix="lxt-job-") as d:
        job, out = Path(d) / "job.pt", Path(d) / "out.pt"
        torch.save(cases, job)
        return run_job(job, out, repeats, timeout, log)


def run_job(job: Path, out: Path, repeats: int = 0, timeout: float = 900,
            log: Any = None) -> list[dict[str, Any]]:
    """:func:`run_lxt` on cases already saved to ``job`` (``torch.save(cases, job)``)."""
    py = lxt_python(log)
    env = {**os.environ, "PYTHONPATH": str(py.parent.parent / "stub"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([str(py), str(Path(__file__).resolve()), str(job), str(out), str(repeats)],
                   check=True, timeout=timeout, env=env)
    result: list[dict[str, Any]] = torch.load(out)
    return result


def _main(job: str, out: str, repeats: int) -> None:  # runs inside the oracle venv
    from lxt.efficient import monkey_patch
    from transformers.models.gpt2 import modeling_gpt2
    from transformers.models.llama import modeling_llama

    cases = torch.load(job)
    torch.set_num_threads(int(os.environ.get("LXT_THREADS", torch.get_num_threads())))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Dropout already patched" when patching both
        monkey_patch(modeling_llama)
        monkey_patch(modeling_gpt2)
    results = []
    for case in cases:
        model = build(case["spec"])
        model.load_state_dict(case["state"])
        embeds, target = case["embeds"], case["target"]

        def once(m: torch.nn.Module = model, e: torch.Tensor = embeds,
                 t: torch.Tensor = target) -> tuple[torch.Tensor, torch.Tensor]:
            x = e.clone().requires_grad_(True)
            score = last_logits(m, x).gather(1, t[:, None])[:, 0]
            score.sum().backward()
            assert x.grad is not None
            return (x * x.grad).detach(), score.detach()

        rel, logit = once()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            once()
            times.append(time.perf_counter() - t)
        results.append({"relevance": rel, "logit": logit, "times": times})
    torch.save(results, out)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
