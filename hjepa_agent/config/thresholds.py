"""The watchdog's thresholds: one schema per threshold, the tighten-only rule, and WatchdogConfig.

Each WatchdogConfig field is declared once, with :func:`threshold`: its type (the annotation), unit,
range (open or closed at each end; a value that switches the check off), tighten direction (which
also says whether it is live: a fixed one is read at start only) and a one-line doc. From that one
declaration come the range checks (``WatchdogConfig.__post_init__``; the rules between two thresholds
are explicit cross-checks there), the node's parameter descriptors (:data:`LIVE_UNITS`, unit and
outer range), the tighten-only rule for live changes (:data:`TIGHTER`, :func:`tightened`) and the line
above each key of config/watchdog.yaml (:func:`document`).

Defaults: the shipped config/watchdog.yaml is the only place a default value is written. The schema
holds none; a field left out (``WatchdogConfig()``, a thresholds file without the key) takes the
shipped file's value, read once when first needed (:func:`shipped`). So the file operators edit is the
source: its calibration notes sit beside the values, and no second copy can drift from it. The
schema's documentation in that file is checked by test/unit/test_thresholds.py and rewritten with
``python -m hjepa_agent.config.thresholds --write``.

The tighten-only rule (:func:`tighten_only`) is the one rule for every live limit: the watchdog's
thresholds here, the ego model's operating limits (config/ego_model.py) and the bridge's
(core/bridge.py).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hjepa_agent.config.loader import ConfigError, build, read_yaml, require
from hjepa_agent.config.paths import data_path
from hjepa_agent.core.types import SCAN_RANGE_MAX_M

if TYPE_CHECKING:
    from hjepa_agent.config.ego_model import EgoModel

HIGHER, LOWER, FIXED = 1, -1, 0
"""Tighten directions: a live threshold is tighter when higher (HIGHER) or lower (LOWER); FIXED is
not live (read at start only)."""
SHIPPED = ("config", "watchdog.yaml")
"""The shipped thresholds (data_path parts): the defaults."""
TIGHTEN_TOLERANCE = 1e-12
"""A live value this little looser than its start value is float noise (0.6 x 1.0), not a loosening."""
DOC_MARK = "#: "
"""Starts the line made from the schema above each key of config/watchdog.yaml."""


def _num(x: float) -> str:
    return "pi" if x == math.pi else f"{x:.0e}".replace("e+0", "e") if abs(x) >= 1e5 else f"{x:g}"


@dataclass(frozen=True)
class Threshold:
    """The schema of one threshold: ``unit`` ("" for none); the range from ``lo`` to ``hi`` with
    ``ends`` saying which ends are open ("(]": lo excluded, hi included); ``off``: a value accepted
    besides the range that switches the check off (None: none); ``choices`` for a string; ``tighter``
    (HIGHER, LOWER; FIXED: not live); ``doc``: one line."""

    name: str
    type: type
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    ends: str = "[]"
    off: float | None = None
    choices: tuple[str, ...] = ()
    tighter: int = FIXED
    doc: str = ""

    @property
    def live(self) -> bool:
        """True when an operator may change it at run time (tighten only)."""
        return self.tighter != FIXED

    @property
    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) value accepted, ``off`` included: the parameter descriptor's range."""
        lo = self.lo if self.off is None else min(self.lo, self.off)
        return lo, self.hi

    def range_text(self) -> str:
        """The accepted values, e.g. "(0, 4]", "[0, 60] (0: off)", "0 (off) or [0.5, 60]", "stop | warn"."""
        if self.choices:
            return " | ".join(self.choices)
        rng = f"{self.ends[0]}{_num(self.lo)}, {_num(self.hi)}{self.ends[1]}"
        if self.off is None:
            return rng
        return f"{rng} ({_num(self.off)}: off)" if self._within(self.off) else f"{_num(self.off)} (off) or {rng}"

    def _within(self, x: float) -> bool:
        above = x > self.lo if self.ends[0] == "(" else x >= self.lo
        below = x < self.hi if self.ends[1] == ")" else x <= self.hi
        return above and below

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not accepted (the reason of a "key: reason" error), or None."""
        if self.choices:
            if value in self.choices:
                return None
            return f"must be {' or '.join(repr(c) for c in self.choices)}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        if self._within(value) or (self.off is not None and value == self.off):
            return None
        rng = f"{self.ends[0]}{_num(self.lo)}, {_num(self.hi)}{self.ends[1]}" + (f" {self.unit}" if self.unit else "")
        if self.off is not None and not self._within(self.off):
            rng = f"{_num(self.off)} (off) or in {rng}"
        else:
            rng = f"in {rng}" + ("" if self.off is None else f" ({_num(self.off)}: off)")
        return f"must be {rng}, got {self.name}={value}"

    def describe(self) -> str:
        """The one line config/watchdog.yaml has above this key: doc, unit, range, live or fixed."""
        live = {HIGHER: "live, tighter: higher", LOWER: "live, tighter: lower", FIXED: "fixed at start"}[self.tighter]
        unit = ("string" if self.type is str else self.unit or "unitless")
        return f"{DOC_MARK}{self.doc}. {unit}; {self.range_text()}; {live}"


@dataclass(frozen=True)
class _Spec:
    kw: dict[str, Any]


def threshold(unit: str = "", lo: float | None = None, hi: float | None = None, ends: str = "[]",
              tighter: int = FIXED, doc: str = "", *, off: float | None = None, choices: tuple[str, ...] = ()) -> Any:
    """Declare a WatchdogConfig field's schema (:class:`Threshold`, less its name and type)."""
    return _Spec(dict(unit=unit, lo=lo, hi=hi, ends=ends, tighter=tighter, doc=doc, off=off, choices=choices))


@functools.cache
def shipped() -> WatchdogConfig:
    """The shipped thresholds (config/watchdog.yaml), which must hold every key: they are the defaults."""
    path = data_path(*SHIPPED)
    data = read_yaml(path)
    for name in THRESHOLDS:
        if name not in data:
            raise ConfigError(path, name, "missing: the shipped file holds every threshold (it is the defaults)")
    return build(WatchdogConfig, data, path)


def _shipped_value(name: str) -> Any:
    return getattr(shipped(), name)


def _from_schema(cls: type) -> type:
    """Turn each :func:`threshold` declaration into a dataclass field whose default is the shipped value
    and whose metadata["threshold"] is its Threshold."""
    types = {"float": float, "str": str}
    for name, spec in list(vars(cls).items()):
        if isinstance(spec, _Spec):
            t = Threshold(name, types[cls.__annotations__[name]], **spec.kw)
            setattr(cls, name, dataclasses.field(default_factory=functools.partial(_shipped_value, name),
                                                 metadata={"threshold": t}))
    return cls


@dataclass(frozen=True)
@_from_schema
class WatchdogConfig:
    """Watchdog thresholds (module doc); the values and the notes on them are in config/watchdog.yaml."""

    clearance_plan_m: float = threshold("m", 0.0, SCAN_RANGE_MAX_M, "(]", HIGHER,
                                        "Enter PLANNING when the habitual command's predicted clearance is below this")
    clearance_optimise_m: float = threshold("m", 0.0, SCAN_RANGE_MAX_M, "[]", HIGHER,
                                            "Enter OPTIMISING (from PLANNING) when the plan's predicted clearance is "
                                            "below this; at most clearance_plan_m")
    risk_horizon_s: float = threshold("s", 0.0, 10.0, "(]", HIGHER,
                                      "How far ahead the habitual command or the plan is rolled out for its clearance")
    hysteresis_m: float = threshold("m", 0.0, 1.0, "[]", HIGHER,
                                    "Extra clearance needed to step back to a less cautious mode")
    dwell_s: float = threshold("s", 0.0, 30.0, "[]", HIGHER,
                               "Least time in a mode or graded level before stepping back to a less cautious one")
    ambiguity_stop: float = threshold("", 0.0, 1e6, "(]", LOWER,
                                      "SAFE_STOP when the world model's ambiguity exceeds this")
    battery_derate_pct: float = threshold("%", 0.0, 100.0, "(]", HIGHER,
                                          "Speed derates from 1 at this battery level to derate_min_scale at the "
                                          "ego model's floor; above that floor")
    temperature_derate_c: float = threshold("degC", -60.0, 150.0, "[]", LOWER,
                                            "Speed derates from 1 at this motor temperature to derate_min_scale at "
                                            "the ego model's maximum; within its range")
    derate_min_scale: float = threshold("", 0.0, 1.0, "[]", LOWER,
                                        "Speed scale at the battery floor and at the maximum temperature")
    overspeed_tolerance: float = threshold("", 0.0, 1.0, "[]", LOWER,
                                           "SAFE_STOP when measured |v| or |w| exceeds its hard limit by more than "
                                           "this fraction")
    limit_predict_s: float = threshold("s", 0.0, 60.0, "[]", HIGHER,
                                       "SAFE_STOP when the battery's or temperature's trend reaches its limit "
                                       "within this", off=0.0)
    slip_tolerance_mps: float = threshold("m/s", 0.0, 5.0, "(]", LOWER,
                                          "Wheel slip: measured forward or sideways speed off every recent command "
                                          "by more than this")
    slip_tolerance_rps: float = threshold("rad/s", 0.0, 10.0, "(]", LOWER,
                                          "Wheel slip: measured yaw rate off every recent command by more than this")
    slip_window_s: float = threshold("s", 0.0, 10.0, "[]", FIXED,
                                     "Wheel slip: SAFE_STOP when it lasts this long", off=0.0)
    risk_limit_z: float = threshold("spreads", 0.0, 100.0, "(]", LOWER,
                                    "LIMIT when a risk is this many spreads above the typical risk here; at most "
                                    "risk_slow_z")
    risk_slow_z: float = threshold("spreads", 0.0, 100.0, "(]", LOWER,
                                   "SLOW when a risk is this many spreads above the typical risk here")
    charge_slow: float = threshold("nats", 0.0, 10.0, "(]", LOWER,
                                   "SLOW when the affective charge (the course's drop in log reward) reaches this")
    limit_scale: float = threshold("", 0.0, 1.0, "[]", LOWER, "Speed scale in LIMIT")
    slow_scale: float = threshold("", 0.0, 1.0, "[]", LOWER, "Speed scale in SLOW; at most limit_scale")
    limit_warn_s: float = threshold("s", 0.0, 3600.0, "[]", HIGHER,
                                    "SLOW when the battery's or temperature's trend reaches its limit within this; "
                                    "at least limit_predict_s", off=0.0)
    stall_window_s: float = threshold("s", 0.5, 60.0, "[]", FIXED,
                                      "Stall: the window progress is judged over, and how long its PLANNING is held",
                                      off=0.0)
    stall_progress_m: float = threshold("m", 0.0, 5.0, "[]", FIXED,
                                        "Stall: the goal got less than this much closer over stall_window_s")
    stall_motion_m: float = threshold("m", 0.0, 100.0, "(]", FIXED,
                                      "Stall: escalate to OPTIMISING only if the robot also moved less than this net")
    stall_goal_radius_m: float = threshold("m", 0.0, 10.0, "[]", FIXED, "Stall: none this close to the goal")
    world_state_max_age_s: float = threshold("s", 0.0, 10.0, "(]", LOWER,
                                             "World state older than this: SAFE_STOP (always required)")
    habitual_max_age_s: float = threshold("s", 0.0, 10.0, "(]", LOWER,
                                          "Habitual proposal older than this in HABITUAL: SAFE_STOP")
    planner_max_age_s: float = threshold("s", 0.0, 10.0, "(]", LOWER,
                                         "Plan older than this in PLANNING or OPTIMISING: SAFE_STOP")
    bridge_max_age_s: float = threshold("s", 0.0, 10.0, "(]", LOWER,
                                        "Bridge heartbeat older than this: SAFE_STOP, and the watchdog stops the base")
    foreign_publishers: str = threshold(doc="On a foreign publisher: stop (SAFE_STOP and base_stop) or warn",
                                        choices=("stop", "warn"))
    foreign_match_window_s: float = threshold("s", 0.01, 5.0, "[]", FIXED,
                                              "How long a cmd_vel message may wait for the bridge's record of it")
    odom_jump_margin_m: float = threshold("m", 0.0, 10.0, "(]", FIXED,
                                          "Odometry jump: position change beyond what motion explains by this")
    odom_jump_margin_rad: float = threshold("rad", 0.0, math.pi, "(]", FIXED,
                                            "Odometry jump: heading change beyond what motion explains by this")

    def __post_init__(self) -> None:
        for t in THRESHOLDS.values():
            why = t.problem(getattr(self, t.name))
            require(why is None, t.name, str(why))
        c = self   # the rules between two thresholds
        require(c.clearance_optimise_m <= c.clearance_plan_m, "clearance_optimise_m",
                f"must be in [0, clearance_plan_m={c.clearance_plan_m}] m, "
                f"got clearance_optimise_m={c.clearance_optimise_m}")
        require(c.risk_limit_z <= c.risk_slow_z, "risk_limit_z",
                f"need 0 < risk_limit_z <= risk_slow_z <= 100, "
                f"got risk_limit_z={c.risk_limit_z}, risk_slow_z={c.risk_slow_z}")
        require(c.slow_scale <= c.limit_scale, "slow_scale",
                f"need 0 <= slow_scale <= limit_scale <= 1, got slow_scale={c.slow_scale}, limit_scale={c.limit_scale}")
        require(c.limit_warn_s == 0.0 or c.limit_predict_s <= c.limit_warn_s, "limit_warn_s",
                f"must be 0 (off) or in [limit_predict_s={c.limit_predict_s}, 3600] s, "
                f"got limit_warn_s={c.limit_warn_s}")

    def check_against(self, ego: EgoModel) -> None:
        """Cross-check with the ego model; ValueError("key: reason") when inconsistent."""
        floor = ego.hard.power.battery_floor_pct
        require(self.battery_derate_pct > floor, "battery_derate_pct",
                f"{self.battery_derate_pct} % must be above the ego battery floor {floor} %")
        th = ego.hard.thermal
        require(th.min_operating_temp_c <= self.temperature_derate_c < th.max_operating_temp_c,
                "temperature_derate_c", f"{self.temperature_derate_c} degC must be in the ego operating range "
                f"[{th.min_operating_temp_c}, {th.max_operating_temp_c}) degC")
        floor_m = ego.operating.min_clearance_m   # deliberation starts before a proposal comes closer than it
        require(self.clearance_plan_m >= floor_m, "clearance_plan_m",
                f"{self.clearance_plan_m} m must be at least the ego operating min_clearance_m {floor_m} m")


THRESHOLDS: dict[str, Threshold] = {f.name: f.metadata["threshold"] for f in dataclasses.fields(WatchdogConfig)}
"""Every threshold's schema, in WatchdogConfig's field order."""
TIGHTER: dict[str, int] = {n: t.tighter for n, t in THRESHOLDS.items() if t.live}
"""The live thresholds and which way is tighter (HIGHER: +1, LOWER: -1). A live change may only tighten,
relative to the values the watchdog started with; the others are fixed at start."""
LIVE_UNITS: dict[str, tuple[str, float, float]] = {n: (THRESHOLDS[n].unit, *THRESHOLDS[n].bounds) for n in TIGHTER}
"""Unit and outer range of each live threshold, for the node's parameter descriptors."""


def load_watchdog_config(path: str | Path) -> WatchdogConfig:
    """Load a thresholds YAML; ConfigError naming file, key and value on any problem. A key left out
    takes the shipped value."""
    return build(WatchdogConfig, read_yaml(path), path)


def tighten_only(name: str, start: float, new: float, tighter: int) -> str | None:
    """The one tighten-only rule of every live limit: why ``new`` may not replace the limit ``name``
    that started at ``start`` (``tighter``: HIGHER or LOWER), as "name: reason", or None when ``new`` is
    finite and no looser than ``start`` (by more than TIGHTEN_TOLERANCE)."""
    if not math.isfinite(new):
        return f"{name}: must be finite, got {new}"
    if (new - start) * tighter < -TIGHTEN_TOLERANCE:
        way = "higher" if tighter > 0 else "lower"
        return (f"{name}: {new} would loosen it past its start value {start} (tighter is {way}): it may only be "
                f"tightened live; loosening needs a restart with a new config")
    return None


def tightened(start: WatchdogConfig, now: WatchdogConfig, changes: dict[str, float], ego: EgoModel) -> WatchdogConfig:
    """``now`` with ``changes`` applied, if each is a live threshold moved no looser than ``start``
    (:func:`tighten_only`) and the result passes the range and cross-field checks (and the ego
    model's); ValueError naming the threshold otherwise."""
    for name, value in changes.items():
        if name not in TIGHTER:
            raise ValueError(f"{name}: not a live threshold (live: {', '.join(TIGHTER)})")
        why = tighten_only(name, getattr(start, name), float(value), TIGHTER[name])
        if why is not None:
            raise ValueError(why)
    new = dataclasses.replace(now, **{k: float(v) for k, v in changes.items()})
    new.check_against(ego)
    return new


def document(text: str) -> str:
    """``text`` (a thresholds YAML) with the schema's line (:meth:`Threshold.describe`) right above each
    top-level key: replaced where one is, inserted where none is."""
    out: list[str] = []
    for line in text.splitlines():
        key = line.split(":", 1)[0]
        if key in THRESHOLDS and not line.startswith((" ", "#")):
            if out and out[-1].startswith(DOC_MARK):
                out.pop()
            out.append(THRESHOLDS[key].describe())
        out.append(line)
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    """``python -m hjepa_agent.config.thresholds [--write] [FILE]``: check (exit 1 if stale) or rewrite
    the schema's lines in FILE (default: the shipped config/watchdog.yaml)."""
    args = [a for a in argv if a != "--write"]
    path = Path(args[0]) if args else data_path(*SHIPPED)
    text = path.read_text()
    if "--write" in argv:
        path.write_text(document(text))
        return 0
    if document(text) != text:
        sys.stderr.write(f"{path}: the schema's lines are stale; run python -m hjepa_agent.config.thresholds --write "
                         f"{path}\n")
        return 1
    return 0


__all__ = ["FIXED", "HIGHER", "LIVE_UNITS", "LOWER", "THRESHOLDS", "TIGHTER", "Threshold", "WatchdogConfig",
           "document", "load_watchdog_config", "shipped", "threshold", "tighten_only", "tightened"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
