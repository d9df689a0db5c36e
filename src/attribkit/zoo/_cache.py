"""Where attribkit keeps files it computes once (trained heads, small models).

The directory is ``$ATTRIBKIT_CACHE`` when that variable is set and not empty, otherwise
``~/.cache/attribkit``. It is created on first use. Nothing in it is needed to run attribkit:
deleting it only means the next call trains or computes again.
"""

from __future__ import annotations

import os
import pathlib

__all__ = ["CACHE_ENV", "cache_dir"]

CACHE_ENV = "ATTRIBKIT_CACHE"
"""Name of the environment variable that overrides the cache directory."""


def cache_dir(*parts: str) -> pathlib.Path:
    """Return (and create) attribkit's cache directory, or a sub-directory of it.

    Parameters
    ----------
    *parts : str
        Optional sub-directory names joined under the cache root, e.g. ``cache_dir("tabular")``.

    Returns
    -------
    pathlib.Path
        An existing directory: ``$ATTRIBKIT_CACHE/<parts...>`` when the environment variable is
        set and not empty, else ``~/.cache/attribkit/<parts...>``.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    root = pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "attribkit"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
