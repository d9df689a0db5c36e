"""Running a block of torch code on a set number of threads (one, with deterministic kernels)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["one_thread", "torch_threads"]


@contextlib.contextmanager
def one_thread(deterministic: bool = True) -> Iterator[None]:
    """Run the block with one intra-op torch thread (and deterministic kernels), then restore.

    One thread makes CPU reductions run in a fixed order, so that a seeded training gives the
    same weights bit for bit on one machine and torch build; for the many small kernels of small
    models it is also the faster choice on a shared machine.

    Parameters
    ----------
    deterministic : bool
        Also call ``torch.use_deterministic_algorithms(True)`` inside the block, so that no
        kernel may take a nondeterministic path.

    Yields
    ------
    None
        Inside the block torch uses one thread; the previous settings come back on exit.
    """
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch_threads(1):
        if deterministic:
            torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was_deterministic)


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads, then restore the previous number.

    Parameters
    ----------
    threads : int
        Intra-op threads inside the block (at least one).

    Yields
    ------
    None
        Inside the block torch uses ``threads`` threads.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
