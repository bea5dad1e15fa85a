"""Mode-2 -> Mode-1 distillation: a planner as the habitual policy's teacher.

:class:`PlannerTeacher` answers ``act(pose, twist) -> (v, w)`` like the scripted expert
(hjepa_agent.sim.expert.ScriptedExpert), but from what the robot senses, not from the
privileged layout: each call it takes the simulator's scan (raw beams into the planner's
navfield and as the obstacles to keep clear of, the 16 sectors in the world state), plans
with the planner the planner node would build (``build_planner``: same cost, navfield,
networks) and returns the plan's first action. ``hjepa-agent train habitual --teacher gflownet``
labels every visited state with it, so the habitual policy learns the planner's choices.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hjepa_agent.sim.planner_episode import first_command, sense
from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.planner import Budget, build_planner

TEACHER_CALLS = 20000
"""World-model call budget per decision (the planner's own pass sets what it really spends)."""


class PlannerTeacher:
    """The planner of ``kind`` (cem | mppi | gflownet) acting on the simulator's scan (module doc).
    One per episode (its navfield starts empty). ``expected``: the RobotFingerprint of the robot trained
    on; gflownet networks trained for another robot are refused."""

    def __init__(self, world, ego: EgoModel, kind: str = "gflownet", models_dir: Path | None = None,
                 control_dt_s: float = 0.1, expected=None) -> None:
        self.world = world
        self.ego = ego
        self.planner = build_planner(kind, footprint_radius_m=ego.hard.footprint.radius_m,
                                     max_linear_mps=ego.operating.max_linear_mps,
                                     max_angular_rps=ego.operating.max_angular_rps, models_dir=models_dir,
                                     prefer_cuda=False, expected=expected)
        layout = world.layout
        self.goal = np.array([layout.goal.x_m, layout.goal.y_m], np.float32)
        self.tolerance_m = layout.goal_tolerance_m
        self.dt = control_dt_s
        self.t = 0.0

    def act(self, pose, twist) -> tuple[float, float]:
        """First action of a plan from the current scan (the planner benchmark's sensing,
        hjepa_agent.sim.planner_episode.sense); (0, 0) inside half the goal tolerance. ``pose`` and
        ``twist`` are the expert interface's; the world state reads them from the simulator."""
        pose = np.asarray(pose, np.float32)
        if float(np.hypot(*(self.goal - pose[:2]))) <= 0.5 * self.tolerance_m:
            return 0.0, 0.0
        ws, obstacles = sense(self.world, self.planner, self.goal, self.t)
        self.t += self.dt
        return first_command(self.planner.plan(ws, self.goal, Budget(TEACHER_CALLS), obstacles=obstacles), self.ego)


__all__ = ["PlannerTeacher", "TEACHER_CALLS"]
