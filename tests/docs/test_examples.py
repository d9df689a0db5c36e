"""Every code block and command in README.md and docs/*.md runs as written (issue 21).

Python blocks of one page run in order in one namespace (a later block may use an earlier
block's names). A page whose blocks use names they do not define (``model``, ``x``, ...) gets
them from :data:`SETUPS`: small stand-ins of the right kind, so that a stale call fails here.
Shell blocks run each ``attribkit ...`` line through :func:`attribkit.cli.main` in a folder that
holds the files the examples name (:func:`_workspace`); a block written as a transcript
(``$ attribkit ...`` followed by output lines) must print that output (``...`` matches anything).

A Python block that is a fragment (it continues a surrounding text rather than standing alone,
e.g. a method body) is marked by a ``<!-- fragment -->`` line just above its fence: it is
compiled, so its syntax is checked, but not run. Every other Python block runs.

Not run, by design: ``make`` and ``pip`` lines (they are the set-up CI itself performs) and
blocks fenced as ``text`` or ``json`` (output formats, not code). :data:`CHEAP` lists the only
changes made to an example before it runs (a cheaper setting where the page's own is slow); each
keeps the call the reader sees.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shlex
from collections.abc import Iterator

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

#: Pages whose examples load a real model from the wheels (marked slow).
SLOW = {"README.md", "zoo-vision.md", "zoo-text.md", "zoo-chem.md", "zoo-tabular.md", "cli.md",
        "zoo-llm.md",
        "runs.md", "serve.md"}

#: Names a page's Python examples use without defining them: code run before the page's blocks.
SETUPS: dict[str, str] = {
    "evaluation.md": """
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
    torch.nn.Flatten(), torch.nn.Linear(64, 5)).double().eval()
x = torch.rand(2, 3, 224, 224, dtype=torch.float64)
b = torch.zeros_like(x)
""",
    "propagation.md": """
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
    torch.nn.Flatten(), torch.nn.Linear(64, 5)).double().eval()
x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
train = torch.rand(40, 3, 8, 8, dtype=torch.float64)
""",
    "unification.md": """
import torch
from attribkit.core.coalitions import patch_group_ids
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
    torch.nn.Linear(256, 5)).double().eval()
x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
b = torch.zeros_like(x)
group_ids = patch_group_ids((1, 8, 8), (4, 4))
""",
}

#: Files a page's examples must write (in the folder they run in).
WRITES: dict[str, set[str]] = {
    "visualisation.md": {"grid.png", "beeswarm.png", "dose.png", "batch.html"},
    "saving.md": {"ig.safetensors"},
}

#: (page, old, new): the only edits made before an example runs, each to a cheaper setting.
CHEAP: list[tuple[str, str, str]] = [
    ("zoo-llm.md", "hay = llm.haystack()", "hay = llm.haystack(n_filler=3, needle_at=1)"),
    ("zoo-llm.md", "prompts.txt -m ig --out", "prompts.txt -m ig --steps 6 --out"),
    ("README.md", "attribkit demo --out out", "attribkit demo --task toy --out out"),
    ("README.md", "cat.jpg -m ig -m grad_cam -m lrp -o out/",
     "cat.jpg -m ig -m grad_cam -m lrp --steps 8 -o out/"),
    ("cli.md", "photos/ -m ig -m grad_cam -m occlusion -o out/",
     "photos/ -m ig -m grad_cam -m occlusion --window 56 --stride 56 -o out/"),
    ("evaluation.md", 'axioms.audit(out="docs/axioms.md")',
     'axioms.audit(["saliency"], out="docs/axioms.md")'),
]


FRAGMENT = "<!-- fragment -->"


def _blocks(page: pathlib.Path) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of each fenced block; a marked fragment's language gets a
    ``:fragment`` suffix."""
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        lang = m.group(1) + (":fragment" if before == FRAGMENT else "")
        out.append((lang, m.group(2), text[:m.start()].count("\n") + 2))
    return out


def _cheap(page: str, code: str) -> str:
    for name, old, new in CHEAP:
        if name == page:
            code = code.replace(old, new)
    return code


def test_cheap_settings_still_match_the_pages() -> None:
    """Each cheaper setting replaces text that is still on its page."""
    for name, old, _new in CHEAP:
        page = ROOT / name if name == "README.md" else ROOT / "docs" / name
        assert old in page.read_text(encoding="utf-8"), f"{name}: {old!r} changed; update CHEAP"


def _workspace(tmp: pathlib.Path) -> None:
    """The files the shell examples name, in the folder they run in."""
    import torch
    from PIL import Image

    from attribkit.zoo import vision

    photo = vision.sample_photos(["chelsea"])["chelsea"]
    Image.fromarray(vision.deprocess(photo)).save(tmp / "cat.jpg")
    (tmp / "photos").mkdir()
    for name, image in vision.sample_photos(["chelsea", "coffee", "astronaut", "rocket"]).items():
        Image.fromarray(vision.deprocess(image)).save(tmp / "photos" / f"{name}.png")
    (tmp / "sentences.txt").write_text("a wonderful, warm film\nthe plot was a mess\n")
    (tmp / "prompts.txt").write_text("The capital of France is\n")
    (tmp / "rows.csv").write_text("1.0,2.5,0.3\n-0.5,0.1,2.0\n")
    from attribkit.zoo import tabular

    data = tabular.breast_cancer_data()
    rows = data.unstandardise(data.X_test[:2]).tolist()
    (tmp / "patients.csv").write_text(
        ",".join(n.replace(" ", "_") for n in data.feature_names) + "\n"
        + "\n".join(",".join(f"{v:.6g}" for v in r) for r in rows) + "\n")
    pkg = tmp / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(
        "import torch\n\n\ndef build():\n    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),\n"
        "                               torch.nn.Linear(4, 2)).double().eval()\n")
    lin = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0, 3.0, 0.0]]))
    for name in ("model.pt", "lin.pt"):
        torch.jit.save(torch.jit.script(lin), str(tmp / name))  # type: ignore[no-untyped-call]
    (tmp / "junk.pt").write_bytes(b"not a model")


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        yield buf


def _matches(expected: list[str], printed: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in "\n".join(expected).split("..."))
    return re.search(pattern, printed, re.S) is not None


def _is_shell(lang: str, code: str) -> bool:
    """A ``bash`` block, or an unmarked block holding ``attribkit`` commands."""
    if lang == "bash":
        return True
    return lang == "" and any(ln.lstrip("$ ").startswith("attribkit ")
                              for ln in code.splitlines())


def _run_shell(page: str, code: str, line: int) -> None:
    from attribkit.cli import main

    lines = code.splitlines()
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        i += 1
        transcript = raw.startswith("$ ")
        command = raw[2:] if transcript else raw
        if not command.startswith("attribkit "):
            assert command.split(" ")[0] in ("", "make", "pip", "#"), (
                f"{page}:{line}: a shell example the test cannot run: {raw!r}")
            continue
        expected: list[str] = []
        while transcript and i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        argv = shlex.split(command, comments=True)[1:]
        with _captured() as out:
            code_ = main(argv)
        printed = out.getvalue()
        if expected:
            want = "\n".join(expected)
            assert _matches(expected, printed), (
                f"{page}:{line}: `{command}` printed\n{printed}\ninstead of\n{want}")
        else:
            assert code_ == 0, f"{page}:{line}: `{command}` exited {code_}:\n{printed[-2000:]}"


def _params() -> list[object]:
    out = []
    for page in PAGES:
        if any(lang == "python" or _is_shell(lang, code) for lang, code, _ in _blocks(page)):
            marks = [pytest.mark.slow] if page.name in SLOW else []
            out.append(pytest.param(page, id=page.name, marks=marks))
    return out


@pytest.mark.parametrize("page", _params())
def test_page_examples_run(page: pathlib.Path, tmp_path: pathlib.Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # `attribkit serve` builds the app over the store, then would serve forever: serve nothing.
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    namespace: dict[str, object] = {"__name__": f"example_{page.stem}"}
    if page.name in SETUPS:
        exec(SETUPS[page.name], namespace)
    _workspace(tmp_path)
    for lang, code, line in _blocks(page):
        code = _cheap(page.name, code)
        if lang == "python:fragment":
            compile(code, f"{page.name}:{line}", "exec")  # checked, not run
        elif lang == "python":
            with _captured():
                exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        elif _is_shell(lang, code):
            _run_shell(page.name, code, line)
    written = {f.name for f in tmp_path.iterdir()}
    assert WRITES.get(page.name, set()) <= written, f"{page.name}: examples wrote {written}"


def test_fragments_are_marked_and_compile(tmp_path: pathlib.Path) -> None:
    """The marker is found just above a fence, and only there."""
    page = tmp_path / "p.md"
    page.write_text("text\n\n<!-- fragment -->\n```python\nreturn x\n```\n\n"
                    "```python\nx = 1\n```\n<!-- fragment -->\n\nprose\n```python\ny = 2\n```\n")
    assert [b[0] for b in _blocks(page)] == ["python:fragment", "python", "python"]
    for name in [p.name for p in PAGES]:
        page_path = ROOT / name if name == "README.md" else ROOT / "docs" / name
        for lang, code, line in _blocks(page_path):
            if lang == "python:fragment":
                compile(code, f"{name}:{line}", "exec")
