"""Self-contained HTML reports of attributions (images embedded; opens offline)."""

from __future__ import annotations

from attribkit.report.html import Report, data_uri

__all__ = ["Report", "data_uri"]
