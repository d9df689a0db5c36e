"""Reading command-line inputs: image files, tensor files, CSV rows."""

from __future__ import annotations

import pathlib

import torch
from torch import Tensor

__all__ = ["IMAGE_EXT", "csv_row", "read_tensor_input"]

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def read_tensor_input(text: str) -> tuple[Tensor, str]:
    """An input for a model from a file: image, .npy / .pt tensor, or a CSV row."""
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() in IMAGE_EXT:
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(p) as img:
                a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as err:
            raise RuntimeError(f"cannot read {text!r} as an image ({err})") from err
        return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous(), "image"
    if p.suffix.lower() in (".npy", ".pt"):
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        if p.suffix.lower() == ".npy":
            import numpy as np

            t = torch.from_numpy(np.load(p))
        else:
            t = torch.load(p, map_location="cpu", weights_only=True)
        return torch.as_tensor(t), "tensor"
    return csv_row(text), "tabular"


def csv_row(text: str) -> Tensor:
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() == ".csv":
        if not p.is_file():
            raise FileNotFoundError(f"input file not found: {text!r}")
        lines = [ln for ln in p.read_text().splitlines() if ln.strip()]
        text = lines[-1]
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise ValueError(f"input {text[:60]!r} is neither an image, a tensor file nor a CSV "
                         "row of numbers") from err
    return torch.tensor([values], dtype=torch.float64)
