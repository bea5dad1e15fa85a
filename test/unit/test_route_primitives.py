"""Route-following and back-up primitives (core/planner/recovery.py): they follow the navfield round a
wall, and they are what gets a CEM planner facing a long wall moving instead of standing still."""
from __future__ import annotations

import math
import time

import numpy as np

from builders import world_state
from hjepa_agent.core.planner import Budget, beam_points, build_planner
from hjepa_agent.core.planner.navfield import NavField
from hjepa_agent.core.planner.recovery import BACKUP_S, PRIMITIVES, route_primitives
from hjepa_agent.core.planner.base import UnicycleModel
from hjepa_agent.core.perception import scan_to_bins
from test_goal_status import _cast as cast   # the synthetic range scan the navfield tests use

WALL = ((0.5, -2.0), (0.5, 2.0))   # a long wall across the straight route, ends at y = +-2


def _cast(pose):
    return cast(pose, segments=[WALL])


POSE = np.array([0.05, 0.6, -0.9])    # 0.45 m from the wall, facing it and away from the way round
GOAL = np.array([2.5, 0.3])


def _nav() -> NavField:
    nav = NavField()
    for p in (np.array([-1.0, 0.3, 0.0]), POSE):
        nav.observe(p, *_cast(p), 0.05, 4.0)
    return nav


def test_follow_primitives_go_round_the_wall_without_touching_it() -> None:
    nav = _nav()
    acts = route_primitives(nav, POSE, GOAL, 0.0, 15, 0.2, 0.6, 1.8)
    assert acts.shape == (len(PRIMITIVES), 15, 2)
    states = UnicycleModel().rollout(POSE, acts, 0.2)
    to_go = nav.distance(states[:, :, :2], GOAL, 0.0)
    follow = np.array([k == "follow" for k, _ in PRIMITIVES])
    assert (to_go[follow, -1] < to_go[follow, 0] - 0.3).all()                  # every follow makes way
    assert (np.abs(states[:, :, 0] - 0.5) > 0.2).all()                         # none comes near the wall
    assert (acts[~follow, :int(BACKUP_S / 0.2), 0] < 0).all()                  # the back-ups reverse
    assert route_primitives(nav, POSE, GOAL, 0.0, 15, 0.2, 0.6, 1.8, count=3).shape == (3, 15, 2)
    assert (np.abs(acts[..., 0]) <= 0.6 + 1e-6).all() and (np.abs(acts[..., 1]) <= 1.8 + 1e-6).all()


def test_no_primitives_without_a_map() -> None:
    assert route_primitives(None, POSE, GOAL, 0.0, 15, 0.2, 0.6, 1.8).shape == (0, 15, 2)
    assert route_primitives(NavField(), POSE, GOAL, 0.0, 15, 0.2, 0.6, 1.8).shape == (0, 15, 2)


def test_cem_facing_a_long_wall_moves_instead_of_standing_still() -> None:
    planner = build_planner("cem", footprint_radius_m=0.2, max_linear_mps=0.6, max_angular_rps=1.8)
    ang, rng = _cast(np.array([-1.0, 0.3, 0.0]))
    planner.observe(np.array([-1.0, 0.3, 0.0]), ang, rng, 0.05, 4.0)
    ang, rng = _cast(POSE)
    planner.observe(POSE, ang, rng, 0.05, 4.0)
    bins = scan_to_bins(rng, -math.pi, 2 * math.pi / len(rng), 0.05, 4.0)
    ws = world_state(pose=POSE, goal=GOAL, scan=bins, ambiguity=0.1)
    plan = planner.plan(ws, GOAL, Budget(20000, time.monotonic() + 1.0), obstacles=beam_points(POSE, ang, rng, 0.05, 4.0))
    assert np.abs(plan.actions).sum() > 1.0, plan.actions[:3]
    states = UnicycleModel().rollout(POSE, plan.actions[None], 0.2)[0]
    assert planner.navfield.distance(states[-1:, :2], GOAL, 0.0)[0] < planner.navfield.distance(POSE[None, :2], GOAL, 0.0)[0]
