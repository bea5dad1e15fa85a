"""The watchdog's decision and its status as typed values; the /diagnostics text is made from them.

:class:`WatchdogOutput` is one tick's decision. Its ``diagnosis`` (:class:`WatchdogStatus`) holds what
the status says, typed: the mode, the latch, the numbers (:class:`Readings`), the stop causes, each
input's age and each optional input's protections. ``WatchdogOutput.status`` is the display dict the
node publishes on /diagnostics ({"level", "message", "values"}), made from those values on demand;
code decides on the typed values, never on that text.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterator

from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.types import Mode

LEVELS = ("NORMAL", "LIMIT", "SLOW")
"""Graded responses before a stop: full speed, speed limited (limit_scale), slow (slow_scale)."""
PROTECTIONS = {"battery": "no battery floor, no battery derating, no battery trend stop",
               "temperature": "no temperature limits, no thermal derating, no temperature trend stop"}
"""What is off while an input that may be missing (config/ego_model.py MAY_BE_MISSING) is not in
force: display text for the protection events and the status."""


def protection_text(name: str, presence: str, why: str | None) -> str:
    """How the protections of input ``name`` (a PROTECTIONS key) stand, for people: its presence while
    they are on (``why`` None), else why and what is off, e.g. "optional, not received: no battery floor, ..."."""
    if why is None:
        return presence
    return f"absent: {PROTECTIONS[name]}" if presence == "absent" else f"optional, {why}: {PROTECTIONS[name]}"


@dataclass(frozen=True, eq=False)
class Readings(Mapping):
    """The numbers behind the status of one tick, typed (None where there is none yet): the speed
    scale in force [0, 1]; the predicted clearances (m) of the habitual command and of the fresh plan;
    the world state's ambiguity; battery (%) and motor temperature (degC), the last received; how far
    the base is from its commands (m/s, rad/s); the larger risk deviation (spreads) and the two risks;
    the affective charge (nats); the graded level (an index into LEVELS). Also a read-only mapping by
    field name (``out.readings["risk_z"]``), in this order."""

    speed_scale: float
    habitual_clearance_m: float | None = None
    plan_clearance_m: float | None = None
    ambiguity: float | None = None
    battery_pct: float | None = None
    temperature_c: float | None = None
    tracking_error_mps: float | None = None
    tracking_error_rps: float | None = None
    risk_z: float | None = None
    habitual_risk: float | None = None
    plan_risk: float | None = None
    charge: float | None = None
    graded_level: float = 0.0

    def __getitem__(self, key: str) -> float | None:
        if key not in _READING_KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_READING_KEYS)

    def __len__(self) -> int:
        return len(_READING_KEYS)


_READING_KEYS = tuple(f.name for f in dataclasses.fields(Readings))


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


@dataclass(frozen=True)
class WatchdogStatus:
    """What /diagnostics shows of one tick, typed. ``causes``: the stop causes found (typed cause,
    text); ``ages``: per input, in the order the watchdog knows them, seconds since its reading at the
    tick (None: never received), and ``absent`` the inputs the robot has none of; ``protections``: per
    PROTECTIONS input, (presence, why its protections are off or None while they are on)."""

    mode: Mode
    latched: bool
    readings: Readings
    causes: tuple[tuple[Cause, str], ...] = ()
    ages: Mapping[str, float | None] = dataclasses.field(default_factory=dict)
    absent: tuple[str, ...] = ()
    protections: Mapping[str, tuple[str, str | None]] = dataclasses.field(default_factory=dict)

    @property
    def graded(self) -> int:
        """The graded level, an index into LEVELS."""
        return int(self.readings.graded_level)

    @property
    def off(self) -> tuple[str, ...]:
        """The optional inputs whose protections are off now (a warning; an absent one is the robot)."""
        return tuple(n for n, (presence, why) in self.protections.items() if presence == "optional" and why is not None)

    @property
    def level(self) -> str:
        """"ERROR" in SAFE_STOP; "WARN" while deliberating, slowed or with an optional input's protections
        off; "OK" otherwise."""
        if self.mode == Mode.SAFE_STOP:
            return "ERROR"
        return "WARN" if self.mode != Mode.HABITUAL or self.readings.speed_scale < 1.0 or self.off else "OK"

    @property
    def message(self) -> str:
        """One line for people: SAFE_STOP and why, or the mode, its slow-down and what is not in force."""
        if self.mode == Mode.SAFE_STOP:
            why = "; ".join(t for _, t in self.causes) or ("latched: call clear_safe_stop" if self.latched
                                                           else "starting")
            return f"SAFE_STOP: {why}"
        scale = self.readings.speed_scale
        return self.mode.name + (f", speed scaled to {scale:.2f}" if scale < 1.0 else "") + (
            f", {LEVELS[self.graded]}" if self.graded else "") + "".join(
            f", {n} not in force ({PROTECTIONS[n]})" for n in self.off)

    def values(self) -> dict[str, str]:
        """The key values of /diagnostics, as text (numbers to 3 decimals, "n/a" where there is none)."""
        r = self.readings
        out = {"mode": self.mode.name, "latched": str(self.latched), "speed_scale": f"{r.speed_scale:.3f}",
               **{k: _num(r[k]) for k in ("habitual_clearance_m", "plan_clearance_m", "ambiguity", "battery_pct",
                                          "temperature_c", "tracking_error_mps", "tracking_error_rps", "risk_z",
                                          "habitual_risk", "plan_risk", "charge")},
               "graded": LEVELS[self.graded], "causes": "; ".join(t for _, t in self.causes),
               "cause_codes": ",".join(dict.fromkeys(c.value for c, _ in self.causes))}
        for name, age in self.ages.items():
            out[f"age_{name}_s"] = "absent" if name in self.absent else "never" if age is None else f"{age:.3f}"
        out.update({f"{name}_input": protection_text(name, presence, why)
                    for name, (presence, why) in self.protections.items()})
        return out

    def as_dict(self) -> dict[str, Any]:
        """{"level": "OK"|"WARN"|"ERROR", "message": str, "values": {key: str}}: what the node publishes."""
        return {"level": self.level, "message": self.message, "values": self.values()}


@dataclass(frozen=True)
class WatchdogOutput:
    """One decision: mode; speed_scale in [0, 1] (derating and graded responses, for the operating
    limits); events since the last tick; habitual_stalled: True while deliberation was entered because
    the habitual policy stalled (the planner must then not refine the habitual proposal: it is the
    thing that failed); ``diagnosis``: the status, typed (its ``readings`` and ``status`` below)."""

    stamp_s: float
    mode: Mode
    speed_scale: float
    events: tuple[Event, ...]
    diagnosis: WatchdogStatus
    habitual_stalled: bool = False
    base_stop: bool = False
    """True while the watchdog asks the base itself to stop (base_stop): a SAFE_STOP entered because
    something other than the agent publishes on cmd_vel, which the agent's own zero commands cannot
    overrule."""

    @property
    def readings(self) -> Readings:
        """The numbers behind ``status`` (:class:`Readings`): code reads these, never the status text."""
        return self.diagnosis.readings

    @property
    def status(self) -> dict[str, Any]:
        """The status for /diagnostics, made from ``diagnosis``: {"level": "OK"|"WARN"|"ERROR", "message":
        str, "values": {key: str}}."""
        return self.diagnosis.as_dict()


__all__ = ["LEVELS", "PROTECTIONS", "Readings", "WatchdogOutput", "WatchdogStatus", "protection_text"]
