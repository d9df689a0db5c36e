"""The image report's closing sections: one block per photo, then the notes."""

from __future__ import annotations

from attribkit.demo.state import VisionRun

__all__ = ["notes_section", "per_photo_section"]


def per_photo_section(run: VisionRun) -> None:
    """Add each photo with its IG and gradient x input maps and its own AOPC."""
    ig, _, _, grad_attr = run.gradients()
    run.rep.heading("Per photo")
    for i, n in enumerate(run.names):
        results = {m: {"AOPC": float(v[i])} for m, v in run.per_photo.items()}
        run.rep.input_section(n, run.images[i],
                              {"integrated gradients": ig, "gradient x input": grad_attr},
                              prediction=run.labels[i], index=i,
                              gif=run.gif if i == 0 else None, results=results or None)


def notes_section(run: VisionRun) -> None:
    """List what was skipped or noted on the way (nothing when all went well)."""
    if run.result.notes:
        run.rep.heading("Notes")
        for note in run.result.notes:
            run.rep.text(note, note=True)
