"""Real models and data that ship inside PyPI wheels, ready to attribute.

Each application is a submodule behind its optional extra; importing ``attribkit.zoo`` itself
imports none of them, so it works without any extra installed:

* ``attribkit.zoo.vision`` (extra ``vision``): EfficientNet-Lite0 on ImageNet, its preprocessing,
  black baseline, class names and sample photos.
* ``attribkit.zoo.tabular`` (extra ``tabular``): an MLP on scikit-learn's breast-cancer data, with
  column groups for Shapley values.
* ``attribkit.zoo.text`` (extra ``text``): a MiniLM sentiment classifier.
* ``attribkit.zoo.chem`` (extra ``chem``): RDKit featurisation and a small graph network;
  ``chem.activity`` (an activity classifier on CHEMBL2321810) and ``chem.findings`` (Gradients of
  Counterfactuals section 3.1's measurements: pair split, dead features, look-alike atoms,
  saturation).
* ``attribkit.zoo.photo_boxes`` (extra ``vision``): hand-drawn object boxes of the sample photos,
  and crops / mirrors of them with their boxes moved exactly.
* ``attribkit.zoo.digits`` (extra ``digits``): a trained MNIST CNN and MNIST digits with ink boxes.
* ``attribkit.zoo.llm`` (extra ``llm``): SmolLM2-135M-Instruct (a dequantised copy of its 4-bit
  GGUF file) and its tokenizer with the chat template, for generation attribution.

Submodules are loaded on first attribute access (``attribkit.zoo.vision``) or by a plain
``import attribkit.zoo.vision``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["chem", "digits", "llm", "photo_boxes", "tabular", "text", "vision"]

_SUBMODULES = frozenset(__all__)


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
