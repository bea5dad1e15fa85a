"""Foundation watchdog: owns the mode (HABITUAL / PLANNING / OPTIMISING / SAFE_STOP).

Decides from input freshness, the ego model's limits (battery floor, temperature
range, hard velocity), the world model's ambiguity and a clearance-based risk proxy,
with hysteresis and dwell times; every transition is an :class:`Event` with reasons.

Risk proxy (for now; the GFlowNet's log-probability risk against a learned typical
risk replaces it later): roll a unicycle out over ``risk_horizon_s`` with the proposed
(v, w), or the plan's actions, from the world state's pose, and take the minimum
clearance to the obstacles the world state's scan sectors imply, minus the footprint radius
(core/geometry.py, which also says how unknown sectors count and what the proxy does not see).

Stall: HABITUAL -> PLANNING also when the goal distance (world state pose to goal) has shrunk
by less than ``stall_progress_m`` over ``stall_window_s`` outside ``stall_goal_radius_m`` (the
habitual policy dithering between two routes); that PLANNING is held for ``stall_window_s``
and flagged ``habitual_stalled``, so the planner plans without the habitual proposal. The same
lack of progress inside PLANNING or OPTIMISING (the plan refining the habitual proposal and
going nowhere) raises the flag too, with a "stall" event, and holds the mode again; if PLANNING
without the proposal still makes no progress over the next window while the robot also moved less
than ``stall_motion_m`` net (stuck, not on a detour that leads away from the goal for a while), the
watchdog escalates to OPTIMISING (the planner refines its plan until its deadline), held for a
window too. The flag
drops when the mode goes back to HABITUAL or to SAFE_STOP.

Battery and motor temperature follow their ``presence`` in the ego model (config/ego_model.py;
PROTECTIONS says what each protects: the battery floor or the temperature range as stops, the
derating of the speed scale, and the trend stop and slow-down towards the limit):
required: never received or stale (older than its max_age_s) is a SAFE_STOP (STALE_INPUT), and the
last reading is judged as today. optional: a fresh reading is judged exactly as a required one; while
none was received or the last is stale, there is no stop for it and its protections are off (its
derating factor is 1, its trend history is dropped): a "protection" event says so once, with cause
OPTIONAL_INPUT_MISSING (not before max_age_s after the first tick, so a sensor starting up is not
reported), the status says so on every tick, and the first fresh reading switches them on again
(another "protection" event). absent: readings are ignored (the node does not subscribe), the
protections are off for good, and the first tick's "protection" event says so (INPUT_ABSENT).

Units: m, s, rad, %, degC. Times are seconds on the caller's clock (``now_s``).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.config.thresholds import LIVE_UNITS, TIGHTER, WatchdogConfig, load_watchdog_config, tightened
from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.core.risk import TypicalRisk, clearance_risk, course_log_reward, deviation, risk_features
from hjepa_agent.core.watchdog.foreign import ForeignPublishers
from hjepa_agent.core.watchdog.status import (LEVELS, PROTECTIONS, Readings, WatchdogOutput, WatchdogStatus,
                                              protection_text)
from hjepa_agent.core.watchdog.odometry import OdometryCheckConfig, OdometryConsistency
from hjepa_agent.core.geometry import obstacle_points, predicted_clearance, rollout, rollout_clearance
from hjepa_agent.core.types import Mode, Plan, Proposal, WorldState

COMMAND_LAG_S = 0.4
"""The slip check compares the measured speed with every command of this last stretch of time."""
TREND_WINDOW_S = 3.0
"""Battery and temperature trends are fitted over this much of their history."""
SENSOR_INPUTS = ("camera", "scan", "odom", "battery", "temperature")
"""Inputs whose maximum age comes from the ego model's sensors section."""
INPUTS = SENSOR_INPUTS + ("world_state", "habitual", "planner")
"""Every input name :meth:`Watchdog.on_input` accepts."""


class Watchdog:
    """Mode owner. Feed inputs as they arrive, call :meth:`tick` at a fixed rate.

    Freshness: sensors report their header stamp through :meth:`on_input`
    (age = now - min(stamp, receipt)); world_state, habitual and planner are timed by
    receipt in their ``on_*`` methods. Starts in SAFE_STOP, unlatched, and enters
    HABITUAL once every input is fresh and healthy; a SAFE_STOP entered after that is
    latched until :meth:`clear_safe_stop` succeeds.
    """

    def __init__(self, cfg: WatchdogConfig, ego: EgoModel, typical: TypicalRisk | None = None,
                 enforced: bool = True) -> None:
        cfg.check_against(ego)
        self.cfg, self.ego = cfg, ego
        self.enforced = enforced
        """False: decisions are not enforced (simulation's watchdog-off comparison): the mode in force is
        HABITUAL whatever is decided, so only the habitual proposal is required fresh."""
        self.typical = typical
        k = ego.hard.kinematics
        self._speed_norm = (k.linear_x.max_velocity, k.angular_z.max_velocity)
        self._typ: tuple[np.ndarray, np.ndarray] | None = None   # typical risk (mean, spread) at the world state
        self._course: tuple[np.ndarray, float, float] | None = None   # (actions, dt, start time) being followed
        self._course_lr: float | None = None   # its log reward at the last world state
        self._charge = 0.0
        self._plan_seen = -math.inf
        self._level, self._level_since = 0, -math.inf
        s = ego.hard.sensors
        self._presence = {name: s.presence(name) for name in SENSOR_INPUTS}
        self._max_age = {name: getattr(s, name).max_age_s for name in SENSOR_INPUTS if self._presence[name] != "absent"}
        self._first_tick: float | None = None
        self._off_said: set[str] = set()   # optional inputs whose protections were said to be off, not yet back
        self._max_age.update(world_state=cfg.world_state_max_age_s, habitual=cfg.habitual_max_age_s,
                             planner=cfg.planner_max_age_s)
        self._seen: dict[str, float] = {}   # name -> time of the reading (min of stamp and receipt)
        self._odom: tuple[float, float] | None = None
        self._odom_vy = 0.0
        self._tracking: tuple[float, float] | None = None   # how far the base is from its commands (m/s, rad/s)
        self._battery: float | None = None
        self._temp: float | None = None
        self._trend: dict[str, list[tuple[float, float]]] = {"battery": [], "temperature": []}  # (time, value)
        self._ws: WorldState | None = None
        self._commands: list[tuple[float, float, float]] = []   # (time, v, w) of the base's commands, last second
        self._bridge: tuple[float, float, float] | None = None   # (receipt time, v, w) of the bridge's last command
        self._slip_since: float | None = None
        self._hab: Proposal | None = None
        self._plan: Plan | None = None
        self._mode = Mode.SAFE_STOP
        self._since = -math.inf
        self._latched = False
        self._pending: list[Event] = []
        self._last: dict[str, Any] = {}
        self._progress: list[tuple[float, float, float, float]] = []   # (time, goal distance, x, y) in this mode
        self._hold_until = -math.inf                      # a stall's PLANNING is held at least until then
        self._stalled_habitual = False                    # deliberating because Mode 1 stalled
        self.foreign = ForeignPublishers(cfg.foreign_match_window_s)
        self.odometry = OdometryConsistency(OdometryCheckConfig.from_ego(
            ego, jump_margin_m=cfg.odom_jump_margin_m, jump_margin_rad=cfg.odom_jump_margin_rad))
        self._foreign_seen: set[tuple[str, str]] = set()
        self._instant: list[tuple[Cause, str]] = []       # faults of one moment (a clock jump): stop at the next tick
        self._base_stop = False
        self._goal_unreachable: str | None = None

    def reconfigure(self, cfg: WatchdogConfig) -> None:
        """New thresholds from now on (a live change, already checked: see :func:`tightened`); the
        state (mode, latch, histories) is kept."""
        cfg.check_against(self.ego)
        self.cfg = cfg
        self._max_age.update(world_state=cfg.world_state_max_age_s, habitual=cfg.habitual_max_age_s,
                             planner=cfg.planner_max_age_s)

    # ---- inputs -------------------------------------------------------------------
    def on_input(self, name: str, stamp_s: float, now_s: float) -> None:
        """Mark input ``name`` (one of INPUTS) as received at ``now_s`` with stamp ``stamp_s``; ignored
        for an input the ego model declares absent."""
        if name not in INPUTS:
            raise ValueError(f"unknown input {name!r} (known: {', '.join(INPUTS)})")
        if not (math.isfinite(stamp_s) and math.isfinite(now_s)):
            raise ValueError(f"{name}: stamp_s and now_s must be finite, got {stamp_s}, {now_s}")
        if self._presence.get(name) == "absent":
            return
        self._seen[name] = min(stamp_s, now_s)

    def on_odom(self, v: float, w: float, now_s: float, vy: float = 0.0,
                pose: tuple[float, float, float] | None = None, stamp_s: float | None = None) -> None:
        """Measured velocity: v m/s forward, w rad/s, vy m/s sideways (0 where the odometry cannot
        tell: wheel-only); freshness via on_input("odom", ...). With ``pose`` (x m, y m, yaw rad in
        the odom frame) and its ``stamp_s``, the odometry consistency check (odometry.py): a jump no
        motion explains stops the robot (latched), since a goal in the odom frame then points to the
        wrong place."""
        self._odom = (float(v), float(w))
        self._odom_vy = float(vy) if math.isfinite(vy) else 0.0
        if pose is not None and stamp_s is not None:
            jump = self.odometry.on_odom(stamp_s, pose[0], pose[1], pose[2], float(v), float(w))
            if jump is not None:
                self._odometry_event(now_s, jump)
                self._instant.append((Cause.ODOMETRY_JUMP, jump.describe()))

    def _odometry_event(self, now_s: float, jump) -> None:
        what = "settled by the scan: " if not jump.settled or jump.kind.value != "unknown" else ""
        self._pending.append(Event(now_s, "odometry", (f"{what}{jump.describe()}",), (Cause.ODOMETRY_JUMP,)))

    def on_command(self, v: float, now_s: float, w: float = 0.0) -> None:
        """The bridge's command to the base (cmd_vel: v m/s, w rad/s): for the slip check, and the
        bridge's heartbeat (its receipt time; see :meth:`bridge_stop`)."""
        self._bridge = (float(now_s), float(v), float(w))
        self.odometry.on_command(now_s, float(v), float(w))
        self._commands.append((float(now_s), float(v), float(w)))
        while self._commands and self._commands[0][0] < now_s - 1.0:
            self._commands.pop(0)

    def _bridge_silent(self, now_s: float) -> float | None:
        """How long the bridge has been silent (s), if longer than bridge_max_age_s, else None (also
        before its first command: until then nothing has moved the base)."""
        if self._bridge is None:
            return None
        age = now_s - self._bridge[0]
        return age if age > self.cfg.bridge_max_age_s else None

    def bridge_stop(self, now_s: float) -> tuple[float, float] | None:
        """The command (v m/s, w rad/s) the watchdog sends the base itself while the bridge is silent
        (it holds its last command otherwise): from the bridge's last command down to zero at the ego
        model's deceleration limits, from the moment the silence was noticed; None while the bridge
        is alive. The bridge, for its part, stops on a silent watchdog (its mode_timeout_s)."""
        if self._bridge_silent(now_s) is None:
            return None
        t0, v0, w0 = self._bridge
        k = self.ego.hard.kinematics
        dt = max(0.0, now_s - (t0 + self.cfg.bridge_max_age_s))
        v = math.copysign(max(0.0, abs(v0) - k.linear_x.max_decel * dt), v0)
        w = math.copysign(max(0.0, abs(w0) - k.angular_z.max_decel * dt), w0)
        return v, w

    def _slip(self, now_s: float) -> str | None:
        """Why the base does not move as commanded: for slip_window_s, the measured forward speed off
        every command of the last COMMAND_LAG_S (the base's own lag), or the base sliding sideways, by
        more than slip_tolerance_mps, or the measured yaw rate off every command's by more than
        slip_tolerance_rps."""
        c = self.cfg
        recent = [(v, w) for t, v, w in self._commands if t >= now_s - COMMAND_LAG_S]
        self._tracking = None
        if self._odom is None or not recent:
            self._slip_since = None
            return None
        v_meas, w_meas = self._odom
        off_v = min(abs(v_meas - v) for v, _ in recent)
        off_w = min(abs(w_meas - w) for _, w in recent)
        self._tracking = (max(off_v, abs(self._odom_vy)), off_w)
        if c.slip_window_s <= 0.0:
            self._slip_since = None
            return None
        if max(off_v, abs(self._odom_vy)) <= c.slip_tolerance_mps and off_w <= c.slip_tolerance_rps:
            self._slip_since = None
            return None
        if self._slip_since is None:
            self._slip_since = now_s
        if now_s - self._slip_since >= c.slip_window_s:
            return (f"wheel slip for {now_s - self._slip_since:.1f} s: measured {v_meas:.2f} m/s (sideways "
                    f"{self._odom_vy:+.2f}) and {w_meas:+.2f} rad/s, commanded {recent[-1][0]:.2f} m/s and "
                    f"{recent[-1][1]:+.2f} rad/s (tolerances {c.slip_tolerance_mps:.2f} m/s, "
                    f"{c.slip_tolerance_rps:.2f} rad/s)")
        return None

    def on_battery(self, pct: float, now_s: float) -> None:
        """Battery state of charge, % (freshness via on_input("battery", ...)); ignored when absent."""
        if self._presence["battery"] != "absent":
            self._battery = float(pct)
            self._remember("battery", now_s, self._battery)

    def on_temperature(self, c: float, now_s: float) -> None:
        """Motor temperature, degC (freshness via on_input("temperature", ...)); ignored when absent."""
        if self._presence["temperature"] != "absent":
            self._temp = float(c)
            self._remember("temperature", now_s, self._temp)

    def _missing(self, name: str, now_s: float) -> str | None:
        """Why the protections of ``name`` (a PROTECTIONS input) are off at ``now_s``, or None while
        they are on: never for a required input (its silence is a stop instead); for an optional one
        while it was never received or is stale; always for an absent one."""
        presence = self._presence[name]
        if presence == "required":
            return None
        if presence == "absent":
            return "absent from the ego model"
        seen = self._seen.get(name)
        if seen is None:
            return "not received"
        age = now_s - seen
        return f"stale {age:.2f} s > {self._max_age[name]:.2f} s" if age > self._max_age[name] else None

    def _reading(self, name: str, now_s: float) -> float | None:
        """The reading of ``name`` ("battery" or "temperature") the protections judge: the last one
        (None before any), unless the input is not required and not in force now (:meth:`_missing`)."""
        value = self._battery if name == "battery" else self._temp
        return None if self._missing(name, now_s) is not None else value

    def _protections(self, now_s: float) -> None:
        """Say, once per change, that an input that is not required switches its protections off or on
        (a "protection" event): an absent one at the first tick; an optional one when it goes stale,
        or is still not received max_age_s after the first tick, and again when it is back."""
        first = self._first_tick is None
        if first:
            self._first_tick = now_s
        status = self.protection_status(now_s)
        for name in PROTECTIONS:
            presence, why = self._presence[name], self._missing(name, now_s)
            if presence == "absent" and first:
                self._pending.append(Event(now_s, "protection", (f"{name}: {status[name]}",), (Cause.INPUT_ABSENT,)))
            if presence != "optional":
                continue
            if why is None and name in self._off_said:
                self._off_said.discard(name)
                self._pending.append(Event(now_s, "protection", (f"{name}: optional, received again: "
                                                                 f"its protections are back on",)))
            elif why is not None and name not in self._off_said and (
                    name in self._seen or now_s - self._first_tick > self._max_age[name]):
                self._off_said.add(name)
                self._trend[name].clear()   # no trend across the gap: it starts again from the next readings
                self._pending.append(Event(now_s, "protection", (f"{name}: {status[name]}",),
                                           (Cause.OPTIONAL_INPUT_MISSING,)))

    def protection_status(self, now_s: float) -> dict[str, str]:
        """Per PROTECTIONS input, its presence and, while its protections are off, why and what is off,
        e.g. {"battery": "optional, not received: no battery floor, ...", "temperature": "required"}."""
        return {name: protection_text(name, self._presence[name], self._missing(name, now_s)) for name in PROTECTIONS}

    @property
    def absent_inputs(self) -> tuple[str, ...]:
        """The inputs the ego model declares absent (the node does not subscribe to them)."""
        return tuple(n for n, p in self._presence.items() if p == "absent")

    def _remember(self, name: str, now_s: float, value: float) -> None:
        """Keep the last TREND_WINDOW_S of a reading, for its trend."""
        hist = self._trend[name]
        hist.append((float(now_s), value))
        while hist and hist[0][0] < now_s - TREND_WINDOW_S:
            hist.pop(0)

    def _time_to(self, name: str, limit: float, falling: bool) -> float | None:
        """Seconds until reading ``name`` reaches ``limit`` at its trend over the window (Theil-Sen: the
        median of the slopes between every two readings, over at least three readings spanning 1 s, so
        one odd reading is not a trend), or None if it is not heading there."""
        hist = self._trend[name]
        if len(hist) < 3 or hist[-1][0] - hist[0][0] < 1.0:
            return None
        t = np.array([h[0] for h in hist])
        v = np.array([h[1] for h in hist])
        i, j = np.triu_indices(len(t), 1)
        dt = t[j] - t[i]
        ok = dt > 1e-6
        slope = float(np.median((v[j] - v[i])[ok] / dt[ok])) if ok.any() else 0.0
        gap = (v[-1] - limit) if falling else (limit - v[-1])
        rate = -slope if falling else slope
        return gap / rate if rate > 1e-9 and gap > 0.0 else None

    def on_world_state(self, ws: WorldState, now_s: float) -> None:
        """Latest world state (pose, scan sectors, ambiguity); timed by receipt. Updates the typical
        risk in its context and the affective charge of the course being followed."""
        obstacle_points(ws.scan_bins)  # validates shape and finiteness
        self._ws = ws
        self.on_input("world_state", now_s, now_s)
        settled = self.odometry.on_scan(ws.stamp_s, ws.scan_bins)   # tells a moved robot from an odometry fault
        if settled is not None:
            self._odometry_event(now_s, settled)
        if self.typical is not None:
            self._typ = self.typical(risk_features(ws, *self._speed_norm))
        # affective charge: the course kept from the last world state, scored again from this one
        self._charge = 0.0
        if self._course is not None and self._course_lr is not None:
            self._charge = max(0.0, self._course_lr - self._course_log_reward(self._course, now_s))
        self._course = self._current_course(now_s)
        self._course_lr = None if self._course is None else self._course_log_reward(self._course, now_s)
        if ws.has_goal:
            d = float(np.hypot(*(np.asarray(ws.goal[:2], np.float64) - np.asarray(ws.pose[:2], np.float64))))
            if math.isfinite(d):
                self._progress.append((now_s, d, float(ws.pose[0]), float(ws.pose[1])))
                window = self.cfg.stall_window_s
                while len(self._progress) > 2 and self._progress[1][0] <= now_s - window:
                    self._progress.pop(0)  # keep one sample at least ``window`` old

    def on_habitual(self, p: Proposal, now_s: float) -> None:
        """Latest habitual proposal (v m/s, w rad/s); timed by receipt. ValueError if non-finite
        (it is then not stored, so a habitual node sending garbage goes silent)."""
        if not (math.isfinite(p.v) and math.isfinite(p.w)):
            raise ValueError(f"habitual proposal must be finite, got v={p.v}, w={p.w}")
        self._hab = p
        self.on_input("habitual", now_s, now_s)

    def _current_course(self, now_s: float) -> tuple[np.ndarray, float, float] | None:
        """What the robot is following: the fresh plan while deliberating, else the habitual proposal held."""
        fresh = now_s - self._plan_seen <= self._max_age["planner"]
        if self._mode in (Mode.PLANNING, Mode.OPTIMISING) and self._plan is not None and fresh:
            return np.asarray(self._plan.actions, np.float64), float(self._plan.dt_s), self._plan_seen
        if self._hab is not None:
            return np.array([[self._hab.v, self._hab.w]]), self.cfg.risk_horizon_s, now_s
        return None

    def _course_log_reward(self, course: tuple[np.ndarray, float, float], now_s: float) -> float:
        """log(1 - risk) of the rest of ``course`` (its actions from ``now_s`` on) from the world state."""
        acts, dt, t0 = course
        k = min(int(max(now_s - t0, 0.0) / dt), acts.shape[0] - 1)
        clear = rollout_clearance(self._ws.scan_bins, acts[k:], dt, self.cfg.risk_horizon_s,
                                  self.ego.hard.footprint.radius_m)
        return course_log_reward(clearance_risk(clear, 2.0 * self.cfg.clearance_plan_m))

    def on_plan(self, plan: Plan, now_s: float) -> None:
        """Latest plan (actions (H, 2) at plan.dt_s); timed by receipt. ValueError (not stored)
        for non-finite actions, a wrong shape or dt_s <= 0."""
        acts = np.asarray(plan.actions)
        if acts.ndim != 2 or acts.shape[1] != 2 or not np.all(np.isfinite(acts)) or not plan.dt_s > 0.0:
            raise ValueError(f"plan needs finite actions (H, 2) and dt_s > 0, got {acts.shape}, {plan.dt_s}")
        self._plan = plan
        self._plan_seen = now_s
        self.on_input("planner", now_s, now_s)

    def on_clock_jump(self, now_s: float, size_s: float) -> None:
        """The node's ROS clock stepped by ``size_s`` (s; < 0 back): every stamp judged before it is
        suspect, so the watchdog stops (SAFE_STOP at the next tick, latched)."""
        way = "back" if size_s < 0 else "forward"
        self._instant.append((Cause.CLOCK_JUMP, f"clock jumped {way} {abs(size_s):.3f} s"))
        self.odometry.reset()   # odometry stamps before the jump say nothing about those after it

    def on_goal_status(self, unreachable: str | None, now_s: float) -> None:
        """The planner's judgement of the goal: None (reachable, or outside the map and headed for), or
        why it cannot be reached (SAFE_STOP while it holds)."""
        self._goal_unreachable = unreachable

    def _fault_causes(self, now_s: float) -> list[tuple[Cause, str]]:
        """Stop causes from the monitors: foreign publishers (unless foreign_publishers is "warn"),
        an unreachable goal, and the faults of one moment (clock jumps) not yet acted on."""
        out = list(self._instant)
        for f in self.foreign.check(now_s):
            if (f.topic, f.who) not in self._foreign_seen:
                self._foreign_seen.add((f.topic, f.who))
                self._pending.append(Event(now_s, "foreign", (f.text(), f"action: {self.cfg.foreign_publishers}"),
                                           (Cause.FOREIGN_PUBLISHER,)))
            if self.cfg.foreign_publishers == "stop":
                out.append((Cause.FOREIGN_PUBLISHER, f.text()))
        if self._goal_unreachable is not None:
            out.append((Cause.GOAL_UNREACHABLE, self._goal_unreachable))
        return out

    # ---- evaluation ---------------------------------------------------------------
    def _required(self, mode: Mode) -> tuple[str, ...]:
        if not self.enforced:   # HABITUAL is in force: the planner is not asked, so its silence is no cause
            mode = Mode.HABITUAL
        extra = {Mode.HABITUAL: ("habitual",), Mode.PLANNING: ("planner",), Mode.OPTIMISING: ("planner",)}
        sensors = tuple(n for n in SENSOR_INPUTS if self._presence[n] == "required")
        return sensors + ("world_state",) + extra.get(mode, ())

    def _causes(self, now_s: float, mode: Mode, grace: bool = True) -> list[tuple[Cause, str]]:
        """Reasons for SAFE_STOP in ``mode``, each (typed cause, text); with ``grace`` a deliberation
        source is timed from entering the mode at the latest (it may start publishing then)."""
        causes: list[tuple[Cause, str]] = []
        since = self._since if grace else -math.inf
        for name in self._required(mode):
            seen = self._seen.get(name)
            limit = self._max_age[name]
            if name in ("habitual", "planner"):
                age = now_s - max(seen if seen is not None else -math.inf, since)
                if age > limit:
                    causes.append((Cause.STALE_INPUT, f"{name} silent {age:.2f} s > {limit:.2f} s"))
            elif seen is None:
                causes.append((Cause.STALE_INPUT, f"{name} never received"))
            elif now_s - seen > limit:
                causes.append((Cause.STALE_INPUT, f"{name} stale {now_s - seen:.2f} s > {limit:.2f} s"))
        hard = self.ego.hard
        floor = hard.power.battery_floor_pct
        battery, temp = self._reading("battery", now_s), self._reading("temperature", now_s)
        if battery is not None and not battery >= floor:
            causes.append((Cause.BATTERY, f"battery {battery:.1f} % below floor {floor:.1f} %"))
        th = hard.thermal
        if temp is not None and not th.min_operating_temp_c <= temp <= th.max_operating_temp_c:
            causes.append((Cause.TEMPERATURE, f"temperature {temp:.1f} degC outside "
                           f"[{th.min_operating_temp_c:.1f}, {th.max_operating_temp_c:.1f}] degC"))
        if self._odom is not None:
            k = hard.kinematics
            for name, val, lim in (("v", self._odom[0], k.linear_x.max_velocity),
                                   ("w", self._odom[1], k.angular_z.max_velocity)):
                if not abs(val) <= lim * (1.0 + self.cfg.overspeed_tolerance):
                    causes.append((Cause.OVERSPEED, f"measured |{name}|={abs(val):.3f} above hard limit {lim:.3f}"))
        if self.cfg.limit_predict_s > 0.0:
            # graded: stop while the limit is still ahead, if the trend reaches it within limit_predict_s
            # (the time a stop takes is well inside it)
            t_bat = None if battery is None else self._time_to("battery", floor, falling=True)
            if t_bat is not None and t_bat < self.cfg.limit_predict_s:
                causes.append((Cause.LIMIT_TREND, f"battery {battery:.1f} % reaches the floor {floor:.1f} % in "
                               f"{t_bat:.1f} s < {self.cfg.limit_predict_s:.1f} s at its trend"))
            t_hot = None if temp is None else self._time_to("temperature", th.max_operating_temp_c, falling=False)
            if t_hot is not None and t_hot < self.cfg.limit_predict_s:
                causes.append((Cause.LIMIT_TREND, f"temperature {temp:.1f} degC reaches "
                               f"{th.max_operating_temp_c:.1f} degC in {t_hot:.1f} s < {self.cfg.limit_predict_s:.1f} s "
                               f"at its trend"))
        slip = self._slip(now_s)
        if slip is not None:
            causes.append((Cause.WHEEL_SLIP, slip))
        silent = self._bridge_silent(now_s)
        if silent is not None:
            causes.append((Cause.BRIDGE_SILENT, f"bridge silent {silent:.2f} s > {self.cfg.bridge_max_age_s:.2f} s: "
                           f"the watchdog stops the base itself"))
        if self._ws is not None and not self._ws.ambiguity <= self.cfg.ambiguity_stop:
            causes.append((Cause.AMBIGUITY, f"ambiguity {self._ws.ambiguity:.3f} > {self.cfg.ambiguity_stop:.3f}"))
        causes.extend(self._fault_causes(now_s))
        return causes

    def clearances(self, now_s: float) -> tuple[float | None, float | None]:
        """Predicted clearance (m) of the habitual proposal and of the latest fresh plan."""
        if self._ws is None:
            return None, None
        radius, horizon = self.ego.hard.footprint.radius_m, self.cfg.risk_horizon_s
        hab = None if self._hab is None else predicted_clearance(self._ws.scan_bins, self._hab.v, self._hab.w,
                                                                 horizon, radius)
        plan = None
        fresh = now_s - self._seen.get("planner", -math.inf) <= self._max_age["planner"]
        if self._plan is not None and self._plan.horizon > 0 and fresh:
            plan = rollout_clearance(self._ws.scan_bins, self._plan.actions, self._plan.dt_s, horizon, radius)
        return hab, plan

    def risks(self, hab: float | None, plan: float | None) -> dict[str, float | None]:
        """The habitual proposal's risk (from its predicted clearance ``hab``), the fresh plan's own
        risk (if ``plan``, its clearance, is not None: a plan is fresh), their deviations from the
        typical risk here (None without the network) and the larger one, ``z``."""
        out: dict[str, float | None] = {"habitual_risk": None, "plan_risk": None, "habitual_z": None,
                                        "plan_z": None, "z": None}
        if hab is not None:
            out["habitual_risk"] = clearance_risk(hab, 2.0 * self.cfg.clearance_plan_m)
        if plan is not None and self._plan is not None:
            out["plan_risk"] = float(self._plan.risk)
        if self._typ is not None:
            mean, spread = self._typ
            for i, name in enumerate(("habitual", "plan")):
                r = out[f"{name}_risk"]
                if r is not None:
                    out[f"{name}_z"] = deviation(r, mean[i], spread[i])
            zs = [z for z in (out["habitual_z"], out["plan_z"]) if z is not None]
            out["z"] = max(zs) if zs else None
        return out

    def _graded(self, now_s: float, risks: dict[str, float | None]) -> float:
        """The graded response (LEVELS) before a stop, and its speed scale: a level is entered at once
        when a score calls for it and left one step at a time after dwell_s without it; each change is
        a "graded" event with its reasons."""
        c = self.cfg
        want: list[tuple[int, str, Cause]] = []
        z = risks["z"]
        if z is not None and z >= c.risk_limit_z:
            lvl = 2 if z >= c.risk_slow_z else 1
            which = "habitual" if z == risks["habitual_z"] else "plan"
            want.append((lvl, f"{which} risk {risks[which + '_risk']:.2f} is {z:.1f} spreads above the typical "
                               f"risk here (>= {c.risk_slow_z if lvl == 2 else c.risk_limit_z:.1f})", Cause.RISK))
        if self._charge >= c.charge_slow:
            want.append((2, f"affective charge {self._charge:.2f} >= {c.charge_slow:.2f}: the course's log reward "
                            f"dropped with the new world state", Cause.AFFECTIVE_CHARGE))
        if c.limit_warn_s > 0.0:
            floor, tmax = self.ego.hard.power.battery_floor_pct, self.ego.hard.thermal.max_operating_temp_c
            for name, limit, falling, what in (("battery", floor, True, f"the floor {floor:.1f} %"),
                                               ("temperature", tmax, False, f"{tmax:.1f} degC")):
                t = None if self._reading(name, now_s) is None else self._time_to(name, limit, falling)
                if t is not None and t < c.limit_warn_s:
                    want.append((2, f"{name} reaches {what} in {t:.0f} s < {c.limit_warn_s:.0f} s at its trend",
                                 Cause.LIMIT_TREND))
        target = max((w[0] for w in want), default=0)
        if target > self._level or (target < self._level and now_s - self._level_since >= c.dwell_s):
            new = target if target > self._level else self._level - 1
            if new > self._level:   # a slow-down says why, in text and typed (a step back up needs no cause)
                reasons = [w[1] for w in want if w[0] >= new]
                causes = tuple(dict.fromkeys(w[2] for w in want if w[0] >= new))
            else:
                reasons, causes = [f"{LEVELS[self._level]} not needed for {now_s - self._level_since:.1f} s"], ()
            self._pending.append(Event(now_s, "graded", tuple(reasons), causes, Transition(LEVELS[self._level], LEVELS[new])))
            self._level, self._level_since = new, now_s
        elif target == self._level and target > 0:
            self._level_since = now_s   # still needed: the dwell counts from the last time it was
        return (1.0, c.limit_scale, c.slow_scale)[self._level]

    def _speed_scale(self, now_s: float) -> float:
        """Derating in [0, 1] from the battery and temperature readings in force (:meth:`_reading`): 0
        before a required one arrived; an input that is not in force (optional and missing, or absent)
        derates nothing."""
        battery, temp = self._reading("battery", now_s), self._reading("temperature", now_s)
        if any(v is None and self._presence[n] == "required" for n, v in (("battery", battery), ("temperature", temp))):
            return 0.0
        lo = self.cfg.derate_min_scale
        bat = tem = 1.0
        if battery is not None:
            floor, b0 = self.ego.hard.power.battery_floor_pct, self.cfg.battery_derate_pct
            bat = float(np.interp(battery, [floor, b0], [lo, 1.0])) if battery >= floor else 0.0
        if temp is not None:
            tmax, t0 = self.ego.hard.thermal.max_operating_temp_c, self.cfg.temperature_derate_c
            tem = float(np.interp(temp, [t0, tmax], [1.0, lo])) if temp <= tmax else 0.0
        return max(0.0, min(1.0, bat, tem))

    def _go(self, mode: Mode, now_s: float, reasons: tuple[str, ...], causes: tuple[Cause, ...] = (),
            values: dict[str, float] | None = None) -> None:
        self._pending.append(Event(now_s, "mode", tuple(reasons), causes, Transition(self._mode.name, mode.name),
                                   values or {}))
        if mode != Mode.SAFE_STOP:
            self._base_stop = False
        if mode in (Mode.HABITUAL, Mode.SAFE_STOP):
            self._stalled_habitual = False
        self._mode, self._since = mode, now_s
        self._progress = self._progress[-1:]

    def _stalled(self, now_s: float, stuck: bool = False) -> str | None:
        """Why the habitual policy (or, with ``stuck``, the planner) is not getting anywhere, or None:
        over the last stall_window_s (all of it in this mode) the goal distance shrank by less than
        stall_progress_m while the goal is further than stall_goal_radius_m; with ``stuck`` the robot
        also moved less than stall_motion_m net (a detour moves it, a stuck robot does not). Mode 1
        stuck is a reason for Mode 2."""
        c = self.cfg
        if c.stall_window_s <= 0.0 or len(self._progress) < 2:
            return None
        (t0, d0, x0, y0), (t1, d1, x1, y1) = self._progress[0], self._progress[-1]
        if t0 > now_s - c.stall_window_s or t0 < self._since or d1 <= c.stall_goal_radius_m:
            return None
        moved = math.hypot(x1 - x0, y1 - y0)
        if stuck and moved >= c.stall_motion_m:
            return None
        if d0 - d1 < c.stall_progress_m:
            return (f"no progress: goal distance {d1:.2f} m, {d0 - d1:+.2f} m closer in {t1 - t0:.1f} s "
                    f"< {c.stall_progress_m:.2f} m" + (f", moved {moved:.2f} m < {c.stall_motion_m:.2f} m" if stuck
                                                        else ""))
        return None

    def _deliberate(self, now_s: float, hab: float | None, plan: float | None) -> None:
        c, mode = self.cfg, self._mode
        dwelt = now_s - self._since >= c.dwell_s
        horizon = f"over {c.risk_horizon_s:.1f} s"
        stall = self._stalled(now_s) if mode == Mode.HABITUAL or not self._stalled_habitual else None
        # planning without the habitual proposal and still going nowhere: Mode 2 must work harder
        again = (self._stalled(now_s, stuck=True) if mode == Mode.PLANNING and self._stalled_habitual
                 and now_s >= self._hold_until else None)
        if stall is not None and mode in (Mode.PLANNING, Mode.OPTIMISING):
            # deliberating while refining the habitual proposal, and still not getting anywhere:
            # the proposal is the anchor that holds the plan in place, so plan without it
            self._pending.append(Event(now_s, "stall", (f"{mode.name}: planning without the habitual proposal",
                                                        stall)))
            self._stalled_habitual = True
            self._hold_until = now_s + c.stall_window_s
            stall = None
        if mode == Mode.HABITUAL and hab is not None and hab < c.clearance_plan_m:
            self._go(Mode.PLANNING, now_s, (f"habitual clearance {hab:.2f} m < {c.clearance_plan_m:.2f} m {horizon}",),
                     (Cause.HABITUAL_CLEARANCE,), {"habitual_clearance_m": hab, "clearance_plan_m": c.clearance_plan_m})
        elif stall is not None:
            self._go(Mode.PLANNING, now_s, (stall,), (Cause.STALL,))
            self._hold_until = now_s + c.stall_window_s
            self._stalled_habitual = True
        elif again is not None:
            self._go(Mode.OPTIMISING, now_s, (f"planning without the habitual proposal: {again}",), (Cause.STALL,))
            self._hold_until = now_s + c.stall_window_s
        elif mode == Mode.PLANNING and plan is not None and plan < c.clearance_optimise_m:
            self._go(Mode.OPTIMISING, now_s,
                     (f"plan clearance {plan:.2f} m < {c.clearance_optimise_m:.2f} m {horizon}",),
                     (Cause.PLAN_CLEARANCE,), {"plan_clearance_m": plan, "clearance_optimise_m": c.clearance_optimise_m})
        elif (mode == Mode.PLANNING and dwelt and now_s >= self._hold_until and hab is not None
              and hab > c.clearance_plan_m + c.hysteresis_m):
            self._go(Mode.HABITUAL, now_s, (f"habitual clearance {hab:.2f} m > {c.clearance_plan_m:.2f} "
                                            f"+ {c.hysteresis_m:.2f} m for {now_s - self._since:.1f} s",))
        elif (mode == Mode.OPTIMISING and dwelt and now_s >= self._hold_until and plan is not None
              and plan > c.clearance_optimise_m + c.hysteresis_m):
            self._go(Mode.PLANNING, now_s, (f"plan clearance {plan:.2f} m > {c.clearance_optimise_m:.2f} "
                                            f"+ {c.hysteresis_m:.2f} m for {now_s - self._since:.1f} s",))

    def tick(self, now_s: float) -> WatchdogOutput:
        """Evaluate everything at ``now_s`` and return the mode, derating, events and status."""
        if not math.isfinite(now_s):
            raise ValueError(f"now_s must be finite, got {now_s}")
        self._protections(now_s)
        causes = self._causes(now_s, self._mode)
        hab, plan = self.clearances(now_s)
        if causes:
            if self._mode != Mode.SAFE_STOP:
                self._go(Mode.SAFE_STOP, now_s, tuple(t for _, t in causes), tuple(dict.fromkeys(c for c, _ in causes)))
                self._latched = True
            if any(c == Cause.FOREIGN_PUBLISHER for c, _ in causes):
                self._base_stop = True   # the agent's zeros cannot overrule another publisher: the base must stop
        elif self._mode == Mode.SAFE_STOP:
            if not self._latched and not self._causes(now_s, Mode.HABITUAL, grace=False):
                self._go(Mode.HABITUAL, now_s, ("all inputs fresh and within limits",))
        else:
            self._deliberate(now_s, hab, plan)
        risks = self.risks(hab, plan)
        scale = min(self._speed_scale(now_s), self._graded(now_s, risks))
        events, self._pending = tuple(self._pending), []
        self._instant = []
        readings = self._readings(hab, plan, scale, risks)
        return WatchdogOutput(now_s, self._mode, scale, events, self._status(now_s, causes, readings),
                              habitual_stalled=self._stalled_habitual, base_stop=self._base_stop)

    def _readings(self, hab: float | None, plan: float | None, scale: float,
                  risks: dict[str, float | None]) -> Readings:
        """The typed numbers of one tick (WatchdogOutput.readings)."""
        return Readings(speed_scale=scale, habitual_clearance_m=hab, plan_clearance_m=plan,
                        ambiguity=None if self._ws is None else float(self._ws.ambiguity),
                        battery_pct=self._battery, temperature_c=self._temp,
                        tracking_error_mps=None if self._tracking is None else self._tracking[0],
                        tracking_error_rps=None if self._tracking is None else self._tracking[1],
                        risk_z=risks["z"], habitual_risk=risks["habitual_risk"], plan_risk=risks["plan_risk"],
                        charge=self._charge, graded_level=float(self._level))

    def _status(self, now_s: float, causes: list[tuple[Cause, str]], readings: Readings) -> WatchdogStatus:
        """The typed status of one tick (WatchdogOutput.diagnosis)."""
        ages = {name: None if self._seen.get(name) is None else now_s - self._seen[name] for name in INPUTS}
        return WatchdogStatus(self._mode, self._latched, readings, tuple(causes), ages,
                              tuple(n for n in INPUTS if self._presence.get(n) == "absent"),
                              {n: (self._presence[n], self._missing(n, now_s)) for n in PROTECTIONS})

    def clear_safe_stop(self, now_s: float) -> tuple[bool, str]:
        """Operator request to leave a latched SAFE_STOP; refused while any cause remains."""
        if self._mode != Mode.SAFE_STOP:
            return True, f"not in SAFE_STOP (mode {self._mode.name})"
        causes = self._causes(now_s, Mode.HABITUAL, grace=False)
        if causes:
            return False, "; ".join(t for _, t in causes)
        self._latched = False
        self.odometry.reset()   # re-anchor on the odometry as it is now: the operator has looked
        self._go(Mode.HABITUAL, now_s, ("safe stop cleared",))
        return True, "cleared"

    @property
    def world_state(self) -> WorldState | None:
        """The latest world state (None before one arrived)."""
        return self._ws

    @property
    def charge(self) -> float:
        """The affective charge at the latest world state (nats, >= 0)."""
        return self._charge

    @property
    def speed_norm(self) -> tuple[float, float]:
        """(m/s, rad/s) the risk features' speeds are divided by: the ego model's hard limits."""
        return self._speed_norm

    @property
    def ambiguity(self) -> float | None:
        """The latest world state's ambiguity (None before one arrived)."""
        return None if self._ws is None else float(self._ws.ambiguity)

    @property
    def mode(self) -> Mode:
        """Current mode."""
        return self._mode


__all__ = ["INPUTS", "LEVELS", "LIVE_UNITS", "PROTECTIONS", "SENSOR_INPUTS", "TIGHTER", "Watchdog", "WatchdogConfig",
           "WatchdogOutput", "load_watchdog_config", "obstacle_points", "predicted_clearance", "rollout",
           "rollout_clearance", "tightened"]
