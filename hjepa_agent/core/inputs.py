"""The input guard's rules, ROS-free: header stamp and /clock checks, the bookkeeping of each guarded
input (received, accepted, rejected per cause, the last accepted stamp and reading time), which
rejections are reported (once per input and cause), the guard's events, and what a callback gets with
each message (:class:`Receipt`) or a failed node keeps (:class:`NodeFailure`).

The rclpy side (subscriptions, the receipt clock's feed, publishing) is nodes/guard.py; this module
decides. Times are values passed in (``ros_now_s``: the node's ROS clock at receipt; ``now_s``: its
receipt clock, core/timekeeping.py).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.timekeeping import ClockJump, valid_ros_time

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Refusal:
    """Why the guard refuses a message: a typed cause and a detail for people."""

    cause: Cause
    detail: str


def stamp_ns(sec: int, nanosec: int) -> int:
    """A builtin_interfaces/Time's (sec, nanosec) as exact integer nanoseconds."""
    return int(sec) * NS_PER_S + int(nanosec)


def time_refusal(sec: int, nanosec: int) -> str | None:
    """Why (sec, nanosec) cannot be a ROS time (negative, nanosec out of [0, 1e9), absurd), or None."""
    if sec < 0 or not 0 <= nanosec < NS_PER_S:
        return f"({sec}, {nanosec}) is not a time"
    return valid_ros_time(sec + nanosec * 1e-9)


@dataclass(frozen=True)
class Receipt:
    """When a message arrived: ``stamp_s`` its header stamp (None: unstamped), ``now_s`` the receipt
    time and ``reading_s`` the time it was true (receipt minus its lag), both on the node's receipt
    clock; ``ros_s`` the node's ROS time at receipt; ``stamp_ns`` the header stamp in exact integer
    nanoseconds (a wall-clock stamp, ~1.8e18 ns, is not exact as a float of seconds: ``stamp_s``
    rounds it by up to ~128 ns, so what names a message, e.g. in the watchdog's journal, uses this)."""

    stamp_s: float | None
    now_s: float
    reading_s: float
    ros_s: float
    stamp_ns: int | None = None


@dataclass(frozen=True)
class NodeFailure:
    """Why a node failed stop: where (which callback), the exception and its traceback."""

    where: str
    error: str
    traceback: str


@dataclass(eq=False)
class InputRecord:
    """One guarded input's counters and order: ``order`` whether its stamps must increase."""

    key: str
    order: bool = True
    received: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    last_stamp_ns: int | None = None
    last_reading_s: float | None = None

    def stamp_refusal(self, sec: int, nanosec: int, ros_now_s: float, future_tolerance_s: float) -> Refusal | None:
        """Why a header stamp received at ROS time ``ros_now_s`` (s; 0: no time yet) is refused: not a
        time, further than ``future_tolerance_s`` (s) ahead of it, or (an ordered input) not after the last
        accepted stamp; None when it is taken."""
        sec, nanosec = int(sec), int(nanosec)
        if sec < 0 or not 0 <= nanosec < NS_PER_S:
            return Refusal(Cause.BAD_STAMP, f"stamp ({sec}, {nanosec}) is not a time")
        ns = stamp_ns(sec, nanosec)
        why = valid_ros_time(ns * 1e-9)
        if why is not None:
            return Refusal(Cause.BAD_STAMP, why)
        if ros_now_s > 0.0 and ns * 1e-9 - ros_now_s > future_tolerance_s:
            return Refusal(Cause.BAD_STAMP, f"stamp {ns * 1e-9:.3f} s is {ns * 1e-9 - ros_now_s:.3f} s in the future "
                                            f"(tolerance {future_tolerance_s:.3f} s)")
        if self.order and self.last_stamp_ns is not None and ns <= self.last_stamp_ns:
            what = "a duplicate of" if ns == self.last_stamp_ns else "older than"
            return Refusal(Cause.OUT_OF_ORDER, f"stamp {ns * 1e-9:.3f} s is {what} the last accepted "
                                               f"{self.last_stamp_ns * 1e-9:.3f} s")
        return None

    def accept(self, reading_s: float, stamp: int | None) -> None:
        """A message taken: its reading time (s, receipt clock) and header stamp (ns; None: unstamped)."""
        self.accepted += 1
        self.last_reading_s = reading_s
        if stamp is not None and self.order:
            self.last_stamp_ns = stamp

    def age_s(self, now_s: float) -> float | None:
        """Age (s) of the last accepted reading at receipt time ``now_s``; None before one."""
        return None if self.last_reading_s is None else now_s - self.last_reading_s

    def counts(self) -> dict[str, int]:
        """received, accepted and rejected_<cause>."""
        return {"received": self.received, "accepted": self.accepted,
                **{f"rejected_{c.value}": n for c, n in self.rejected.items()}}


class InputLedger:
    """Every guarded input of one node, its /clock rejections, and which (input, cause) has been reported."""

    CLOCK = "/clock"
    """The key /clock rejections are reported under."""

    def __init__(self) -> None:
        self.records: dict[str, InputRecord] = {}
        self.clock_rejects: Counter = Counter()
        self._reported: set[tuple[str, Cause]] = set()

    def add(self, key: str, order: bool) -> InputRecord:
        """Start the record of input ``key``."""
        rec = self.records[key] = InputRecord(key, order)
        return rec

    def reject(self, rec: InputRecord, cause: Cause) -> bool:
        """Count a rejection of ``rec``; True the first time for this input and cause (report it)."""
        rec.rejected[cause] += 1
        return self._first(rec.key, cause)

    def reject_clock(self, cause: Cause) -> bool:
        """Count a /clock rejection; True the first time for this cause (report it)."""
        self.clock_rejects[cause] += 1
        return self._first(self.CLOCK, cause)

    def _first(self, key: str, cause: Cause) -> bool:
        if (key, cause) in self._reported:
            return False
        self._reported.add((key, cause))
        return True

    def forget_order(self) -> None:
        """A clock jump: stamps before it say nothing about order after it."""
        for rec in self.records.values():
            rec.last_stamp_ns = None

    def counts(self) -> dict[str, dict[str, int]]:
        """Per input: :meth:`InputRecord.counts`."""
        return {k: r.counts() for k, r in self.records.items()}

    def diagnostics(self, now_s: float) -> dict[str, str]:
        """The counters and input ages (s, at receipt time ``now_s``) as /diagnostics values."""
        out: dict[str, str] = {}
        for key, rec in self.records.items():
            out[f"in_{key}_received"] = str(rec.received)
            if rec.rejected:
                out[f"in_{key}_rejected"] = ",".join(f"{c.value}={n}" for c, n in sorted(rec.rejected.items()))
            age = rec.age_s(now_s)
            out[f"in_{key}_age_s"] = "never" if age is None else f"{age:.3f}"
        if self.clock_rejects:
            out["clock_rejected"] = ",".join(f"{c.value}={n}" for c, n in self.clock_rejects.items())
        return out


# ---- the guard's events ----------------------------------------------------------------------------
def rejection_event(now_s: float, topic: str, refusal: Refusal) -> Event:
    """The ``input`` event of the first rejection of its cause on ``topic``."""
    return Event(now_s, "input", (f"{topic}: rejected: {refusal.detail}",
                                  f"(further {refusal.cause.value} rejections on it are only counted)"),
                 (refusal.cause,))


def clock_rejection_event(now_s: float, why: str) -> Event:
    """The ``input`` event of the first /clock message that is not a time."""
    return Event(now_s, "input", (f"/clock: rejected: {why}; the clock keeps its last time",), (Cause.CLOCK_INVALID,))


def jump_text(jump: ClockJump) -> str:
    """A clock jump for people: which way, how far, to what time."""
    way = "back" if jump.backwards else "forward"
    return f"clock jumped {way} {abs(jump.size_s):.3f} s to {jump.ros_s:.3f} s"


def jump_event(now_s: float, jump: ClockJump) -> Event:
    """The ``clock`` event of a clock jump."""
    way = "back" if jump.backwards else "forward"
    return Event(now_s, "clock", (f"clock jumped {way} {abs(jump.size_s):.3f} s (to {jump.ros_s:.3f} s)",),
                 (Cause.CLOCK_JUMP,))


def failure_event(now_s: float, node: str, where: str, error: str) -> Event:
    """The ``node`` event of a node that failed stop in ``where`` with ``error`` ('Type: message')."""
    return Event(now_s, "node", (f"{node} failed in {where}: {error}", "fail-stop: it publishes nothing more"),
                 (Cause.NODE_FAILED,))


__all__ = ["InputLedger", "InputRecord", "NodeFailure", "Receipt", "Refusal", "clock_rejection_event", "failure_event", "jump_event",
           "jump_text", "rejection_event", "stamp_ns", "time_refusal"]
