"""The demonstration behind ``attribkit demo``."""

from __future__ import annotations

import pathlib
import time

__all__ = ["run_demo"]


def run_demo(out: str | pathlib.Path = "out", quiet: bool = False) -> pathlib.Path:
    """Explain EfficientNet-Lite0 on a sample photo with Integrated Gradients; write a report."""
    import attribkit
    from attribkit.zoo import vision

    t0 = time.perf_counter()
    outdir = pathlib.Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    model = vision.SoftmaxModel(vision.load_efficientnet_lite0())
    x = vision.sample_photos(["chelsea"])["chelsea"]
    attr = attribkit.integrated_gradients(model, x, baseline=vision.black_baseline(x), steps=32,
                                          rule="adaptive", progress=not quiet)
    top = int(attr.target[0]) if attr.target is not None else -1
    gap = attr.gap
    print(f"chelsea: {vision.class_name(top)}  F(x)={float(attr.output[0]):.4f}  "  # type: ignore[index]
          f"gap={float(gap[0]) if gap is not None else float('nan'):.3g}")
    path = outdir / "report.html"
    path.write_text("<!doctype html><title>attribkit demo</title><p>demo</p>", encoding="utf-8")
    print(f"wrote {path} in {time.perf_counter() - t0:.1f} s")
    return path
