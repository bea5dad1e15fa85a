"""The watchdog's mode state machine: SAFE_STOP / HABITUAL / PLANNING / OPTIMISING, read off small
monitors (freshness, slip, trend, stall, risk, foreign publishers, odometry consistency).

- SAFE_STOP on any stop cause (the monitors' typed causes); it starts unlatched (waiting for every input)
  and, once left, every SAFE_STOP latches until :meth:`Watchdog.clear_safe_stop` succeeds with the causes
  gone.
- Deliberation: HABITUAL -> PLANNING when the habitual command's predicted clearance is below
  clearance_plan_m; PLANNING -> OPTIMISING when the plan's is below clearance_optimise_m. Back only after
  dwell_s in the mode and with hysteresis_m more clearance than the threshold.
- Stall (stall.py): HABITUAL -> PLANNING also when the robot makes no progress to the goal; that PLANNING
  is held for stall_window_s and flagged ``habitual_stalled``, so the planner plans without the habitual
  proposal. The same lack of progress inside PLANNING or OPTIMISING (the plan refining the habitual
  proposal and going nowhere) raises the flag too, with a "stall" event, and holds the mode again; if
  PLANNING without the proposal is still stuck over the next window, the watchdog escalates to
  OPTIMISING (the planner refines its plan until its deadline), held for a window too. The flag drops
  when the mode goes back to HABITUAL or to SAFE_STOP.
- Graded responses before a stop (status.LEVELS): a level is entered at once when a score calls for it
  (risk.py's and trend.py's slow-downs) and left one step at a time after dwell_s without it. The speed
  scale is the smaller of its scale and the derating (trend.py).

Every transition is an :class:`Event` with reasons and typed causes. Units: m, s, rad, %, degC; times
are seconds on the caller's clock (``now_s``).
"""
from __future__ import annotations

import math

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.config.thresholds import WatchdogConfig
from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.core.geometry import obstacle_points
from hjepa_agent.core.risk import TypicalRisk
from hjepa_agent.core.types import Mode, Plan, Proposal, WorldState
from hjepa_agent.core.watchdog.foreign import ForeignPublishers
from hjepa_agent.core.watchdog.freshness import INPUTS, Freshness
from hjepa_agent.core.watchdog.odometry import OdometryCheckConfig, OdometryConsistency, OdometryJump
from hjepa_agent.core.watchdog.risk import Course, RiskMonitor
from hjepa_agent.core.watchdog.slip import SlipMonitor
from hjepa_agent.core.watchdog.stall import StallMonitor
from hjepa_agent.core.watchdog.status import LEVELS, Readings, WatchdogOutput, WatchdogStatus
from hjepa_agent.core.watchdog.trend import TrendMonitor, derating

Causes = list[tuple[Cause, str]]


class Watchdog:
    """Mode owner. Feed inputs as they arrive, call :meth:`tick` at a fixed rate.

    Freshness (freshness.py): sensors report their header stamp through :meth:`on_input`; world_state,
    habitual and planner are timed by receipt in their ``on_*`` methods. Starts in SAFE_STOP, unlatched,
    and enters HABITUAL once every input is fresh and healthy; a SAFE_STOP entered after that is
    latched until :meth:`clear_safe_stop` succeeds.
    """

    def __init__(self, cfg: WatchdogConfig, ego: EgoModel, typical: TypicalRisk | None = None,
                 enforced: bool = True) -> None:
        cfg.check_against(ego)
        self.cfg, self.ego = cfg, ego
        self.enforced = enforced
        """False: decisions are not enforced (simulation's watchdog-off comparison): the mode in force is
        HABITUAL whatever is decided, so only the habitual proposal is required fresh."""
        k = ego.hard.kinematics
        self.freshness = Freshness(ego.hard.sensors, cfg)
        self.slip = SlipMonitor()
        self.trend = TrendMonitor()
        self.stall = StallMonitor()
        self.risk = RiskMonitor(typical, (k.linear_x.max_velocity, k.angular_z.max_velocity),
                                ego.hard.footprint.radius_m)
        self.foreign = ForeignPublishers(cfg.foreign_match_window_s)
        self.odometry = OdometryConsistency(OdometryCheckConfig.from_ego(
            ego, jump_margin_m=cfg.odom_jump_margin_m, jump_margin_rad=cfg.odom_jump_margin_rad))
        self._ws: WorldState | None = None
        self._hab: Proposal | None = None
        self._plan: Plan | None = None
        self._plan_seen = -math.inf
        self._mode, self._since = Mode.SAFE_STOP, -math.inf
        self._latched = False
        self._level, self._level_since = 0, -math.inf     # graded level (LEVELS index) and since when
        self._pending: list[Event] = []
        self._hold_until = -math.inf                      # a stall's mode is held at least until then
        self._stalled_habitual = False                    # deliberating because Mode 1 stalled
        self._foreign_seen: set[tuple[str, str]] = set()
        self._instant: Causes = []                        # faults of one moment (a clock jump): stop at the next tick
        self._base_stop = False
        self._goal_unreachable: str | None = None

    def reconfigure(self, cfg: WatchdogConfig) -> None:
        """New thresholds from now on (a live change, already checked: config/thresholds.py tightened);
        the state (mode, latch, histories) is kept."""
        cfg.check_against(self.ego)
        self.cfg = cfg
        self.freshness.configure(cfg)

    # ---- inputs -------------------------------------------------------------------
    def on_input(self, name: str, stamp_s: float, now_s: float) -> None:
        """Mark input ``name`` (one of INPUTS) as received at ``now_s`` with stamp ``stamp_s``; ignored
        for an input the ego model declares absent."""
        self.freshness.on_input(name, stamp_s, now_s)

    def on_odom(self, v: float, w: float, now_s: float, vy: float = 0.0,
                pose: tuple[float, float, float] | None = None, stamp_s: float | None = None) -> None:
        """Measured velocity: v m/s forward, w rad/s, vy m/s sideways (0 where the odometry cannot
        tell: wheel-only); freshness via on_input("odom", ...). With ``pose`` (x m, y m, yaw rad in
        the odom frame) and its ``stamp_s``, the odometry consistency check (odometry.py): a jump no
        motion explains stops the robot (latched), since a goal in the odom frame then points to the
        wrong place."""
        self.slip.on_odom(v, w, vy)
        if pose is not None and stamp_s is not None:
            jump = self.odometry.on_odom(stamp_s, pose[0], pose[1], pose[2], float(v), float(w))
            if jump is not None:
                self._odometry_event(now_s, jump)
                self._instant.append((Cause.ODOMETRY_JUMP, jump.describe()))

    def _odometry_event(self, now_s: float, jump: OdometryJump) -> None:
        what = "settled by the scan: " if not jump.settled or jump.kind.value != "unknown" else ""
        self._pending.append(Event(now_s, "odometry", (f"{what}{jump.describe()}",), (Cause.ODOMETRY_JUMP,)))

    def on_command(self, v: float, now_s: float, w: float = 0.0) -> None:
        """The bridge's command to the base (cmd_vel: v m/s, w rad/s): for the slip check, and the
        bridge's heartbeat (its receipt time; see :meth:`bridge_stop`)."""
        self.odometry.on_command(now_s, float(v), float(w))
        self.slip.on_command(v, w, now_s)

    def bridge_stop(self, now_s: float) -> tuple[float, float] | None:
        """The command (v m/s, w rad/s) the watchdog sends the base itself while the bridge is silent
        (it holds its last command otherwise): from the bridge's last command down to zero at the ego
        model's deceleration limits, from the moment the silence was noticed; None while the bridge
        is alive. The bridge, for its part, stops on a silent watchdog (its mode_timeout_s)."""
        return self.slip.bridge_stop(now_s, self.cfg.bridge_max_age_s, self.ego.hard.kinematics)

    def on_battery(self, pct: float, now_s: float) -> None:
        """Battery state of charge, % (freshness via on_input("battery", ...)); ignored when absent."""
        if self.freshness.presence["battery"] != "absent":
            self.trend.on_reading("battery", pct, now_s)

    def on_temperature(self, c: float, now_s: float) -> None:
        """Motor temperature, degC (freshness via on_input("temperature", ...)); ignored when absent."""
        if self.freshness.presence["temperature"] != "absent":
            self.trend.on_reading("temperature", c, now_s)

    def on_world_state(self, ws: WorldState, now_s: float) -> None:
        """Latest world state (pose, scan sectors, ambiguity); timed by receipt. Updates the typical
        risk in its context, the affective charge of the course being followed and the progress."""
        obstacle_points(ws.scan_bins)  # validates shape and finiteness
        self._ws = ws
        self.on_input("world_state", now_s, now_s)
        settled = self.odometry.on_scan(ws.stamp_s, ws.scan_bins)   # tells a moved robot from an odometry fault
        if settled is not None:
            self._odometry_event(now_s, settled)
        self.risk.on_world_state(ws, now_s, self._course(now_s), self.cfg)
        self.stall.on_world_state(ws, now_s, self.cfg.stall_window_s)

    def _course(self, now_s: float) -> Course | None:
        """What the robot is following: the fresh plan while deliberating, else the habitual proposal held."""
        fresh = now_s - self._plan_seen <= self.freshness.max_age["planner"]
        if self._mode in (Mode.PLANNING, Mode.OPTIMISING) and self._plan is not None and fresh:
            return np.asarray(self._plan.actions, np.float64), float(self._plan.dt_s), self._plan_seen
        if self._hab is not None:
            return np.array([[self._hab.v, self._hab.w]]), self.cfg.risk_horizon_s, now_s
        return None

    def on_habitual(self, p: Proposal, now_s: float) -> None:
        """Latest habitual proposal (v m/s, w rad/s); timed by receipt. ValueError if non-finite
        (it is then not stored, so a habitual node sending garbage goes silent)."""
        if not (math.isfinite(p.v) and math.isfinite(p.w)):
            raise ValueError(f"habitual proposal must be finite, got v={p.v}, w={p.w}")
        self._hab = p
        self.on_input("habitual", now_s, now_s)

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

    def on_reactivated(self, now_s: float, blind_s: float) -> None:
        """The node was inactive for ``blind_s`` (it took no input and decided nothing): it stops (SAFE_STOP
        at the next tick, latched) whatever its inputs say when they come back, until a person clears it."""
        self._instant.append((Cause.STALE_INPUT, f"watchdog inactive {blind_s:.2f} s: blind meanwhile"))

    def on_goal_status(self, unreachable: str | None, now_s: float) -> None:
        """The planner's judgement of the goal: None (reachable, or outside the map and headed for), or
        why it cannot be reached (SAFE_STOP while it holds)."""
        self._goal_unreachable = unreachable

    # ---- what the monitors say ----------------------------------------------------
    def _reading(self, name: str, now_s: float) -> float | None:
        """The battery or temperature reading the protections judge: the last one, unless the input is
        not in force now (freshness.py)."""
        return None if self.freshness.missing(name, now_s) is not None else self.trend.last[name]

    def _causes(self, now_s: float, mode: Mode, grace: bool = True) -> Causes:
        """Reasons for SAFE_STOP in ``mode``, each (typed cause, text); with ``grace`` a deliberation
        source is timed from entering the mode at the latest (it may start publishing then)."""
        battery, temp = self._reading("battery", now_s), self._reading("temperature", now_s)
        required = self.freshness.required(mode, self.enforced)
        return (self.freshness.stale(now_s, required, self._since if grace else -math.inf)
                + self.trend.limit_causes(battery, temp, self.ego)
                + self.slip.overspeed(self.ego.hard.kinematics, self.cfg.overspeed_tolerance)
                + self.trend.trend_causes(battery, temp, self.ego, self.cfg)
                + self.slip.causes(now_s, self.cfg)
                + self.risk.ambiguity(self._ws, self.cfg)
                + self._fault_causes(now_s))

    def _fault_causes(self, now_s: float) -> Causes:
        """Foreign publishers (unless foreign_publishers is "warn": an event only), an unreachable goal,
        and the faults of one moment (clock jumps, odometry jumps) not yet acted on."""
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

    def clearances(self, now_s: float) -> tuple[float | None, float | None]:
        """Predicted clearance (m) of the habitual proposal and of the latest fresh plan."""
        fresh = now_s - self.freshness.seen.get("planner", -math.inf) <= self.freshness.max_age["planner"]
        return self.risk.clearances(self._ws, self._hab, self._plan if fresh else None, self.cfg)

    def risks(self, hab: float | None, plan: float | None) -> dict[str, float | None]:
        """The habitual proposal's and the fresh plan's risks from their clearances (risk.py)."""
        return self.risk.risks(hab, plan, None if self._plan is None else self._plan.risk, self.cfg)

    def _speed_scale(self, now_s: float) -> float:
        """Derating (trend.py) from the readings in force: 0 before a required one arrived."""
        battery, temp = self._reading("battery", now_s), self._reading("temperature", now_s)
        if any(v is None and self.freshness.presence[n] == "required" for n, v in (("battery", battery),
                                                                                 ("temperature", temp))):
            return 0.0
        return derating(battery, temp, self.ego, self.cfg)

    # ---- the machine --------------------------------------------------------------
    def _graded(self, now_s: float, risks: dict[str, float | None]) -> float:
        """The graded response (LEVELS) and its speed scale: a level is entered at once when a score calls
        for it and left one step at a time after dwell_s without it; each change is a "graded" event."""
        c = self.cfg
        want = self.risk.slow_downs(risks, c) + self.trend.slow_downs(
            self._reading("battery", now_s), self._reading("temperature", now_s), self.ego, c)
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

    def _go(self, mode: Mode, now_s: float, reasons: tuple[str, ...], causes: tuple[Cause, ...] = (),
            values: dict[str, float] | None = None) -> None:
        self._pending.append(Event(now_s, "mode", tuple(reasons), causes, Transition(self._mode.name, mode.name),
                                   values or {}))
        if mode != Mode.SAFE_STOP:
            self._base_stop = False
        if mode in (Mode.HABITUAL, Mode.SAFE_STOP):
            self._stalled_habitual = False
        self._mode, self._since = mode, now_s
        self.stall.restart()

    def _deliberate(self, now_s: float, hab: float | None, plan: float | None) -> None:
        c, mode = self.cfg, self._mode
        dwelt = now_s - self._since >= c.dwell_s
        horizon = f"over {c.risk_horizon_s:.1f} s"
        stall = (self.stall.stalled(now_s, self._since, c) if mode == Mode.HABITUAL or not self._stalled_habitual
                 else None)
        # planning without the habitual proposal and still going nowhere: Mode 2 must work harder
        again = (self.stall.stalled(now_s, self._since, c, stuck=True) if mode == Mode.PLANNING
                 and self._stalled_habitual and now_s >= self._hold_until else None)
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
        events, went_off = self.freshness.protections(now_s)
        self._pending.extend(events)
        for name in went_off:
            self.trend.forget(name)   # no trend across the gap: it starts again from the next readings
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
        track = self.slip.tracking or (None, None)
        readings = Readings(speed_scale=scale, habitual_clearance_m=hab, plan_clearance_m=plan,
                            ambiguity=self.ambiguity, battery_pct=self.trend.last["battery"],
                            temperature_c=self.trend.last["temperature"], tracking_error_mps=track[0],
                            tracking_error_rps=track[1], risk_z=risks["z"], habitual_risk=risks["habitual_risk"],
                            plan_risk=risks["plan_risk"], charge=self.risk.charge, graded_level=float(self._level))
        diagnosis = WatchdogStatus(self._mode, self._latched, readings, tuple(causes), self.freshness.ages(now_s),
                                   self.freshness.absent, self.freshness.protection_states(now_s))
        return WatchdogOutput(now_s, self._mode, scale, events, diagnosis, habitual_stalled=self._stalled_habitual,
                              base_stop=self._base_stop)

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

    # ---- views --------------------------------------------------------------------
    def protection_status(self, now_s: float) -> dict[str, str]:
        """Per optional-or-absent-capable input, its presence and, while its protections are off, why and
        what is off, e.g. {"battery": "optional, not received: no battery floor, ...", "temperature": "required"}."""
        return self.freshness.protection_status(now_s)

    @property
    def absent_inputs(self) -> tuple[str, ...]:
        """The inputs the ego model declares absent (the node does not subscribe to them)."""
        return self.freshness.absent

    @property
    def typical(self) -> TypicalRisk | None:
        """The typical-risk network (None: no risk-deviation scores)."""
        return self.risk.typical

    @property
    def _max_age(self) -> dict[str, float]:
        """Each input's maximum age, s (freshness.py)."""
        return self.freshness.max_age

    @property
    def world_state(self) -> WorldState | None:
        """The latest world state (None before one arrived)."""
        return self._ws

    @property
    def charge(self) -> float:
        """The affective charge at the latest world state (nats, >= 0)."""
        return self.risk.charge

    @property
    def speed_norm(self) -> tuple[float, float]:
        """(m/s, rad/s) the risk features' speeds are divided by: the ego model's hard limits."""
        return self.risk.speed_norm

    @property
    def ambiguity(self) -> float | None:
        """The latest world state's ambiguity (None before one arrived)."""
        return None if self._ws is None else float(self._ws.ambiguity)

    @property
    def mode(self) -> Mode:
        """Current mode."""
        return self._mode


__all__ = ["INPUTS", "Watchdog"]
