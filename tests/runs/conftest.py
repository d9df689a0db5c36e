"""Eight small photos in a folder, shared by the run tests."""

from __future__ import annotations

import pathlib

import pytest

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle", "camera", "china", "flower")
REPO = pathlib.Path(__file__).resolve().parents[2]


def write_photos(folder: pathlib.Path, size: int = 32, names: tuple[str, ...] = PHOTOS
                 ) -> pathlib.Path:
    """Save the photos, centre-cropped and resized to ``size``, as PNG files in ``folder``."""
    from PIL import Image

    from attribkit.zoo import vision

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        img = Image.fromarray(vision.center_crop(vision.load_photo(name)))
        img.resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A folder of the 8 photos at 32 x 32 pixels (do not write into it)."""
    return write_photos(tmp_path_factory.mktemp("photos"))


def env_with_paths() -> dict[str, str]:
    """``PYTHONPATH`` for a child process (or Ray worker): this worktree's src and tests."""
    import os

    parts = [str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in parts if p)}
