"""planner node: world state -> plan (Mode-2), run while the watchdog asks for deliberation.

Subscribes (through the input guard, nodes/topics.py INPUTS["planner"]):
            agent/world_state (JointState), agent/mode (std_msgs/String), agent/habitual/cmd
            (TwistStamped: the habitual proposal seeds the plan, which refines it), and
            agent/habitual_stalled (std_msgs/Bool: while true the habitual proposal is ignored
            and the warm start dropped once, since Mode 2 was asked for because Mode 1 stalled),
            agent/events (std_msgs/String JSON, decoded by nodes/topics.py check_event: the last mode or stall
            event's text says why it plans; a malformed event is rejected and counted like any input),
            scan (sensor_msgs/LaserScan: placed from the base origin through the scanner's mount (urdf,
            base_frame: nodes/mounts.py; a frame with no known mount is rejected, bad_frame), folded into
            the navfield at the world state's pose, and its returns are the obstacles the plan keeps clear
            of; without a scan within 0.25 s of the world state, the world state's scan sectors are; the
            world state's unknown sectors count as occupied either way, core/planner/base.py).
Publishes:  agent/plan (JointState, layout in nodes/codec.py), agent/plan/path (nav_msgs/Path),
            agent/plan/route (nav_msgs/Path: start, subgoals, goal; with hierarchy: true only),
            agent/plan/explanation (std_msgs/String: what the plan will do, predicted outcome, risk,
            ambiguity, mode and why; core/planner/explain.py; also in the log, at most once a second),
            /diagnostics.
Parameters: planner ("cem" | "mppi" | "gflownet"), models_dir (gflownet's networks), mppi_temperature,
horizon, dt_s [s], samples, iterations, optimise_factor (world-model call budget multiplier in
OPTIMISING, where the GFlowNet refines its plan until the deadline), max_world_model_calls, deadline_ms [ms],
optimise_deadline_ms [ms] (the deadline in OPTIMISING), always_plan (plan in every
mode, so the watchdog can compare; gating, budget and input freshness: core/planner/budget.py), navfield,
navfield_resolution_m [m], navfield_size_m [m]
(the goal cost goes round the obstacles seen so far; read-only), ego_model and robot (read-only; the
networks' robot fingerprint must be this robot description's: nodes/common.py declare_robot), urdf and
base_frame (read-only: the scanner's mount, as for the perception node).
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import LaserScan
from std_msgs.msg import String

from hjepa_agent.core.events import Cause, Event
from hjepa_agent.core.planner import NAV_RESOLUTION_M, beam_points, build_planner
from hjepa_agent.core.planner.budget import (BudgetConfig, deliberating, fresh_beams, plan_budget, plan_seed,
                                             scan_at_pose)
from hjepa_agent.core.planner.explain import explain_plan
from hjepa_agent.core.perception import beams_in_base
from hjepa_agent.core.planner.goal import GOAL_CODES, GoalJudge
from hjepa_agent.core.watchdog.odometry import OdometryCheckConfig, OdometryConsistency
from hjepa_agent.core.timekeeping import ClockJump
from hjepa_agent.core.types import Mode, WorldState
from hjepa_agent.nodes.codec import goal_status_to_msg, plan_to_msg, plan_to_path, route_to_path
from hjepa_agent.nodes.common import Diagnostics, declare, declare_ego_model, declare_robot, run_node
from hjepa_agent.nodes.guard import GuardedNode, Receipt
from hjepa_agent.nodes.mounts import SensorMounts


class PlannerNode(GuardedNode):
    """Thin wrapper around a core planner behind the Planner interface."""

    def __init__(self, **kwargs) -> None:
        super().__init__("planner", **kwargs)
        ego = declare_ego_model(self)
        robot = declare_robot(self, ego)   # the gflownet / subgoal / world-model networks' robot fingerprint
        kind = declare(self, "planner", "cem", "planner implementation: cem | mppi | gflownet")
        models_dir = declare(self, "models_dir", "", "models dir for planner: gflownet (empty: the package's)")
        temperature = declare(self, "mppi_temperature", 0.03, "MPPI softmin temperature (planner: mppi)",
                              unit="cost", lo=1e-3, hi=100.0)
        horizon = declare(self, "horizon", 15, "plan length in steps", lo=1, hi=100)
        dt_s = declare(self, "dt_s", 0.2, "duration of one plan step", unit="s", lo=0.02, hi=1.0)
        samples = declare(self, "samples", 64, "candidate plans per iteration", lo=4, hi=4096)
        self.budget = BudgetConfig(
            iterations=declare(self, "iterations", 3, "sampling iterations per plan in PLANNING", lo=1, hi=50),
            optimise_factor=declare(self, "optimise_factor", 3, "iteration multiplier in OPTIMISING", lo=1, hi=20),
            max_world_model_calls=declare(self, "max_world_model_calls", 20000, "world-model calls per plan", lo=1,
                                          hi=10**7),
            deadline_ms=declare(self, "deadline_ms", 60.0, "wall-clock deadline per plan", unit="ms", lo=1.0,
                                hi=5000.0),
            optimise_deadline_ms=declare(self, "optimise_deadline_ms", 20.0, "deadline per plan in OPTIMISING, where "
                                         "the GFlowNet refines until it (anytime)", unit="ms", lo=1.0, hi=5000.0))
        self.always_plan = declare(self, "always_plan", False, "plan in every mode, not only when asked")
        navfield = declare(self, "navfield", True, "goal cost = distance round the obstacles seen so far "
                           "(core/planner/navfield.py); false = straight-line distance")
        nav_res = declare(self, "navfield_resolution_m", NAV_RESOLUTION_M, "navfield cell size", unit="m", lo=0.05,
                          hi=1.0)
        hierarchy = declare(self, "hierarchy", False, "two-level planner: a slow subgoal GFlowNet routes over the "
                            "navfield and this planner drives to its first subgoal (needs navfield and the "
                            "subgoal networks in models_dir)")
        amb_weight = declare(self, "ambiguity_weight", 0.0, "cost per unit of the learned world model's "
                             "predicted-state ambiguity along a plan (core/planner/latent.py; 0 = off). Only with "
                             "the learned world-model path: the world state's latent must be world_encoder's",
                             unit="m", lo=0.0, hi=100.0)
        nav_size = declare(self, "navfield_size_m", 16.0, "navfield side, centred on the first pose", unit="m",
                           lo=4.0, hi=100.0)
        self.core = build_planner(kind, footprint_radius_m=ego.hard.footprint.radius_m,
                                  max_linear_mps=ego.operating.max_linear_mps,
                                  max_angular_rps=ego.operating.max_angular_rps, horizon=horizon, dt_s=dt_s,
                                  samples=samples, iterations=self.budget.iterations * self.budget.optimise_factor,
                                  mppi_temperature=temperature, navfield=navfield,
                                  navfield_resolution_m=nav_res, navfield_size_m=nav_size,
                                  models_dir=models_dir or None, hierarchy=hierarchy, expected=robot,
                                  ambiguity=self._ambiguity(amb_weight, models_dir, robot))
        self.mounts = SensorMounts(self)
        self.mode = Mode.HABITUAL
        self.plans = 0
        self.last_ms = 0.0
        self.last_calls = 0
        self.last_budget = 0
        self.goal_judge = GoalJudge()
        self.goal_pub = self.publisher("agent/goal_status")
        self.odometry = OdometryConsistency(OdometryCheckConfig.from_ego(ego))
        self.pub = self.publisher("agent/plan")
        self.path_pub = self.publisher("agent/plan/path")
        self.route_pub = self.publisher("agent/plan/route")
        self.explain_pub = self.publisher("agent/plan/explanation")
        self.subscribe("world_state", self.on_world_state)
        self.subscribe("mode", self.on_mode)
        self.subscribe("stalled", self.on_stalled)
        self.subscribe("events", self.on_event)
        self.mode_why = ""
        self.last_explanation = ""
        self.habitual_stalled = False
        self.unseeded = 0
        self.scan: tuple[float, np.ndarray, np.ndarray, float, float] | None = None  # latest, not yet folded
        self.scans_folded = 0
        self.beams: tuple[float, np.ndarray] | None = None  # (world-state stamp, odom-frame returns)
        self.subscribe("scan", self.on_scan)
        self.subscribe("habitual", self.on_habitual)
        self.seed: tuple[float, float, float] | None = None  # (stamp_s, v, w) of the latest habitual proposal
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    @staticmethod
    def _ambiguity(weight: float, models_dir: str, robot):
        """The predicted-state ambiguity penalty over the world model in models_dir, trained for ``robot``
        (a RobotFingerprint; None at weight 0)."""
        if weight <= 0.0:
            return None
        from hjepa_agent.core.models import select_providers
        from hjepa_agent.core.planner.latent import load_latent_ambiguity
        from hjepa_agent.config.paths import data_path
        return load_latent_ambiguity(models_dir or data_path("models"), select_providers(True)[0], robot, weight=weight)

    def on_mode(self, mode: Mode, rx: Receipt) -> None:
        """Track the watchdog's mode (the guard refused anything that is not a mode's name)."""
        self.mode = mode

    def on_event(self, ev: Event, rx: Receipt) -> None:
        """Keep why the watchdog chose the current mode (its last mode or stall event's display text), for
        the explanation only: nothing is decided on it (the guard decoded the event, or refused it)."""
        if ev.kind in ("mode", "stall"):
            self.mode_why = "; ".join(ev.text())

    def on_stalled(self, stalled: bool, rx: Receipt) -> None:
        """Track whether the watchdog handed over because the habitual policy stalled; on the
        rising edge drop the warm start (it was drawn towards the stalled proposal)."""
        if stalled and not self.habitual_stalled:
            self.core.reset()
        self.habitual_stalled = stalled

    def on_habitual(self, msg: TwistStamped, rx: Receipt) -> None:
        """Keep the habitual proposal (finite: the guard checked) as the seed of the next plan."""
        self.seed = (rx.stamp_s, float(msg.twist.linear.x), float(msg.twist.angular.z))

    def on_scan(self, msg: LaserScan, rx: Receipt) -> None:
        """Keep the latest scan, as beams from the base origin (core.perception.beams_in_base through its
        frame's mount; a frame with none is rejected), until a world state gives the pose to fold it in at."""
        mount = self.mounts.mount(msg.header.frame_id)
        self.scan = (rx.stamp_s, *beams_in_base(np.asarray(msg.ranges, dtype=np.float32), msg.angle_min,
                                                msg.angle_increment, msg.range_min, msg.range_max, mount))

    def on_clock_jump(self, jump: ClockJump) -> None:
        """Stamps before the jump mean nothing after it: drop the scan and seed waiting for a world state."""
        self.scan, self.seed, self.beams = None, None, None
        self.odometry.reset()

    def _reanchor(self, ws: WorldState, rx: Receipt) -> None:
        """The pose jumped in a way no motion explains (core/watchdog/odometry.py): the map, kept in
        the odom frame, no longer lines up with the world; forget it and start again from here."""
        jump = self.odometry.on_odom(ws.stamp_s, float(ws.pose[0]), float(ws.pose[1]), float(ws.pose[2]),
                                     float(ws.twist[0]), float(ws.twist[1]))
        if jump is None:
            return
        if self.core.navfield is not None:
            self.core.navfield.reset()
        self.core.reset()
        self.emit(Event(rx.now_s, "odometry", (f"planner map re-anchored: {jump.describe()}",), (Cause.ODOMETRY_JUMP,)))

    def _judge_goal(self, ws: WorldState, rx: Receipt) -> None:
        """The goal against the map (core/planner/goal.py), published on agent/goal_status."""
        nav = self.core.navfield
        if nav is None or not ws.has_goal or not self.goal_judge.due(rx.now_s, ws.goal):
            return
        status = self.goal_judge.status_of(nav, ws.pose, ws.goal)
        for ev in self.goal_judge.step(rx.now_s, ws.goal, status):
            self.emit(ev)
            self.get_logger().info(f"goal: {'; '.join(ev.text())}")
        target = status.edge_xy or tuple(ws.goal[:2])
        self.goal_pub.publish(goal_status_to_msg(ws.stamp_s, GOAL_CODES[self.goal_judge.verdict],
                                                 tuple(ws.goal[:2]), target, status.straight_m))

    def on_world_state(self, ws: WorldState, rx: Receipt) -> None:
        """Fold the latest scan into the planner's map at this pose; judge the goal; plan when
        deliberation is asked for (or always_plan)."""
        self._reanchor(ws, rx)
        if self.scan is not None and scan_at_pose(self.scan[0], ws.stamp_s):
            self.core.observe(ws.pose, *self.scan[1:])
            self.scans_folded += 1
            self.beams = (ws.stamp_s, beam_points(ws.pose, *self.scan[1:]))
            self.scan = None
        self._judge_goal(ws, rx)
        if not deliberating(self.mode, self.always_plan):
            self.core.reset()
            return
        if not ws.has_goal:
            return
        t0 = time.monotonic()
        budget = plan_budget(self.budget, self.mode, self.core.calls_per_iteration, t0)
        if self.habitual_stalled:   # the seed is dropped (plan_seed): counted for /diagnostics
            self.unseeded += 1
        # obstacles: the latest scan's raw beams while fresh, else the world state's sectors (fresh_beams)
        plan = self.core.plan(ws, ws.goal, budget, seed=plan_seed(self.seed, ws.stamp_s, self.habitual_stalled),
                              obstacles=fresh_beams(self.beams, ws.stamp_s))
        self.last_ms = (time.monotonic() - t0) * 1e3
        self.last_calls, self.last_budget = plan.world_model_calls, budget.max_world_model_calls
        self.plans += 1
        why = self.mode_why + ("; habitual proposal ignored" if self.habitual_stalled else "")
        plan = dataclasses.replace(plan, explanation=explain_plan(plan, ws.goal, self.mode.name, why))
        self.last_explanation = plan.explanation
        self.pub.publish(plan_to_msg(plan))
        self.path_pub.publish(plan_to_path(plan))
        route = route_to_path(plan, ws.goal)
        if route is not None:
            self.route_pub.publish(route)
        self.explain_pub.publish(String(data=plan.explanation))
        self.get_logger().info(plan.explanation, throttle_duration_sec=1.0)

    def report(self) -> None:
        """Publish /diagnostics."""
        self.diag.publish("OK", f"{self.plans} plans, last {self.last_ms:.1f} ms",
                          {"plans": self.plans, "last_ms": f"{self.last_ms:.2f}",
                           "last_world_model_calls": str(self.last_calls), "mode": self.mode.name,
                           "unseeded_plans": self.unseeded,
                           "navfield_recomputes": getattr(self.core.navfield, "recomputes", 0),
                           "scans_folded": self.scans_folded,
                           "habitual_stalled": self.habitual_stalled,
                           "goal": self.goal_judge.verdict.value})


def main() -> None:
    """Entry point: ros2 run hjepa_agent planner."""
    run_node(PlannerNode)
