"""Attribution.save / attribkit.load: exact round trips, and files that are not attribkit's."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import attribkit
from attribkit.core.attribution import Attribution
from attribkit.core.errors import InputError


def _same(a: Any, b: Any) -> bool:
    """Exact equality, bit for bit for tensors and arrays (dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a.view(torch.uint8) if a.dtype.is_floating_point else a,
                                b.view(torch.uint8) if b.dtype.is_floating_point else b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, list | tuple):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b, strict=True)))
    return type(a) is type(b) and bool(a == b)


def _assert_round_trip(attr: Attribution, path: pathlib.Path) -> Attribution:
    attr.save(path)
    back = attribkit.load(path)
    for f in dataclasses.fields(Attribution):
        x, y = getattr(attr, f.name), getattr(back, f.name)
        if f.name in ("params", "extras"):
            x, y = dict(x), dict(y)
        assert _same(x, y), f.name
    return back


def test_round_trip_integrated_gradients_with_error_estimate(
        make_mlp: Callable[..., nn.Sequential], tmp_path: pathlib.Path) -> None:
    model = make_mlp().double()
    x = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    attr = attribkit.integrated_gradients(model, x, tolerance=0.01, baseline=0.25)
    assert attr.error_estimate is not None and attr.baseline_output is not None
    back = _assert_round_trip(attr, tmp_path / "ig.safetensors")
    assert back.values.dtype == torch.float64
    assert torch.equal(back.gap, attr.gap)  # type: ignore[arg-type]


def test_round_trip_multi_target_float32(make_cnn: Callable[..., nn.Sequential],
                                         tmp_path: pathlib.Path) -> None:
    model = make_cnn().float()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    attr = attribkit.integrated_gradients(model, x, steps=4, target=attribkit.top_k(2))
    assert attr.multi_target and attr.target is not None and attr.target.shape == (2, 2)
    back = _assert_round_trip(attr, tmp_path / "multi.safetensors")
    assert back.multi_target and back.values.dtype == torch.float32


def test_round_trip_every_kind_of_param_and_extra(tmp_path: pathlib.Path) -> None:
    g = torch.Generator().manual_seed(0)
    attr = Attribution(
        values=torch.randn(2, 3, generator=g), inputs=torch.randn(2, 3, generator=g),
        method="custom", target=torch.tensor([1, 0]), target_label="3",
        params={"steps": 7, "window": (2, 2), "rule": "left", "eps": 1e-12, "nan": math.nan,
                "inf": -math.inf, "flag": True, "none": None, "nested": [1, (2.5, "x")],
                "by_int": {0: "a", 1: "b"}, "dtype": torch.float16},
        extras={"stderr": torch.rand(2, 3, generator=g).double(),
                "layers": {"conv": torch.arange(6).reshape(2, 3), "mask": torch.tensor([True])},
                "array": np.arange(4, dtype=np.int32), "empty": torch.zeros(0, 2)})
    _assert_round_trip(attr, tmp_path / "custom.safetensors")


def test_objects_that_cannot_be_saved_warn_and_load_as_text(tmp_path: pathlib.Path) -> None:
    attr = Attribution(values=torch.ones(1, 2), inputs=torch.ones(1, 2), method="m",
                       params={"layer": nn.ReLU()})
    with pytest.warns(UserWarning, match="params: a ReLU cannot be saved"):
        attr.save(tmp_path / "m.safetensors")
    assert attribkit.load(tmp_path / "m.safetensors").params["layer"] == "ReLU()"


class _Payload:
    """Pickling this object writes a marker file when it is unpickled."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.write_text, (self.marker, "executed"))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "result.safetensors"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    # the payload is live: unpickling it would write the marker
    pickle.loads(pickle.dumps(_Payload(tmp_path / "control.txt")))
    assert (tmp_path / "control.txt").exists()
    with pytest.raises(InputError, match="not an attribkit result file"):
        attribkit.load(evil)
    torch.save({"x": _Payload(marker)}, tmp_path / "torch.pt")
    with pytest.raises(InputError, match="not an attribkit result file"):
        attribkit.load(tmp_path / "torch.pt")
    assert not marker.exists()


def test_crafted_metadata_is_data_not_code(tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned.txt"
    doc = {"format": "attribkit.Attribution", "version": 1, "method": "m",
           "target_label": "predicted", "tensors": ["values", "inputs"],
           "params": {"$repr": f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"},
           "extras": {"$dict": []}}
    path = tmp_path / "crafted.safetensors"
    save_file({"values": torch.ones(1, 2), "inputs": torch.ones(1, 2)}, str(path),
              metadata={"attribkit": json.dumps(doc)})
    with pytest.raises(InputError, match="params and extras must be mappings"):
        attribkit.load(path)
    doc["params"] = {"$eval": "1 + 1"}
    save_file({"values": torch.ones(1, 2), "inputs": torch.ones(1, 2)}, str(path),
              metadata={"attribkit": json.dumps(doc)})
    with pytest.raises(InputError, match="unknown entry '\\$eval'"):
        attribkit.load(path)
    assert not marker.exists()


def test_files_that_are_not_attribkit_results(tmp_path: pathlib.Path) -> None:
    plain = tmp_path / "weights.safetensors"
    save_file({"w": torch.ones(2)}, str(plain))
    with pytest.raises(InputError, match="not an attribkit result"):
        attribkit.load(plain)
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a tensor file")
    with pytest.raises(InputError, match="not a safetensors file"):
        attribkit.load(text)
    with pytest.raises(InputError, match="no such file"):
        attribkit.load(tmp_path / "missing.safetensors")
    newer = tmp_path / "newer.safetensors"
    doc = {"format": "attribkit.Attribution", "version": 99}
    save_file({"values": torch.ones(1)}, str(newer), metadata={"attribkit": json.dumps(doc)})
    with pytest.raises(InputError, match=r"version 99.*upgrade attribkit"):
        attribkit.load(newer)
    missing = tmp_path / "missing_tensor.safetensors"
    doc = {"format": "attribkit.Attribution", "version": 1, "method": "m",
           "target_label": "p", "tensors": ["values", "inputs", "output"],
           "params": {"$dict": []}, "extras": {"$dict": []}}
    save_file({"values": torch.ones(1), "inputs": torch.ones(1)}, str(missing),
              metadata={"attribkit": json.dumps(doc)})
    with pytest.raises(InputError, match="damaged"):
        attribkit.load(missing)


def test_numpy_of_every_field(make_mlp: Callable[..., nn.Sequential]) -> None:
    model = make_mlp()
    x = torch.randn(2, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    attr = attribkit.integrated_gradients(model, x, steps=8)
    assert isinstance(attr.numpy(), np.ndarray) and attr.numpy().shape == (2, 6)
    np.testing.assert_array_equal(attr.numpy("gap"), attr.gap.numpy())  # type: ignore[union-attr]
    np.testing.assert_array_equal(attr.numpy("total"), attr.values.sum(1).numpy())
    with pytest.raises(ValueError, match="no error_estimate"):
        attr.numpy("error_estimate")
    with pytest.raises(ValueError, match="knows values"):
        attr.numpy("weights")
