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

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.core.perception import scan_to_bins
from hjepa_agent.core.planner import Budget, beam_points, build_planner
from hjepa_agent.core.types import N_LATENT, WORLD_STATE_LABELS, WorldState

TEACHER_CALLS = 20000
"""World-model call budget per decision (the planner's own pass sets what it really spends)."""


class PlannerTeacher:
    """The planner of ``kind`` (cem | mppi | gflownet) acting on the simulator's scan (module doc).
    One per episode (its navfield starts empty)."""

    def __init__(self, world, ego: EgoModel, kind: str = "gflownet", models_dir: Path | None = None,
                 control_dt_s: float = 0.1) -> None:
        self.world = world
        self.ego = ego
        self.planner = build_planner(kind, footprint_radius_m=ego.hard.footprint.radius_m,
                                     max_linear_mps=ego.operating.max_linear_mps,
                                     max_angular_rps=ego.operating.max_angular_rps, models_dir=models_dir,
                                     prefer_cuda=False)
        layout = world.layout
        self.goal = np.array([layout.goal.x_m, layout.goal.y_m], np.float32)
        self.tolerance_m = layout.goal_tolerance_m
        spec = world.robot.scan
        self.spec = spec
        self.angles = spec.angle_min_rad + spec.angle_increment_rad * np.arange(spec.n_beams)
        self.dt = control_dt_s
        self.t = 0.0

    def act(self, pose, twist) -> tuple[float, float]:
        """First action of a plan from the current scan; (0, 0) inside half the goal tolerance."""
        pose = np.asarray(pose, np.float32)
        if float(np.hypot(*(self.goal - pose[:2]))) <= 0.5 * self.tolerance_m:
            return 0.0, 0.0
        s = self.spec
        ranges = self.world.scan()
        bins = scan_to_bins(ranges, s.angle_min_rad, s.angle_increment_rad, s.range_min_m, s.range_max_m)
        ws = WorldState(self.t, pose, np.asarray(twist, np.float32), self.goal, True, bins,
                        np.zeros(N_LATENT, np.float32), np.zeros(len(WORLD_STATE_LABELS), np.float32), 0.0)
        self.t += self.dt
        self.planner.observe(pose, self.angles, ranges, s.range_min_m, s.range_max_m)
        plan = self.planner.plan(ws, self.goal, Budget(TEACHER_CALLS),
                                 obstacles=beam_points(pose, self.angles, ranges, s.range_min_m, s.range_max_m))
        v, w = (float(a) for a in plan.actions[0])
        op = self.ego.operating
        return float(np.clip(v, -op.max_linear_mps, op.max_linear_mps)), \
            float(np.clip(w, -op.max_angular_rps, op.max_angular_rps))


__all__ = ["PlannerTeacher", "TEACHER_CALLS"]
