"""attribkit.load on crafted files (issue 26): one InputError line at load, never a raw error."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from tests.reliability._cases import case

import attribkit


def _doc(**over: Any) -> dict[str, Any]:
    doc = {"format": "attribkit.Attribution", "version": 1, "method": "m",
           "target_label": "predicted", "tensors": ["values", "inputs"],
           "params": {"$dict": []}, "extras": {"$dict": []}}
    return {**doc, **over}


def _write(path: pathlib.Path, tensors: dict[str, torch.Tensor], meta: str) -> pathlib.Path:
    save_file(tensors, str(path), metadata={"attribkit": meta})
    return path


GOOD = {"values": torch.ones(2, 3), "inputs": torch.ones(2, 3)}
CRAFTED = {
    "bad JSON": (GOOD, "{\"format\": "),
    "deep nesting": (GOOD, "[" * 100_000 + "]" * 100_000),
    "deep $tuple nesting": (GOOD, json.dumps(_doc()).replace(
        '"params": {"$dict": []}', '"params": ' + '{"$tuple": [' * 900 + ']}' * 900)),
    "a list as a dict key": (GOOD, json.dumps(_doc(params={"$dict": [[[1, 2], 3]]}))),
    "a $dict entry that is not a pair": (GOOD, json.dumps(_doc(params={"$dict": [[1, 2, 3]]}))),
    "values of another shape than the inputs": (
        {"values": torch.ones(2, 4), "inputs": torch.ones(2, 3)}, json.dumps(_doc())),
    "fewer rows of values than of inputs": (
        {"values": torch.ones(1, 3), "inputs": torch.ones(2, 3)}, json.dumps(_doc())),
    "baselines of another shape": (
        {**GOOD, "baselines": torch.ones(3, 3)},
        json.dumps(_doc(tensors=["values", "inputs", "baselines"]))),
    "a complex dtype": (
        {"values": torch.ones(2, 3, dtype=torch.complex64), "inputs": torch.ones(2, 3)},
        json.dumps(_doc())),
    "boolean values": ({"values": torch.ones(2, 3, dtype=torch.bool),
                        "inputs": torch.ones(2, 3)}, json.dumps(_doc())),
    "a float target": ({**GOOD, "target": torch.ones(2)},
                       json.dumps(_doc(tensors=["values", "inputs", "target"]))),
    "a scalar": ({"values": torch.tensor(1.0), "inputs": torch.tensor(1.0)}, json.dumps(_doc())),
}


@pytest.mark.parametrize("kind", list(CRAFTED))
@case("errors", "attribkit.load on crafted files: bad JSON, deep nesting, a list as a dict key, "
      "values that do not fit the inputs' shape, dtypes attribkit never writes (complex, bool, "
      "a float target)", "refused at load with one InputError line naming the file (raw "
      "ValueError / TypeError / RecursionError before, or a load that failed on first use)")
def test_crafted_files_refused_at_load(tmp_path: pathlib.Path, kind: str) -> None:
    tensors, meta = CRAFTED[kind]
    path = _write(tmp_path / "crafted.safetensors", tensors, meta)
    with pytest.raises(attribkit.InputError) as info:
        attribkit.load(path)
    assert type(info.value) is attribkit.InputError
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("keep", [8, 60, -7])
@case("errors", "attribkit.load on a truncated safetensors file (cut in the header, in the "
      "metadata, in the tensor data)", "refused with one InputError line")
def test_truncated_files_refused(tmp_path: pathlib.Path, keep: int) -> None:
    attr = attribkit.Attribution(values=torch.ones(2, 3), inputs=torch.ones(2, 3), method="m")
    path = tmp_path / "a.safetensors"
    attr.save(path)
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(attribkit.InputError):
        attribkit.load(path)
