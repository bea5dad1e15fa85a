"""The simulated robot's sensors as a robot's drivers deliver them: when each is due on the lockstep
tick, and the noise real sensors add. ROS-free: nodes/sim.py (and the driver profiles' nodes/driver.py)
only convert these readings into messages and publish them.

Schedule (ticks of TICK_S): camera and scan at 10 Hz, CAMERA_PHASE ticks after the bridge's 20 Hz ticks and
between two odometry ticks, as unsynchronised hardware would be (a frame that shared its tick with odometry
waited for the estimator to take the odometry first: 0.35 ms of every frame's way to cmd_vel, where a robot's
drivers, on their own clocks, seldom line up); odometry and joint states at 50 Hz; battery, temperature and
the goal at 2 Hz.

Noise, drawn from the episode's generator in a fixed order (a run is reproducible from its seed):

* camera: each channel of each pixel moves by a uniform integer in [-CAMERA_NOISE_LEVELS,
  CAMERA_NOISE_LEVELS] (sigma ~2 grey levels), clipped to [0, 255]: a real camera never repeats a frame
  bit for bit, so perception's frozen-camera check means the same thing here as on a robot;
* odometry: Gaussian noise of ODOM_NOISE_STD on x, y, yaw, v, w, and LATERAL_NOISE_STD on the sideways
  speed (as a fused odometry, wheels + IMU, reports it: ~0 with grip, a slide without); the covariances
  published with it (POSE_COVARIANCE, TWIST_COVARIANCE: REP-105's 6x6 row-major, 1e6 on the axes a planar
  base does not measure) are those noises' variances.

And the world state an ideal estimator would make of the simulator's present (:func:`true_world_state`):
what the planner-driven episodes and the trainers' collection give their planners and policies.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from hjepa_agent.core.perception import scan_to_bins
from hjepa_agent.core.types import N_LATENT, WORLD_STATE_LABELS, WorldState

TICK_S = 0.01
"""Lockstep tick: /clock advances by this much per step."""
CAMERA_EVERY, CAMERA_PHASE = 10, 3
"""Camera and scan every CAMERA_EVERY ticks (10 Hz), at tick CAMERA_PHASE of each period."""
ODOM_EVERY = 2
"""Odometry and joint states every ODOM_EVERY ticks (50 Hz)."""
SLOW_EVERY = 50
"""Battery, temperature and goal every SLOW_EVERY ticks (2 Hz), at tick 1 of each period."""
CAMERA_NOISE_LEVELS = 3
"""Camera noise: a uniform integer in [-3, 3] grey levels per channel and pixel."""
ODOM_NOISE_STD = (0.002, 0.002, 0.005, 0.005, 0.01)
"""Odometry noise (standard deviations): x m, y m, yaw rad, v m/s, w rad/s."""
LATERAL_NOISE_STD = 0.005
"""Noise of the sideways speed (m/s) odometry reports."""
_UNMEASURED = 1e6


def _covariance(x: float, y: float, yaw: float) -> tuple[float, ...]:
    """A planar 6x6 row-major covariance: x, y and yaw as given, z, roll, pitch unmeasured."""
    cov = [0.0] * 36
    cov[0], cov[7], cov[14], cov[21], cov[28], cov[35] = x, y, _UNMEASURED, _UNMEASURED, _UNMEASURED, yaw
    return tuple(cov)


POSE_COVARIANCE = _covariance(4e-6, 4e-6, 2.5e-5)
"""Odometry pose covariance (m^2, rad^2): the squares of ODOM_NOISE_STD's x, y, yaw."""
TWIST_COVARIANCE = _covariance(2.5e-5, 2.5e-5, 1e-4)
"""Odometry twist covariance ((m/s)^2, (rad/s)^2): the variances of v's, the sideways speed's and w's noise."""


def camera_due(tick: int) -> bool:
    """Whether a camera frame and a scan are taken at ``tick``."""
    return tick % CAMERA_EVERY == CAMERA_PHASE


def odom_due(tick: int) -> bool:
    """Whether odometry and joint states are published at ``tick``."""
    return tick % ODOM_EVERY == 0


def slow_due(tick: int) -> bool:
    """Whether battery, temperature, goal and diagnostics are published at ``tick``."""
    return tick % SLOW_EVERY == 1


def noisy_image(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with the camera's noise (module doc); a new array."""
    noise = rng.integers(-CAMERA_NOISE_LEVELS, CAMERA_NOISE_LEVELS + 1, size=rgb.shape, dtype=np.int16)
    return np.clip(rgb.astype(np.int16) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class OdomReading:
    """What the odometry driver reports: pose (x, y m; yaw rad) in the odom frame, forward and sideways
    speed (m/s), yaw rate (rad/s), and the covariances published with them (36 each, row-major)."""

    x: float
    y: float
    yaw: float
    v: float
    vy: float
    w: float
    pose_covariance: tuple[float, ...] = POSE_COVARIANCE
    twist_covariance: tuple[float, ...] = TWIST_COVARIANCE

    @property
    def quaternion_zw(self) -> tuple[float, float]:
        """The yaw as a quaternion's (z, w) (x = y = 0)."""
        return math.sin(self.yaw / 2), math.cos(self.yaw / 2)


def odom_reading(pose: tuple[float, float, float], twist: tuple[float, float], lateral_mps: float,
                 rng: np.random.Generator) -> OdomReading:
    """The odometry of a base at ``pose`` (x m, y m, yaw rad) moving at ``twist`` (v m/s, w rad/s) and
    ``lateral_mps`` sideways, with the odometry's noise (module doc) drawn from ``rng``."""
    x, y, yaw = pose
    v, w = twist
    noise = rng.normal(0.0, ODOM_NOISE_STD)
    lateral = lateral_mps + float(rng.normal(0.0, LATERAL_NOISE_STD))
    return OdomReading(x + noise[0], y + noise[1], yaw + noise[2], v + noise[3], lateral, w + noise[4])


class DelayLine:
    """Readings held back by a sensor delay: :meth:`push` what is taken at sim time ``t_s``, :meth:`due`
    gives (in order) those taken at least ``delay_s`` before ``t_s``."""

    def __init__(self) -> None:
        self._queue: deque[tuple[float, Any]] = deque()

    def push(self, t_s: float, reading: Any) -> None:
        """Hold ``reading``, taken at ``t_s`` (s)."""
        self._queue.append((t_s, reading))

    def due(self, t_s: float, delay_s: float) -> list[Any]:
        """The readings whose delay has passed at ``t_s`` (s), oldest first; they leave the line."""
        out = []
        while self._queue and self._queue[0][0] <= t_s - delay_s + 1e-9:
            out.append(self._queue.popleft()[1])
        return out

    def clear(self) -> None:
        """Drop what is held (a new episode; dead sensors)."""
        self._queue.clear()


def true_world_state(world: Any, goal: Any, stamp_s: float, ranges: np.ndarray | None = None) -> WorldState:
    """The world state of a sim/world.py SimWorld ``world`` now, as an ideal estimator would give it: the true
    pose and speeds (the odom frame is the world's), ``goal`` (2,) set, the scan's sectors binned from the base
    origin through the laser's mount as perception bins them (``ranges``: the scan already taken, else
    ``world.scan()``), no latent, zero variance and ambiguity."""
    spec = world.robot.scan
    ranges = world.scan() if ranges is None else ranges
    bins = scan_to_bins(ranges, spec.angle_min_rad, spec.angle_increment_rad, spec.range_min_m, spec.range_max_m,
                        world.scan_mount())
    return WorldState(stamp_s, np.asarray(world.pose(), np.float32), np.asarray(world.twist(), np.float32),
                      np.asarray(goal, np.float32), True, bins, np.zeros(N_LATENT, np.float32),
                      np.zeros(len(WORLD_STATE_LABELS), np.float32), 0.0)


__all__ = ["CAMERA_EVERY", "CAMERA_NOISE_LEVELS", "CAMERA_PHASE", "DelayLine", "LATERAL_NOISE_STD", "ODOM_EVERY",
           "ODOM_NOISE_STD", "OdomReading", "POSE_COVARIANCE", "SLOW_EVERY", "TICK_S", "TWIST_COVARIANCE",
           "camera_due", "noisy_image", "odom_due", "odom_reading", "slow_due", "true_world_state"]
