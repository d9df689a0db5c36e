"""Running a block of torch code on one thread, with deterministic kernels."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["one_thread"]


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
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    if deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic)
