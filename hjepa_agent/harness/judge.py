"""The judge: the one definition of an episode's outcome, of a violation and of a fault's detection.

``hjepa-agent sim`` (harness/runner.py), the rehearsal (harness/rehearse.py) and ``tune sweep``'s replay
scoring (tune/scoring.py) call it; nothing else decides these.

* Outcome (:func:`episode_end`, :func:`settle`): in this order, "collision" (the robot touches an
  obstacle), "goal" (within the scenario's tolerance of the goal the user set now: the only success),
  "timeout" (the scenario's time limit), a failure of the harness itself ("lockstep_lost", "node_failed"),
  "safe_stop" (a stop only a person can clear, held with the robot standing: :func:`held_stop`). A node
  that failed stop fails the episode whatever else happened.
* Violations: commands outside the ego model's hard limits as a base feels them
  (:func:`count_limit_violations`, over the agent's own commands: :func:`agent_commands`); a breach
  (:func:`breach`): a collision, or moving with the battery below its floor or the motors above their
  maximum temperature.
* Detection (:class:`FaultJudge`, :func:`judge`): after a fault's onset, the *response* is the first
  tick at which the watchdog decided one (:func:`is_response`: SAFE_STOP entered, a graded slow-down
  raised, or, for a fault no cause names, deliberation: :func:`response_modes`), and the *name* is the
  typed causes of the first event that carried any. A fault is detected when the name carries one of
  its :data:`EXPECTED_CAUSES`, or, for a kind with none (obstacle_drop), when the agent responded.
  Live, the events are every node's on agent/events; in a replay, only the watchdog core's (a fault
  only an input guard or the planner names cannot be named there).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping, Sequence

from hjepa_agent.config.ego_model import EgoModel, HardLimits
from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mode

# ---- outcome ------------------------------------------------------------------------------------
STOPPED_GIVE_UP_S = 5.0
"""An episode in a stop that only a person can clear (the watchdog's SAFE_STOP, or the bridge's latched
e-stop) with the robot standing still this long (sim s) ends as a safe stop."""
MOVING_MPS = 0.01
"""The robot moves when its forward speed exceeds this (m/s)."""
GOAL = "goal"
"""The one successful outcome."""


def moving(world) -> bool:
    """Whether the simulated robot (sim/world.SimWorld) is moving."""
    return abs(world.twist()[0]) > MOVING_MPS


def held_stop(since: float | None, elapsed: float, mode: Mode, sim) -> tuple[float | None, bool]:
    """The rule for a stop only a person can clear: the watchdog's SAFE_STOP or the bridge's latched
    e-stop (``sim.bridge_state``) with the robot standing (``sim.world``). Returns when that began (None: not
    in one) and whether it has held STOPPED_GIVE_UP_S (the episode ends as a safe stop)."""
    if not (mode == Mode.SAFE_STOP or sim.bridge_state == "ESTOP") or moving(sim.world):
        return None, False
    since = elapsed if since is None else since
    return since, elapsed - since > STOPPED_GIVE_UP_S


def episode_end(collided: bool, reached: bool, elapsed_s: float, time_limit_s: float, failed: str | None = None,
                given_up: bool = False) -> str | None:
    """The outcome that ends the episode now (module doc, in that order), or None: ``collided`` (the
    robot touches an obstacle), ``reached`` (the goal), ``elapsed_s`` against ``time_limit_s``,
    ``failed`` (the harness's own failure, e.g. "lockstep_lost"), ``given_up`` (:func:`held_stop`)."""
    if collided:
        return "collision"
    if reached:
        return GOAL
    if elapsed_s >= time_limit_s:
        return "timeout"
    if failed:
        return failed
    return "safe_stop" if given_up else None


def settle(res, outcome: str, elapsed_s: float) -> None:
    """Write how the episode ended into ``res`` (report.EpisodeResult): its outcome; success only at the
    goal (with the time to it, s); a collision stays a collision."""
    res.outcome = outcome
    res.collision = bool(res.collision) or outcome == "collision"
    res.success = outcome == GOAL
    if res.success:
        res.time_to_goal_s = round(elapsed_s, 3)


# ---- violations ---------------------------------------------------------------------------------
def breach(world, hard: HardLimits) -> str | None:
    """What must not happen, happening now (sim/world.SimWorld against the ego model's hard limits):
    'collision', 'battery below floor while moving', 'motor above its maximum temperature while moving',
    or None."""
    if world.in_collision():
        return "collision"
    if moving(world) and 100.0 * world.battery()[1] < hard.power.battery_floor_pct:
        return "battery below floor while moving"
    if moving(world) and world.motor_temperature_c() > hard.thermal.max_operating_temp_c:
        return "motor above its maximum temperature while moving"
    return None


def agent_commands(t: list[float], v: list[float], w: list[float], stamp_ns: list[int], frame: list[str],
                   declared: Collection[int] | Mapping[int, Collection[tuple[float, float]]],
                   own_frame: str = "watchdog_stop", unstamped_ours: bool = False
                   ) -> tuple[list[float], list[float], list[float], int]:
    """The agent's commands among what arrived on cmd_vel: those the bridge declared (its
    agent/bridge/output records carry their stamps and values) and the watchdog's own stop ramp
    (``own_frame``). ``declared``: stamp ns -> the (v, w) the bridge declared with it, so that a foreign
    publisher stamping in the same instant (a teleop on the same clock) is not taken for the bridge; a
    plain collection of stamps matches on the stamp alone. An unstamped command (a geometry_msgs/Twist:
    stamp -1, no frame) cannot be told apart on the wire: with ``unstamped_ours`` (nobody else publishes
    on cmd_vel: no injected foreign publisher) it is the agent's, so every command is judged; without, it
    is the agent's when the bridge declared its values under any stamp (the watchdog's own Twist stop ramp
    is then left unjudged). Returns (t, v, w) of those and the number of other (foreign) commands."""
    values = ({x for vals in declared.values() for x in vals} if isinstance(declared, Mapping) else set())

    def ours(i: int) -> bool:
        if stamp_ns[i] < 0:
            return unstamped_ours or (v[i], w[i]) in values
        if frame[i] == own_frame:
            return True
        if isinstance(declared, Mapping):
            return (v[i], w[i]) in declared.get(stamp_ns[i], ())
        return stamp_ns[i] in declared

    keep = [i for i in range(len(t)) if ours(i)]
    return [t[i] for i in keep], [v[i] for i in keep], [w[i] for i in keep], len(t) - len(keep)


def count_limit_violations(t: list[float], v: list[float], w: list[float], ego: EgoModel) -> dict[str, int]:
    """Commands outside the ego model's HARD limits, as a base would feel them, by kind.

    A base holds the latest command it received: of several commands arriving at the same instant
    (receiver's sim clock) it acts on the last, so each instant is judged by its last command. Between
    consecutive instants, dt from the receiver's clock:
    accel: |dv| <= max_accel*dt while |v| grows, <= max_decel*dt otherwise;
    jerk: |a_i - a_(i-1)| <= max_jerk*dt_i with a_i = dv_i/dt_i.
    velocity: every command, |v| <= max_velocity.
    """
    k = ego.hard.kinematics
    eps, dv_eps = 1e-6, 1e-4
    out = {"velocity": 0, "accel": 0, "jerk": 0}
    felt: list[tuple[float, float, float]] = []   # (t, v, w): the last command of each instant
    for ti, vi, wi in zip(t, v, w):
        if abs(vi) > k.linear_x.max_velocity + eps or abs(wi) > k.angular_z.max_velocity + eps:
            out["velocity"] += 1
        if felt and ti <= felt[-1][0]:
            felt[-1] = (felt[-1][0], vi, wi)
        else:
            felt.append((ti, vi, wi))
    prev_acc: tuple[float, float] | None = None  # unknown before the second distinct instant
    for (t0, v0, w0), (t1, v1, w1) in zip(felt, felt[1:]):
        dt = t1 - t0
        acc = []
        for axis, cur, old in ((k.linear_x, v1, v0), (k.angular_z, w1, w0)):
            bound = axis.max_accel if abs(cur) > abs(old) and cur * old >= 0 else axis.max_decel
            if abs(cur - old) > bound * dt + dv_eps:
                out["accel"] += 1
            acc.append((cur - old) / dt)
        if prev_acc is not None:
            for axis, a_new, a_old in ((k.linear_x, acc[0], prev_acc[0]), (k.angular_z, acc[1], prev_acc[1])):
                if abs(a_new - a_old) > axis.max_jerk * dt + dv_eps / dt:
                    out["jerk"] += 1
        prev_acc = (acc[0], acc[1])
    return out


# ---- detection ----------------------------------------------------------------------------------
_C = Cause
EXPECTED_CAUSES: dict[str, frozenset[Cause]] = {
    "camera_blackout": frozenset({_C.AMBIGUITY, _C.STALE_INPUT}),
    "camera_frozen": frozenset({_C.AMBIGUITY, _C.STALE_INPUT}),
    "sensor_delay": frozenset({_C.STALE_INPUT}),
    "battery_sag": frozenset({_C.LIMIT_TREND, _C.BATTERY}),
    "overheating": frozenset({_C.LIMIT_TREND, _C.TEMPERATURE}),
    "obstacle_drop": frozenset(),
    "wheel_slip": frozenset({_C.WHEEL_SLIP}),
    "clock_back": frozenset({_C.CLOCK_JUMP, _C.CLOCK_INVALID}),
    "clock_forward": frozenset({_C.CLOCK_JUMP, _C.CLOCK_INVALID}),
    "clock_back_blind": frozenset({_C.CLOCK_JUMP, _C.CLOCK_INVALID}),
    "clock_negative": frozenset({_C.CLOCK_JUMP, _C.CLOCK_INVALID}),
    "foreign_cmd_20": frozenset({_C.FOREIGN_PUBLISHER}),
    "foreign_cmd_100": frozenset({_C.FOREIGN_PUBLISHER}),
    "odom_jump": frozenset({_C.ODOMETRY_JUMP}),
    "far_goal": frozenset({_C.GOAL_OUTSIDE_MAP}),
    "goal_in_obstacle": frozenset({_C.GOAL_UNREACHABLE}),
    "nan_flood": frozenset({_C.NON_FINITE, _C.BAD_LAYOUT}),
    "estop_storm": frozenset({_C.ESTOP}),
}
"""What "detected and named correctly" means, per fault kind (sim/faults.py): the typed causes
(core/events.py) of which the *naming* event must carry one. The naming event is the first event after
the onset that carries any typed cause at all: what the agent said first about what went wrong. So a
foreign cmd_vel publisher first called WHEEL_SLIP (the base not doing what the bridge commanded) is
named wrongly, even if FOREIGN_PUBLISHER follows. The camera faults have no cause of their own: the
world model's AMBIGUITY (or a STALE_INPUT) is their name. Empty (``obstacle_drop``): no cause names a
dropped box, which is the planner's business and not a fault of the robot; it is judged by the response
alone (:func:`judge`). Never judged from an event's reasons text."""


@dataclass(frozen=True)
class Verdict:
    """One episode's fault judged: ``detected`` (named correctly; for a kind judged by its response
    alone, responded), ``named_wrongly`` (the naming event's causes miss the expected ones), ``causes``
    (the naming event's causes, as seen)."""

    detected: bool
    named_wrongly: bool
    causes: tuple[Cause | str, ...]


def _cause(c: Cause | str) -> Cause | str:
    """A typed cause from its value; a value this code does not know stays as it came (it still names
    something, only not one of the expected causes)."""
    return c if isinstance(c, Cause) else Cause(c) if c in Cause._value2member_map_ else str(c)


def expected(kinds: Sequence[str]) -> frozenset[Cause]:
    """The causes that name faults of ``kinds`` (the union of their EXPECTED_CAUSES)."""
    return frozenset().union(*(EXPECTED_CAUSES[k] for k in kinds)) if kinds else frozenset()


def response_modes(kinds: Sequence[str]) -> frozenset[Mode]:
    """The modes whose decision is a response to faults of ``kinds``: SAFE_STOP; PLANNING and OPTIMISING
    too when no cause names them (every kind judged by the response alone: a dropped box is answered by
    deliberating)."""
    if kinds and not expected(kinds):
        return frozenset({Mode.PLANNING, Mode.OPTIMISING, Mode.SAFE_STOP})
    return frozenset({Mode.SAFE_STOP})


def is_response(before: Mode, mode: Mode, level_before: int, level: int, responses: Collection[Mode]) -> bool:
    """Whether the watchdog's decision at a tick (``mode`` and graded ``level``, after ``before`` and
    ``level_before`` at the previous tick) is a response: a mode of ``responses`` entered (held counts
    too for any but SAFE_STOP: deliberating already at the onset answers a dropped box), or the graded
    slow-down raised (speed limited or slowed). What the watchdog decided, enforced or not."""
    return (mode in responses and (mode != before or mode != Mode.SAFE_STOP)) or level > level_before


def judge(kinds: Sequence[str], responded: bool, naming: Iterable[Cause | str] | None,
          flooded: Sequence[str] = (), rejected: Mapping[str, Iterable[Cause | str]] | None = None) -> Verdict:
    """The verdict on an episode with the faults ``kinds`` (EXPECTED_CAUSES: the union over them).

    ``responded``: after the onset the watchdog decided a response (:func:`is_response`); ``naming``: the
    typed causes of the first event after the onset that carried any (None: none did). A kind with
    expected causes is detected when the naming event carries one of them, and named wrongly when it
    carries only others; a kind without (obstacle_drop) is detected when the agent responded.
    ``flooded``: the topics a babbling node flooded (nan_flood); ``rejected``: per topic, the causes for
    which the agent's input guards rejected messages on it. A flood is named only if every flooded
    topic's garbage was rejected for an expected cause there."""
    want = expected(kinds)
    causes = tuple(_cause(c) for c in naming) if naming is not None else ()
    if not want:
        return Verdict(bool(responded), False, causes)
    named = any(c in want for c in causes)
    rejected = rejected or {}
    named = named and all(any(_cause(c) in want for c in rejected.get(t, ())) for t in flooded)
    return Verdict(named, bool(causes) and not named, causes)


class FaultJudge:
    """Follows one episode with faults of ``kinds`` from ``onset_s`` on (s since the episode's start),
    tick by tick, as the judge sees it (module doc): feed every tick's decision (:meth:`on_decision`) and
    every event's typed causes in the order they came (:meth:`on_causes`), then ask :meth:`verdict`."""

    def __init__(self, kinds: Sequence[str], onset_s: float) -> None:
        self.kinds = tuple(kinds)
        self.onset_s = float(onset_s)
        self.responses = response_modes(self.kinds)
        self.response_at: float | None = None
        """When the watchdog first responded at or after the onset (s), or None."""
        self.naming: tuple[Cause | str, ...] | None = None
        """The typed causes of the first event at or after the onset that carried any, or None."""
        self.naming_at: float | None = None

    def _after_onset(self, t_s: float) -> bool:
        return t_s >= self.onset_s - 1e-9

    def on_decision(self, t_s: float, before: Mode, mode: Mode, level_before: int, level: int) -> None:
        """The watchdog's decision at ``t_s``: its mode and graded level, and those of the tick before."""
        if self.response_at is None and self._after_onset(t_s) and is_response(before, mode, level_before, level,
                                                                               self.responses):
            self.response_at = t_s

    def on_causes(self, t_s: float, causes: Sequence[Cause | str]) -> None:
        """An event seen at ``t_s`` with its typed causes (empty: it names nothing)."""
        if self.naming is None and causes and self._after_onset(t_s):
            self.naming, self.naming_at = tuple(causes), t_s

    def verdict(self, flooded: Sequence[str] = (),
                rejected: Mapping[str, Iterable[Cause | str]] | None = None) -> Verdict:
        """:func:`judge` on what was seen (``flooded``, ``rejected``: as there)."""
        return judge(self.kinds, self.response_at is not None, self.naming, flooded, rejected)

    def detected_at(self, verdict: Verdict) -> float | None:
        """When the fault counts as detected (s since the episode's start): the earlier of the response and
        the naming, if the verdict is a detection."""
        at = [t for t in (self.response_at, self.naming_at) if t is not None]
        return min(at) if verdict.detected and at else None


__all__ = ["EXPECTED_CAUSES", "FaultJudge", "GOAL", "MOVING_MPS", "STOPPED_GIVE_UP_S", "Verdict", "agent_commands",
           "breach", "count_limit_violations", "episode_end", "expected", "held_stop", "is_response", "judge",
           "moving", "response_modes", "settle"]
