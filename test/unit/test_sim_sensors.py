"""The simulated sensors (sim/sensors.py): their schedule on the lockstep tick, the camera's and the
odometry's noise (and the covariances published with it), and the delay line of a sensor_delay fault."""
from __future__ import annotations

import numpy as np
import pytest

from hjepa_agent.sim.sensors import (CAMERA_NOISE_LEVELS, LATERAL_NOISE_STD, ODOM_NOISE_STD, POSE_COVARIANCE, TICK_S,
                                     TWIST_COVARIANCE, DelayLine, camera_due, noisy_image, odom_due, odom_reading,
                                     slow_due)


def test_the_schedule_gives_each_sensor_its_rate_and_the_camera_its_phase() -> None:
    ticks = range(1000)   # 10 s
    camera = [t for t in ticks if camera_due(t)]
    assert len(camera) == 100 and camera[:2] == [3, 13]   # 10 Hz, 30 ms after the bridge's 20 Hz ticks
    assert sum(odom_due(t) for t in ticks) == 500 and sum(slow_due(t) for t in ticks) == 20
    # unsynchronised, as separate drivers are: no frame shares its tick with odometry or the bridge's tick
    assert not any(odom_due(t) or t % 5 == 0 for t in camera)
    assert TICK_S == pytest.approx(0.01)


def test_camera_noise_moves_every_frame_within_its_levels_and_stays_a_valid_image() -> None:
    rng = np.random.default_rng(3)
    flat = np.full((64, 64, 3), 128, np.uint8)
    a, b = noisy_image(flat, rng), noisy_image(flat, rng)
    assert a.dtype == np.uint8 and a.shape == flat.shape
    assert not np.array_equal(a, b)   # a real camera never repeats a frame bit for bit
    diff = a.astype(int) - 128
    assert diff.min() == -CAMERA_NOISE_LEVELS and diff.max() == CAMERA_NOISE_LEVELS
    assert 1.5 < diff.std() < 2.5     # sigma ~2 grey levels
    edges = noisy_image(np.stack([np.zeros((8, 8)), np.full((8, 8), 255), np.zeros((8, 8))], -1).astype(np.uint8), rng)
    assert edges[..., 0].max() <= CAMERA_NOISE_LEVELS and edges[..., 1].min() >= 255 - CAMERA_NOISE_LEVELS
    assert np.array_equal(noisy_image(flat, np.random.default_rng(7)), noisy_image(flat, np.random.default_rng(7)))


def test_odometry_noise_has_its_stated_spread_and_the_covariances_say_so() -> None:
    rng = np.random.default_rng(0)
    rows = np.array([[r.x, r.y, r.yaw, r.v, r.w, r.vy] for r in
                     (odom_reading((1.0, -2.0, 0.5), (0.3, 0.1), 0.02, rng) for _ in range(4000))])
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    assert mean == pytest.approx([1.0, -2.0, 0.5, 0.3, 0.1, 0.02], abs=1e-3)
    assert std == pytest.approx(list(ODOM_NOISE_STD) + [LATERAL_NOISE_STD], rel=0.06)
    x, y, yaw, v, w = (s * s for s in ODOM_NOISE_STD)
    assert (POSE_COVARIANCE[0], POSE_COVARIANCE[7], POSE_COVARIANCE[35]) == pytest.approx((x, y, yaw))
    assert (TWIST_COVARIANCE[0], TWIST_COVARIANCE[7], TWIST_COVARIANCE[35]) == pytest.approx((v, LATERAL_NOISE_STD ** 2, w))
    assert all(POSE_COVARIANCE[i] == TWIST_COVARIANCE[i] == 1e6 for i in (14, 21, 28))   # z, roll, pitch unmeasured


def test_odometry_draws_in_a_fixed_order_so_a_seed_gives_the_same_run() -> None:
    rng = np.random.default_rng(11)
    noise, lateral = rng.normal(0.0, ODOM_NOISE_STD), rng.normal(0.0, LATERAL_NOISE_STD)
    r = odom_reading((0.0, 0.0, 0.0), (0.0, 0.0), 0.0, np.random.default_rng(11))
    assert (r.x, r.y, r.yaw, r.v, r.w, r.vy) == pytest.approx((*noise, lateral)[:3] + (noise[3], noise[4], lateral))
    z, w = r.quaternion_zw
    assert 2.0 * np.arctan2(z, w) == pytest.approx(r.yaw)


def test_the_delay_line_holds_readings_for_the_delay_and_keeps_their_order() -> None:
    line = DelayLine()
    for k in range(5):
        line.push(0.1 * k, k)
    assert line.due(0.25, delay_s=0.0) == [0, 1, 2]
    assert line.due(0.45, delay_s=0.2) == []          # 3 was taken at 0.3: due at 0.5
    assert line.due(0.5, delay_s=0.2) == [3]
    line.clear()
    assert line.due(10.0, delay_s=0.0) == []


def test_the_true_world_state_is_the_simulators_present_binned_as_perception_bins_it() -> None:
    """One builder of a WorldState from simulator state (the planner-driven episodes and the trainers'
    collection both use it): true pose and speeds, the goal set, the scan's sectors through the laser's mount."""
    from types import SimpleNamespace

    from hjepa_agent.core.perception import scan_to_bins
    from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, WORLD_STATE_LABELS, Mount
    from hjepa_agent.sim.sensors import true_world_state
    spec = SimpleNamespace(angle_min_rad=-np.pi, angle_increment_rad=2 * np.pi / 64, range_min_m=0.1, range_max_m=8.0)
    ranges = np.linspace(0.5, 6.0, 64).astype(np.float32)
    mount = Mount(x_m=0.1, z_m=0.3, yaw_rad=0.4)
    scans = []

    def scan() -> np.ndarray:
        scans.append(1)
        return ranges
    world = SimpleNamespace(robot=SimpleNamespace(scan=spec), scan=scan, scan_mount=lambda: mount,
                            pose=lambda: (1.0, -2.0, 0.5), twist=lambda: (0.3, -0.1))
    ws = true_world_state(world, (4.0, 1.0), 7.5)
    assert scans == [1]
    assert ws.stamp_s == 7.5 and ws.has_goal and np.allclose(ws.goal, (4.0, 1.0))
    assert np.allclose(ws.pose, (1.0, -2.0, 0.5)) and np.allclose(ws.twist, (0.3, -0.1))
    assert ws.scan_bins.shape == (N_SCAN_BINS,)
    assert np.array_equal(ws.scan_bins, scan_to_bins(ranges, spec.angle_min_rad, spec.angle_increment_rad,
                                                      spec.range_min_m, spec.range_max_m, mount))
    assert not ws.latent.any() and ws.latent.shape == (N_LATENT,) and ws.ambiguity == 0.0
    assert ws.variance.shape == (len(WORLD_STATE_LABELS),) and not ws.variance.any()
    again = true_world_state(world, (4.0, 1.0), 7.5, ranges=ranges)   # a scan already taken is not taken again
    assert scans == [1] and np.array_equal(again.scan_bins, ws.scan_bins)
