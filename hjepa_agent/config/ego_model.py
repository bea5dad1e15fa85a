"""The ego model: the robot's operating limits, typed and validated at load.

Hard limits (``hard``) are read once at start and are read-only at run time.
Operating limits (``operating``) start at or below the hard limits and may only
be tightened live (see :meth:`EgoModel.tightened`).

Each input in ``hard.sensors`` has a ``presence`` (PRESENCE; default ``required``):

- ``required``: the watchdog stops (SAFE_STOP, STALE_INPUT) while it was never received or is stale
  (older than ``max_age_s``), and applies what it protects (battery: the floor, battery derating and
  the battery trend stop; temperature: the ``hard.thermal`` range, thermal derating and the
  temperature trend stop).
- ``optional``: a robot whose driver may not publish it (a battery driver that is not running). While
  it is fresh the same protections apply; while it was never received or is stale there is no stop
  for it, but its protections are off: the watchdog says so once (an event with cause
  OPTIONAL_INPUT_MISSING) and on /diagnostics for as long as it lasts, and switches them back on
  by itself when readings arrive.
- ``absent``: the robot has no such input (a Create 3 has no motor temperature topic): the watchdog
  does not subscribe to it and its protections are off for good (said once at start, cause
  INPUT_ABSENT, and on /diagnostics). ``rate_hz`` and ``max_age_s`` may then be left out.

Only the inputs in MAY_BE_MISSING may be ``optional`` or ``absent``; camera, scan and odometry feed
the risk and motion checks and stay required.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from hjepa_agent.config.loader import ConfigError, build, read_yaml, require
from hjepa_agent.config.thresholds import LOWER, tighten_only


@dataclass(frozen=True)
class AxisLimits:
    """Limits of one velocity axis. Units: m/s-based for linear, rad/s-based for angular."""

    max_velocity: float
    max_accel: float
    max_decel: float
    max_jerk: float

    def __post_init__(self) -> None:
        for name in ("max_velocity", "max_accel", "max_decel", "max_jerk"):
            require(getattr(self, name) > 0.0, name, f"must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Kinematics:
    """Per-axis limits of the base: linear_x in m/s, m/s², m/s³; angular_z in rad/s, rad/s², rad/s³."""

    linear_x: AxisLimits
    angular_z: AxisLimits


@dataclass(frozen=True)
class Footprint:
    """Circular footprint radius of the base, m."""

    radius_m: float

    def __post_init__(self) -> None:
        require(0.01 <= self.radius_m <= 5.0, "radius_m", f"must be in [0.01, 5] m, got {self.radius_m}")


@dataclass(frozen=True)
class Power:
    """Battery floor (%): below it the robot must stop (while a battery reading is in force: see the
    module docstring on presence)."""

    battery_floor_pct: float

    def __post_init__(self) -> None:
        require(0.0 <= self.battery_floor_pct < 100.0, "battery_floor_pct",
                f"must be in [0, 100) %, got {self.battery_floor_pct}")


@dataclass(frozen=True)
class Thermal:
    """Operating motor temperature range, degC (in force while a temperature reading is: see the module
    docstring on presence)."""

    min_operating_temp_c: float
    max_operating_temp_c: float

    def __post_init__(self) -> None:
        require(-60.0 <= self.min_operating_temp_c <= 150.0, "min_operating_temp_c",
                f"must be in [-60, 150] degC, got {self.min_operating_temp_c}")
        require(-60.0 <= self.max_operating_temp_c <= 150.0, "max_operating_temp_c",
                f"must be in [-60, 150] degC, got {self.max_operating_temp_c}")
        require(self.min_operating_temp_c < self.max_operating_temp_c, "max_operating_temp_c",
                f"must be above min_operating_temp_c={self.min_operating_temp_c}, got {self.max_operating_temp_c}")


PRESENCE = ("required", "optional", "absent")
"""What the watchdog does without an input (module docstring): stop, switch its protections off
while it is missing, or never subscribe to it."""
MAY_BE_MISSING = ("battery", "temperature")
"""The inputs of ``hard.sensors`` whose presence may be ``optional`` or ``absent``; the others must
be ``required``."""


@dataclass(frozen=True)
class SensorLimits:
    """Expected publication rate (Hz: `hjepa-agent check` calls an input SLOW below 0.8 of it, and the
    maximum age must cover one period of it), maximum age before a reading is stale (s) and presence
    (PRESENCE). The rate and age may be left out (None) only when the input is ``absent``."""

    rate_hz: float | None = None
    max_age_s: float | None = None
    presence: str = "required"

    def __post_init__(self) -> None:
        require(self.presence in PRESENCE, "presence", f"must be one of {', '.join(PRESENCE)}, got {self.presence!r}")
        for name in ("rate_hz", "max_age_s"):
            require(getattr(self, name) is not None or self.presence == "absent", name, f"missing required key "
                    f"(only an input with presence: absent may leave it out; presence is {self.presence!r})")
        if self.rate_hz is not None:
            require(0.1 <= self.rate_hz <= 1000.0, "rate_hz", f"must be in [0.1, 1000] Hz, got {self.rate_hz}")
        if self.max_age_s is not None:
            require(0.0 < self.max_age_s <= 10.0, "max_age_s", f"must be in (0, 10] s, got {self.max_age_s}")
        if self.rate_hz is not None and self.max_age_s is not None:
            require(self.max_age_s >= 1.0 / self.rate_hz, "max_age_s",
                    f"{self.max_age_s} s is shorter than one period at rate_hz={self.rate_hz}")


@dataclass(frozen=True)
class Sensors:
    """Freshness requirements and presence of every input that feeds a safety decision."""

    camera: SensorLimits
    scan: SensorLimits
    odom: SensorLimits
    battery: SensorLimits
    temperature: SensorLimits

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            presence = getattr(self, f.name).presence
            require(presence == "required" or f.name in MAY_BE_MISSING, f.name,
                    f"presence: {presence!r} is not possible for {f.name}: only "
                    f"{', '.join(MAY_BE_MISSING)} may be optional or absent (set presence: required)")

    def presence(self, name: str) -> str:
        """The presence (PRESENCE) of input ``name`` (a field of this class)."""
        return getattr(self, name).presence


@dataclass(frozen=True)
class HardLimits:
    """Limits nobody may raise at run time. The stopping distance is not one of them: it is the
    kinematics' own, ``max_velocity^2 / (2 max_decel)`` of ``linear_x`` (what core/limits.py brakes with)."""

    kinematics: Kinematics
    footprint: Footprint
    power: Power
    thermal: Thermal
    sensors: Sensors


@dataclass(frozen=True)
class OperatingLimits:
    """Limits in force now; each at or below its hard limit. May be tightened live. ``min_clearance_m``: the
    clearance (m, footprint to obstacle) the robot keeps in habitual driving; the floor under the
    watchdog's ``clearance_plan_m`` (config/thresholds.py check_against), so deliberation starts before
    a proposal comes closer than it."""

    max_linear_mps: float
    max_angular_rps: float
    min_clearance_m: float = 0.05

    def __post_init__(self) -> None:
        require(self.max_linear_mps >= 0.0, "max_linear_mps", f"must be >= 0, got {self.max_linear_mps}")
        require(self.max_angular_rps >= 0.0, "max_angular_rps", f"must be >= 0, got {self.max_angular_rps}")
        require(self.min_clearance_m >= 0.0, "min_clearance_m", f"must be >= 0, got {self.min_clearance_m}")


@dataclass(frozen=True)
class EgoModel:
    """The whole ego model: which robot, its hard limits and its operating limits."""

    robot: str
    hard: HardLimits
    operating: OperatingLimits
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        k = self.hard.kinematics
        require(self.operating.max_linear_mps <= k.linear_x.max_velocity, "operating",
                f"max_linear_mps={self.operating.max_linear_mps} exceeds hard "
                f"linear_x.max_velocity={k.linear_x.max_velocity}")
        require(self.operating.max_angular_rps <= k.angular_z.max_velocity, "operating",
                f"max_angular_rps={self.operating.max_angular_rps} exceeds hard "
                f"angular_z.max_velocity={k.angular_z.max_velocity}")

    def tightened(self, *, max_linear_mps: float | None = None,
                  max_angular_rps: float | None = None) -> "EgoModel":
        """Return a copy with operating limits changed; raising any limit is refused.

        Raises ValueError naming the limit when a value would loosen it (config/thresholds.py
        tighten_only: the one rule of every live limit) or is negative.
        """
        op = self.operating
        new = {"max_linear_mps": op.max_linear_mps if max_linear_mps is None else float(max_linear_mps),
               "max_angular_rps": op.max_angular_rps if max_angular_rps is None else float(max_angular_rps)}
        for name, value in new.items():
            why = tighten_only(name, getattr(op, name), value, LOWER)
            if why is not None:
                raise ValueError(why)
        return dataclasses.replace(self, operating=dataclasses.replace(op, **new))


def load_ego_model(path: str | Path) -> EgoModel:
    """Load and validate an ego-model YAML. Raises ConfigError naming file, key and value."""
    data = read_yaml(path)
    ego = build(EgoModel, data, path)
    return dataclasses.replace(ego, source=str(path))


__all__ = ["AxisLimits", "ConfigError", "EgoModel", "HardLimits", "MAY_BE_MISSING", "OperatingLimits", "PRESENCE",
           "SensorLimits", "load_ego_model"]
