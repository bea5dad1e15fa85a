"""The two-level planner: the slow level routes round a wall the navfield has seen, the fast level
drives to the route's first subgoal, subgoals are passed, and bad set-ups are refused."""
import shutil

import numpy as np
import pytest
import yaml

from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, NavField, UnicycleModel, beam_points, planner_cost
from hjepa_agent.core.planner.hierarchy import HierarchicalPlanner, route_condition, segment_seed
from hjepa_agent.core.planner.gfn.routes import SubgoalSpace
from hjepa_agent.core.planner.subgoals import SubgoalPlanner
from test_navfield import WALL, _beams, _scan_of_segments, _ws


def test_segment_seed_turns_round_and_reaches_its_target():
    pose = np.array([0.0, 0.0, np.pi])                # facing away from the target
    target = np.array([1.5, 0.5])
    acts = segment_seed(pose, target, 25, 0.2, 0.6, 1.8)   # 5 s: ~1.7 s to turn, 1.6 m to drive
    assert np.all(np.abs(acts[:, 0]) <= 0.6 + 1e-6) and np.all(np.abs(acts[:, 1]) <= 1.8 + 1e-6)
    end = UnicycleModel().rollout(pose, acts[None], 0.2)[0, -1, :2]
    assert np.hypot(*(end - target)) < 0.15


def _two_level(samples: int = 512) -> HierarchicalPlanner:
    space = SubgoalSpace()
    w = np.random.default_rng(0).normal(0.0, 0.05, (space.state_dim + space.cond_dim, space.n_actions + space.n_cols))
    slow = SubgoalPlanner(lambda x: np.asarray(x) @ w, lambda c: np.zeros((len(c), 1)), space, samples=samples)
    fast = CEMPlanner(CEMConfig(iterations=4), planner_cost(0.2), navfield=NavField(resolution_m=0.1, size_m=10.0))
    return HierarchicalPlanner(fast, slow, 0.6, 1.8)


def test_the_route_goes_round_the_wall_and_the_fast_level_drives_to_its_first_subgoal():
    planner = _two_level(samples=2048)   # a random policy over 14^4 routes: enough samples to find one round
    for p in [(-1.0, y, 0.0) for y in (-1.0, 0.0, 1.0)] + [(-1.0, 0.0, 0.0)]:
        planner.observe(p, *_beams(p, WALL), 0.1, 4.0)
    pose = (-1.0, 0.0, 0.0)
    goal = np.array([3.0, 0.0], np.float32)
    ws = _ws(pose, _scan_of_segments(pose, WALL), goal=goal)
    plan = planner.plan(ws, goal, Budget(10**6), obstacles=beam_points(pose, *_beams(pose, WALL), 0.1, 4.0))
    sub = np.asarray(plan.extras["subgoals"])
    assert len(sub) >= 1 and plan.planner == "cem+subgoals"
    # the route passes the wall's line (x = 1) beyond one of its ends (|y| > 1.5)
    poly = np.concatenate([[pose[:2]], sub, [goal]])
    k = np.nonzero((poly[:-1, 0] < 1.0) & (poly[1:, 0] >= 1.0))[0][0]
    t = (1.0 - poly[k, 0]) / (poly[k + 1, 0] - poly[k, 0])
    assert abs(poly[k, 1] + t * (poly[k + 1, 1] - poly[k, 1])) > 1.5
    # round the end of the wall costs about 2.3 m more than the straight line would if it were free;
    # the straight line through the wall costs more
    sp = planner.slow.space
    raster, d = route_condition(sp, planner.navfield, np.asarray(pose[:2]), goal)   # what the planner saw
    straight = sp.log_reward(np.full((1, sp.n_cols), -1), raster, d)[0]
    assert -sp.beta * 3.0 < plan.extras["route_log_r"] and straight < plan.extras["route_log_r"] - 1.0
    # the fast plan heads for the first subgoal, not for the goal behind the wall
    start_d = np.hypot(*(sub[0] - np.asarray(pose[:2])))
    assert np.hypot(*(plan.states[-1, :2] - sub[0])) < start_d - 0.5


def test_subgoals_are_passed_and_the_goal_is_last():
    planner = _two_level()
    planner.observe((-1.0, 0.0, 0.0), *_beams((-1.0, 0.0, 0.0), WALL), 0.1, 4.0)
    goal = np.array([3.0, 0.0], np.float32)
    plan = planner.plan(_ws((-1.0, 0.0, 0.0), np.full(16, 8.0), goal=goal), goal, Budget(10**6))
    sub = np.asarray(plan.extras["subgoals"])
    assert len(sub) >= 1
    # standing on the first subgoal (within the route period: no new route), it is passed
    on = (float(sub[0, 0]), float(sub[0, 1]), 0.0)
    again = planner.plan(_ws(on, np.full(16, 8.0), goal=goal, stamp=0.1), goal, Budget(10**6))
    assert len(again.extras["subgoals"]) == len(sub) - 1
    # near the goal there is no route: the fast level plans to the goal itself
    near = (2.2, 0.0, 0.0)
    last = planner.plan(_ws(near, np.full(16, 8.0), goal=goal, stamp=0.2), goal, Budget(10**6))
    assert "subgoals" not in last.extras


def test_bad_set_ups_are_refused_with_what_to_do(tmp_path):
    from hjepa_agent.core.models import ModelMismatchError
    from hjepa_agent.core.planner import build_planner
    from hjepa_agent.config.paths import data_path
    kw = dict(footprint_radius_m=0.2, max_linear_mps=0.6, max_angular_rps=1.8, prefer_cuda=False)
    with pytest.raises(ValueError, match="navfield"):
        build_planner("cem", navfield=False, hierarchy=True, **kw)
    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models)
    doc = yaml.safe_load((models / "manifest.yaml").read_text())
    doc["models"].pop("subgoal_policy", None)
    (models / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelMismatchError, match="hjepa-agent train subgoals"):
        build_planner("cem", hierarchy=True, models_dir=models, **kw)


def test_a_subgoal_the_robot_gets_no_closer_to_is_dropped():
    planner = _two_level()
    planner.observe((-1.0, 0.0, 0.0), *_beams((-1.0, 0.0, 0.0), WALL), 0.1, 4.0)
    goal = np.array([3.0, 0.0], np.float32)
    ws = lambda t: _ws((-1.0, 0.0, 0.0), np.full(16, 8.0), goal=goal, stamp=t)  # noqa: E731
    first = np.asarray(planner.plan(ws(0.0), goal, Budget(10**6)).extras["subgoals"])[0]
    planner.route_period_s = 100.0       # keep the route: only the stall rule may change it
    for t in np.arange(0.1, 3.0, 0.1):
        assert np.allclose(planner.plan(ws(t), goal, Budget(10**6)).extras["subgoals"][0], first)
    assert planner.stalls == 0
    planner.plan(ws(3.2), goal, Budget(10**6))
    assert planner.stalls == 1


def test_with_the_navfield_the_segment_seed_goes_round_the_wall_the_straight_one_hits():
    nav = NavField(resolution_m=0.1, size_m=10.0, inflate_m=0.2)
    for p in [(-1.0, y, 0.0) for y in (-1.0, 0.0, 1.0)]:
        nav.observe(p, *_beams(p, WALL), 0.1, 4.0)
    pose, target = np.array([0.0, 0.0, 0.0]), np.array([2.0, 0.0])
    model = UnicycleModel()

    def crosses_wall(acts):
        xy = model.rollout(pose, acts[None], 0.2)[0, :, :2]
        k = np.nonzero((xy[:-1, 0] < 1.0) & (xy[1:, 0] >= 1.0))[0]
        return bool(len(k)) and abs(float(xy[k[0], 1])) < 1.5 + 0.2

    straight = segment_seed(pose, target, 40, 0.2, 0.6, 1.8)
    along = segment_seed(pose, target, 40, 0.2, 0.6, 1.8, to_go=lambda xy: nav.distance(xy, target, 0.0))
    assert crosses_wall(straight) and not crosses_wall(along)
    end = model.rollout(pose, along[None], 0.2)[0, -1, :2]
    assert np.hypot(*(end - target)) < np.hypot(*(pose[:2] - target))       # and it gets on towards the target


def test_a_subgoal_behind_the_robot_is_passed_only_once_the_robot_is_beyond_it():
    """The first column is behind the robot (out of a pocket): such a subgoal is not 'left behind' at once."""
    from hjepa_agent.core.planner.hierarchy import passed
    start, behind = np.array([0.0, 0.0]), np.array([-1.2, 1.5])
    assert not passed(start, behind, start, 0.5)
    assert not passed(np.array([-0.5, 0.6]), behind, start, 0.5)        # on the way there
    assert passed(np.array([-1.0, 1.3]), behind, start, 0.5)            # reached
    assert passed(np.array([-1.5, 2.2]), behind, start, 0.1)            # beyond it, away from the start
    ahead = np.array([2.0, 0.0])                                        # the old rule's case still holds
    assert not passed(np.array([1.0, 0.3]), ahead, start, 0.5) and passed(np.array([2.3, 0.2]), ahead, start, 0.1)
    sp = SubgoalSpace()
    pts = sp.waypoints(np.array([[6, -1, -1, -1]]), 4.0)[0]             # only the behind column, lateral 0
    assert pts[1, 0] < 0.0 and sp.fractions[0] < 0.0
