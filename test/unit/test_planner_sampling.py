"""Sampling planners (CEM, MPPI): reach towards the goal, avoid an obstacle ahead, honour their
budget, never return a plan predicted to touch when the robot stands clear."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from builders import world_state
from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, MPPIConfig, MPPIPlanner, PlanCost, obstacle_points
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, sector_angles


def _ws(scan=None, goal=(3.0, 0.0)):
    return world_state(goal=goal, scan=scan, ambiguity=0.1)


def _planner(kind="cem", **kw):
    if kind == "mppi":
        return MPPIPlanner(MPPIConfig(**kw), PlanCost(footprint_radius_m=0.2))
    return CEMPlanner(CEMConfig(**kw), PlanCost(footprint_radius_m=0.2))


KINDS = pytest.mark.parametrize("kind", ["cem", "mppi"])


@KINDS
def test_free_space_heads_to_goal(kind):
    plan = _planner(kind).plan(_ws(), np.array([3.0, 0.0]), Budget(10**6))
    assert plan.actions.shape == (15, 2) and plan.states.shape == (16, 3)
    assert plan.states[-1, 0] > 1.0 and abs(plan.states[-1, 1]) < 0.3
    assert plan.risk < 0.1


@KINDS
def test_avoids_obstacle_ahead(kind):
    scan = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    ahead = int(np.argmin(np.abs(sector_angles())))
    scan[ahead] = 0.8
    ws = _ws(scan)
    plan = _planner(kind, iterations=6).plan(ws, np.array([3.0, 0.0]), Budget(10**6))
    obs = obstacle_points(ws)
    d = np.min(np.linalg.norm(plan.states[:, None, :2] - obs[None], axis=-1))
    assert d > 0.2  # footprint never touches the obstacle points
    assert plan.extras["min_clearance_m"] > 0.0


def test_configs_are_checked():
    with pytest.raises(TypeError):
        MPPIPlanner(CEMConfig(), PlanCost(0.2))
    with pytest.raises(TypeError):
        CEMPlanner(MPPIConfig(), PlanCost(0.2))
    with pytest.raises(ValueError):
        MPPIConfig(temperature=0.0)
    with pytest.raises(ValueError):
        CEMConfig(elites=100, samples=64)


def test_budget_is_honoured():
    cfg = CEMConfig(samples=32, horizon=10, iterations=10)
    plan = CEMPlanner(cfg, PlanCost(0.2)).plan(_ws(), np.array([3.0, 0.0]), Budget(32 * 10 * 3))
    assert plan.world_model_calls == 32 * 10 * 3
    tiny = CEMPlanner(cfg, PlanCost(0.2)).plan(_ws(), np.array([3.0, 0.0]), Budget(10))
    assert tiny.world_model_calls == 0 and np.all(tiny.actions == 0.0)


def test_obstacle_points_geometry():
    scan = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    k = int(np.argmin(np.abs(sector_angles() - math.pi / 2)))
    scan[k] = 1.0
    pts = obstacle_points(_ws(scan))
    assert pts.shape == (5, 2)
    assert np.allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-5)
    assert np.all(pts[:, 1] > 0.8)  # to the left


@settings(max_examples=60, deadline=None)
@given(ranges=st.lists(st.floats(0.2, SCAN_RANGE_MAX_M), min_size=N_SCAN_BINS, max_size=N_SCAN_BINS),
       goal=st.tuples(st.floats(-10.0, 10.0), st.floats(-10.0, 10.0)),
       seed_v=st.floats(0.0, 0.6), seed_w=st.floats(-1.8, 1.8), iterations=st.integers(1, 4),
       kind=st.sampled_from(["cem", "mppi"]))
def test_never_returns_a_touching_plan_when_standing_clear(ranges, goal, seed_v, seed_w, iterations, kind):
    """Standing still and turning on the spot are always candidates, so a robot whose footprint
    is clear of every scan point never gets a plan predicted to touch one, whatever the seed
    pulls towards (a corner with the goal behind the wall used to end in contact)."""
    scan = np.asarray(ranges, np.float32)
    ws = _ws(scan, goal)
    plan = _planner(kind, iterations=iterations).plan(ws, np.asarray(goal, np.float32), Budget(10**6),
                                                seed=np.array([seed_v, seed_w], np.float32))
    assert plan.extras["min_clearance_m"] >= 0.0
    assert plan.extras["cost"] < PlanCost(0.2).w_collision


@KINDS
def test_backs_out_of_the_margin_rather_than_deeper(kind):
    """Already inside the footprint margin (a wall 0.15 m ahead), every plan counts as touching;
    the quadratic shortfall of clearance still ranks them, so the plan does not drive deeper
    towards the goal behind the wall."""
    scan = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    scan[int(np.argmin(np.abs(sector_angles())))] = 0.15
    ws = _ws(scan, goal=(3.0, 0.0))  # goal straight through the wall
    obs = obstacle_points(ws)
    plan = _planner(kind, iterations=4).plan(ws, np.array([3.0, 0.0], np.float32), Budget(10**6))
    d = np.linalg.norm(plan.states[:, None, :2] - obs[None], axis=-1).min(axis=1)
    assert d[-1] >= d[0] - 1e-6
