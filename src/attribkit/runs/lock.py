"""One writer at a time: the store's lock file ``writer.lock``.

The file holds the writer's pid, host and start time as JSON, and the writer keeps an exclusive
``flock`` on it for as long as it runs, so a writer that dies (even by SIGKILL) releases the lock
at once. A run that finds the lock held refuses with one line naming the holder (or, with
``wait=True``, waits for it). A lock file left by a writer that is no longer running on this host
is taken over with a note; one left by a writer on another host, whose process cannot be
checked from here, is refused with the way out (delete the file once that run has stopped).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["LOCK_NAME", "StoreBusy", "WriterLock", "pid_alive"]

LOCK_NAME = "writer.lock"

try:  # POSIX; elsewhere the pid and host in the file are all there is
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class StoreBusy(RuntimeError):
    """Another run is writing the store."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (a zombie counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a killed child not yet reaped by its parent is a zombie: it writes nothing more
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _holder(info: dict[str, Any]) -> str:
    since = f", since {info['started']}" if info.get("started") else ""
    return f"pid {info.get('pid')} on host {info.get('host')}{since}"


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    try:
        info = json.loads(data.decode("utf-8")) if data.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"pid": None, "host": None}
    return info if isinstance(info, dict) else {"pid": None, "host": None}


class WriterLock:
    """The lock of the store at ``root``; use as a context manager around the writing.

    Parameters
    ----------
    root
        The store folder (it must exist).
    wait
        When the store is locked, wait for the holder to finish instead of refusing.
    note
        Where one-line notes go (taking over a stale lock, waiting); default stderr.
    """

    def __init__(self, root: str | os.PathLike[str], *, wait: bool = False,
                 note: Callable[[str], None] | None = None) -> None:
        self.path = pathlib.Path(root) / LOCK_NAME
        self.wait = wait
        self.note = note or (lambda text: print(f"attribkit: {text}", file=sys.stderr))
        self.fd: int | None = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _busy(self, info: dict[str, Any]) -> StoreBusy:
        return StoreBusy(f"{str(self.path.parent)!r} is being written by another run "
                         f"({_holder(info)}); wait for it to finish, or pass --wait")

    def acquire(self) -> None:
        """Take the lock, or raise :class:`StoreBusy` (after waiting, with ``wait``)."""
        waited = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if not self._flock(fd):
                    info = _read(fd)
                    if not self.wait:
                        raise self._busy(info)
                    if not waited:
                        self.note(f"waiting for the run writing {str(self.path.parent)!r} "
                                  f"({_holder(info)}) to finish")
                        waited = True
                    os.close(fd)
                    time.sleep(0.2)
                    continue
                if not self._same_file(fd):  # the holder removed it as we opened it: again
                    os.close(fd)
                    continue
                info = _read(fd)
                if info and not self._stale(info):
                    if not self.wait:
                        raise self._busy(info)
                    os.close(fd)
                    time.sleep(0.5)
                    continue
                self._write(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            self.fd = fd
            return

    def _flock(self, fd: int) -> bool:
        if fcntl is None:  # pragma: no cover
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # a file system without flock: the pid and host decide
            return True
        return True

    def _same_file(self, fd: int) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def _stale(self, info: dict[str, Any]) -> bool:
        """Whether a lock file we could lock was left by a writer that is gone (with a note)."""
        pid, host = info.get("pid"), info.get("host")
        if host != socket.gethostname() or not isinstance(pid, int):
            if host is None and pid is None:  # unreadable leftovers of a torn write
                self.note(f"took over {str(self.path)!r}, which held no readable writer")
                return True
            if fcntl is not None and host != socket.gethostname():
                raise StoreBusy(f"{str(self.path.parent)!r} was locked by a run on another host "
                                f"({_holder(info)}); if that run has stopped, delete "
                                f"{str(self.path)!r} and start again")
            return False
        if pid == os.getpid() or (fcntl is None and pid_alive(pid)):
            return False
        self.note(f"took over the lock of a run that is no longer running ({_holder(info)})")
        return True

    def _write(self, fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:500]}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)

    def release(self) -> None:
        """Remove the lock file and let go of it (the next writer starts clean)."""
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            if self._same_file(self.fd):
                os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = None
