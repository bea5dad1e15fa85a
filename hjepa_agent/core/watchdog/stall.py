"""Progress towards the goal: is the robot getting anywhere?

Stalled when, over the last ``stall_window_s`` (all of it in the current mode), the goal distance (world
state pose to goal) shrank by less than ``stall_progress_m`` while the goal is further than
``stall_goal_radius_m`` (the habitual policy dithering between two routes); stuck when, over the same
window, the robot also moved less than ``stall_motion_m`` net (a detour that leads away from the goal
for a while moves it, a stuck robot does not). What the watchdog does about it is machine.py's.

Units: m, s.
"""
from __future__ import annotations

import math

import numpy as np

from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.types import WorldState


class StallMonitor:
    """The goal distance and position over the last window (module doc)."""

    def __init__(self) -> None:
        self._progress: list[tuple[float, float, float, float]] = []   # (time, goal distance, x, y)

    def on_world_state(self, ws: WorldState, now_s: float, window_s: float) -> None:
        """Remember the goal distance and position of ``ws`` (one with a goal, finite), keeping one sample
        at least ``window_s`` old."""
        if not ws.has_goal:
            return
        d = float(np.hypot(*(np.asarray(ws.goal[:2], np.float64) - np.asarray(ws.pose[:2], np.float64))))
        if math.isfinite(d):
            self._progress.append((now_s, d, float(ws.pose[0]), float(ws.pose[1])))
            while len(self._progress) > 2 and self._progress[1][0] <= now_s - window_s:
                self._progress.pop(0)

    def restart(self) -> None:
        """A new mode: the window starts again from the last sample."""
        self._progress = self._progress[-1:]

    def stalled(self, now_s: float, since_s: float, cfg: WatchdogConfig, stuck: bool = False) -> str | None:
        """Why the robot is not getting anywhere (module doc; with ``stuck``, also not moving), or None:
        also when the stall rule is off (stall_window_s 0), the window reaches back before ``since_s``
        (the mode was entered then) or is not full yet, or the goal is within stall_goal_radius_m."""
        c = cfg
        if c.stall_window_s <= 0.0 or len(self._progress) < 2:
            return None
        (t0, d0, x0, y0), (t1, d1, x1, y1) = self._progress[0], self._progress[-1]
        if t0 > now_s - c.stall_window_s or t0 < since_s or d1 <= c.stall_goal_radius_m:
            return None
        moved = math.hypot(x1 - x0, y1 - y0)
        if stuck and moved >= c.stall_motion_m:
            return None
        if d0 - d1 < c.stall_progress_m:
            return (f"no progress: goal distance {d1:.2f} m, {d0 - d1:+.2f} m closer in {t1 - t0:.1f} s "
                    f"< {c.stall_progress_m:.2f} m" + (f", moved {moved:.2f} m < {c.stall_motion_m:.2f} m" if stuck
                                                        else ""))
        return None


__all__ = ["StallMonitor"]
