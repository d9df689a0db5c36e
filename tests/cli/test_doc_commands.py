"""The `attribkit` command lines in README.md, docs/cli.md and docs/zoo-*.md run as written.

Every command in a ```bash block is parsed by the real parser (so a flag that does not exist,
like the `--model` docs/zoo-tabular.md once showed, fails here). Then each `explain` command runs
in a folder holding the files the examples name (a CSV of patients, ``my_models.py``), except
the photo ones and the `-m all` ones: their paths (same flags, cheaper settings) run in
test_explain_every_method.py and test_cli.py, and at their documented settings they cost minutes
of CPU.
"""

from __future__ import annotations

import pathlib
import re
import shlex
import sys

import pytest

from attribkit.cli import _parser, main
from attribkit.cli.models import _ALIASES, ZOO_MODELS

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "cli.md", *sorted((ROOT / "docs").glob("zoo-*.md"))]


def _commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                if line.startswith("attribkit "):
                    found.append((doc.name, shlex.split(line, comments=True)[1:]))
    return found


COMMANDS = _commands()


def test_the_docs_show_commands() -> None:
    names = {doc for doc, _ in COMMANDS}
    assert {"README.md", "cli.md", "zoo-tabular.md"} <= names
    assert sum(argv[0] == "explain" for _, argv in COMMANDS) >= 8


@pytest.mark.parametrize(("doc", "argv"), COMMANDS, ids=[" ".join(a)[:60] for _, a in COMMANDS])
def test_doc_command_parses(doc: str, argv: list[str]) -> None:
    args = _parser().parse_args(argv)  # a UsageError here fails the test
    if argv[0] == "explain":
        spec = args.model
        assert (spec.lower() in ZOO_MODELS or spec.lower() in _ALIASES
                or re.fullmatch(r"\w+:\w+", spec)), f"{doc}: unknown model {spec!r}"


@pytest.fixture
def doc_folder(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    tabular = pytest.importorskip("attribkit.zoo.tabular")
    data = tabular.breast_cancer_data()
    rows = data.unstandardise(data.X_test[:2]).tolist()
    (tmp_path / "patients.csv").write_text(
        ",".join(n.replace(" ", "_") for n in data.feature_names) + "\n"
        + "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),\n"
        "                               torch.nn.Linear(4, 2))\n")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("my_models", None)


@pytest.mark.slow
def test_doc_explain_commands_run(doc_folder: pathlib.Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    ran = 0
    for doc, argv in COMMANDS:
        if argv[0] != "explain" or "all" in argv or argv[1].startswith("efficientnet"):
            continue
        code = main([*argv, "--quiet"])
        _out, err = capsys.readouterr()
        assert code == 0, f"{doc}: attribkit {' '.join(argv)}\n{err}"
        ran += 1
    assert ran >= 4
