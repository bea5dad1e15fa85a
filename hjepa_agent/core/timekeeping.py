"""Time that cannot be fooled by a clock step: the receipt clock every node judges ages on.

A node has two clocks. Its ROS clock (sim time from /clock, or the system time on a
robot) stamps messages and can step: a simulator restarts, a bag loops, NTP steps the
system clock. Its *receipt clock* never goes back: ages and deadlines are measured on it.

* With sim time (``sim_time=True``) the receipt clock is the ROS clock with its jumps taken
  out: a step back, or forward by more than ``jump_tolerance_s`` in one go, advances it by the
  clock's last ordinary step (the simulator's tick went on: physics did not jump), so intervals
  measured on it stay what the robot lived through (the bridge's limit math takes its dt from
  it). Inputs received before a forward step still look older, never fresher: their header
  stamps lag the new ROS time (reading time, below). Without jumps it equals the ROS clock, so
  runs are unchanged.
  If /clock stops, sim time stops with it, and so does everything on it (the simulation). Before
  the first /clock the ROS clock reads 0: the receipt clock starts at the first real time.
* With wall time (a robot) the receipt clock is the steady (monotonic) clock; a jump is the
  ROS clock moving differently from the steady clock by more than ``jump_tolerance_s``.

A message's *reading time* on the receipt clock is its receipt time minus its lag at receipt
(ROS now minus its header stamp, when that is positive): an old message is old on receipt,
and it grows older on a clock no one can step. Pure: times are passed in as values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ABSURD_TIME_S = 4.0e9
"""A ROS time at or beyond this (year 2096) is not a time a robot or a simulator can be at."""


@dataclass(frozen=True)
class ClockJump:
    """A step of the ROS clock: ``size_s`` > 0 forward, < 0 back; ``ros_s`` the ROS time after it."""

    ros_s: float
    size_s: float

    @property
    def backwards(self) -> bool:
        """True for a step back."""
        return self.size_s < 0.0


def valid_ros_time(t_s: float) -> str | None:
    """Why ``t_s`` (s) cannot be a ROS time (non-finite, negative, absurd), or None if it can."""
    if not math.isfinite(t_s):
        return f"time {t_s} is not finite"
    if t_s < 0.0:
        return f"time {t_s:.3f} s is negative"
    if t_s >= ABSURD_TIME_S:
        return f"time {t_s:.3g} s is beyond {ABSURD_TIME_S:.3g} s"
    return None


class ReceiptClock:
    """A clock that never goes back (module doc). Feed it the ROS and steady times with
    :meth:`update` whenever the node looks at the time; read :attr:`now_s`."""

    def __init__(self, sim_time: bool, jump_tolerance_s: float = 0.5) -> None:
        if not (math.isfinite(jump_tolerance_s) and jump_tolerance_s > 0.0):
            raise ValueError(f"jump_tolerance_s must be finite and > 0, got {jump_tolerance_s}")
        self.sim_time = bool(sim_time)
        self.jump_tolerance_s = float(jump_tolerance_s)
        self._ros: float | None = None
        self._steady: float | None = None
        self._now: float | None = None
        self._step = 0.0   # the last ordinary (positive, within tolerance) step of the ROS clock
        self.jumps = 0

    @property
    def now_s(self) -> float:
        """The receipt time (s) at the last update (0 before the first)."""
        return 0.0 if self._now is None else self._now

    @property
    def started(self) -> bool:
        """True once the clock has seen a valid time."""
        return self._now is not None

    def update(self, ros_s: float, steady_s: float) -> ClockJump | None:
        """Advance to ROS time ``ros_s`` (s) seen at steady time ``steady_s`` (s); returns the jump
        this update revealed, if any. A ROS time that :func:`valid_ros_time` refuses is ignored."""
        if not math.isfinite(steady_s):
            raise ValueError(f"steady_s must be finite, got {steady_s}")
        if valid_ros_time(ros_s) is not None or (self.sim_time and ros_s == 0.0):
            return None   # not a time; or, with sim time, none received yet (rclpy reads 0 until /clock)
        if self._now is None:
            self._ros, self._steady = ros_s, steady_s
            self._now = ros_s if self.sim_time else steady_s
            return None
        d_ros, d_steady = ros_s - self._ros, max(0.0, steady_s - self._steady)
        self._ros, self._steady = ros_s, steady_s
        jump = None
        if self.sim_time:
            if d_ros < 0.0 or d_ros > self.jump_tolerance_s:
                jump = ClockJump(ros_s, d_ros)
                self._now += self._step   # the tick went on; the jump is not time anybody lived through
            else:
                self._now += d_ros
                if d_ros > 0.0:
                    self._step = d_ros
        else:
            if abs(d_ros - d_steady) > self.jump_tolerance_s:
                jump = ClockJump(ros_s, d_ros - d_steady)
            self._now += d_steady
        if jump is not None:
            self.jumps += 1
        return jump

    def reading_time(self, stamp_s: float | None, ros_now_s: float) -> float:
        """When a message received now, stamped ``stamp_s`` (None: unstamped), was true, on this
        clock: the receipt time minus its lag (ROS now minus the stamp, if positive)."""
        if stamp_s is None or not math.isfinite(stamp_s):
            return self.now_s
        return self.now_s - max(0.0, ros_now_s - stamp_s)


__all__ = ["ABSURD_TIME_S", "ClockJump", "ReceiptClock", "valid_ros_time"]
