"""The event record shared by the safety components (input guards, bridge, watchdog).

Events go to ``agent/events`` and into diagnostics, so every decision that
changes what the robot does can be traced to its reasons. An event's ``causes``
are typed codes (:class:`Cause`) that other code may decide on; its ``reasons``
are display text made from values, for people, and are never parsed back.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping


class Cause(str, enum.Enum):
    """Why something was decided: the typed part of an event (its text is for people)."""

    # the input guard (nodes/guard.py): a message rejected before any core saw it
    NON_FINITE = "non_finite"
    """A NaN or inf where a number is needed."""
    BAD_LAYOUT = "bad_layout"
    """Wrong sizes, labels, encoding or field combination: the message cannot be decoded."""
    OUT_OF_RANGE = "out_of_range"
    """A finite value outside what the field can mean (a percentage above 1, a negative range limit)."""
    BAD_FRAME = "bad_frame"
    """header.frame_id is not the frame this input must be in."""
    BAD_STAMP = "bad_stamp"
    """A stamp in the future beyond tolerance, or not a valid time."""
    OUT_OF_ORDER = "out_of_order"
    """A stamp older than, or equal to, the last accepted one on the same input (late or duplicate)."""
    CLOCK_INVALID = "clock_invalid"
    """A /clock message with a negative or absurd time: rejected, the clock keeps its last time."""
    CLOCK_JUMP = "clock_jump"
    """The node's ROS clock stepped (back, or forward by more than the tolerance)."""
    FOREIGN_PUBLISHER = "foreign_publisher"
    """A publisher the agent does not know on cmd_vel or on one of its own topics."""
    NODE_FAILED = "node_failed"
    """A callback raised anyway: the node stopped itself (fail-stop)."""
    # the watchdog's stop causes
    STALE_INPUT = "stale_input"
    BATTERY = "battery"
    TEMPERATURE = "temperature"
    OVERSPEED = "overspeed"
    LIMIT_TREND = "limit_trend"
    WHEEL_SLIP = "wheel_slip"
    BRIDGE_SILENT = "bridge_silent"
    AMBIGUITY = "ambiguity"
    ODOMETRY_JUMP = "odometry_jump"
    """The odometry pose or speed jumped in a way neither the commands nor the scan explain."""
    GOAL_REJECTED = "goal_rejected"
    """A goal was refused (frame, non-finite): the previous goal, if any, stays."""
    GOAL_OUTSIDE_MAP = "goal_outside_map"
    """A goal beyond the planner's map: accepted, the planner heads for the map's edge towards it."""
    GOAL_UNREACHABLE = "goal_unreachable"
    """The footprint cannot stand at the goal, or no path to it exists in the map seen so far."""
    ESTOP = "estop"
    # the watchdog's inputs that are not required (config/ego_model.py, presence): no stop, a protection off
    OPTIONAL_INPUT_MISSING = "optional_input_missing"
    """An optional input (battery, motor temperature) was never received or went stale: what it protects
    (the battery floor, the temperature limits, their derating and trend stops) is off until it is back."""
    INPUT_ABSENT = "input_absent"
    """The ego model declares an input absent: not subscribed, and what it would protect is off."""
    # the watchdog's graded responses (a slow-down before any stop)
    RISK = "risk"
    """The proposal's or the plan's risk is well above the typical risk in this context."""
    AFFECTIVE_CHARGE = "affective_charge"
    """The course's log reward dropped with the new world state (the affective charge)."""
    # the watchdog's deliberation (Mode 1 -> Mode 2 -> optimisation): why it deliberates harder
    HABITUAL_CLEARANCE = "habitual_clearance"
    """The habitual proposal's predicted clearance is below clearance_plan_m: plan (Mode 2)."""
    PLAN_CLEARANCE = "plan_clearance"
    """The plan's predicted clearance is below clearance_optimise_m: optimise it."""
    STALL = "stall"
    """No progress towards the goal over stall_window_s: deliberate (or deliberate harder)."""


@dataclass(frozen=True)
class Transition:
    """A change of a state machine's state, by name (a watchdog mode, a graded level, a bridge state)."""

    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.before}->{self.after}"


@dataclass(frozen=True)
class Event:
    """One decision with its reasons.

    stamp_s: time (s) on the caller's clock when it was decided; kind: a short tag,
    e.g. "mode" (watchdog transition), "graded" (watchdog slow-down level), "state"
    (bridge state change), "rejection", "clamp", "estop", "limits", "input" (a guard's
    rejection), "clock", "foreign", "node"; reasons: human-readable strings, most
    important first; causes: the typed codes behind them (empty for events that are
    not about a fault); transition: the typed state change a "mode", "graded" or
    "state" event is (None otherwise); values: the numbers the decision was made on,
    by name (SI units in the name's suffix). Code decides on kind, transition, causes
    and values; :meth:`text` is for people and is never parsed back.
    """

    stamp_s: float
    kind: str
    reasons: tuple[str, ...]
    causes: tuple[Cause, ...] = ()
    transition: Transition | None = None
    values: Mapping[str, float] = field(default_factory=dict)

    def text(self) -> tuple[str, ...]:
        """The display text: the transition ("A->B") first where there is one, then the reasons."""
        return ((str(self.transition),) if self.transition is not None else ()) + tuple(self.reasons)


__all__ = ["Cause", "Event", "Transition"]
