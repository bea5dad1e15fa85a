"""The planner's verdict on its goal: reachable, beyond the map (headed for), or unreachable.

:meth:`NavField.goal_status` judges one moment of the map; a scan or two can close a gap that the
next one opens again. :class:`GoalJudge` turns those judgements into a verdict the watchdog can stop
on: BLOCKED or DISCONNECTED only after ``unreachable_after_s`` of consecutive judgements saying so
(each judgement at most every ``period_s``), and each change of verdict, or a new goal, is an event
with its typed cause. Pure: time is passed in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.planner.navfield import GoalKind, GoalStatus, NavField

UNREACHABLE = (GoalKind.BLOCKED, GoalKind.DISCONNECTED)
"""The kinds that stop the robot once they persist."""
UNREACHABLE_MARGIN_M = 0.0
"""The stop's judgement counts each return at its cell's centre (the cost-to-go allows half a cell more): a
stop that only a person can clear must mean walled in, not narrow. Measured on 0.1-m cells, a divider seen
from 0.5-1.5 m through 5 scans with 1-cm range noise: an opening of 0.30 m (0.75 footprint widths) reads
walled in 10 times in 10, 0.36 m 3 in 10, 0.40 m and wider open 10 in 10; with the cost-to-go's half-cell
margin a 0.52-m opening (1.3 widths) read walled in 8 times in 10."""
GOAL_CODES = {kind: code for code, kind in enumerate(GoalKind)}
"""GoalKind -> the integer carried on agent/goal_status (nodes/codec.py)."""


def goal_kind(code: int) -> GoalKind | None:
    """The GoalKind of an agent/goal_status code; None for a code no kind has."""
    kinds = list(GoalKind)
    return kinds[code] if 0 <= code < len(kinds) else None


@dataclass
class GoalJudge:
    """Verdicts on the goal (module doc). ``unreachable_after_s``: how long BLOCKED/DISCONNECTED must
    hold before it is the verdict; ``period_s``: judge at most this often (s)."""

    unreachable_after_s: float = 1.0
    period_s: float = 0.5
    margin_m: float = UNREACHABLE_MARGIN_M
    """NavField.goal_status's margin for a return's place inside its cell (see UNREACHABLE_MARGIN_M)."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.unreachable_after_s <= 60.0 and 0.0 <= self.period_s <= 10.0):
            raise ValueError(f"GoalJudge: unreachable_after_s in [0, 60] and period_s in [0, 10] s, got "
                             f"{self.unreachable_after_s}, {self.period_s}")
        self.verdict = GoalKind.NO_MAP
        self.status: GoalStatus | None = None
        self._goal: np.ndarray | None = None
        self._since: float | None = None     # when the current run of unreachable judgements began
        self._last = -math.inf

    def status_of(self, nav: NavField, pose: np.ndarray, goal_xy: np.ndarray) -> GoalStatus:
        """The navfield's judgement of ``goal_xy`` from ``pose``, with this judge's margin."""
        return nav.goal_status(pose, goal_xy, margin_m=self.margin_m)

    def due(self, now_s: float, goal_xy: np.ndarray) -> bool:
        """True when a judgement is due: ``period_s`` since the last, or a new goal."""
        return now_s - self._last >= self.period_s or self._goal is None or not np.allclose(goal_xy, self._goal)

    def step(self, now_s: float, goal_xy: np.ndarray, status: GoalStatus) -> list[Event]:
        """Take the navfield's judgement of ``goal_xy`` at ``now_s``; returns the events it gives."""
        events: list[Event] = []
        goal = np.asarray(goal_xy, dtype=np.float64)[:2]
        new_goal = self._goal is None or not np.allclose(goal, self._goal)
        if new_goal:
            self._goal, self._since = goal.copy(), None
            self.verdict = GoalKind.NO_MAP
        self._last = now_s
        self.status = status
        kind = status.kind
        if kind in UNREACHABLE:
            self._since = now_s if self._since is None else self._since
            if now_s - self._since < self.unreachable_after_s:
                kind = self.verdict if self.verdict not in UNREACHABLE else kind   # not yet: keep the verdict
        else:
            self._since = None
        if kind == self.verdict and not new_goal:
            return events
        where = f"goal ({goal[0]:.2f}, {goal[1]:.2f}) m"
        if kind == GoalKind.OUTSIDE_MAP:
            edge = status.edge_xy
            events.append(Event(now_s, "goal", (f"{where} is beyond the planner's map ({status.straight_m:.1f} m away): "
                                                f"heading for the map's edge towards it"
                                                + (f" at ({edge[0]:.2f}, {edge[1]:.2f}) m" if edge else ""),),
                                (Cause.GOAL_OUTSIDE_MAP,)))
        elif kind == GoalKind.BLOCKED:
            events.append(Event(now_s, "goal", (f"{where} is unreachable: the footprint cannot stand there (clearance "
                                                f"{status.goal_clearance_m:.2f} m) for {self.unreachable_after_s:.1f} s",),
                                (Cause.GOAL_UNREACHABLE,)))
        elif kind == GoalKind.DISCONNECTED:
            events.append(Event(now_s, "goal", (f"{where} is unreachable: no path to it in the map seen so far, "
                                                f"for {self.unreachable_after_s:.1f} s",), (Cause.GOAL_UNREACHABLE,)))
        elif kind == GoalKind.REACHABLE and self.verdict in UNREACHABLE + (GoalKind.OUTSIDE_MAP,):
            events.append(Event(now_s, "goal", (f"{where} is reachable (in the map seen so far)",)))
        self.verdict = kind
        return events


__all__ = ["GOAL_CODES", "GoalJudge", "UNREACHABLE", "UNREACHABLE_MARGIN_M", "goal_kind"]
