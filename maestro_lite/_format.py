"""Formatting shared by the CLI and the dashboard."""

from __future__ import annotations

__all__ = ["duration"]


def duration(seconds: float | None) -> str:
    """``12.3s``, ``4m05s`` or ``2h07m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
