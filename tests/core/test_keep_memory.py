"""Freed memory kept for reuse in attribkit's own processes (glibc malloc settings).

Oracle: the kernel's count of minor page faults. A 48 MiB block is above glibc's largest
adaptive threshold (32 MiB), so by default every allocation of it is a fresh mapping whose
pages fault in again; with the memory kept, the second and later allocations reuse the heap.
"""

from __future__ import annotations

import os
import subprocess
import sys

_CODE = """
import resource, sys, torch
from attribkit.startup import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else None)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.empty(48 << 18).fill_(1.0)
before = faults()
for _ in range(5):
    torch.empty(48 << 18).fill_(1.0)
print(faults() - before)
"""


def _faults(mode: str, **env: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _CODE, mode], capture_output=True, text=True,
                         check=True, env={**os.environ, **env}, timeout=120).stdout.split()
    return out[0], int(out[1])


def test_kept_memory_is_not_paged_in_again() -> None:
    applied, kept = _faults("keep")
    assert applied == "True"
    _, default = _faults("default")
    # 5 x 48 MiB of 4 KiB pages is 61,440 faults when each block is mapped afresh; kept, the
    # heap grows at most once more (12,288 faults for one block), then is reused
    assert default > 50_000
    assert kept < 15_000


def test_it_can_be_turned_off() -> None:
    applied, faults = _faults("keep", ATTRIBKIT_KEEP_MEMORY="0")
    assert applied == "False"
    assert faults > 50_000
