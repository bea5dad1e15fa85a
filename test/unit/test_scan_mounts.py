"""Scan sectors from a mounted scanner, unknown sectors, and the one rule that counts them as occupied
(core.types.unknown_clearance_m) in the watchdog, the planners, the estimator and the odometry monitor."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import world_state
from hjepa_agent.core.estimator import Estimator
from hjepa_agent.core.perception import beams_in_base, scan_to_bins
from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, planner_cost
from hjepa_agent.core.types import (MIN_RETURN_M, N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M, UNKNOWN_ENTRY_M,
                                    UNKNOWN_RANGE_M, Mount, Percept, WorldState, sector_index, unknown_clearance_m,
                                    unknown_sectors)
from hjepa_agent.core.geometry import obstacle_points, predicted_clearance
from hjepa_agent.core.watchdog.odometry import _reproject, _scan_error

WIDTH = 2.0 * math.pi / N_SCAN_BINS
RADIUS = 0.2


def old_scan_to_bins(ranges, angle_min, angle_increment, range_min, range_max) -> np.ndarray:
    """scan_to_bins as it was before mounts and unknown sectors (what the shipped models were trained on)."""
    r = np.asarray(ranges, dtype=np.float32)
    valid = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    r = np.where(valid, np.minimum(r, SCAN_RANGE_MAX_M), SCAN_RANGE_MAX_M)
    angles = angle_min + angle_increment * np.arange(r.size, dtype=np.float64)
    wrapped = (angles + math.pi) % (2.0 * math.pi)
    idx = np.minimum((wrapped / (2.0 * math.pi) * N_SCAN_BINS).astype(np.int64), N_SCAN_BINS - 1)
    bins = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, dtype=np.float32)
    np.minimum.at(bins, idx, r)
    return bins


SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e-4, 1e9])


@st.composite
def scans(draw, n_max: int = 2000):
    """(ranges, angle_min, angle_increment, range_min, range_max): 1..n_max beams over a few deg to one turn,
    either direction, with NaN, +-inf and out-of-window ranges."""
    n = draw(st.integers(1, n_max))
    fov = draw(st.floats(math.radians(2.0), 2.0 * math.pi))
    inc = fov / n * draw(st.sampled_from([1.0, -1.0]))
    angle_min = draw(st.floats(-2.0 * math.pi, 2.0 * math.pi))
    range_min = draw(st.floats(0.0, 0.5))
    range_max = draw(st.floats(range_min + 0.05, 30.0))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    ranges = rng.uniform(0.0, range_max * 1.2, n).astype(np.float32)
    k = draw(st.integers(0, n))
    specials = draw(st.lists(SPECIAL, min_size=k, max_size=k))
    ranges[rng.permutation(n)[:k]] = specials
    return ranges, angle_min, inc, range_min, range_max


MOUNTS = st.builds(Mount, x_m=st.floats(-0.3, 0.3), y_m=st.floats(-0.3, 0.3), z_m=st.floats(0.0, 0.5),
                   roll_rad=st.sampled_from([0.0, math.pi]), yaw_rad=st.floats(-math.pi, math.pi))


def reference(ranges, angle_min, inc, range_min, range_max, mount: Mount):
    """Each beam's base-frame direction and distance, computed beam by beam with plain math (no numpy
    vector code shared with the implementation): (angle, distance, returned) per beam."""
    out = []
    flip = -1.0 if mount.roll_rad else 1.0   # roll pi: the sensor's y (and z) axis point the other way
    cy, sy = math.cos(mount.yaw_rad), math.sin(mount.yaw_rad)
    for i, r in enumerate(np.asarray(ranges, np.float32)):
        a = angle_min + inc * i
        returned = bool(math.isfinite(r) and range_min <= r <= range_max)
        reach = float(r) if returned else min(range_max, SCAN_RANGE_MAX_M)
        sx, sy_ = reach * math.cos(a), flip * reach * math.sin(a)
        bx, by = mount.x_m + cy * sx - sy * sy_, mount.y_m + sy * sx + cy * sy_
        dist = math.hypot(bx, by)
        out.append((math.atan2(by, bx) if dist > 1e-6 else math.nan, dist, returned))   # NaN: at the origin
    return out


def _sector(angle: float) -> tuple[int, bool]:
    """Sector of ``angle`` and whether it is clear of a sector boundary (float rounding cannot move it);
    a point at the base origin (NaN) has no direction: any sector, never clear."""
    if math.isnan(angle):
        return 0, False
    u = (angle + math.pi) / WIDTH
    k = int(math.floor(u)) % N_SCAN_BINS
    return k, min(u - math.floor(u), math.ceil(u) - u) > 1e-6


@settings(max_examples=300, deadline=None)
@given(scan=scans(), mount=MOUNTS)
def test_no_sector_without_a_beam_is_ever_free_or_a_return(scan, mount):
    bins = scan_to_bins(*scan, mount)
    ref = reference(*scan, mount)
    assert bins.shape == (N_SCAN_BINS,) and bins.dtype == np.float32 and np.all(np.isfinite(bins))
    maybe, surely = set(), set()
    per_sector: dict[int, list[float]] = {}
    for angle, dist, returned in ref:
        k, clear = _sector(angle)
        maybe |= ({k} if clear else {k, (k - 1) % N_SCAN_BINS, (k + 1) % N_SCAN_BINS} if not math.isnan(angle)
                  else set(range(N_SCAN_BINS)))
        if clear:
            surely.add(k)
            per_sector.setdefault(k, []).append(min(max(dist, MIN_RETURN_M), SCAN_RANGE_MAX_M) if returned
                                                else SCAN_RANGE_MAX_M)
    for k in range(N_SCAN_BINS):
        if k not in maybe:   # no beam near it: unknown, never free, never a return
            assert bins[k] == UNKNOWN_RANGE_M and unknown_sectors(bins)[k], (k, bins)
        if k in surely:      # a beam surely in it: known, at most its beams' nearest return
            assert bins[k] >= MIN_RETURN_M
            assert bins[k] <= min(per_sector[k]) + 1e-4


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2 * N_SCAN_BINS, 2000), seed=st.integers(0, 2 ** 31), range_min=st.floats(MIN_RETURN_M, 0.5),
       mount=st.sampled_from([None, Mount(), Mount(z_m=0.075)]))
def test_a_360_scan_from_the_base_origin_bins_exactly_as_before(n, seed, range_min, mount):
    """At least two beams a sector (the shipped scan has four): every sector is covered. With fewer, beams
    on the sector boundaries can round into the sector before, leaving one without a beam: unknown now."""
    rng = np.random.default_rng(seed)
    ranges = rng.uniform(0.0, 6.0, n).astype(np.float32)
    ranges[rng.random(n) < 0.1] = np.inf
    ranges[rng.random(n) < 0.05] = np.nan
    args = (ranges, -math.pi, 2.0 * math.pi / n, range_min, 5.0)
    assert np.array_equal(scan_to_bins(*args, mount), old_scan_to_bins(*args))


@settings(max_examples=200, deadline=None)
@given(scan=scans())
def test_unmounted_covered_sectors_bin_as_before_and_the_rest_are_unknown(scan):
    ranges, angle_min, inc, range_min, range_max = scan
    scan = (ranges, angle_min, inc, max(range_min, MIN_RETURN_M), range_max)
    new, old = scan_to_bins(*scan), old_scan_to_bins(*scan)
    unknown = unknown_sectors(new)
    assert np.array_equal(new[~unknown], old[~unknown])
    assert np.all(old[unknown] == SCAN_RANGE_MAX_M)   # the old code called these free


def test_a_yawed_scanner_turns_the_sectors():
    n = 64
    rng = np.random.default_rng(0)
    ranges = rng.uniform(0.3, 3.5, n).astype(np.float32)
    args = (ranges, -math.pi + math.pi / n, 2.0 * math.pi / n, 0.1, 4.0)   # beams clear of the boundaries
    plain = scan_to_bins(*args)
    assert np.array_equal(scan_to_bins(*args, Mount(yaw_rad=math.pi / 2)), np.roll(plain, 4))
    assert np.array_equal(scan_to_bins(*args, Mount(yaw_rad=-math.pi / 2)), np.roll(plain, -4))


def test_an_offset_scanner_measures_from_the_base_origin():
    # a scanner 0.2 m ahead of the base origin: a return 1 m ahead of it (beam at 0.05 rad), one 1 m to its left
    bins = scan_to_bins(np.array([1.0, 1.0], np.float32), 0.05, math.pi / 2 - 0.05, 0.1, 4.0, Mount(x_m=0.2))
    left = math.atan2(1.0, 0.2)
    assert bins[8] == pytest.approx(math.hypot(0.2 + math.cos(0.05), math.sin(0.05)), abs=1e-6)
    assert bins[int((left + math.pi) // WIDTH)] == pytest.approx(math.hypot(0.2, 1.0), abs=1e-6)
    assert np.sum(~unknown_sectors(bins)) == 2
    # an upside-down scanner (roll pi) sees its +90 deg beam on the base's right
    bins = scan_to_bins(np.array([1.0], np.float32), math.pi / 2 - 0.01, 0.01, 0.1, 4.0, Mount(roll_rad=math.pi))
    assert bins[4] == pytest.approx(1.0) and np.sum(~unknown_sectors(bins)) == 1


def test_a_270_deg_scanner_leaves_its_blind_sectors_unknown_not_free():
    n, fov = 539, math.radians(269.0)            # edges at +-134.5 deg, clear of the sector boundaries
    ranges = np.full(n, np.inf, np.float32)      # nothing in range: free where it looks
    args = (ranges, -fov / 2, fov / (n - 1), 0.1, 4.0)
    forward = scan_to_bins(*args)
    assert np.flatnonzero(unknown_sectors(forward)).tolist() == [0, 1, 14, 15]   # the rear 90 deg
    assert np.all(forward[2:14] == SCAN_RANGE_MAX_M)
    turned = scan_to_bins(*args, Mount(yaw_rad=math.pi / 2))   # TurtleBot 4: the laser turned 90 deg left
    assert np.flatnonzero(unknown_sectors(turned)).tolist() == [2, 3, 4, 5]     # blind on the right


def test_beams_in_base_keep_an_axis_scanner_and_move_an_offset_one():
    ranges = np.array([1.0, np.inf, np.nan, 0.05], np.float32)
    a, r, lo, hi = beams_in_base(ranges, 0.0, 0.5, 0.1, 4.0, Mount(z_m=0.1))
    assert np.allclose(a, [0.0, 0.5, 1.0, 1.5]) and (lo, hi) == (0.1, 4.0)
    assert r[0] == 1.0 and np.isinf(r[1]) and np.isnan(r[2]) and r[3] == np.float32(0.05)
    a, r, lo, hi = beams_in_base(ranges, 0.0, 0.5, 0.1, 4.0, Mount(x_m=0.2))
    assert r[0] == pytest.approx(1.2) and np.isinf(r[1]) and np.isnan(r[2]) and np.isinf(r[3])
    assert lo == pytest.approx(0.0) and hi == pytest.approx(4.2)


def _rear_blind() -> np.ndarray:
    bins = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    bins[[0, 1, 14, 15]] = UNKNOWN_RANGE_M
    return bins


def test_unknown_sectors_stop_motion_into_them_only():
    s = _rear_blind()
    assert predicted_clearance(s, 0.0, 0.0, 2.0, RADIUS) == math.inf      # standing
    assert predicted_clearance(s, 0.0, 1.5, 2.0, RADIUS) == math.inf      # turning in place
    assert predicted_clearance(s, 0.5, 0.0, 2.0, RADIUS) == math.inf      # forwards, into what it sees
    assert predicted_clearance(s, 0.3, 0.6, 2.0, RADIUS) == math.inf      # a forward arc
    back = predicted_clearance(s, -0.3, 0.0, 2.0, RADIUS)
    assert back == pytest.approx(-0.6, abs=0.02)                          # reversing blind: contact
    assert obstacle_points(s).shape == (0, 2)                             # unknown is no obstacle point
    # a return ahead still counts as before
    s[8] = 1.0
    assert predicted_clearance(s, 0.0, 0.0, 2.0, RADIUS) == pytest.approx(1.0 - RADIUS, abs=1e-6)
    assert predicted_clearance(s, 0.2, 0.0, 2.0, RADIUS) == pytest.approx(1.0 - 0.4 - RADIUS, abs=0.02)


def test_a_stale_scan_lets_the_robot_turn_but_not_move():
    stale = np.full(N_SCAN_BINS, UNKNOWN_RANGE_M, np.float32)
    assert predicted_clearance(stale, 0.0, 1.0, 1.0, RADIUS) == math.inf
    for v in (0.3, -0.3):
        assert predicted_clearance(stale, v, 0.0, 1.0, RADIUS) < 0.0


@settings(max_examples=300, deadline=None)
@given(unknown=st.lists(st.booleans(), min_size=N_SCAN_BINS, max_size=N_SCAN_BINS),
       v=st.floats(-1.0, 1.0), w=st.floats(-3.0, 3.0), horizon_s=st.floats(0.1, 3.0))
def test_watchdog_and_rule_agree_on_entering_unknown_sectors(unknown, v, w, horizon_s):
    """Contact from unknown sectors alone iff some point of the rollout lies in one beyond UNKNOWN_ENTRY_M;
    a turn in place never is."""
    from hjepa_agent.core.geometry import rollout
    bins = np.where(unknown, UNKNOWN_RANGE_M, SCAN_RANGE_MAX_M).astype(np.float32)
    clear = predicted_clearance(bins, v, w, horizon_s, RADIUS)
    pos = rollout(np.array([[v, w]]), horizon_s, horizon_s)
    k = sector_index(np.arctan2(pos[:, 1], pos[:, 0]))
    entered = np.asarray(unknown)[k] & (np.hypot(pos[:, 0], pos[:, 1]) > UNKNOWN_ENTRY_M)
    assert (clear < 0.0) == bool(entered.any())
    if v == 0.0:
        assert clear == math.inf


def _ws(bins: np.ndarray, pose=(1.0, -2.0, 0.7)) -> WorldState:
    return world_state(pose=pose, goal=(0.0, 0.0), scan=bins)


def test_plan_cost_uses_the_same_rule_in_the_odom_frame():
    ws = _ws(_rear_blind())
    cost = planner_cost(RADIUS)
    x, y, yaw = (float(a) for a in ws.pose)
    steps = np.arange(6)[:, None] * 0.1
    fwd = np.concatenate([x + steps * math.cos(yaw), y + steps * math.sin(yaw), np.full_like(steps, yaw)], 1)
    back = np.concatenate([x - steps * math.cos(yaw), y - steps * math.sin(yaw), np.full_like(steps, yaw)], 1)
    spin = np.concatenate([np.full_like(steps, x), np.full_like(steps, y), yaw + steps * 3.0], 1)
    states = np.stack([fwd, back, spin]).astype(np.float32)
    none = np.zeros((0, 2), np.float32)
    clear = cost.clearance(states, none, ws)
    assert clear[0] > 0.0 and clear[2] > 0.0 and clear[1] < 0.0
    assert np.all(cost.clearance(states, none) > 0.0)     # without the world state: no unknown sectors


def test_cem_turns_round_rather_than_reversing_blind():
    ws = _ws(_rear_blind(), pose=(0.0, 0.0, 0.0))
    goal = np.array([-1.5, 0.0], np.float32)           # straight behind, where the scanner does not see
    planner = CEMPlanner(CEMConfig(iterations=6, samples=128), planner_cost(RADIUS))
    plan = planner.plan(ws, goal, Budget(10 ** 6))
    rel = plan.states[1:, :2]
    assert np.all(unknown_clearance_m(rel, ws.scan_bins) == math.inf), plan.actions
    assert plan.extras["min_clearance_m"] >= 0.0


def test_estimator_gives_unknown_sectors_the_missing_variance():
    est = Estimator()
    bins = _rear_blind()
    bins[8] = 1.0
    ws = est.on_percept(Percept(0.1, np.zeros(N_LATENT, np.float32), bins, 1.0))
    var = ws.variance[8:8 + N_SCAN_BINS]
    assert np.all(var[unknown_sectors(bins)] == est.cfg.missing_scan_variance_m2)
    assert np.all(var[~unknown_sectors(bins)] == est.cfg.scan_variance_m2)


def test_odometry_monitor_reads_unknown_sectors_as_no_data():
    ring = np.full(N_SCAN_BINS, 2.0)
    blind = ring.copy()
    blind[:8] = UNKNOWN_RANGE_M
    moved = _reproject(blind, (0.0, 0.0, 0.0))
    assert np.all(moved[:8] == SCAN_RANGE_MAX_M) and np.allclose(moved[8:], 2.0)   # no points from unknown ones
    assert _scan_error(ring, blind) == pytest.approx(0.0)   # compared over the 8 seen sectors only
    blind[:13] = UNKNOWN_RANGE_M
    assert _scan_error(ring, blind) is None                 # 3 seen sectors: too few to tell


def test_mount_rotation_is_urdf_rpy():
    m = Mount(roll_rad=0.3, pitch_rad=-0.2, yaw_rad=1.1)
    def rx(a): return np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    def ry(a): return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    def rz(a): return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    assert np.allclose(m.rotation(), rz(1.1) @ ry(-0.2) @ rx(0.3))
    with pytest.raises(ValueError, match="yaw_rad"):
        Mount(yaw_rad=math.nan)
