"""Core value types passed between the agent's parts, and their fixed layouts.

All arrays are float32 numpy arrays; all times are seconds (``*_s``) on the
clock of the node that handles them (sim time in simulation). ``stamp_s`` on
every type is the stamp of the camera image the value was derived from, so the
bridge's output carries the originating sensor stamp end to end.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

N_LATENT = 16
"""Size of the camera latent produced by the encoder."""
N_SCAN_BINS = 16
"""Number of range sectors in a percept; sector k spans angles
[-pi + k*2pi/N, -pi + (k+1)*2pi/N) in the base frame (x forward, counter-clockwise)."""
SCAN_RANGE_MAX_M = 4.0
"""Ranges are clipped to this value; 'no return' reads as this value."""
GOAL_DIST_SCALE_M = 5.0
"""Goal distance is divided by this in the habitual features."""

POSE_LABELS = ("x", "y", "yaw", "v", "w")
GOAL_LABELS = ("goal_x", "goal_y", "has_goal")
SCAN_LABELS = tuple(f"scan_{k}" for k in range(N_SCAN_BINS))
LATENT_LABELS = tuple(f"z_{k}" for k in range(N_LATENT))
WORLD_STATE_LABELS = POSE_LABELS + GOAL_LABELS + SCAN_LABELS + LATENT_LABELS
"""Layout of :meth:`WorldState.vector` (and of its variance)."""
N_HABITUAL_FEATURES = 5 + N_SCAN_BINS + N_LATENT
"""[goal_dist/scale, cos bearing, sin bearing, v/vmax, w/wmax, scan/range_max (16), latent (16)]."""


def sector_angles() -> np.ndarray:
    """Centre angle (rad) of each scan sector, shape (N_SCAN_BINS,)."""
    width = 2.0 * math.pi / N_SCAN_BINS
    return (-math.pi + width * (np.arange(N_SCAN_BINS) + 0.5)).astype(np.float32)


class Mode(enum.IntEnum):
    """Decision mode, owned by the watchdog and obeyed by the bridge."""

    HABITUAL = 0
    PLANNING = 1
    OPTIMISING = 2
    SAFE_STOP = 3


@dataclass(frozen=True)
class Percept:
    """What perception hands the estimator for one camera frame.

    latent: (N_LATENT,) encoder output; scan_bins: (N_SCAN_BINS,) metres, the
    minimum range per sector of the latest scan; quality in [0, 1] (1 = clean image);
    noise_log: log of the image's sensor-noise sigma (grey levels, core.perception.image_noise_sigma);
    appearance_log: log Mahalanobis distance of the image's look under the world model's training
    images (core.perception.appearance_score), 0.0 when perception has no such statistics;
    image_change: mean absolute grey-level change since the image IMAGE_STILL_K frames earlier
    (core.perception.image_change), -1.0 until perception has seen that many frames.
    """

    stamp_s: float
    latent: np.ndarray
    scan_bins: np.ndarray
    quality: float
    noise_log: float = 0.0
    appearance_log: float = 0.0
    image_change: float = -1.0

    SIZE = N_LATENT + N_SCAN_BINS + 4

    def vector(self) -> np.ndarray:
        """[latent (16), scan_bins (16), quality, noise_log, appearance_log, image_change], float32 (36,)."""
        return np.concatenate([self.latent, self.scan_bins, [self.quality, self.noise_log, self.appearance_log,
                                                             self.image_change]]).astype(np.float32)

    @staticmethod
    def from_vector(stamp_s: float, v: np.ndarray) -> "Percept":
        """Inverse of :meth:`vector`; raises ValueError on a wrong size or non-finite values."""
        v = np.asarray(v, dtype=np.float32)
        if v.shape != (Percept.SIZE,):
            raise ValueError(f"percept vector has shape {v.shape}, expected ({Percept.SIZE},)")
        if not np.all(np.isfinite(v)):
            raise ValueError("percept vector has non-finite values")
        n = N_LATENT + N_SCAN_BINS
        return Percept(stamp_s, v[:N_LATENT].copy(), v[N_LATENT:n].copy(), float(v[n]), float(v[n + 1]),
                       float(v[n + 2]), float(v[n + 3]))


@dataclass(frozen=True)
class WorldState:
    """The estimator's belief: mean and variance over the layout WORLD_STATE_LABELS.

    pose (3,): x, y (m), yaw (rad) in the odom frame; twist (2,): v (m/s), w (rad/s);
    goal (2,) in the odom frame and has_goal; scan_bins (16,) m; latent (16,).
    variance has the same layout as :meth:`vector`. ambiguity is a scalar >= 0.
    """

    stamp_s: float
    pose: np.ndarray
    twist: np.ndarray
    goal: np.ndarray
    has_goal: bool
    scan_bins: np.ndarray
    latent: np.ndarray
    variance: np.ndarray
    ambiguity: float

    def vector(self) -> np.ndarray:
        """Mean in WORLD_STATE_LABELS order, float32, shape (len(WORLD_STATE_LABELS),)."""
        return np.concatenate([self.pose, self.twist, self.goal, [1.0 if self.has_goal else 0.0],
                               self.scan_bins, self.latent]).astype(np.float32)

    @staticmethod
    def from_vector(stamp_s: float, mean: np.ndarray, variance: np.ndarray, ambiguity: float) -> "WorldState":
        """Inverse of :meth:`vector`; raises ValueError on wrong sizes or non-finite values."""
        n = len(WORLD_STATE_LABELS)
        mean = np.asarray(mean, dtype=np.float32)
        variance = np.asarray(variance, dtype=np.float32)
        if mean.shape != (n,) or variance.shape != (n,):
            raise ValueError(f"world state has shapes {mean.shape}/{variance.shape}, expected ({n},)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(variance)) and math.isfinite(ambiguity)):
            raise ValueError("world state has non-finite values")
        i = 0
        pose = mean[i:i + 3]; i += 3
        twist = mean[i:i + 2]; i += 2
        goal = mean[i:i + 2]; i += 2
        has_goal = bool(mean[i] > 0.5); i += 1
        scan = mean[i:i + N_SCAN_BINS]; i += N_SCAN_BINS
        latent = mean[i:i + N_LATENT]
        return WorldState(stamp_s, pose.copy(), twist.copy(), goal.copy(), has_goal, scan.copy(),
                          latent.copy(), variance.copy(), float(ambiguity))


def habitual_features(ws: WorldState, max_linear_mps: float, max_angular_rps: float) -> np.ndarray:
    """Features of the habitual policy, shape (N_HABITUAL_FEATURES,), float32.

    The same function builds training data and runtime inputs, so they cannot drift.
    Goal is expressed in the base frame (distance, bearing); speeds are normalised
    by the ego model's hard velocity limits; ranges by SCAN_RANGE_MAX_M.
    """
    x, y, yaw = (float(a) for a in ws.pose)
    if ws.has_goal:
        dx, dy = float(ws.goal[0]) - x, float(ws.goal[1]) - y
        dist = math.hypot(dx, dy)
        bearing = math.atan2(dy, dx) - yaw
    else:
        dist, bearing = 0.0, 0.0
    head = [min(dist, 2.0 * GOAL_DIST_SCALE_M) / GOAL_DIST_SCALE_M, math.cos(bearing), math.sin(bearing),
            float(ws.twist[0]) / max_linear_mps, float(ws.twist[1]) / max_angular_rps]
    scan = np.clip(ws.scan_bins, 0.0, SCAN_RANGE_MAX_M) / SCAN_RANGE_MAX_M
    return np.concatenate([head, scan, ws.latent]).astype(np.float32)


@dataclass(frozen=True)
class Proposal:
    """A velocity command proposed by a source (habitual or planner), not yet limited.

    v in m/s, w in rad/s; stamp_s is the originating camera stamp.
    """

    stamp_s: float
    v: float
    w: float
    source: str


@dataclass(frozen=True)
class Plan:
    """A plan: actions interleaved with predicted states, plus its scores.

    actions (H, 2): (v m/s, w rad/s) per step of dt_s; states (H+1, 3): predicted
    (x, y, yaw) in the odom frame, states[0] = current; log_probs (H,): per-step
    log-probability of the sampler (zeros for planners that have none);
    log_reward: estimated log R of the plan; risk in [0, 1]; ambiguity >= 0.
    """

    stamp_s: float
    actions: np.ndarray
    states: np.ndarray
    log_probs: np.ndarray
    log_reward: float
    risk: float
    ambiguity: float
    dt_s: float
    planner: str
    world_model_calls: int = 0
    explanation: str = ""
    extras: dict = field(default_factory=dict)

    @property
    def horizon(self) -> int:
        """Number of actions H."""
        return int(self.actions.shape[0])
