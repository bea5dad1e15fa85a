"""planner node: world state -> plan (Mode-2), run while the watchdog asks for deliberation.

Subscribes: agent/world_state (JointState), agent/mode (std_msgs/String), agent/habitual/cmd
            (TwistStamped: the habitual proposal seeds the plan, which refines it).
Publishes:  agent/plan (JointState, layout in nodes/codec.py), agent/plan/path (nav_msgs/Path), /diagnostics.
Parameters: planner ("cem"), horizon, dt_s [s], samples, iterations, optimise_factor (iterations
multiplier in OPTIMISING), max_world_model_calls, deadline_ms [ms], always_plan (plan in every
mode, so the watchdog can compare), ego_model (read-only).
"""
from __future__ import annotations

import math
import time

import numpy as np
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Path
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, PlanCost
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.codec import msg_to_proposal, msg_to_world_state, plan_to_msg, plan_to_path
from hjepa_agent.nodes.common import decode_or_none, RELIABLE_QOS, Diagnostics, declare, declare_ego_model, run_node


class PlannerNode(Node):
    """Thin wrapper around a core planner behind the Planner interface."""

    def __init__(self, **kwargs) -> None:
        super().__init__("planner", **kwargs)
        ego = declare_ego_model(self)
        kind = declare(self, "planner", "cem", "planner implementation (cem)", read_only=True)
        if kind != "cem":
            raise ValueError(f"planner: unknown planner {kind!r} (available: cem)")
        horizon = declare(self, "horizon", 15, "plan length in steps", lo=1, hi=100)
        dt_s = declare(self, "dt_s", 0.2, "duration of one plan step", unit="s", lo=0.02, hi=1.0)
        samples = declare(self, "samples", 64, "candidate plans per iteration", lo=4, hi=4096)
        iterations = declare(self, "iterations", 3, "CEM iterations in PLANNING", lo=1, hi=50)
        self.optimise_factor = declare(self, "optimise_factor", 3, "iteration multiplier in OPTIMISING", lo=1, hi=20)
        self.max_calls = declare(self, "max_world_model_calls", 20000, "world-model calls per plan", lo=1, hi=10**7)
        self.deadline_ms = declare(self, "deadline_ms", 60.0, "wall-clock deadline per plan", unit="ms", lo=1.0, hi=5000.0)
        self.always_plan = declare(self, "always_plan", False, "plan in every mode, not only when asked")
        cost = PlanCost(footprint_radius_m=ego.hard.footprint.radius_m, w_goal=0.3)
        self.core = CEMPlanner(CEMConfig(horizon=horizon, dt_s=dt_s, samples=samples,
                                         elites=max(1, samples // 8), iterations=iterations * self.optimise_factor,
                                         max_linear_mps=ego.operating.max_linear_mps,
                                         max_angular_rps=ego.operating.max_angular_rps), cost)
        self.iterations = iterations
        self.mode = Mode.HABITUAL
        self.plans = 0
        self.rejected = 0
        self.last_ms = 0.0
        self.pub = self.create_publisher(JointState, "agent/plan", RELIABLE_QOS)
        self.path_pub = self.create_publisher(Path, "agent/plan/path", RELIABLE_QOS)
        self.create_subscription(JointState, "agent/world_state", self.on_world_state, RELIABLE_QOS)
        self.create_subscription(String, "agent/mode", self.on_mode, RELIABLE_QOS)
        self.create_subscription(TwistStamped, "agent/habitual/cmd", self.on_habitual, RELIABLE_QOS)
        self.seed: tuple[float, float, float] | None = None  # (stamp_s, v, w) of the latest habitual proposal
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    def on_mode(self, msg: String) -> None:
        """Track the watchdog's mode."""
        if msg.data in Mode.__members__:
            self.mode = Mode[msg.data]

    def on_habitual(self, msg: TwistStamped) -> None:
        """Keep the habitual proposal as the seed of the next plan (if finite)."""
        p = msg_to_proposal(msg, "habitual")
        self.seed = (p.stamp_s, p.v, p.w) if math.isfinite(p.v) and math.isfinite(p.w) else None

    def on_world_state(self, msg: JointState) -> None:
        """Plan when deliberation is asked for (or always_plan)."""
        if not (self.always_plan or self.mode in (Mode.PLANNING, Mode.OPTIMISING)):
            self.core.reset()
            return
        ws = decode_or_none(self, msg_to_world_state, msg, "world state")
        if ws is None:
            self.rejected += 1
            return
        if not ws.has_goal:
            return
        c = self.core.cfg
        factor = self.optimise_factor if self.mode == Mode.OPTIMISING else 1
        calls = min(self.max_calls, c.samples * c.horizon * self.iterations * factor)
        t0 = time.monotonic()
        seed = None
        if self.seed is not None and abs(self.seed[0] - ws.stamp_s) < 0.5:
            seed = np.array(self.seed[1:], dtype=np.float32)
        plan = self.core.plan(ws, ws.goal, Budget(calls, t0 + self.deadline_ms * 1e-3), seed=seed)
        self.last_ms = (time.monotonic() - t0) * 1e3
        self.plans += 1
        self.pub.publish(plan_to_msg(plan))
        self.path_pub.publish(plan_to_path(plan))

    def report(self) -> None:
        """Publish /diagnostics."""
        self.diag.publish("OK", f"{self.plans} plans, last {self.last_ms:.1f} ms",
                          {"plans": self.plans, "last_ms": f"{self.last_ms:.2f}", "mode": self.mode.name,
                           "rejected": self.rejected})


def main() -> None:
    """Entry point: ros2 run hjepa_agent planner."""
    run_node(PlannerNode)
