"""Attribution methods. Every module in this package registers its methods on import.

The registry (:mod:`attribkit.methods.registry`) is the single list of methods;
:mod:`attribkit.methods.catalogue` renders it for ``docs/methods.md``.
"""

from __future__ import annotations

import importlib
import pkgutil

from attribkit.methods.registry import MethodInfo, explain, get, methods, register

__all__ = ["MethodInfo", "explain", "get", "methods", "register"]

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name not in ("registry", "catalogue") and not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
