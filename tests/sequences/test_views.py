"""The views of generation attribution: the CLI command, the heat map, the HTML table."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from matplotlib.figure import Figure

from attribkit.cli import main
from attribkit.sequences import explain_generation
from attribkit.sequences.tiny import tiny_model, tiny_tokenizer
from attribkit.viz import generation_heatmap, generation_html

pytest.importorskip("transformers")


def test_cli_explain_generation(tmp_path: pathlib.Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explain-generation", "tiny-gpt2", "the cat sat on the", "--target",
                 "happy dog", "--steps", "8", "-q", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "largest relative gap" in out and "happy" in out
    data = json.loads((tmp_path / "generation.json").read_text())
    assert len(data["matrix"]) == 2 and len(data["matrix"][0]) == 5
    assert (tmp_path / "generation.png").stat().st_size > 1000
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    assert main(["explain-generation", "tiny-gpt2", "the cat", "-m", "lrp", "-q"]) == 2
    assert main(["explain-generation", str(tmp_path / "nope"), "the cat", "-q"]) == 2
    err = capsys.readouterr().err
    assert "unknown method" in err and "checkpoint folder" in err


def test_cli_reads_a_checkpoint_folder(tmp_path: pathlib.Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    tiny_model("tiny-t5").save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    code = main(["explain-generation", str(tmp_path), "the cat sat", "--target", "a dog",
                 "-m", "saliency", "--json", "-q"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["method"] == "saliency" and data["generated_tokens"] == ["a", "dog"]


def test_heatmap_and_html() -> None:
    tok = tiny_tokenizer()
    res = explain_generation(tiny_model("tiny-gpt2"), tok, "the cat sat", "on the mat", steps=8)
    fig = generation_heatmap(res)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["the", "cat", "sat"]
    assert len(ax.get_yticklabels()) == 3 and "completeness" in ax.get_title()
    page = generation_html(res)
    assert page.count("<tr>") == 4 and "[UNK]" in page  # 'mat' is outside the tiny vocabulary
    assert torch.isfinite(res.matrix).all()
