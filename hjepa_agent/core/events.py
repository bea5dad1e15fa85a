"""The event record shared by the safety components (bridge, watchdog).

Events go to ``agent/events`` and into diagnostics, so every decision that
changes what the robot does can be traced to its reasons.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """One decision with its reasons.

    stamp_s: time (s) on the caller's clock when it was decided; kind: a short tag,
    e.g. "mode" (watchdog transition), "state" (bridge state change), "rejection",
    "clamp", "estop", "limits"; reasons: human-readable strings, most important first.
    """

    stamp_s: float
    kind: str
    reasons: tuple[str, ...]


__all__ = ["Event"]
