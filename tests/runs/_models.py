"""Models for the run tests, built by spec (``tests.runs._models:tiny_cnn``) in any process.

Environment variables steer them, so that a test can reach into a worker process:

* ``ATTRIBKIT_TEST_COUNTER``: a file; every prepared item appends its id (counts model work).
* ``ATTRIBKIT_TEST_SLOW``: seconds to sleep per prepared item (to kill a run mid-way).
* ``ATTRIBKIT_TEST_HOLD``: a file; preparing an item waits while it exists (a run held open).
  ``ATTRIBKIT_TEST_HOLD_AFTER``: N; with it, a process holds only from its item N + 1 on, and
  first writes the item's file stem into ``<HOLD>.<pid>`` (a test sees who waits, on what).
* ``ATTRIBKIT_TEST_HOLD_START``: a file; a worker process (started by ``multiprocessing``)
  building ``tiny_cnn`` writes ``<file>.<pid>`` and waits while the file exists (still starting).
* ``ATTRIBKIT_TEST_DIE_ON`` and ``ATTRIBKIT_TEST_DIE_MARK``: the process exits (as if killed)
  when it prepares the item of that file stem (``*``: any item), once: the marker file records
  that it died. ``ATTRIBKIT_TEST_SPARE_PID``: a process that never exits so (the test's own).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pathlib
import time
from typing import Any

import torch
from torch import nn

from attribkit.zoo.specs import Built, Prepared, plain

SIZE = 32
_PREPARED = itertools.count(1)  # items this process prepared (ATTRIBKIT_TEST_HOLD_AFTER)


def cnn() -> nn.Module:
    """A seeded float32 CNN ``(N, 3, 32, 32) -> (N, 5)``."""
    gen = torch.Generator().manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.Softplus(), nn.AvgPool2d(4),
        nn.Conv2d(4, 6, 3, padding=1), nn.Tanh(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(24, 5),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return net.eval()


def _held(hold: str, what: str) -> None:
    """Write ``what`` into ``<hold>.<pid>`` (atomically) and wait while ``hold`` exists."""
    if os.path.exists(hold):
        part = pathlib.Path(f"{hold}.{os.getpid()}.part")
        part.write_text(what)
        os.replace(part, f"{hold}.{os.getpid()}")
    while os.path.exists(hold):
        time.sleep(0.02)


def _hooks(raw: Any) -> None:
    stem = pathlib.Path(str(raw)).stem
    counter = os.environ.get("ATTRIBKIT_TEST_COUNTER")
    if counter:
        with open(counter, "a") as fh:
            fh.write(f"{stem}\n")
    die_on = os.environ.get("ATTRIBKIT_TEST_DIE_ON")
    mark = os.environ.get("ATTRIBKIT_TEST_DIE_MARK")
    spared = os.environ.get("ATTRIBKIT_TEST_SPARE_PID") == str(os.getpid())
    if (die_on and mark and die_on in (stem, "*") and not spared
            and not os.path.exists(mark)):
        pathlib.Path(mark).write_text(str(os.getpid()))
        os._exit(1)
    hold = os.environ.get("ATTRIBKIT_TEST_HOLD")
    after = os.environ.get("ATTRIBKIT_TEST_HOLD_AFTER")
    if hold and after:
        if next(_PREPARED) > int(after):
            _held(hold, stem)
    else:
        while hold and os.path.exists(hold):
            time.sleep(0.02)
    slow = float(os.environ.get("ATTRIBKIT_TEST_SLOW", "0") or 0)
    if slow:
        time.sleep(slow)


def tiny_cnn() -> Built:
    """The CNN with images read as RGB in [0, 1], instrumented by the environment variables."""
    start = os.environ.get("ATTRIBKIT_TEST_HOLD_START")
    if start and multiprocessing.parent_process() is not None:  # a worker process, starting
        _held(start, "start")
    base = plain(cnn())

    def prepare(raw: Any) -> Prepared:
        _hooks(raw)
        return base.prepare(raw)

    return Built(base.model, "image", prepare, label=lambda c: f"class {c}")


def nan_cnn() -> Built:
    """The CNN, but F is NaN for images whose mean is above 0.5 (a silent numeric failure)."""
    net = cnn()

    def model(x: torch.Tensor) -> torch.Tensor:
        out = net(x)
        bright = x.flatten(1).mean(dim=1) > 0.5
        return torch.where(bright[:, None], torch.full_like(out, float("nan")), out)

    return plain(model)


def tiny_text() -> Built:
    """Words -> ids -> embeddings (the layer attributed) -> mean -> MLP ``(N, 2)``."""
    gen = torch.Generator().manual_seed(1)
    emb = nn.Embedding(50, 4)
    head = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in [*emb.parameters(), *head.parameters()]:
            p.copy_(torch.randn(p.shape, generator=gen))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = emb, head

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.head(self.emb(ids).mean(dim=1))
            return out

    net = Net().eval()

    def prepare(raw: Any) -> Prepared:
        words = str(raw).split()
        ids = torch.tensor([[sum(map(ord, w)) % 50 for w in words]])
        return Prepared(ids, None, text=str(raw), tokens=words)

    return Built(net, "text", prepare, layer=net.emb, reduce=lambda v: v.sum(dim=-1))


def mlp() -> nn.Module:
    """A seeded float32 MLP ``(N, 4) -> (N, 2)`` (the model of the committed version-1 store)."""
    gen = torch.Generator().manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net.eval()


def v1_data() -> list[torch.Tensor]:
    """The three inputs of the committed version-1 store (tests/runs/data/store_v1)."""
    return [torch.linspace(-1, 1, 4) * (k + 1) for k in range(3)]


def tiny_generation() -> Built:
    """A seeded random GPT-2 with a word-level tokenizer, read as a language model: one prompt
    per item, each answer (a run's ``max_new_tokens`` greedy tokens) attributed."""
    from attribkit.sequences.tiny import tiny_model, tiny_tokenizer
    from attribkit.zoo.specs import generation

    return generation(tiny_model("tiny-gpt2", dtype=torch.float64), tiny_tokenizer(),
                      "tiny-gpt2")


class ToyRayWorker:
    """A stand-in for the Ray engine's actor class (same ``ready`` / ``process`` calls), for
    tests of its scheduler: ``process`` appends ``pid start end`` per batch to the file
    ``log``, waits (up to 60 s) until ``barrier`` distinct processes have logged a start, and
    exits the process (as if killed) on an item named ``die_on``; ``broken`` fails the build."""

    def __init__(self, log: str, barrier: int = 1, die_on: str = "", broken: bool = False
                 ) -> None:
        if broken:
            raise ValueError("no such weights file: broken.pt")
        self.log, self.barrier, self.die_on = pathlib.Path(log), barrier, die_on

    def ready(self) -> bool:
        return True

    def process(self, tasks: list[Any], kind: str) -> tuple[list[dict[str, Any]], list[Any]]:
        if any(t.item.item_id == self.die_on for t in tasks):
            os._exit(1)
        start = time.time()
        with self.log.open("a") as f:
            f.write(f"{os.getpid()} {start} start\n")
        for _ in range(600):
            starts = {ln.split()[0] for ln in self.log.read_text().splitlines()}
            if len(starts) >= self.barrier:
                break
            time.sleep(0.1)
        with self.log.open("a") as f:
            f.write(f"{os.getpid()} {time.time()} end\n")
        return [{"item": t.item.item, "pid": os.getpid()} for t in tasks], []
