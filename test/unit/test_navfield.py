"""NavField: the cost-to-go goes round walls it has seen, forgets returns it sees through, and
turns the CEM planner away from the "closer as the crow flies" dead end of a wall in the way."""
import math

import numpy as np
import pytest

from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, PlanCost, beam_points
from hjepa_agent.core.planner.navfield import NavField
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M, WorldState, sector_angles


def _ws(pose, scan, goal=(3.0, 0.0), stamp=0.0):
    n = 3 + 2 + 2 + 1 + N_SCAN_BINS + N_LATENT
    return WorldState(stamp, np.asarray(pose, np.float32), np.zeros(2, np.float32), np.asarray(goal, np.float32),
                      True, np.asarray(scan, np.float32), np.zeros(N_LATENT, np.float32), np.zeros(n, np.float32), 0.1)


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
    from hjepa_agent.core.planner.navfield import _shift
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
    moves = [(dy, dx, 0.5 * (cost + _shift(cost, dy, dx, np.inf)) * math.hypot(dy, dx))
             for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    while True:
        before = ref.copy()
        for dy, dx, step in moves:
            ref = np.minimum(ref, _shift(ref, dy, dx, np.inf) + step)
        if np.array_equal(before, ref):
            break
    assert np.all(np.isfinite(fast))
    assert np.max(np.abs(fast - ref)) < 1e-4  # m; sweeps stop once they gain < 1e-6 m
