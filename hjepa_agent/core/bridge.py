"""Actuator bridge logic: the only thing that turns proposals into motion.

Picks the proposal source the watchdog's mode allows, stops when that source, the
mode or the e-stop says so (or while the node holds it: :meth:`Bridge.hold`), and shapes
every output with :func:`limit_axis` (velocity = the operating limit in force: the operator's live
limits, tighten only, times the watchdog's speed scale; accel, decel, jerk = hard limits of the ego
model).

Use from a node::

    reason = bridge.on_proposal(p, now)            # None = accepted
    if reason is None and bridge.is_active_source(p.source, now):
        publish(bridge.step(now))                  # react at once to fresh input
    ...
    # fixed-rate timer at cfg.rate_hz, so the output never goes silent:
    if bridge.due(now):
        publish(bridge.step(now))
    bridge.on_speed_scale(scale, now)              # the watchdog's derating
    bridge.set_operating_limits(lin, ang, now)     # an operator's live change (ValueError: refused)

Units: v in m/s, w in rad/s, times in s on the node's clock.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.config.loader import require
from hjepa_agent.config.thresholds import LOWER, tighten_only
from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.core.limits import AxisState, limit_axis, stopping_point
from hjepa_agent.core.types import Mode, Proposal

SOURCES = ("habitual", "planner")
"""Proposal sources the bridge knows."""
MODE_SOURCE = {Mode.HABITUAL: "habitual", Mode.PLANNING: "planner", Mode.OPTIMISING: "planner"}
"""Which source drives in which mode; SAFE_STOP has none."""
AXES = ("linear_x", "angular_z")
STATES = ("DRIVING", "STOPPING", "STOPPED", "ESTOP")
_STILL = 1e-9  # |v|, |w| at or below this count as standing still
SCALE_STEP = 0.01
"""The watchdog's speed scale changes the limits in force only when it moves by more than this."""


@dataclass(frozen=True)
class AxisConfig:
    """Limits of one axis as the bridge applies them.

    max_velocity: operating limit at start (m/s or rad/s, >= 0), the ceiling for
    live changes; max_accel / max_decel (per s) and max_jerk (per s^2): hard limits.
    """

    max_velocity: float
    max_accel: float
    max_decel: float
    max_jerk: float

    def __post_init__(self) -> None:
        require(math.isfinite(self.max_velocity) and self.max_velocity >= 0.0, "max_velocity",
                f"must be finite and >= 0, got {self.max_velocity=}")
        for name in ("max_accel", "max_decel", "max_jerk"):
            val = getattr(self, name)
            require(math.isfinite(val) and val > 0.0, name, f"must be finite and > 0, got {name}={val}")


@dataclass(frozen=True)
class BridgeConfig:
    """Bridge parameters.

    source_timeout_s: a proposal older than this (by receipt time) is stale, (0, 5];
    mode_timeout_s: a mode older than this is stale and the bridge stops, (0, 10];
    rate_hz: the fixed-rate timer frequency, [1, 1000];
    absurd_factor: proposals with |v| or |w| above this times the start operating
    limit are rejected as corrupt, > 1.
    """

    linear: AxisConfig
    angular: AxisConfig
    source_timeout_s: float = 0.3
    mode_timeout_s: float = 0.5
    rate_hz: float = 20.0
    absurd_factor: float = 10.0

    def __post_init__(self) -> None:
        require(0.0 < self.source_timeout_s <= 5.0, "source_timeout_s",
                f"must be in (0, 5] s, got {self.source_timeout_s=}")
        require(0.0 < self.mode_timeout_s <= 10.0, "mode_timeout_s",
                f"must be in (0, 10] s, got {self.mode_timeout_s=}")
        require(1.0 <= self.rate_hz <= 1000.0, "rate_hz", f"must be in [1, 1000] Hz, got {self.rate_hz=}")
        require(self.absurd_factor > 1.0, "absurd_factor", f"must be > 1, got {self.absurd_factor=}")

    @classmethod
    def from_ego(cls, ego: EgoModel, source_timeout_s: float = 0.3, mode_timeout_s: float = 0.5,
                 rate_hz: float = 20.0) -> "BridgeConfig":
        """Velocity from the ego model's operating limits, accel/decel/jerk from its hard limits."""
        lin, ang = ego.hard.kinematics.linear_x, ego.hard.kinematics.angular_z
        return cls(AxisConfig(ego.operating.max_linear_mps, lin.max_accel, lin.max_decel, lin.max_jerk),
                   AxisConfig(ego.operating.max_angular_rps, ang.max_accel, ang.max_decel, ang.max_jerk),
                   source_timeout_s, mode_timeout_s, rate_hz)

    @property
    def period_s(self) -> float:
        """Timer period, s."""
        return 1.0 / self.rate_hz


@dataclass(frozen=True)
class BridgeOutput:
    """One command: v (m/s), w (rad/s), both already limited.

    origin_stamp_s: stamp of the proposal used (for stops, of the last one used;
    None before any); state: one of STATES; reason: why not driving ("" when
    driving); clamps: active limits as "axis.limit"; events since the last step.
    """

    stamp_s: float
    v: float
    w: float
    origin_stamp_s: float | None
    state: str
    reason: str
    clamps: tuple[str, ...]
    events: tuple[Event, ...]


def _finite_time(now_s: float) -> None:
    if not math.isfinite(now_s):
        raise ValueError(f"now_s must be finite, got {now_s}")


class Bridge:
    """Stateful bridge core; see the module docstring for the calling pattern."""

    def __init__(self, cfg: BridgeConfig) -> None:
        self.cfg = cfg
        self._axis_cfg = (cfg.linear, cfg.angular)
        self._operator = (cfg.linear.max_velocity, cfg.angular.max_velocity)   # set live (tighten only)
        self._scale = 1.0                                                       # the watchdog's derating
        self._op = [cfg.linear.max_velocity, cfg.angular.max_velocity]          # in force: their product
        self._ceiling = list(self._op)   # velocity bound passed to limit_axis, >= _op
        self._axes = [AxisState(0.0, 0.0), AxisState(0.0, 0.0)]
        self._latest: dict[str, tuple[Proposal, float]] = {}
        self._mode: tuple[Mode, float] | None = None
        self._estop_input = False
        self._estop_latched = False
        self._held = False
        self._last_step_s: float | None = None
        self._last_output_s: float | None = None
        self._last_timer_output_s: float | None = None   # the last output made when due() said so
        self._due_said_s: float | None = None            # the time due() last said True at
        self._origin_stamp_s: float | None = None
        self._state = "STOPPED"
        self._cause = "start"
        self._clamps: tuple[str, ...] = ()
        self._pending: list[Event] = []
        self.counters: dict[str, int] = {"outputs": 0, "clamps": 0, "rejections": 0,
                                         "stale_stops": 0, "estops": 0}

    # ---- inputs -------------------------------------------------------------------
    def on_proposal(self, p: Proposal, now_s: float) -> str | None:
        """Store a proposal received at ``now_s``; return why it was rejected, or None."""
        _finite_time(now_s)
        reason = self._check(p)
        if reason is not None:
            self.counters["rejections"] += 1
            self._pending.append(Event(now_s, "rejection", (str(p.source), reason), (Cause.OUT_OF_RANGE,)))
            return reason
        self._latest[p.source] = (Proposal(float(p.stamp_s), float(p.v), float(p.w), p.source), now_s)
        return None

    def _check(self, p: Proposal) -> str | None:
        if p.source not in SOURCES:
            return f"unknown source {p.source!r}"
        for name, val in (("v", p.v), ("w", p.w), ("stamp_s", p.stamp_s)):
            try:
                ok = math.isfinite(float(val))
            except (TypeError, ValueError):
                return f"not a number {name}={val!r}"
            if not ok:
                return f"non-finite {name}={val}"
        for name, val, lim in (("v", p.v, self.cfg.linear.max_velocity), ("w", p.w, self.cfg.angular.max_velocity)):
            if abs(val) > self.cfg.absurd_factor * lim:
                return f"|{name}|={abs(val):.3g} > {self.cfg.absurd_factor:g}x limit {lim:g}"
        return None

    def on_mode(self, mode: Mode, now_s: float) -> None:
        """Store the watchdog's mode, received at ``now_s``."""
        _finite_time(now_s)
        self._mode = (Mode(mode), now_s)

    def estop(self, engaged: bool, now_s: float) -> None:
        """E-stop input. Engaging latches; releasing the input does not unlatch."""
        _finite_time(now_s)
        if engaged and not self._estop_input:
            self.counters["estops"] += 1
            self._pending.append(Event(now_s, "estop", ("engaged",), (Cause.ESTOP,)))
        elif not engaged and self._estop_input:
            self._pending.append(Event(now_s, "estop", ("input released, still latched",)))
        self._estop_input = bool(engaged)
        if engaged:
            self._estop_latched = True

    def hold(self, held: bool, now_s: float) -> None:
        """Hold the output at a stop (``held``), or let the inputs decide again. The node holds its core
        while it is inactive (nodes/bridge.py, lifecycle). Held, no source drives: the output ramps to
        zero within the limits like any other stop (STOPPING, then STOPPED) and stays there; inputs are
        still taken. Unlike the e-stop it does not latch. On release the next step's dt starts at
        ``now_s``: time spent held, when the node stepped nothing, is no time to accelerate over."""
        _finite_time(now_s)
        self._held = bool(held)
        if not held and self._last_step_s is not None and now_s > self._last_step_s:
            self._last_step_s = now_s

    def reset_estop(self, now_s: float) -> tuple[bool, str]:
        """Unlatch the e-stop; refused while its input is engaged or the base is moving."""
        _finite_time(now_s)
        if self._estop_input:
            ok, reason = False, "estop input still engaged"
        elif not self._still():
            ok, reason = False, f"still moving (v={self._axes[0].vel:.3f}, w={self._axes[1].vel:.3f})"
        elif not self._estop_latched:
            ok, reason = True, "estop was not latched"
        else:
            self._estop_latched = False
            ok, reason = True, "estop reset"
        self._pending.append(Event(now_s, "estop", (reason if ok else f"reset refused: {reason}",)))
        return ok, reason

    def set_operating_limits(self, max_linear_mps: float, max_angular_rps: float,
                             now_s: float | None = None) -> None:
        """The operator's operating velocity limits (m/s, rad/s), set live.

        Each may only be tightened relative to its value at start (config/thresholds.py tighten_only,
        the one rule of every live limit): any value in [0, start value] is accepted, so loosening back
        up to the start value is too; a negative, non-finite or higher one raises ValueError naming the
        limit. In force: these times the watchdog's speed scale (:meth:`on_speed_scale`). A speed above a
        tightened limit comes down within decel and jerk limits.
        """
        for name, val, start in (("max_linear_mps", max_linear_mps, self.cfg.linear.max_velocity),
                                 ("max_angular_rps", max_angular_rps, self.cfg.angular.max_velocity)):
            if not (math.isfinite(val) and 0.0 <= val):
                raise ValueError(f"{name}: must be finite and >= 0, got {val}")
            why = tighten_only(name, start, float(val), LOWER)
            if why is not None:
                raise ValueError(why)
        self._operator = (float(max_linear_mps), float(max_angular_rps))
        self._limits_in_force(now_s)

    def on_speed_scale(self, scale: float, now_s: float | None = None) -> None:
        """The watchdog's derating in [0, 1] (agent/speed_scale; ValueError outside): the operating limits
        in force are the operator's times this, changed only when it moves by more than SCALE_STEP."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"speed_scale: must be in [0, 1], got {scale}")
        if abs(scale - self._scale) > SCALE_STEP:
            self._scale = float(scale)
            self._limits_in_force(now_s)

    def _limits_in_force(self, now_s: float | None) -> None:
        """Operating limits in force = the operator's x the watchdog's speed scale; a "limits" event."""
        lin, ang = (limit * self._scale for limit in self._operator)
        self._op = [lin, ang]
        stamp = now_s if now_s is not None else (self._last_step_s or 0.0)
        self._pending.append(Event(stamp, "limits", (f"max_linear_mps={lin:g}", f"max_angular_rps={ang:g}")))

    # ---- queries ------------------------------------------------------------------
    @property
    def operating_limits(self) -> tuple[float, float]:
        """Operating velocity limits in force: (m/s, rad/s)."""
        return self._op[0], self._op[1]

    @property
    def operator_limits(self) -> tuple[float, float]:
        """The operator's operating velocity limits (m/s, rad/s): the start values until set live."""
        return self._operator

    def is_active_source(self, source: str, now_s: float) -> bool:
        """True when a proposal from ``source`` would drive the base now (publish at once)."""
        return self._select(now_s)[2] == "drive" and self._active_source() == source

    def is_stopping(self, now_s: float) -> bool:
        """True when no source may drive now (e-stop, held, stale or missing mode, SAFE_STOP, stale source)."""
        return self._select(now_s)[0] is None

    def count_rejection(self, now_s: float, source: str, reason: str) -> None:
        """Count an input the node could not even decode (e.g. a malformed plan message)."""
        self.counters["rejections"] += 1
        self._pending.append(Event(now_s, "rejection", (source, reason)))

    def due(self, now_s: float) -> bool:
        """True when the fixed-rate timer should publish: no output *of the timer's own* for at least
        half a period (or the clock went back past it). A step at the ``now_s`` of the last ``due()``
        that said True is the timer's output; other outputs (a proposal published at once, an
        e-stop) do not count: if they did, one that went out just past half a period after the
        timer's would make the timer skip its next firing, and cmd_vel would be silent for up to
        one and a half periods (found by test/integration/test_fuzz_nodes.py)."""
        last = self._last_timer_output_s
        yes = last is None or now_s - last >= 0.5 * self.cfg.period_s or now_s < last
        if yes:
            self._due_said_s = now_s
        return yes

    def standing_still(self) -> bool:
        """True when the last output stands still (|v| and |w| at most 1e-9)."""
        return self._still()

    def _still(self) -> bool:
        return abs(self._axes[0].vel) <= _STILL and abs(self._axes[1].vel) <= _STILL

    def _active_source(self) -> str | None:
        return None if self._mode is None else MODE_SOURCE.get(self._mode[0])

    def _select(self, now_s: float) -> tuple[Proposal | None, str, str]:
        """(proposal to follow or None for zero, reason, cause)."""
        if self._estop_latched:
            return None, "estop latched", "estop"
        if self._held:
            return None, "held (the bridge is inactive)", "held"
        if self._mode is None:
            return None, "no mode received", "no_mode"
        mode, got_s = self._mode
        age = now_s - got_s
        if age > self.cfg.mode_timeout_s:
            return None, f"mode stale {age:.2f} s > {self.cfg.mode_timeout_s:.2f} s", "mode_stale"
        source = MODE_SOURCE.get(mode)
        if source is None:
            return None, f"mode {mode.name}", "safe_stop"
        if source not in self._latest:
            return None, f"no proposal from {source}", "no_source"
        p, got_s = self._latest[source]
        age = now_s - got_s
        if age > self.cfg.source_timeout_s:
            return None, f"source {source} stale {age:.2f} s > {self.cfg.source_timeout_s:.2f} s", "source_stale"
        return p, "", "drive"

    # ---- output -------------------------------------------------------------------
    def step(self, now_s: float) -> BridgeOutput:
        """Compute the command for ``now_s``; dt is the real time since the previous step (the limit
        math holds for any interval, and a base feels the change over exactly that interval).

        Steps at the same ``now_s`` leave v and w unchanged. ``now_s`` should never go back (the
        node passes its receipt clock); if it does, mode and proposals are forgotten (the bridge
        stops) and the ramp down continues from the new time, so a stop always completes.
        """
        _finite_time(now_s)
        if self._last_step_s is None:
            dt = 0.0
        elif now_s < self._last_step_s:
            # Clock reset: inputs received "in the future" are void; times are re-based so the stop ramps on.
            self._pending.append(Event(now_s, "clock", (f"time went back {self._last_step_s - now_s:.3f} s",
                                                        "mode and proposals forgotten"), (Cause.CLOCK_JUMP,)))
            self._latest.clear()
            self._mode = None
            self._last_output_s = now_s
            dt = 0.0
        else:
            dt = now_s - self._last_step_s
        self._last_step_s = now_s

        p, reason, cause = self._select(now_s)
        if p is not None:
            self._origin_stamp_s = p.stamp_s
        targets = (p.v, p.w) if p is not None else (0.0, 0.0)
        clamps: list[str] = []
        for i, (axis, lim, target) in enumerate(zip(AXES, self._axis_cfg, targets)):
            op = self._op[i]
            goal = min(max(target, -op), op)
            if goal != target:
                clamps.append(f"{axis}.velocity")
            st = self._axes[i]
            peak = max(abs(st.vel), abs(stopping_point(st.vel, st.acc, lim.max_jerk)))
            self._ceiling[i] = max(op, min(self._ceiling[i], peak))
            new, active = limit_axis(goal, st, dt, self._ceiling[i], lim.max_accel, lim.max_decel, lim.max_jerk)
            self._axes[i] = new
            clamps.extend(f"{axis}.{name}" for name in active)
        clamps_t = tuple(dict.fromkeys(clamps)) if dt > 0.0 else self._clamps

        if p is not None:
            state = "DRIVING"
        elif cause == "estop":
            state = "ESTOP"
        else:
            state = "STOPPED" if self._still() else "STOPPING"
        events = self._pending
        self._pending = []
        if state != self._state or (p is None and cause != self._cause):
            events.append(Event(now_s, "state", (reason or f"following {self._active_source()}",),
                                transition=Transition(self._state, state)))
            if cause in ("source_stale", "mode_stale") and cause != self._cause:
                self.counters["stale_stops"] += 1
        begun = [c for c in clamps_t if c not in self._clamps]
        if begun:
            self.counters["clamps"] += len(begun)
            events.append(Event(now_s, "clamp", tuple(begun)))
        self._state, self._cause, self._clamps = state, cause, clamps_t
        self._last_output_s = now_s
        if self._due_said_s == now_s:
            self._last_timer_output_s, self._due_said_s = now_s, None
        self.counters["outputs"] += 1
        return BridgeOutput(now_s, self._axes[0].vel, self._axes[1].vel, self._origin_stamp_s, state, reason,
                            clamps_t, tuple(events))


__all__ = ["AXES", "AxisConfig", "Bridge", "BridgeConfig", "BridgeOutput", "Event", "MODE_SOURCE", "SCALE_STEP",
           "SOURCES", "STATES"]
