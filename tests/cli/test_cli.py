"""The attribkit command: exit codes, messages, --json schema, files written."""

from __future__ import annotations

import html.parser
import json
import pathlib
import re
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from attribkit.cli import main


class _Lin(nn.Module):
    """F(x) = x . w on flattened inputs (one output): IG from 0 is exactly x * w."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w


pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")


@pytest.fixture
def lin_model(tmp_path: pathlib.Path) -> tuple[pathlib.Path, torch.Tensor]:
    w = torch.tensor([1.0, -2.0, 3.0, 0.5])
    path = tmp_path / "lin.pt"
    torch.jit.script(_Lin(w)).save(str(path))
    return path, w


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["explain"], ["methods"], ["demo"], ["audit"]):
        code, out, _ = _run(capsys, *argv, "--help")
        assert code == 0 and "usage:" in out


def test_explain_generation_help_names_every_generation_method(
        capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.sequences import GENERATION_METHODS

    code, out, _ = _run(capsys, "explain-generation", "--help")
    text = " ".join(out.split())
    assert code == 0 and all(m in text for m in GENERATION_METHODS)


def test_no_command_and_unknown_command_are_usage_errors(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys)
    assert code == 2 and "command is required" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err


def test_methods_lists_registry_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    from attribkit.methods import methods

    code, out, _ = _run(capsys, "methods", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(methods())
    ig = next(r for r in rows if r["name"] == "integrated_gradients")
    assert ig["complete"] is True and "completeness" in ig["axioms"]
    code, out, _ = _run(capsys, "methods", "-v")
    assert code == 0 and "integrated_gradients" in out


def test_explain_csv_row_json_matches_closed_form(
        capsys: pytest.CaptureFixture[str], lin_model: tuple[pathlib.Path, torch.Tensor],
        tmp_path: pathlib.Path) -> None:
    path, w = lin_model
    x = [2.0, 1.0, -1.0, 4.0]
    code, out, err = _run(capsys, "explain", str(path), ",".join(map(str, x)), "--method", "ig",
                          "--steps", "8", "--json", "--out", str(tmp_path / "o"))
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"model", "results", "report", "exit_code"}
    (r,) = doc["results"]
    assert {"input", "method", "target", "output", "baseline_output", "sum", "gap",
            "relative_gap", "top_features", "files", "summary"} <= set(r)
    assert r["method"] == "integrated_gradients"
    expected = np.array(x) * w.numpy()  # IG of a linear model from the zero baseline
    assert r["output"] == pytest.approx(float(expected.sum()), abs=1e-5)
    assert r["gap"] == pytest.approx(0.0, abs=1e-5)
    top = r["top_features"]
    assert top[0]["index"] == [2]  # x * w = (2, -2, -3, 2)
    assert top[0]["value"] == pytest.approx(-3.0, abs=1e-5)
    got = {f["index"][0]: f["value"] for f in top}
    np.testing.assert_allclose([got[i] for i in range(4)], expected, atol=1e-5)
    assert pathlib.Path(doc["report"]).is_file()


def test_explain_image_file_writes_png(capsys: pytest.CaptureFixture[str],
                                       tmp_path: pathlib.Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(2, 3)).eval()
    mpath = tmp_path / "cnn.pt"
    torch.jit.trace(model, torch.zeros(1, 3, 12, 12)).save(str(mpath))
    img = tmp_path / "in<1>.png"
    Image.fromarray((np.random.default_rng(0).random((12, 12, 3)) * 255).astype(np.uint8)).save(
        img)
    code, out, err = _run(capsys, "explain", str(mpath), str(img), "-m", "ig", "-m",
                          "integrated_gradients", "--target", "1", "--steps", "4",
                          "--out", str(tmp_path / "o"), "--quiet")
    assert code == 0, err
    assert "gap" in out and "target 1" in out
    pngs = sorted((tmp_path / "o").glob("*.png"))
    assert len(pngs) == 1  # both method names are the same method: one file, written twice
    a = np.asarray(Image.open(pngs[0]).convert("RGB"))
    # the report's style: the input and an inferno overlay with its colour bar, side by side
    assert a.shape[1] > 1.5 * a.shape[0] > 300 and a.dtype == np.uint8
    import matplotlib

    top = (np.asarray(matplotlib.colormaps["inferno"](0.95)[:3]) * 255).round()
    assert (np.abs(a.reshape(-1, 3).astype(float) - top).max(axis=1) < 8).sum() > 20


def test_unknown_method_is_usage_error(capsys: pytest.CaptureFixture[str],
                                       lin_model: tuple[pathlib.Path, torch.Tensor]) -> None:
    code, out, err = _run(capsys, "explain", str(lin_model[0]), "1,2,3,4", "-m", "magic")
    assert code == 2 and "unknown attribution method 'magic'" in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_bad_model_paths_and_files(capsys: pytest.CaptureFixture[str],
                                   tmp_path: pathlib.Path) -> None:
    code, _, err = _run(capsys, "explain", str(tmp_path / "missing.pt"), "1,2")
    assert code == 1 and "model file not found" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    code, _, err = _run(capsys, "explain", str(junk), "1,2")
    assert code == 1 and "cannot load model" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(capsys, "explain", "no-such-zoo-model", "1,2")
    assert code == 2 and "unknown model" in err
    code, _, err = _run(capsys, "explain", "nonexistent_mod_xyz:make", "1,2")
    assert code == 1 and "cannot import" in err


def test_wrong_kind_of_input(capsys: pytest.CaptureFixture[str],
                             lin_model: tuple[pathlib.Path, torch.Tensor],
                             tmp_path: pathlib.Path) -> None:
    path = str(lin_model[0])
    code, _, err = _run(capsys, "explain", path, "hello world")
    assert code == 1 and "neither an image" in err
    code, _, err = _run(capsys, "explain", path, str(tmp_path / "nope.png"))
    assert code == 1 and "input file not found" in err
    code, _, err = _run(capsys, "explain", path, "1,2,3")  # 3 numbers for a 4-input model
    assert code == 1 and "cannot run on '1,2,3' (input shape (1, 3))" in err
    assert "size mismatch" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, _, err = _run(capsys, "explain", path, str(bad))
    assert code == 1 and "cannot read" in err


def test_bad_option_values(capsys: pytest.CaptureFixture[str],
                           lin_model: tuple[pathlib.Path, torch.Tensor]) -> None:
    code, _, err = _run(capsys, "explain", str(lin_model[0]), "1,2,3,4", "--steps", "0")
    assert code == 2 and "--steps" in err
    code, _, err = _run(capsys, "explain", str(lin_model[0]), "1,2,3,4", "--steps", "many")
    assert code == 2 and "invalid int value" in err
    code, _, err = _run(capsys, "demo", "--task", "poetry")
    assert code == 2 and "unknown demo task" in err


def test_module_callable_model(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ak_cli_factory.py").write_text(textwrap.dedent("""
        import torch
        def make():
            return torch.nn.Linear(3, 2).double()
        def not_a_model():
            return 42
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = _run(capsys, "explain", "ak_cli_factory:make", "1,2,3", "--json",
                          "--steps", "4", "--target", "0")
    assert code == 0, err
    assert json.loads(out)["results"][0]["target"] == 0
    code, _, err = _run(capsys, "explain", "ak_cli_factory:not_a_model", "1,2,3")
    assert code == 1 and "not a model" in err
    sys.modules.pop("ak_cli_factory", None)


def test_audit_axioms_of_one_method(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("attribkit.axioms")
    code, out, err = _run(capsys, "audit", "--axioms", "-m", "ig", "--quiet")
    assert code == 0, err
    assert "integrated_gradients" in out and "completeness" in out
    code, _, err = _run(capsys, "audit", "-m", "nonsense")
    assert code == 2 and "unknown attribution method" in err


class _Imgs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.srcs += [v or "" for k, v in attrs if k == "src"]


def test_toy_demo_writes_self_contained_report(capsys: pytest.CaptureFixture[str],
                                               tmp_path: pathlib.Path) -> None:
    code, out, err = _run(capsys, "demo", "--task", "toy", "--out", str(tmp_path), "--quiet")
    assert code == 0, err
    assert "wrote" in out and "toy<0>" in out
    s = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "toy<0>" not in s and "toy&lt;0&gt;" in s  # the photo names are escaped
    p = _Imgs()
    p.feed(s)
    assert len(p.srcs) >= 6 and all(src.startswith("data:image/") for src in p.srcs)
    assert any(src.startswith(("data:image/gif", "data:image/webp")) for src in p.srcs)
    assert (tmp_path / "interior.gif").is_file()
    # findable: a contents list linking every section, the summary table first, small enough
    nav = s[s.index('<nav class="toc"'):s.index("</nav>")]
    anchors = re.findall(r'href="#([^"]+)"', nav)
    assert len(anchors) >= 7 and all(f'id="{a}"' in s for a in anchors)
    assert anchors[0] == "summary" and s.index('id="summary"') < s.index('id="saturation')
    assert s.index('id="summary"') < s.index("<img")
    assert len(s.encode("utf-8")) < 1_000_000, len(s)
    assert "flattens well before" not in s and "curves reach 90% of their rise" in s


@pytest.mark.slow
def test_explain_efficientnet_zoo_model(capsys: pytest.CaptureFixture[str],
                                        tmp_path: pathlib.Path) -> None:
    vision = pytest.importorskip("attribkit.zoo.vision")
    photo = tmp_path / "cat.png"
    Image.fromarray(vision.center_crop(vision.load_photo("chelsea"))).save(photo)
    code, out, err = _run(capsys, "explain", "efficientnet-lite0", str(photo), "-m", "saliency",
                          "--json", "--top", "3", "--out", str(tmp_path / "o"))
    assert code == 0, err
    (r,) = json.loads(out)["results"]
    assert r["method"] == "saliency" and isinstance(r["target_name"], str)
    assert 0 < r["output"] <= 1 and len(r["top_features"]) == 3
    assert len(r["top_features"][0]["box"]) == 4  # a region: left, top, right, bottom
    png = np.asarray(Image.open(r["files"][0]))
    assert png.shape[0] >= 224 and png.shape[1] > 2 * 224  # input, overlay and colour bar
    assert pathlib.Path(r["files"][0]).name == "cat_saliency.png"
    code, _, err = _run(capsys, "explain", "efficientnet-lite0", "a sentence, not an image")
    assert code == 1 and "explains image files or folders" in err


def test_explain_torch_export_archive(capsys: pytest.CaptureFixture[str],
                                      tmp_path: pathlib.Path) -> None:
    w = torch.tensor([0.5, -1.0, 2.0])
    ep = torch.export.export(_Lin(w), (torch.zeros(1, 3),))
    path = tmp_path / "lin.pt2"
    torch.export.save(ep, str(path))
    code, out, err = _run(capsys, "explain", str(path), "2,2,2", "--json", "--steps", "4")
    assert code == 0, err
    (r,) = json.loads(out)["results"]
    assert r["output"] == pytest.approx(3.0, abs=1e-5)  # 2 * (0.5 - 1 + 2)
    assert r["sum"] == pytest.approx(3.0, abs=1e-5)
