"""Careless command lines: each gets one line that says what was wrong (and JSON with --json)."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from tests.reliability._cases import case
from torch import nn

from attribkit.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


@pytest.fixture
def lin(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "lin.pt"
    torch.jit.script(nn.Linear(4, 2).double()).save(str(path))
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@case("cli", "--json with a model file that does not exist, and with an unknown method",
      "stdout holds exactly one JSON object {error, exit_code} (1 and 2); stderr one line")
def test_json_failure_is_one_object(capsys: pytest.CaptureFixture[str],
                                    tmp_path: pathlib.Path, lin: str) -> None:
    code, out, err = _run(capsys, "explain", str(tmp_path / "nope.pt"), "1,2", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["exit_code"] == 1 and "model file not found" in doc["error"]
    assert len(err.strip().splitlines()) == 1
    code, out, _ = _run(capsys, "explain", lin, "1,2,3,4", "-m", "magic", "--json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2 and "unknown attribution method" in doc["error"]


@case("cli", "Ctrl-C while the model loads (start-up)", "one line `attribkit: interrupted`, "
      "exit 130, no traceback")
def test_ctrl_c_during_start_up(capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch, lin: str) -> None:
    import attribkit.cli.explain as ex

    def interrupt(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ex, "load_model", interrupt)
    code, out, err = _run(capsys, "explain", lin, "1,2,3,4")
    assert code == 130 and err.strip() == "attribkit: interrupted" and out == ""


@case("cli", "--top -3, --top 0", "usage error (exit 2) naming --top")
def test_negative_top_is_refused(capsys: pytest.CaptureFixture[str], lin: str) -> None:
    for value in ("-3", "0"):
        code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "--top", value)
        assert code == 2 and "--top must be a positive integer" in err


@case("cli", "-o pointing at an existing file", "usage error saying to give a folder or move "
      "the file; the file is untouched")
def test_out_onto_existing_file(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
                                lin: str) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "-o", str(f))
    assert code == 2 and "is an existing file; give a folder name" in err
    assert f.read_text() == "keep me"


@case("cli", "a CSV row of 29 numbers for the 30-column breast-cancer model",
      "exit 1: `breast-cancer-mlp wants 30 columns (...); this row has 29`")
def test_csv_row_of_wrong_length(capsys: pytest.CaptureFixture[str]) -> None:
    row = ",".join(["1.0"] * 29)
    code, _, err = _run(capsys, "explain", "breast-cancer-mlp", row, "--quiet")
    assert code == 1 and "wants 30 columns" in err and "has 29" in err


@case("cli", "--set with an unknown key, a key the CLI sets itself, and a bad JSON value",
      "usage errors naming the key and what the method takes")
def test_set_is_checked_against_the_signature(capsys: pytest.CaptureFixture[str],
                                              lin: str) -> None:
    code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "--set", "stepz=4")
    assert code == 2 and "no chosen method takes 'stepz'" in err and "steps" in err
    code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "--set", "target=1")
    assert code == 2 and "use --target" in err
    code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "--set", "steps=[1,")
    assert code == 2 and "not valid JSON" in err
    code, _, err = _run(capsys, "explain", lin, "1,2,3,4", "-m", "saliency", "--window", "3")
    assert code == 2 and "--window: none of the methods" in err
