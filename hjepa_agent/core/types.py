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
UNKNOWN_RANGE_M = 0.0
"""The value of an *unknown* sector: one that no beam of the scan covered (a scanner with less than
360 deg of view, or one mounted off the base origin), and every sector while the scan is missing or
stale. Unknown is never free: the planners and the watchdog treat it as occupied beyond the footprint
(:func:`unknown_clearance_m`), the estimator gives it its missing-sector variance. A return is never
reported below MIN_RETURN_M, so a return cannot read as unknown."""
MIN_RETURN_M = 1e-3
"""A sector's range of a return closer than this to the base origin reads this value."""
UNKNOWN_ENTRY_M = 0.01
"""A rollout point farther than this from where the scan was taken, inside an unknown sector, is
contact (:func:`unknown_clearance_m`); nearer points (a turn in place) are not."""
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


def sector_index(angles: np.ndarray) -> np.ndarray:
    """Sector (int64, same shape) of each angle (rad, any value; base frame): k for angles in
    [-pi + k*2pi/N, -pi + (k+1)*2pi/N) after wrapping."""
    wrapped = (np.asarray(angles, dtype=np.float64) + math.pi) % (2.0 * math.pi)
    return np.minimum((wrapped / (2.0 * math.pi) * N_SCAN_BINS).astype(np.int64), N_SCAN_BINS - 1)


def unknown_sectors(scan_bins: np.ndarray) -> np.ndarray:
    """Bool mask (N_SCAN_BINS,) of the unknown sectors (UNKNOWN_RANGE_M; also anything not > 0, NaN included)."""
    return ~(np.asarray(scan_bins, dtype=np.float64) > UNKNOWN_RANGE_M)


def unknown_clearance_m(points_xy: np.ndarray, scan_bins: np.ndarray) -> np.ndarray:
    """Clearance (m) of the robot's centre at ``points_xy`` (..., 2), in the base frame the scan
    sectors were taken in, from the unknown sectors: the one rule for "unknown counts as occupied".

    A point farther than UNKNOWN_ENTRY_M from the origin whose sector is unknown is contact: it reads
    ``-distance`` (< 0). Every other point reads +inf (the unknown sectors do not limit it; obstacles
    seen in the known sectors are a separate clearance). So a robot whose scanner leaves sectors
    unknown (a 270-deg scanner: the rear 90 deg) may stand, turn in place and drive into what it sees,
    while any motion into an unknown sector is predicted contact. Shape (...), float64.

    Limit: the test is on the centre only; the footprint's sweep beside the centre's path is not
    checked against unknown sectors (a disc moving at angle a from its start covers new ground
    within 90 deg of a only, so the sweep reaches an unknown sector beside the path only where the
    path runs within 90 deg of it)."""
    p = np.asarray(points_xy, dtype=np.float64)
    unknown = unknown_sectors(scan_bins)
    dist = np.hypot(p[..., 0], p[..., 1])
    if not unknown.any():
        return np.full(dist.shape, math.inf)
    inside = unknown[sector_index(np.arctan2(p[..., 1], p[..., 0]))] & (dist > UNKNOWN_ENTRY_M)
    return np.where(inside, -dist, math.inf)


@dataclass(frozen=True)
class Mount:
    """Pose of a sensor's frame in the base frame (a URDF joint chain's result): translation (m) and
    fixed-axis roll, pitch, yaw (rad; R = Rz(yaw) Ry(pitch) Rx(roll), as URDF's ``rpy``)."""

    x_m: float = 0.0
    y_m: float = 0.0
    z_m: float = 0.0
    roll_rad: float = 0.0
    pitch_rad: float = 0.0
    yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        for name in ("x_m", "y_m", "z_m", "roll_rad", "pitch_rad", "yaw_rad"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"Mount.{name}: must be finite, got {getattr(self, name)!r}")

    def rotation(self) -> np.ndarray:
        """Rotation matrix (3, 3) from the sensor frame to the base frame."""
        cr, sr = math.cos(self.roll_rad), math.sin(self.roll_rad)
        cp, sp = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        cy, sy = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                         [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                         [-sp, cp * sr, cp * cr]])

    @property
    def planar_yaw_only(self) -> bool:
        """True when the sensor sits on the base's z axis, level: its plane is the base's, turned by yaw."""
        return self.x_m == 0.0 and self.y_m == 0.0 and self.roll_rad == 0.0 and self.pitch_rad == 0.0

    def to_base_xy(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (x, y, 0) of the sensor's plane (m, any equal shapes) -> their base-frame (x, y) (m)."""
        r = self.rotation()
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        return r[0, 0] * x + r[0, 1] * y + self.x_m, r[1, 0] * x + r[1, 1] * y + self.y_m


class Mode(enum.IntEnum):
    """Decision mode, owned by the watchdog and obeyed by the bridge."""

    HABITUAL = 0
    PLANNING = 1
    OPTIMISING = 2
    SAFE_STOP = 3


@dataclass(frozen=True)
class EarlyPercept:
    """The part of a camera frame's Percept that the reflex path needs (latent and scan sectors), which
    perception publishes before it computes the image statistics (quality, noise, look, change) that only
    the ambiguity reads: the estimator folds it in and the habitual policy answers while they are computed."""

    stamp_s: float
    latent: np.ndarray
    scan_bins: np.ndarray

    SIZE = N_LATENT + N_SCAN_BINS

    def vector(self) -> np.ndarray:
        """[latent (16), scan_bins (16)], float32 (32,): the head of Percept.vector."""
        return np.concatenate([self.latent, self.scan_bins]).astype(np.float32)

    @staticmethod
    def from_vector(stamp_s: float, v: np.ndarray) -> "EarlyPercept":
        """Inverse of :meth:`vector`; raises ValueError on a wrong size or non-finite values."""
        v = np.asarray(v, dtype=np.float32)
        if v.shape != (EarlyPercept.SIZE,):
            raise ValueError(f"early percept vector has shape {v.shape}, expected ({EarlyPercept.SIZE},)")
        if not np.all(np.isfinite(v)):
            raise ValueError("early percept vector has non-finite values")
        return EarlyPercept(stamp_s, v[:N_LATENT].copy(), v[N_LATENT:].copy())


@dataclass(frozen=True)
class Percept:
    """What perception hands the estimator for one camera frame.

    latent: (N_LATENT,) encoder output; scan_bins: (N_SCAN_BINS,) metres, the
    minimum range per sector of the latest scan; quality in [0, 1] (1 = clean image);
    noise_log: log of the image's sensor-noise sigma (grey levels, core.perception.image_noise_sigma);
    appearance_log: the image's look score, log of its mean distance to the nearest training looks
    (core.look.LookModel.score), 0.0 when perception has no look model;
    image_change: mean absolute grey-level change since the image about IMAGE_STILL_S (1 s) earlier
    (core.perception.image_change, paired by time: ImageHistory), -1.0 when perception has none that old.
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

    @property
    def early(self) -> EarlyPercept:
        """Its early part (latent and scan sectors): what perception published first for this frame."""
        return EarlyPercept(self.stamp_s, self.latent, self.scan_bins)

    @staticmethod
    def from_vector(stamp_s: float, v: np.ndarray) -> "Percept":
        """Inverse of :meth:`vector`; raises ValueError on a wrong size or non-finite values."""
        v = np.asarray(v, dtype=np.float32)
        if v.shape != (Percept.SIZE,):
            raise ValueError(f"percept vector has shape {v.shape}, expected ({Percept.SIZE},)")
        if not np.all(np.isfinite(v)):
            raise ValueError("percept vector has non-finite values")
        head, n = EarlyPercept.from_vector(stamp_s, v[:EarlyPercept.SIZE]), EarlyPercept.SIZE
        return Percept(stamp_s, head.latent, head.scan_bins, float(v[n]), float(v[n + 1]), float(v[n + 2]),
                       float(v[n + 3]))


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
