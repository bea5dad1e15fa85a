"""Input freshness and presence: how old each input is, which ones a mode requires, and whether the
protections of an input that may be missing are in force.

Sensors report their header stamp (age = now - min(stamp, receipt)); world_state, habitual and planner
are timed by receipt. Their maximum ages come from the ego model's sensors section and, for the
agent's own inputs, from the thresholds (world_state_max_age_s, habitual_max_age_s, planner_max_age_s).

Battery and motor temperature follow their ``presence`` in the ego model (config/ego_model.py;
status.PROTECTIONS says what each protects: the battery floor or the temperature range as stops, the
derating of the speed scale, and the trend stop and slow-down towards the limit):
required: never received or stale (older than its max_age_s) is a SAFE_STOP (STALE_INPUT), and the
last reading is judged. optional: a fresh reading is judged exactly as a required one; while none was
received or the last is stale, there is no stop for it and its protections are off (its derating
factor is 1, its trend history is dropped): a "protection" event says so once, with cause
OPTIONAL_INPUT_MISSING (not before max_age_s after the first tick, so a sensor starting up is not
reported), the status says so on every tick, and the first fresh reading switches them on again
(another "protection" event). absent: readings are ignored (the node does not subscribe), the
protections are off for good, and the first tick's "protection" event says so (INPUT_ABSENT).

Times are seconds on the caller's clock.
"""
from __future__ import annotations

import math

from hjepa_agent.config.ego_model import Sensors
from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog.status import PROTECTIONS, protection_text

SENSOR_INPUTS = ("camera", "scan", "odom", "battery", "temperature")
"""Inputs whose maximum age comes from the ego model's sensors section."""
INPUTS = SENSOR_INPUTS + ("world_state", "habitual", "planner")
"""Every input name the watchdog times (Watchdog.on_input)."""
DELIBERATION = {Mode.HABITUAL: ("habitual",), Mode.PLANNING: ("planner",), Mode.OPTIMISING: ("planner",)}
"""The source each mode needs fresh, besides the sensors and the world state."""


class Freshness:
    """When each input's reading was true, its maximum age and its presence (module doc)."""

    def __init__(self, sensors: Sensors, cfg: WatchdogConfig) -> None:
        self.presence = {name: sensors.presence(name) for name in SENSOR_INPUTS}
        """Per sensor input: required, optional or absent (config/ego_model.py PRESENCE)."""
        self.max_age = {name: getattr(sensors, name).max_age_s for name in SENSOR_INPUTS
                        if self.presence[name] != "absent"}
        """Per input (not the absent ones): its maximum age, s."""
        self.seen: dict[str, float] = {}
        """Per input: the time its last reading was true (min of stamp and receipt), s."""
        self._first_tick: float | None = None
        self._off_said: set[str] = set()   # optional inputs whose protections were said to be off, not yet back
        self.configure(cfg)

    def configure(self, cfg: WatchdogConfig) -> None:
        """The agent's own inputs' maximum ages from ``cfg`` (at start and on a live change)."""
        self.max_age.update(world_state=cfg.world_state_max_age_s, habitual=cfg.habitual_max_age_s,
                            planner=cfg.planner_max_age_s)

    def on_input(self, name: str, stamp_s: float, now_s: float) -> None:
        """Input ``name`` (one of INPUTS) received at ``now_s`` with stamp ``stamp_s``; ignored for an
        absent input; ValueError for an unknown name or a non-finite time."""
        if name not in INPUTS:
            raise ValueError(f"unknown input {name!r} (known: {', '.join(INPUTS)})")
        if not (math.isfinite(stamp_s) and math.isfinite(now_s)):
            raise ValueError(f"{name}: stamp_s and now_s must be finite, got {stamp_s}, {now_s}")
        if self.presence.get(name) == "absent":
            return
        self.seen[name] = min(stamp_s, now_s)

    @property
    def absent(self) -> tuple[str, ...]:
        """The inputs the ego model declares absent."""
        return tuple(n for n, p in self.presence.items() if p == "absent")

    def ages(self, now_s: float) -> dict[str, float | None]:
        """Per input (INPUTS order): seconds since its reading (None: never received)."""
        return {name: None if name not in self.seen else now_s - self.seen[name] for name in INPUTS}

    def required(self, mode: Mode, enforced: bool = True) -> tuple[str, ...]:
        """The inputs ``mode`` needs fresh: the required sensors, the world state and the mode's source
        (unless not ``enforced``: HABITUAL is then in force whatever is decided)."""
        if not enforced:
            mode = Mode.HABITUAL
        sensors = tuple(n for n in SENSOR_INPUTS if self.presence[n] == "required")
        return sensors + ("world_state",) + DELIBERATION.get(mode, ())

    def stale(self, now_s: float, required: tuple[str, ...], since_s: float) -> list[tuple[Cause, str]]:
        """A STALE_INPUT cause per input of ``required`` never received or older than its maximum age; a
        deliberation source (habitual, planner) is timed from ``since_s`` at the latest (it may start
        publishing when its mode is entered)."""
        causes: list[tuple[Cause, str]] = []
        for name in required:
            seen, limit = self.seen.get(name), self.max_age[name]
            if name in ("habitual", "planner"):
                age = now_s - max(seen if seen is not None else -math.inf, since_s)
                if age > limit:
                    causes.append((Cause.STALE_INPUT, f"{name} silent {age:.2f} s > {limit:.2f} s"))
            elif seen is None:
                causes.append((Cause.STALE_INPUT, f"{name} never received"))
            elif now_s - seen > limit:
                causes.append((Cause.STALE_INPUT, f"{name} stale {now_s - seen:.2f} s > {limit:.2f} s"))
        return causes

    def missing(self, name: str, now_s: float) -> str | None:
        """Why the protections of ``name`` (a PROTECTIONS input) are off at ``now_s``, or None while
        they are on: never for a required input (its silence is a stop instead); for an optional one
        while it was never received or is stale; always for an absent one."""
        presence = self.presence[name]
        if presence == "required":
            return None
        if presence == "absent":
            return "absent from the ego model"
        seen = self.seen.get(name)
        if seen is None:
            return "not received"
        age = now_s - seen
        return f"stale {age:.2f} s > {self.max_age[name]:.2f} s" if age > self.max_age[name] else None

    def protection_states(self, now_s: float) -> dict[str, tuple[str, str | None]]:
        """Per PROTECTIONS input: (presence, why its protections are off, or None while they are on)."""
        return {name: (self.presence[name], self.missing(name, now_s)) for name in PROTECTIONS}

    def protection_status(self, now_s: float) -> dict[str, str]:
        """Per PROTECTIONS input, for people (status.protection_text)."""
        return {name: protection_text(name, p, why) for name, (p, why) in self.protection_states(now_s).items()}

    def protections(self, now_s: float) -> tuple[list[Event], list[str]]:
        """Call once per tick: the "protection" events of this tick, once per change, and the inputs whose
        protections went off at it (their trend history must go). An absent input is said at the first
        tick; an optional one when it goes stale, or is still not received max_age_s after the first
        tick, and again when it is back."""
        first = self._first_tick is None
        if first:
            self._first_tick = now_s
        events: list[Event] = []
        went_off: list[str] = []
        status = self.protection_status(now_s)
        for name in PROTECTIONS:
            presence, why = self.presence[name], self.missing(name, now_s)
            if presence == "absent" and first:
                events.append(Event(now_s, "protection", (f"{name}: {status[name]}",), (Cause.INPUT_ABSENT,)))
            if presence != "optional":
                continue
            if why is None and name in self._off_said:
                self._off_said.discard(name)
                events.append(Event(now_s, "protection", (f"{name}: optional, received again: "
                                                          f"its protections are back on",)))
            elif why is not None and name not in self._off_said and (
                    name in self.seen or now_s - self._first_tick > self.max_age[name]):
                self._off_said.add(name)
                went_off.append(name)
                events.append(Event(now_s, "protection", (f"{name}: {status[name]}",),
                                    (Cause.OPTIONAL_INPUT_MISSING,)))
        return events, went_off


__all__ = ["DELIBERATION", "Freshness", "INPUTS", "SENSOR_INPUTS"]
