"""Interaction indices in a run: ``-m interactions[:index=FSII,order=2]`` (docs/runs.md).

:func:`attribkit.interactions` returns one value per coalition of players, not an attribution
per input element, so a run does not store it as a method's result rows: :func:`split_interactions`
takes it out of the method list (its settings go to the manifest's ``interactions`` key) and
:func:`top_interactions` computes, for each item as its row is written, the strongest
coalitions of every size up to the order, kept as JSON text in the item's ``interactions``
column. The players are the input's features, or on images a 4 x 4 grid of patches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from attribkit.core.interaction_indices import normalise_index
from attribkit.runs.checks import MethodError
from attribkit.zoo.specs import Built, Prepared

__all__ = ["NAMES", "SETTINGS", "check_model", "split_interactions", "top_interactions"]

#: Method names that ask for interactions.
NAMES = ("interactions", "interaction", "shapley_interactions")
#: The settings it takes (``top``: coalitions kept per size, default 10).
SETTINGS = ("index", "order", "budget", "batch_size", "seed", "top")
_INTS = ("order", "budget", "batch_size", "seed", "top")


def _is_interactions(name: str) -> bool:
    return name.lower().replace("-", "_") in NAMES


def _entry(m: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(m, str):
        return m, {}
    if isinstance(m, tuple):
        return str(m[0]), dict(m[1])
    return str(m["name"]), dict(m.get("params", {}))


def _settings(params: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(SETTINGS))
    if unknown:
        raise ValueError(f"interactions has no option {unknown[0]!r}; its options: "
                         f"{', '.join(SETTINGS)}")
    out: dict[str, Any] = {"index": "SII", "order": 2, "top": 10, **params}
    out["index"] = normalise_index(str(out["index"]))
    for key in _INTS:
        v = out.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or (v < 1 and key != "seed"):
            raise ValueError(f"interactions: {key} must be a positive integer, got {v!r}")
    return out


def split_interactions(methods: Sequence[Any]) -> tuple[list[Any], dict[str, Any] | None]:
    """The attribution methods, and the interaction settings (defaults filled) or None.

    Raises
    ------
    ValueError
        One line: an unknown setting, a bad value, interactions given twice or alone.
    """
    rest: list[Any] = []
    found: dict[str, Any] | None = None
    for m in methods:
        name, params = _entry(m)
        if not _is_interactions(name):
            rest.append(m)
            continue
        if found is not None:
            raise ValueError("interactions is given twice")
        found = _settings(params)
    if found is not None and not rest:
        raise ValueError("interactions are stored with each item of a run of attribution "
                         "methods; add one, e.g. -m saliency")
    return rest, found


def check_model(built: Built) -> None:
    """Refuse, before any work, a model whose inputs are not feature tensors.

    Raises
    ------
    MethodError
        One line, for a text or generation model.
    """
    if built.layer is not None or built.explain_item is not None:
        raise MethodError(f"-m interactions needs a model whose inputs are feature tensors "
                         f"(images, tabular, tensors), not a {built.kind} model")


def _players(p: Prepared) -> Any:
    """A 4 x 4 grid of patches on images (65,536 coalitions); the features otherwise."""
    if p.x.dim() != 4:
        return None
    from attribkit.core.masks import grid

    h, w = int(p.x.shape[-2]), int(p.x.shape[-1])
    return grid(tuple(p.x.shape[1:]), (math.ceil(h / 4), math.ceil(w / 4)))


def top_interactions(model: Any, p: Prepared, target: Any, settings: Mapping[str, Any]) -> str:
    """The item's strongest coalitions as JSON text (docs/runs.md); ``{"error": ...}`` when the
    index cannot be computed (too many players without ``budget=``, a model that raises)."""
    from attribkit.methods.interactions import interactions

    opts = {k: v for k, v in settings.items() if k != "top"}
    top = int(settings.get("top", 10))
    mask = _players(p)
    try:
        res = interactions(model, p.x, target=target, baseline=p.baseline,
                           feature_mask=mask, forward_args=p.forward_args or None,
                           **opts)
    except Exception as err:  # one item's failure is recorded, the run goes on
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return json.dumps({"index": opts.get("index"), "order": opts.get("order"),
                           "error": f"{type(err).__name__}: {first}"})
    # every feature its own player (no mask): the features' names (a CSV's columns) name them
    names = p.feature_names if mask is None and p.feature_names is not None and \
        len(p.feature_names) == res.n_players else None
    pos = {c: i for i, c in enumerate(res.coalitions)}
    se = None if res.stderr is None else res.stderr.reshape(-1, res.stderr.shape[-1])[0]
    rows = []
    for size in range(1, res.order + 1):
        for players, value in res.top(top, size=size):
            idx = tuple(sorted(res.labels.tolist().index(q) if res.labels is not None
                               else int(q) for q in players))
            row: dict[str, Any] = {"players": [int(q) for q in players],
                                   "names": [names[i] if names else res.player_name(i)
                                             for i in idx],
                                   "value": value}
            if se is not None:
                row["stderr"] = float(se[pos[idx]])
            rows.append(row)
    tgt = None if res.target is None else int(res.target.reshape(-1)[0])
    return json.dumps({"index": res.index, "order": res.order, "players": res.n_players,
                       "exact": res.exact, "evaluations": res.evaluations, "target": tgt,
                       "output": float(res.output.reshape(-1)[0]),
                       "baseline_output": float(res.baseline_output.reshape(-1)[0]),
                       "top": rows})
