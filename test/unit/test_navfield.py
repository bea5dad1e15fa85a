"""NavField: the cost-to-go goes round walls it has seen, forgets returns it sees through, and
turns the CEM planner away from the "closer as the crow flies" dead end of a wall in the way;
goals beyond the grid (however far) lead to its edge towards them, and nothing finite raises."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import world_state
from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, PlanCost, beam_points
from hjepa_agent.core.planner.navfield import GoalKind, NavField
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, sector_angles


def _ws(pose, scan, goal=(3.0, 0.0), stamp=0.0):
    return world_state(stamp_s=stamp, pose=pose, goal=goal, scan=scan, ambiguity=0.1)


def _beams(pose, segments, n_beams=64):
    """(angles in the robot frame, ranges) of a 2-D ray cast from ``pose`` against wall segments."""
    x, y, yaw = pose
    rel = np.linspace(-math.pi, math.pi, n_beams, endpoint=False)
    ang = yaw + rel
    rng = np.full(n_beams, np.inf)
    for (x0, y0), (x1, y1) in segments:
        e = np.array([x1 - x0, y1 - y0])
        for i, a in enumerate(ang):
            di = np.array([math.cos(a), math.sin(a)])
            den = di[0] * (-e[1]) - di[1] * (-e[0])
            if abs(den) < 1e-12:
                continue
            rx, ry = x0 - x, y0 - y
            t = (rx * (-e[1]) - ry * (-e[0])) / den
            u = (di[0] * ry - di[1] * rx) / den
            if t > 0 and 0 <= u <= 1:
                rng[i] = min(rng[i], t)
    return rel, rng


def _scan_of_segments(pose, segments, n_beams=256):
    """Sector minima of a 2-D ray cast from ``pose`` against wall segments ((x0, y0), (x1, y1))."""
    rel, rng = _beams(pose, segments, n_beams)
    centres = sector_angles()
    width = 2 * math.pi / N_SCAN_BINS
    out = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    for k, c in enumerate(centres):
        sel = np.abs((rel - c + math.pi) % (2 * math.pi) - math.pi) <= width / 2
        out[k] = min(SCAN_RANGE_MAX_M, rng[sel].min())
    return out


# a wall from (1, -1.5) to (1, 1.5) between the robot at the origin and the goal at (3, 0)
WALL = [((1.0, -1.5), (1.0, 1.5))]


def _observed(poses, segments=WALL):
    nav = NavField(resolution_m=0.1, size_m=10.0, inflate_m=0.2)
    for p in poses:
        nav.observe(p, *_beams(p, segments), 0.1, 4.0)
    return nav


def test_distance_goes_round_a_seen_wall():
    nav = _observed([(0.0, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, -0.5, 0.0)])
    d = float(nav.distance(np.array([[0.0, 0.0]]), np.array([3.0, 0.0]), 0.0)[0])
    round_the_end = math.hypot(1.0, 1.7) + math.hypot(2.0, 1.7)  # via (1, +-1.7)
    assert d > 3.0 + 1.0                       # not straight through
    # round the end: at least the shortest way round, at most a little dearer (the inflation
    # layer makes the cells next to the wall's end cost more than their length)
    assert round_the_end * 0.95 <= d <= round_the_end * 1.3


def test_unknown_space_is_free_and_unseen_goal_is_straight_line():
    nav = NavField(resolution_m=0.1, size_m=10.0)
    assert nav.distance(np.array([[0.0, 0.0]]), np.array([3.0, 0.0]), 0.0)[0] == pytest.approx(3.0)
    nav.observe((0.0, 0.0, 0.0), *_beams((0.0, 0.0, 0.0), []), 0.1, 4.0)
    assert nav.distance(np.array([[0.0, 0.0]]), np.array([3.0, 0.0]), 0.0)[0] == pytest.approx(3.0, abs=0.15)


def test_returns_seen_through_are_forgotten():
    nav = _observed([(0.0, 0.0, 0.0)])
    assert nav.occupied().any()
    for y in (-0.2, -0.1, 0.0, 0.1, 0.2):  # the wall was moved away: rays now pass where it was
        nav.observe((0.0, y, 0.0), *_beams((0.0, y, 0.0), []), 0.1, 4.0)
    assert not nav.occupied().any()


def test_rejects_bad_input():
    nav = NavField()
    with pytest.raises(ValueError):
        nav.observe((math.nan, 0.0, 0.0), np.zeros(4), np.ones(4))
    with pytest.raises(ValueError):
        nav.observe((0.0, 0.0, 0.0), np.zeros(4), np.ones(5))
    with pytest.raises(ValueError):
        NavField(resolution_m=0.0)
    nav.observe((0.0, 0.0, 0.0), np.zeros(2), np.array([np.nan, 1.0]))  # a NaN beam is skipped
    assert nav.occupied().sum() == 1


def test_cem_with_navfield_leaves_the_dead_end():
    """Robot at (0.4, 0) facing a wall at x = 1 with the goal behind it, having seen the wall on
    its way there: with straight-line goal cost standing still (or creeping closer) is nearly
    optimal; with the navfield the plan heads for an end of the wall."""
    cost = PlanCost(footprint_radius_m=0.2, w_goal=0.3)
    plain = CEMPlanner(CEMConfig(iterations=6), cost)
    nav = CEMPlanner(CEMConfig(iterations=6), cost, navfield=NavField(resolution_m=0.1, size_m=10.0))
    for p in [(-1.0, y, 0.0) for y in (-1.0, 0.0, 1.0)] + [(0.0, 0.0, 0.0), (0.4, 0.0, 0.0)]:
        nav.observe(p, *_beams(p, WALL), 0.1, 4.0)
    pose = (0.4, 0.0, 0.0)
    ws = _ws(pose, _scan_of_segments(pose, WALL))
    obstacles = beam_points(pose, *_beams(pose, WALL), 0.1, 4.0)  # as the planner node passes them
    goal = np.array([3.0, 0.0], np.float32)
    p_plain = plain.plan(ws, goal, Budget(10**6), obstacles=obstacles)
    p_nav = nav.plan(ws, goal, Budget(10**6), obstacles=obstacles)
    sideways = lambda p: abs(float(p.states[-1, 1]))  # noqa: E731
    assert sideways(p_nav) > 0.4
    assert sideways(p_nav) > sideways(p_plain) + 0.3


def test_line_sweeps_equal_plain_8_neighbour_relaxation():
    """The fast wavefront (exact propagation along whole rows, columns and diagonals) gives the
    same field as step-by-step 8-neighbour relaxation, on random obstacles."""
    from hjepa_agent.core.planner.grid import shift
    rng = np.random.default_rng(3)
    nav = NavField(resolution_m=0.2, size_m=8.0)
    nav.observe((0.0, 0.0, 0.0), np.zeros(1), np.ones(1) * 9.0)  # sets the origin, no hits
    nav.hits[:] = (rng.random(nav.hits.shape) < 0.12) * 2
    goal = np.array([1.3, -0.7])
    fast = nav._wavefront(goal)
    cost = nav.traversal() * nav.resolution_m
    ref = np.full(cost.shape, np.inf)
    r, c, _ = nav._cells(goal[None])
    ref[r[0], c[0]] = 0.0
    moves = [(dy, dx, 0.5 * (cost + shift(cost, dy, dx, np.inf)) * math.hypot(dy, dx))
             for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    while True:
        before = ref.copy()
        for dy, dx, step in moves:
            ref = np.minimum(ref, shift(ref, dy, dx, np.inf) + step)
        if np.array_equal(before, ref):
            break
    assert np.all(np.isfinite(fast))
    assert np.max(np.abs(fast - ref)) < 1e-4  # m; sweeps stop once they gain < 1e-6 m


# ---- goals beyond the grid, huge and non-finite input ----------------------------------------

def _open_field(pose=(-2.0, -1.5, 0.0)) -> NavField:
    """A default 16-m grid centred on ``pose`` that has seen one scan of empty space."""
    nav = NavField()
    nav.observe(pose, *_beams(pose, []), 0.1, 4.0)
    return nav


def _descend(nav: NavField, start, goal, step_m=0.2, max_steps=200):
    """Greedy descent on the cost-to-go (16 headings, ``step_m`` a step) from ``start`` until it
    leaves the grid or stops improving; the points visited."""
    heads = np.stack([np.cos(np.arange(16) * math.pi / 8), np.sin(np.arange(16) * math.pi / 8)], -1)
    p, path = np.asarray(start, float), [np.asarray(start, float)]
    lo, hi = nav.origin, nav.origin + nav.size_m
    for _ in range(max_steps):
        cand = p + step_m * heads
        d = nav.distance(cand, goal, 0.0)
        here = float(nav.distance(p[None], goal, 0.0)[0])
        if d.min() >= here:
            break
        p = cand[int(np.argmin(d))]
        path.append(p)
        if np.any(p < lo) or np.any(p > hi):
            break
    return np.array(path)


def test_far_goal_of_the_report_no_longer_raises():
    """The crash: goal (10, 10) with the grid centred on the first pose (-2, -1.5)."""
    nav = _open_field()
    d = nav.distance(np.array([[0.0, 0.0], [-2.0, -1.5]]), np.array([10.0, 10.0]), 0.0)
    assert np.all(np.isfinite(d))
    assert d[0] == pytest.approx(math.hypot(10.0, 10.0), rel=0.02)
    assert d[1] == pytest.approx(math.hypot(12.0, 11.5), rel=0.02)


@pytest.mark.parametrize("far_m", [12.0, 50.0, 1e6])
@pytest.mark.parametrize("heading_deg", range(0, 360, 30))
def test_far_goal_in_every_direction_cost_falls_towards_it(far_m, heading_deg):
    pose = np.array([-2.0, -1.5])
    nav = _open_field((*pose, 0.0))
    u = np.array([math.cos(math.radians(heading_deg)), math.sin(math.radians(heading_deg))])
    goal = pose + far_m * u
    # along the straight line to the goal, across the grid's edge and beyond: never rising
    s = np.arange(0.0, 12.0, 0.02)
    d = nav.distance(pose + s[:, None] * u, goal, 0.0)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0)
    assert np.all(np.diff(d) <= 1e-9 * max(1.0, far_m))
    # open grid: the straight line, up to the 8-neighbour wavefront's excess (at most 8.3 %, at
    # 22.5 degrees off an axis), and it falls by about the way gone
    assert far_m <= d[0] <= far_m * 1.083 + 0.2
    assert 12.0 * 0.9 <= d[0] - d[-1] <= 12.0 * 1.083 + 0.2
    # a planner following it leaves the grid towards the goal
    path = _descend(nav, pose, goal)
    out = path[-1] - pose
    assert np.any(path[-1] < nav.origin) or np.any(path[-1] > nav.origin + nav.size_m)
    assert float(np.dot(out, u)) / float(np.linalg.norm(out)) > math.cos(math.radians(10.0))


def test_far_goal_behind_a_seen_wall_is_approached_round_it():
    nav = NavField()
    for p in [(0.0, 0.0, 0.0), (0.0, 0.5, 0.0), (0.0, -0.5, 0.0)]:
        nav.observe(p, *_beams(p, WALL), 0.1, 4.0)
    goal = np.array([60.0, 0.0])
    d = float(nav.distance(np.array([[0.0, 0.0]]), goal, 0.0)[0])
    assert d > 60.0 + 0.5                      # not straight through the wall
    path = _descend(nav, (0.0, 0.0), goal)
    assert path[-1][0] > 1.5                   # got past the wall, round one of its ends
    assert np.max(np.abs(path[:, 1])) > 1.5


@pytest.mark.parametrize("where", ["x_hi", "x_lo", "y_hi", "y_lo", "corner_hi", "corner_lo"])
def test_goal_exactly_on_the_grid_edge(where):
    pose = np.array([-2.0, -1.5])
    nav = _open_field((*pose, 0.0))
    lo, hi = nav.origin, nav.origin + nav.size_m
    goal = {"x_hi": (hi[0], pose[1]), "x_lo": (lo[0], pose[1]), "y_hi": (pose[0], hi[1]),
            "y_lo": (pose[0], lo[1]), "corner_hi": tuple(hi), "corner_lo": tuple(lo)}[where]
    goal = np.asarray(goal, float)
    d = nav.distance(np.stack([pose, goal]), goal, 0.0)
    assert np.all(np.isfinite(d))
    assert d[0] == pytest.approx(np.linalg.norm(goal - pose), rel=0.05)
    assert d[1] <= nav.resolution_m  # at the goal: within a cell of nothing to go
    # just beyond the edge the goal counts as off the grid and still works
    beyond = goal + 1e-9 * np.sign(goal - pose)
    assert np.isfinite(nav.distance(pose[None], beyond, 0.0)[0])


def test_points_off_the_grid_use_the_straight_line():
    nav = _open_field()
    goal_in, goal_out = np.array([0.0, 0.0]), np.array([30.0, -20.0])
    far_pts = np.array([[40.0, 0.0], [-30.0, 25.0], [1e7, -1e7]])
    for goal in (goal_in, goal_out):
        d = nav.distance(far_pts, goal, 0.0)
        assert np.allclose(d, np.linalg.norm(far_pts - goal, axis=-1))


@pytest.mark.parametrize("goal", [(1e6, 0.0), (0.0, -1e6), (-1e6, 1e6), (1e12, 3.0), (1e300, -1e300),
                                  (-1.7e308, 1.7e308)])
def test_huge_goals_are_finite(goal):
    nav = _open_field()
    goal = np.asarray(goal)
    pts = np.array([[-2.0, -1.5], [5.0, 5.0], [1e6, 1e6], [-1.7e308, -1.7e308]])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow on the way either
        d = nav.distance(pts, goal, 0.0)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0)
    assert d[0] == pytest.approx(min(math.hypot(*(goal - pts[0])), np.finfo(float).max), rel=1e-6)


def test_huge_first_pose():
    nav = NavField()
    pose = (1e15, -1e15, 0.3)
    nav.observe(pose, *_beams(pose, []), 0.1, 4.0)
    d = nav.distance(np.array([[1e15, -1e15], [0.0, 0.0]]), np.array([1e15 + 50.0, -1e15]), 0.0)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0)


@pytest.mark.parametrize("bad", ["goal_nan", "goal_inf", "xy_nan", "xy_inf", "stamp_nan", "goal_shape"])
def test_distance_rejects_non_finite_input(bad):
    nav = _open_field()
    xy, goal, stamp = np.zeros((3, 2)), np.array([1.0, 2.0]), 0.0
    if bad == "goal_nan":
        goal = np.array([math.nan, 0.0])
    elif bad == "goal_inf":
        goal = np.array([math.inf, 0.0])
    elif bad == "xy_nan":
        xy[1, 0] = math.nan
    elif bad == "xy_inf":
        xy[2, 1] = -math.inf
    elif bad == "stamp_nan":
        stamp = math.nan
    else:
        goal = np.zeros(3)
    with pytest.raises(ValueError, match="NavField.distance"):
        nav.distance(xy, goal, stamp)


_finite = st.floats(allow_nan=False, allow_infinity=False)
_coord = st.one_of(st.floats(-20.0, 20.0), st.floats(-1e7, 1e7), _finite)


@settings(max_examples=150, deadline=None)
@given(first=st.tuples(_coord, _coord), pts=st.lists(st.tuples(_coord, _coord), min_size=1, max_size=4),
       goal=st.tuples(_coord, _coord), walls=st.booleans())
def test_distance_is_finite_and_non_negative_for_finite_input(first, pts, goal, walls):
    import warnings
    nav = NavField()
    pose = (*first, 0.0)
    segs = [((first[0] + 1.0, first[1] - 1.5), (first[0] + 1.0, first[1] + 1.5))] if walls else []
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        nav.observe(pose, *_beams(pose, segs, 32), 0.1, 4.0)
        d = nav.distance(np.asarray(pts, float), np.asarray(goal, float), 0.0)
        status = nav.goal_status(pts[0], goal)
    assert d.shape == (len(pts),)
    assert np.all(np.isfinite(d)) and np.all(d >= 0.0)
    assert isinstance(status.kind, GoalKind)
