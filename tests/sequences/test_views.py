"""The views of generation attribution: the CLI command, the heat map, the HTML table."""

from __future__ import annotations

import json
import pathlib

import numpy as np
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


def test_condense_keeps_the_largest_columns_and_each_row_sum() -> None:
    from attribkit.viz.generation import condense_columns

    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 40)) * rng.uniform(0.1, 3.0, size=40)
    labels = [f"t{j}" for j in range(40)]
    out, names = condense_columns(m, labels, max_columns=30)
    weight = np.abs(m).sum(axis=0)  # the oracle: the 29 heaviest columns, by hand
    keep = sorted(sorted(range(40), key=lambda j: -weight[j])[:29])
    assert out.shape == (4, 30) and names == [f"t{j}" for j in keep] + ["other (11 tokens)"]
    np.testing.assert_array_equal(out[:, :29], m[:, keep])
    np.testing.assert_allclose(out.sum(axis=1), m.sum(axis=1), rtol=1e-12)
    same, same_names = condense_columns(m[:, :30], labels[:30])
    assert same_names == labels[:30] and np.array_equal(same, m[:, :30])
    with pytest.raises(ValueError, match="at least 2"):
        condense_columns(m, labels, max_columns=1)


def test_heatmap_of_a_long_prompt_is_condensed_with_a_percentile_scale() -> None:
    from attribkit.viz.generation import colour_limit

    words = " ".join(["the cat sat on the road and the dog ran to the house"] * 5)
    res = explain_generation(tiny_model("tiny-llama"), tiny_tokenizer(), words, "a big red",
                             method="gradient_x_input")
    assert res.matrix.shape == (3, 65)
    fig = generation_heatmap(res)
    ax, bar = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == 30 and labels[-1] == "other (36 tokens)"
    assert fig.get_size_inches()[0] <= 18.0
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (3, 30)
    np.testing.assert_allclose(shown.sum(axis=1), res.matrix.double().sum(dim=1).numpy(),
                               rtol=1e-9)
    top = float(np.percentile(np.abs(shown), 99))
    assert ax.images[0].get_clim() == pytest.approx((-top, top))
    assert "99th percentile of |a|" in bar.get_ylabel() and f"{top:.3g}" in bar.get_ylabel()
    assert colour_limit(np.zeros((2, 3))) == 1.0
    assert colour_limit(np.array([[0.0, 0.0, 0.0, 2.0]]), 50.0) == 2.0


def test_explain_generation_report_file(tmp_path: pathlib.Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sub" / "answer.html"
    code = main(["explain-generation", "tiny-gpt2", "the cat sat on the", "--target",
                 "happy dog", "-m", "saliency", "-q", "--report", str(path)])
    assert code == 0
    page = path.read_text()
    assert "Answers, token by token" in page and page.count("data:image/png;base64,") == 1
    assert "happydog" in page  # the caption names the answer
