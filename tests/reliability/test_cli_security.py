"""What `attribkit explain` will load: hostile model archives, pickles, decompression bombs."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import textwrap
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from tests.reliability._cases import case
from torch import nn

from attribkit.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


class _Lin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


class _Touch:
    """Unpickling this creates ``path`` (a harmless stand-in for attacker code)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _good_pt2(tmp: pathlib.Path) -> pathlib.Path:
    path = tmp / "lin.pt2"
    torch.export.save(torch.export.export(_Lin(), (torch.zeros(1, 3),)), str(path))
    return path


def _rewrite(src: pathlib.Path, dst: pathlib.Path, edit: dict[str, bytes]) -> pathlib.Path:
    """Copy a zip, replacing the entries whose name ends with a key of ``edit``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, new in edit.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info.filename, data)
    return dst


def _evil_weights(tmp: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    good = _good_pt2(tmp)
    with zipfile.ZipFile(good) as z:
        name = next(n for n in z.namelist() if n.endswith("_weights_config.json"))
        config = json.loads(z.read(name))
    for meta in config["config"].values():
        meta["use_pickle"] = True
    return _rewrite(good, tmp / "evil.pt2",
                    {name: json.dumps(config).encode(),
                     "data/weights/weight_0": pickle.dumps(_Touch(marker))})


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@case("security", "`explain evil.pt2` where a weight is marked use_pickle and its bytes are a "
      "pickle that creates a file", "refused with one line before torch.export.load; nothing "
      "unpickled (no marker file); exit 1")
def test_pt2_with_pickled_weight_is_refused(capsys: pytest.CaptureFixture[str],
                                            tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil_weights(tmp_path, marker)
    code, _out, err = _run(capsys, "explain", str(evil), "1,2,3", "--quiet")
    assert code == 1 and not marker.exists()
    assert "refusing to load 'evil.pt2'" in err and "use_pickle" in err
    assert "--trust-model-file" in err and len(err.strip().splitlines()) == 1


@case("security", "the same evil .pt2 with --trust-model-file", "loads it as asked (the marker "
      "appears: the test proves the archive is really hostile, so the refusal is meaningful)",
      verdict="held")
def test_trust_flag_loads_the_archive(capsys: pytest.CaptureFixture[str],
                                      tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil_weights(tmp_path, marker)
    _run(capsys, "explain", str(evil), "1,2,3", "--quiet", "--trust-model-file")
    assert marker.exists()


@case("security", ".pt2 whose sample inputs are a pickle that torch.load(weights_only=True) "
      "refuses (torch.export.load then falls back to an unrestricted load)",
      "refused with one line; nothing unpickled")
def test_pt2_with_pickled_sample_inputs_is_refused(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "MARKER"
    evil = _rewrite(_good_pt2(tmp_path), tmp_path / "evil.pt2",
                    {"data/sample_inputs/model.pt": pickle.dumps(_Touch(marker), protocol=2)})
    code, _, err = _run(capsys, "explain", str(evil), "1,2,3", "--quiet")
    assert code == 1 and not marker.exists()
    assert "sample inputs" in err and len(err.strip().splitlines()) == 1
    _run(capsys, "explain", str(evil), "1,2,3", "--quiet", "--trust-model-file")
    assert marker.exists()  # torch.export.load alone does unpickle it: the check matters


@case("security", ".pt2 whose program calls torch.os.system (the deserialiser resolves targets "
      "by attribute lookup from torch)", "refused: only torch.ops / _operator / math targets")
def test_pt2_calling_outside_torch_ops_is_refused(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: pathlib.Path) -> None:
    good = _good_pt2(tmp_path)
    with zipfile.ZipFile(good) as z:
        name = next(n for n in z.namelist() if n.endswith("models/model.json"))
        text = z.read(name).decode()
    assert "torch.ops.aten." in text
    bad = text.replace('"target": "torch.ops.aten.', '"target": "torch.os.system.', 1)
    evil = _rewrite(good, tmp_path / "evil.pt2", {name: bad.encode()})
    code, _, err = _run(capsys, "explain", str(evil), "1,2,3", "--quiet")
    assert code == 1 and "outside torch's operator namespaces" in err


@case("security", ".pt2 with an extra entry (a shared library, an opaque object)",
      "refused: only the entries torch.export.save writes are read")
def test_pt2_with_unknown_entry_is_refused(capsys: pytest.CaptureFixture[str],
                                           tmp_path: pathlib.Path) -> None:
    good = _good_pt2(tmp_path)
    evil = tmp_path / "evil.pt2"
    evil.write_bytes(good.read_bytes())
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr("lin/data/aotinductor/model.so", b"\x7fELF")
    code, _, err = _run(capsys, "explain", str(evil), "1,2,3", "--quiet")
    assert code == 1 and "unexpected entry" in err


@case("security", "a clean torch.export archive", "loads and explains without any flag",
      verdict="held")
def test_clean_pt2_loads(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
    code, out, err = _run(capsys, "explain", str(_good_pt2(tmp_path)), "2,2,2", "--json",
                          "--steps", "4")
    assert code == 0, err
    assert json.loads(out)["results"][0]["output"] == pytest.approx(3.0, abs=1e-5)


@case("security", "TorchScript .pt whose data.pkl reduces to open() / os.system",
      "torch.jit.load's own unpickler refuses the global: exit 1, one line, nothing runs",
      verdict="held")
def test_torchscript_with_evil_pickle_runs_nothing(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "MARKER"
    good = tmp_path / "lin.pt"
    torch.jit.script(nn.Linear(3, 1)).save(str(good))
    evil = _rewrite(good, tmp_path / "evil.pt", {"/data.pkl": pickle.dumps(_Touch(marker),
                                                                          protocol=2)})
    code, _, err = _run(capsys, "explain", str(evil), "1,2,3", "--quiet")
    assert code == 1 and not marker.exists()
    assert "cannot load model" in err and len(err.strip().splitlines()) == 1


@case("security", "`explain my_models:build` with my_models.py in the current folder and no "
      "PYTHONPATH", "imports it (the folder is importable); --help says the callable runs "
      "the user's code")
def test_module_callable_from_current_folder(capsys: pytest.CaptureFixture[str],
                                             tmp_path: pathlib.Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "ak_here_models.py").write_text(textwrap.dedent("""
        import torch
        def build():
            return torch.nn.Linear(2, 1).double()
        def broken():
            raise ValueError("no weights file")
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    try:
        code, out, err = _run(capsys, "explain", "ak_here_models:build", "1,2", "--json",
                              "--steps", "4")
        assert code == 0, err
        code, _, err = _run(capsys, "explain", "ak_here_models:broken", "1,2")
        assert code == 1 and "factory 'ak_here_models:broken' raised ValueError" in err
        assert "no weights file" in err
    finally:
        sys.modules.pop("ak_here_models", None)
    code, out, _ = _run(capsys, "explain", "--help")
    assert "runs your code" in " ".join(out.split())


@case("security", "a 12000 x 12000 PNG of a few KB (a decompression bomb) given as input",
      "clean error, exit 1, one line naming --max-image-pixels; the flag raises the limit")
def test_decompression_bomb_is_refused(capsys: pytest.CaptureFixture[str],
                                       tmp_path: pathlib.Path) -> None:
    bomb = tmp_path / "bomb.png"
    Image.new("L", (12000, 12000)).save(bomb)  # 144 M pixels, a few KB on disk
    assert os.path.getsize(bomb) < 1_000_000
    model = tmp_path / "m.pt"
    torch.jit.script(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                   nn.Linear(3, 2))).save(str(model))
    code, _, err = _run(capsys, "explain", str(model), str(bomb), "--quiet")
    assert code == 1 and "--max-image-pixels" in err and len(err.strip().splitlines()) == 1
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(small)
    code, _, err = _run(capsys, "explain", str(model), str(small), "--quiet",
                        "--max-image-pixels", "1000")
    assert code == 1 and "larger than 1,000 pixels" in err
    code, _, err = _run(capsys, "explain", str(model), str(small), "--quiet",
                        "--max-image-pixels", "1200", "-m", "saliency")
    assert code == 0, err
