"""Injected faults for the simulated robot (the fault suite): what ``hjepa-agent sim --faults`` does to
the sensors, the physics, the clock and the ROS graph from a given time into each episode. What the
agent must say about each, and whether it did, is the judge's (harness/judge.py EXPECTED_CAUSES).

Spec: comma-separated ``kind@onset_s[:magnitude]``, e.g. ``camera_blackout@4,battery_sag@3:5000``.
``suite`` is every kind at ONSET_S (the seven original kinds first, then the rest, in :data:`DEFAULTS`
order); ``suite_new`` only the kinds added after the first seven (:data:`NEW_KINDS`). With either,
``hjepa-agent sim`` gives one kind per episode, in turn. Kinds (magnitude and its default):

* ``camera_blackout``: every image is black (with the sensor's noise) from the onset.
* ``camera_frozen``: the image at the onset is sent again and again, bit for bit, with new stamps.
* ``sensor_delay``: camera and scan arrive ``magnitude`` s late (0.8), with their old stamps.
* ``battery_sag``: the battery drains ``magnitude`` times as fast (1000: the floor in about 15 s).
* ``overheating``: the motors heat ``magnitude`` times as fast (300).
* ``obstacle_drop``: a 0.3 m box appears ``magnitude`` m ahead of the robot (0.7).
* ``wheel_slip``: the wheels' friction drops to ``magnitude`` (0.05): a slippery patch under the robot.
* ``clock_back``: the simulator's /clock, and the stamps it puts on every sensor message, step back
  ``magnitude`` s (5) at the onset and run on from there (a simulator or a bag restarted, NTP stepping).
* ``clock_forward``: the same, stepping forward ``magnitude`` s (5).
* ``clock_back_blind``: the clock steps back ``magnitude`` s (5) while camera and scan stop at the same
  moment and stay dead (a driver restart that takes the clock with it).
* ``clock_negative``: one /clock message with the time ``-magnitude`` s (-5); then the clock goes on
  normally (a corrupted clock message).
* ``foreign_cmd_20``, ``foreign_cmd_100``: a node that is not the agent's ("teleop", in the same
  process) publishes geometry_msgs/TwistStamped on cmd_vel at 20 or 100 Hz, ``magnitude`` m/s forward
  (0.8), from the onset to the episode's end (a forgotten joystick teleop).
* ``odom_jump``: the odometry's pose jumps ``magnitude`` m (2) to the robot's left at the onset and
  stays offset; the robot itself does not move (a bad relocalisation written into the odom frame).
* ``far_goal``: the goal on goal_pose moves ``magnitude`` m (30) from the robot, towards the original
  goal: beyond the planner's 16 m map and outside the arena.
* ``goal_in_obstacle``: the goal moves to the centre of the layout's obstacle nearest to the robot at
  the onset (the layout after its seeded jitter).
* ``nan_flood``: a babbling node, named like the topic's legitimate publisher (nodes/topics.py TOPICS),
  floods one agent topic with NaN/inf at ``magnitude`` (10) times its nominal rate: one topic of
  :data:`NAN_FLOOD_TOPICS` per episode, in turn (the ``turn`` of :class:`FaultInjector`: the first
  nan_flood episode of a run floods agent/percept, the second agent/world_state, ...; so
  ``--faults nan_flood@4 --episodes 9`` floods each of them once). It has the
  owner's name so that the validators, not the identity check, meet the garbage; the watchdog's graph
  check also sees a second node of that name.
* ``estop_storm``: agent/estop toggles true/false at ``magnitude`` Hz (50) from the onset (a bouncing
  e-stop contact), from a node named "estop_switch".

Each episode starts fault-free (:meth:`FaultInjector.reset`); times are seconds since its start.
ROS-free: the simulator node (nodes/sim.py) turns what this module says into messages and nodes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ONSET_S = 4.0
"""Onset of every fault in ``suite``: the robot is on its way by then."""
DEFAULTS = {"camera_blackout": None, "camera_frozen": None, "sensor_delay": 0.8, "battery_sag": 1000.0,
            "overheating": 300.0, "obstacle_drop": 0.7, "wheel_slip": 0.05,
            "clock_back": 5.0, "clock_forward": 5.0, "clock_back_blind": 5.0, "clock_negative": 5.0,
            "foreign_cmd_20": 0.8, "foreign_cmd_100": 0.8, "odom_jump": 2.0, "far_goal": 30.0,
            "goal_in_obstacle": None, "nan_flood": 10.0, "estop_storm": 50.0}
"""Fault kinds and their default magnitude (module doc)."""
NEW_KINDS = tuple(list(DEFAULTS)[7:])
"""The kinds added after the original seven: ``suite_new``."""

NAN_FLOOD_TOPICS: tuple[tuple[str, float], ...] = (
    ("agent/percept", 10.0), ("agent/world_state", 10.0), ("agent/habitual/cmd", 10.0), ("agent/plan", 10.0),
    ("agent/mode", 20.0), ("agent/speed_scale", 20.0), ("agent/bridge/output", 20.0), ("agent/goal_status", 2.0),
    ("cmd_vel", 20.0), ("agent/percept/early", 10.0), ("agent/world_state/early", 10.0))
"""The topics ``nan_flood`` floods, in turn, each with its nominal rate (Hz): the camera's 10 Hz for what
follows a frame, the watchdog's and the bridge's 20 Hz, the planner's goal verdict at 2 Hz. Topics whose
type cannot carry a NaN (std_msgs/Bool: agent/habitual_stalled, base_stop, agent/estop) or whose
content is free text (agent/events) are not in it."""
FOREIGN_CMD_HZ = {"foreign_cmd_20": 20.0, "foreign_cmd_100": 100.0}
"""The foreign cmd_vel publisher's rate per kind."""
CLOCK_KINDS = ("clock_back", "clock_forward", "clock_back_blind", "clock_negative")


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` (DEFAULTS), from ``onset_s`` into the episode, with ``magnitude``."""

    kind: str
    onset_s: float
    magnitude: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEFAULTS:
            raise ValueError(f"unknown fault {self.kind!r} (known: {', '.join(DEFAULTS)})")
        if not (math.isfinite(self.onset_s) and self.onset_s >= 0.0):
            raise ValueError(f"fault {self.kind}: onset must be a finite time >= 0 s, got {self.onset_s}")
        if self.magnitude is not None and not (math.isfinite(self.magnitude) and self.magnitude > 0.0):
            raise ValueError(f"fault {self.kind}: magnitude must be finite and > 0, got {self.magnitude}")

    @property
    def value(self) -> float | None:
        return self.magnitude if self.magnitude is not None else DEFAULTS[self.kind]


@dataclass(frozen=True)
class Intruder:
    """A node that is not one of the agent's, publishing on ``topic`` from ``onset_s`` to the episode's
    end: ``node`` its name (None: the topic's legitimate publisher's, nodes/topics.py TOPICS),
    ``rate_hz`` how often, ``payload`` what: "forward" (TwistStamped, ``value`` m/s forward), "garbage"
    (the topic's type and layout, filled with NaN and inf), "toggle" (std_msgs/Bool true, false, ...)."""

    kind: str
    node: str | None
    topic: str
    rate_hz: float
    payload: str
    onset_s: float
    value: float = 0.0

    def due(self, t_s: float) -> int:
        """How many messages it has published by ``t_s`` (the first at the onset)."""
        if t_s < self.onset_s:
            return 0
        return int(math.floor((t_s - self.onset_s) * self.rate_hz + 1e-6)) + 1


def parse_faults(spec: str) -> list[Fault]:
    """Faults from a spec (module doc); '' -> none."""
    out: list[Fault] = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        if part in ("suite", "suite_new"):
            out += [Fault(k, ONSET_S) for k in (DEFAULTS if part == "suite" else NEW_KINDS)]
            continue
        kind, sep, rest = part.partition("@")
        if not sep:
            raise ValueError(f"fault {part!r}: expected kind@onset_s[:magnitude], 'suite' or 'suite_new'")
        onset, _, mag = rest.partition(":")
        try:
            out.append(Fault(kind, float(onset), float(mag) if mag else None))
        except ValueError as exc:
            raise ValueError(f"fault {part!r}: {exc}") from exc
    return out


# ---- injection -----------------------------------------------------------------------------------
def nearest_obstacle_centre(obstacles: Sequence, x_m: float, y_m: float) -> tuple[float, float] | None:
    """Centre (m) of the obstacle (sim/scenario.Obstacle) whose surface is nearest to (x_m, y_m); None
    without obstacles."""
    if not obstacles:
        return None
    ob = min(obstacles, key=lambda o: o.distance_to(x_m, y_m))
    return float(ob.x_m), float(ob.y_m)


class FaultInjector:
    """Applies faults to a SimWorld and to the data the simulator sends. ``turn``: how many earlier
    episodes of this run had the same faults (nan_flood floods NAN_FLOOD_TOPICS[turn % 9])."""

    def __init__(self, faults: list[Fault], turn: int = 0) -> None:
        self.faults = list(faults)
        self.turn = int(turn)
        self.reset(None)

    def reset(self, world) -> None:
        """A new episode: nothing has happened yet; the world's fault knobs back to normal."""
        self._done: set[str] = set()
        self._frozen: np.ndarray | None = None
        self._odom_offset: tuple[float, float] | None = None
        self._goal: tuple[float, float] | None = None
        if world is not None:
            world.drain_multiplier = world.heating_multiplier = 1.0

    def active(self, kind: str, t_s: float) -> Fault | None:
        """The fault of ``kind`` if it has started at ``t_s``."""
        for f in self.faults:
            if f.kind == kind and t_s >= f.onset_s:
                return f
        return None

    @property
    def kinds(self) -> list[str]:
        """The kinds injected."""
        return [f.kind for f in self.faults]

    def on_tick(self, world, t_s: float) -> None:
        """Physics faults, once at their onset."""
        for f in self.faults:
            if t_s < f.onset_s or f.kind in self._done:
                continue
            if f.kind == "battery_sag":
                world.drain_multiplier = f.value
            elif f.kind == "overheating":
                world.heating_multiplier = f.value
            elif f.kind == "obstacle_drop":
                x, y, yaw = world.pose()
                world.drop_box(x + f.value * math.cos(yaw), y + f.value * math.sin(yaw), 0.15)
            elif f.kind == "wheel_slip":
                world.set_wheel_friction(f.value)
            else:
                continue   # not a physics fault: the others act where their data goes out
            self._done.add(f.kind)

    # -- sensors --------------------------------------------------------------------------------
    def image(self, rgb: np.ndarray, t_s: float) -> np.ndarray:
        """The image the camera sends at ``t_s`` (the rendered one if no camera fault is on)."""
        if self.active("camera_blackout", t_s):
            return np.zeros_like(rgb)
        if self.active("camera_frozen", t_s):
            if self._frozen is None:
                self._frozen = rgb.copy()
            return self._frozen
        return rgb

    def delay_s(self, t_s: float) -> float:
        """How late camera and scan arrive at ``t_s`` (0 without sensor_delay)."""
        f = self.active("sensor_delay", t_s)
        return 0.0 if f is None else float(f.value)

    def sensors_dead(self, t_s: float) -> bool:
        """True when camera and scan send nothing at ``t_s`` (clock_back_blind)."""
        return self.active("clock_back_blind", t_s) is not None

    def odom_offset(self, t_s: float, pose: tuple[float, float, float]) -> tuple[float, float]:
        """What is added to the odometry's (x, y) (m, odom frame) at ``t_s``: odom_jump's ``magnitude`` m
        to the left of the robot's heading at the onset (``pose``: the true pose now: x, y, yaw), from
        then on; (0, 0) before or without it."""
        f = self.active("odom_jump", t_s)
        if f is None:
            return 0.0, 0.0
        if self._odom_offset is None:
            yaw = pose[2]
            self._odom_offset = (-f.value * math.sin(yaw), f.value * math.cos(yaw))
        return self._odom_offset

    # -- clock ----------------------------------------------------------------------------------
    def clock_shift_s(self, t_s: float) -> float:
        """How far /clock and the sensor stamps are from the simulator's own time at ``t_s`` (s; < 0
        behind): clock_back and clock_back_blind -magnitude, clock_forward +magnitude, from the onset."""
        shift = 0.0
        for kind, sign in (("clock_back", -1.0), ("clock_back_blind", -1.0), ("clock_forward", 1.0)):
            f = self.active(kind, t_s)
            if f is not None:
                shift += sign * float(f.value)
        return shift

    def clock_headroom_s(self) -> float:
        """The simulator's time at the episode's start must be at least this (s) so that a clock stepped
        back still shows a valid (non-negative) time: the step less the onset, plus 1 s; 0 without."""
        backs = [float(f.value) - f.onset_s + 1.0 for f in self.faults if f.kind in ("clock_back", "clock_back_blind")]
        return max([0.0] + backs)

    def invalid_clock_s(self, t_s: float) -> float | None:
        """The negative time /clock carries instead of the true one, once, at the first tick at or after
        clock_negative's onset; None otherwise."""
        f = self.active("clock_negative", t_s)
        if f is None or "clock_negative" in self._done:
            return None
        self._done.add("clock_negative")
        return -float(f.value)

    # -- goal -----------------------------------------------------------------------------------
    def goal(self, t_s: float, goal_xy: tuple[float, float], pose: tuple[float, float, float],
             obstacles: Sequence) -> tuple[float, float]:
        """The goal the user publishes at ``t_s`` (m, odom frame): ``goal_xy`` (the layout's) unless
        far_goal (``magnitude`` m from the robot at the onset, towards ``goal_xy``) or goal_in_obstacle
        (the centre of the obstacle nearest to the robot at the onset) has started."""
        if self._goal is None:
            x, y = pose[0], pose[1]
            far = self.active("far_goal", t_s)
            inside = self.active("goal_in_obstacle", t_s)
            if far is not None:
                dx, dy = goal_xy[0] - x, goal_xy[1] - y
                norm = math.hypot(dx, dy)
                ux, uy = (dx / norm, dy / norm) if norm > 1e-6 else (math.cos(pose[2]), math.sin(pose[2]))
                self._goal = (x + far.value * ux, y + far.value * uy)
            elif inside is not None:
                self._goal = nearest_obstacle_centre(obstacles, x, y) or tuple(goal_xy)
        return self._goal if self._goal is not None else (float(goal_xy[0]), float(goal_xy[1]))

    # -- other publishers ------------------------------------------------------------------------
    def intruders(self) -> list[Intruder]:
        """The nodes that are not the agent's which these faults start (each from its onset)."""
        out: list[Intruder] = []
        for f in self.faults:
            if f.kind in FOREIGN_CMD_HZ:
                out.append(Intruder(f.kind, "teleop", "cmd_vel", FOREIGN_CMD_HZ[f.kind], "forward", f.onset_s,
                                    float(f.value)))
            elif f.kind == "nan_flood":
                topic, hz = NAN_FLOOD_TOPICS[self.turn % len(NAN_FLOOD_TOPICS)]
                out.append(Intruder(f.kind, None, topic, hz * float(f.value), "garbage", f.onset_s))
            elif f.kind == "estop_storm":
                out.append(Intruder(f.kind, "estop_switch", "agent/estop", float(f.value), "toggle", f.onset_s))
        return out


__all__ = ["CLOCK_KINDS", "DEFAULTS", "FOREIGN_CMD_HZ", "Fault", "FaultInjector", "Intruder", "NAN_FLOOD_TOPICS",
           "NEW_KINDS", "ONSET_S", "nearest_obstacle_centre", "parse_faults"]
