"""Odometry consistency: a pose or speed jump in the odom frame that neither speeds nor commands explain.

Why: REP-105 makes the odom frame continuous: the pose in it may drift, never jump. A relocalisation
written into it, a driver fault, or a robot pushed or carried breaks that, and all planned in the odom
frame steers to the wrong place (the reported fault: odometry jumped 2 m sideways and stayed there).

Check, between consecutive odometry messages (dt from their stamps; yaw difference wrapped):
    explained_m = speed_margin * min(max(|v_prev|, |v_now|, |v_cmd| in force over dt), max_linear_mps) * dt
                  + jump_margin_m;  explained_rad: the same with w, max_angular_rps, jump_margin_rad.
A pose change beyond either is reported once, and the monitor re-anchors on the new pose (a jump that
stays is one report). Speeds are capped at the hard limits, so a bogus speed excuses nothing. Over a
gap longer than max_gap_s the end speeds say nothing of the gap, so the bound takes the hard limits: the
gap re-anchors silently unless the pose moved farther than the robot can drive. A measured speed above
speed_margin x its hard limit is a velocity jump, reported once until it falls back under. Stamps that
do not increase are ignored (the input guard rejects them). Defaults: jump_margin_m 0.15 m,
jump_margin_rad 0.2 rad, speed_margin 1.5, max_gap_s 0.5 s; hard limits from the ego model.

Classification: on_odom reports a jump at once, kind UNKNOWN (a stop must not wait on the scan). With a
scan from at most classify_wait_s (0.5 s) before it (settled=False), the first scan stamped after it,
within classify_wait_s, settles it: on_scan returns the same jump (same stamp_s) with scan_moved and kind.
The before-scan's sector points are carried into the after-scan pose along the odometry with the jump
(robot moved: ROBOT_MOVED) and without it (world still: ODOMETRY_FAULT); the one whose ranges are closer
(median absolute sector difference, over sectors with a return: below SCAN_RANGE_MAX_M and not unknown,
core.types.UNKNOWN_RANGE_M, which is no return but no data) wins if its error is at most
scan_decisive_ratio (0.5) x the other's and the other's is above scan_tolerance_m (0.05 m).

Limits: not seen are a jump under the bound (0.15 m at rest), a slow creep, a jump within a gap the
robot could have driven. The jump's size is the pose change less the dead-reckoned motion (mean speeds;
over a gap, none). The scan cannot tell the kinds apart in open space, in a symmetric place (a corridor
moved along, a round room turned), or when the world moved with the robot (kind stays UNKNOWN), nor for
velocity jumps, nor for a jump followed by another before it settled. After a clock reset call reset().
"""
from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.config.loader import require
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, sector_angles, sector_index, unknown_sectors

Pose = tuple[float, float, float]  # x (m), y (m), yaw (rad), in the odom frame or relative
MIN_SCAN_SECTORS = 4  # sectors with a return (below SCAN_RANGE_MAX_M, not unknown) in both scans, for a comparison


@dataclass(frozen=True)
class OdometryCheckConfig:
    """Thresholds of :class:`OdometryConsistency`; meanings and units in the module docstring."""

    max_linear_mps: float
    max_angular_rps: float
    jump_margin_m: float = 0.15
    jump_margin_rad: float = 0.2
    speed_margin: float = 1.5
    max_gap_s: float = 0.5
    classify_wait_s: float = 0.5
    scan_decisive_ratio: float = 0.5
    scan_tolerance_m: float = 0.05

    def __post_init__(self) -> None:
        for name, hi in (("max_linear_mps", 20.0), ("max_angular_rps", 50.0), ("jump_margin_m", 10.0),
                         ("jump_margin_rad", math.pi), ("max_gap_s", 60.0), ("classify_wait_s", 10.0),
                         ("scan_decisive_ratio", 1.0), ("scan_tolerance_m", SCAN_RANGE_MAX_M)):
            val = getattr(self, name)
            require(0.0 < val <= hi, name, f"must be in (0, {hi}], got {name}={val}")
        require(1.0 <= self.speed_margin <= 10.0, "speed_margin", f"must be in [1, 10], got {self.speed_margin=}")

    @staticmethod
    def from_ego(ego: EgoModel, **overrides: float) -> OdometryCheckConfig:
        """Config with the ego model's hard velocity limits (m/s, rad/s) and the given other fields."""
        k = ego.hard.kinematics
        return OdometryCheckConfig(k.linear_x.max_velocity, k.angular_z.max_velocity, **overrides)


class JumpKind(enum.Enum):
    """What a jump was, as far as the scan can tell."""

    ODOMETRY_FAULT = "odometry_fault"  # the pose jumped, the world seen by the scan did not move
    ROBOT_MOVED = "robot_moved"        # the scan moved with the pose: the robot was pushed or carried
    UNKNOWN = "unknown"                # not classified (yet), or the scan cannot tell


@dataclass(frozen=True)
class OdometryJump:
    """One jump. stamp_s: stamp of the odometry message that jumped (s). dx_m, dy_m (odom frame),
    dyaw_rad: the pose change the speeds do not explain; distance_m = hypot(dx_m, dy_m).
    explained_m, explained_rad: the bound it was tested against; pose_jumped: the pose change
    exceeded it. speed_mps, rate_rps: the measured speed where it exceeded speed_margin x the hard
    limit (a velocity jump), else None. scan_moved: True the scan moved with the pose (robot moved),
    False it did not (odometry fault), None no scan could tell (yet). settled: False while
    :meth:`OdometryConsistency.on_scan` may still return an update of this jump."""

    stamp_s: float
    dx_m: float
    dy_m: float
    dyaw_rad: float
    distance_m: float
    explained_m: float
    explained_rad: float
    pose_jumped: bool
    speed_mps: float | None = None
    rate_rps: float | None = None
    scan_moved: bool | None = None
    kind: JumpKind = JumpKind.UNKNOWN
    settled: bool = True

    def describe(self) -> str:
        """One line for an event reason."""
        parts = [f"odometry jumped {self.distance_m:.2f} m, {self.dyaw_rad:+.2f} rad (speeds explain "
                 f"{self.explained_m:.2f} m, {self.explained_rad:.2f} rad)"] if self.pose_jumped else []
        parts += [f"odometry {name} {val:+.2f} {unit} beyond the hard limit" for name, val, unit in
                  (("speed", self.speed_mps, "m/s"), ("turn rate", self.rate_rps, "rad/s")) if val is not None]
        return f"{'; '.join(parts)} [{self.kind.value}]"


def _wrap(a: float) -> float:
    return math.remainder(a, math.tau)


def _compose(a: Pose, b: Pose) -> Pose:
    c, s = math.cos(a[2]), math.sin(a[2])
    return a[0] + c * b[0] - s * b[1], a[1] + s * b[0] + c * b[1], _wrap(a[2] + b[2])


def _rel(a: Pose, b: Pose) -> Pose:
    """Pose b seen from pose a."""
    c, s = math.cos(a[2]), math.sin(a[2])
    dx, dy = b[0] - a[0], b[1] - a[1]
    return c * dx + s * dy, -s * dx + c * dy, _wrap(b[2] - a[2])


def _reproject(scan: np.ndarray, rel: Pose) -> np.ndarray:
    """The scan's returns (sector points at sector centres; unknown sectors have none) seen from ``rel``
    (a pose in the scan's frame), re-binned to sector minima; sectors with no point read
    SCAN_RANGE_MAX_M. Shape (N_SCAN_BINS,)."""
    ang, keep = sector_angles().astype(np.float64), (scan < SCAN_RANGE_MAX_M) & ~unknown_sectors(scan)
    px, py = scan * np.cos(ang) - rel[0], scan * np.sin(ang) - rel[1]
    c, s = math.cos(rel[2]), math.sin(rel[2])
    qx, qy = c * px + s * py, -s * px + c * py
    k = sector_index(np.arctan2(qy, qx))
    out = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M)
    np.minimum.at(out, k[keep], np.minimum(np.hypot(qx, qy)[keep], SCAN_RANGE_MAX_M))
    return out


def _scan_error(predicted: np.ndarray, seen: np.ndarray) -> float | None:
    """Median absolute range difference (m) over sectors with a return (below max range, not unknown)
    in both; None if too few."""
    both = ((predicted < SCAN_RANGE_MAX_M) & (seen < SCAN_RANGE_MAX_M)
            & ~unknown_sectors(predicted) & ~unknown_sectors(seen))
    return float(np.median(np.abs(predicted - seen)[both])) if both.sum() >= MIN_SCAN_SECTORS else None


def _finite(**values: float) -> None:
    for name, val in values.items():
        if not math.isfinite(val):
            raise ValueError(f"{name}: must be finite, got {val!r}")


class OdometryConsistency:
    """Checks each odometry message against the last one; see the module docstring. All times are
    seconds on one clock (the odometry stamps'), all inputs finite (ValueError naming the field)."""

    def __init__(self, cfg: OdometryCheckConfig) -> None:
        self.cfg = cfg
        self.reset()

    def reset(self) -> None:
        """Forget all: the next odometry message is a new anchor (after a cleared stop or a clock reset)."""
        self._last: tuple[float, Pose, float, float] | None = None  # stamp_s, pose, v_mps, w_rps
        self._cmds: deque[tuple[float, float, float]] = deque(maxlen=64)  # now_s, |v_mps|, |w_rps|
        self._scans: deque[tuple[float, np.ndarray, Pose]] = deque(maxlen=8)  # stamp_s, ranges, odom pose
        self._pending: tuple[OdometryJump, np.ndarray, Pose, Pose, Pose] | None = None
        self._overspeed = (False, False)  # speed, turn rate above the limit at the last message

    def on_command(self, now_s: float, v_mps: float, w_rps: float) -> None:
        """A velocity command the bridge sent the base (m/s, rad/s); it holds until the next one."""
        _finite(now_s=now_s, v_mps=v_mps, w_rps=w_rps)
        self._cmds.append((now_s, abs(v_mps), abs(w_rps)))

    def on_scan(self, stamp_s: float, scan_bins: np.ndarray) -> OdometryJump | None:
        """A scan, (N_SCAN_BINS,) sector minimum ranges (m). Returns the pending jump, classified,
        when this is the first scan stamped after it (within classify_wait_s); else None."""
        scan = np.asarray(scan_bins, dtype=np.float64)
        if scan.shape != (N_SCAN_BINS,):
            raise ValueError(f"scan_bins: shape {scan.shape}, expected ({N_SCAN_BINS},)")
        _finite(stamp_s=stamp_s)
        if not np.all(np.isfinite(scan)):
            raise ValueError("scan_bins: must be finite")
        if self._last is None:
            return None
        scan, pose, out = np.clip(scan, 0.0, SCAN_RANGE_MAX_M), self._last[1], None
        if self._pending is not None and stamp_s >= self._pending[0].stamp_s:
            jump, before, moved, fault, jumped = self._pending
            self._pending = None
            if stamp_s - jump.stamp_s <= self.cfg.classify_wait_s:
                post = _rel(jumped, pose)
                out = self._classify(jump, before, scan, _compose(moved, post), _compose(fault, post))
        self._scans.append((stamp_s, scan, pose))
        return out

    def on_odom(self, stamp_s: float, x_m: float, y_m: float, yaw_rad: float, v_mps: float,
                w_rps: float) -> OdometryJump | None:
        """An odometry message: pose in the odom frame (m, rad), measured speeds (m/s, rad/s).
        Returns the jump it shows (once), else None."""
        _finite(stamp_s=stamp_s, x_m=x_m, y_m=y_m, yaw_rad=yaw_rad, v_mps=v_mps, w_rps=w_rps)
        c, last, pose = self.cfg, self._last, (x_m, y_m, _wrap(yaw_rad))
        if last is not None and stamp_s <= last[0]:
            return None
        fast_v, fast_w = abs(v_mps) > c.speed_margin * c.max_linear_mps, abs(w_rps) > c.speed_margin * c.max_angular_rps
        new_overspeed = (fast_v and not self._overspeed[0]) or (fast_w and not self._overspeed[1])
        self._overspeed = (fast_v, fast_w)
        self._last = (stamp_s, pose, v_mps, w_rps)
        if last is None:
            return None
        t0, prev, v0, w0 = last
        dt, gap = stamp_s - t0, stamp_s - t0 > c.max_gap_s
        cmd_v = cmd_w = 0.0
        for t, cv, cw in reversed(self._cmds):  # the command in force at t0 and those sent since
            cmd_v, cmd_w = max(cmd_v, cv), max(cmd_w, cw)
            if t <= t0:
                break
        lin = c.max_linear_mps if gap else min(max(abs(v0), abs(v_mps), cmd_v), c.max_linear_mps)
        ang = c.max_angular_rps if gap else min(max(abs(w0), abs(w_rps), cmd_w), c.max_angular_rps)
        explained_m = c.speed_margin * lin * dt + c.jump_margin_m
        explained_rad = c.speed_margin * ang * dt + c.jump_margin_rad
        jumped = (math.hypot(x_m - prev[0], y_m - prev[1]) > explained_m
                  or abs(_wrap(pose[2] - prev[2])) > explained_rad)
        if not (jumped or new_overspeed):
            return None
        # The jump: pose change less the dead-reckoned motion (mean speeds, capped; none over a gap).
        dr_s = 0.0 if gap else dt
        v_mean = float(np.clip(0.5 * (v0 + v_mps), -c.max_linear_mps, c.max_linear_mps))
        w_mean = float(np.clip(0.5 * (w0 + w_rps), -c.max_angular_rps, c.max_angular_rps))
        head = prev[2] + 0.5 * w_mean * dr_s
        pred = (prev[0] + v_mean * dr_s * math.cos(head), prev[1] + v_mean * dr_s * math.sin(head),
                prev[2] + w_mean * dr_s)
        dx, dy = x_m - pred[0], y_m - pred[1]
        jump = OdometryJump(stamp_s, dx, dy, _wrap(pose[2] - pred[2]), math.hypot(dx, dy), explained_m, explained_rad,
                            jumped, v_mps if fast_v else None, w_rps if fast_w else None)
        if not jumped:
            return jump
        before = [s for s in self._scans if t0 - c.classify_wait_s <= s[0] <= t0]
        self._scans.clear()  # poses from before the jump are in another frame now
        self._pending = None
        if not before:
            return jump
        jump = replace(jump, settled=False)
        _, ranges, scan_pose = before[-1]
        pre = _rel(scan_pose, prev)
        self._pending = (jump, ranges, _compose(pre, _rel(prev, pose)), _compose(pre, _rel(prev, pred)), pose)
        return jump

    def _classify(self, jump: OdometryJump, before: np.ndarray, after: np.ndarray, moved: Pose,
                  fault: Pose) -> OdometryJump:
        """Settle ``jump``: which motion since the before-scan, with the jump or without, explains the after-scan."""
        err_moved = _scan_error(_reproject(before, moved), after)
        err_fault = _scan_error(_reproject(before, fault), after)
        scan_moved = None
        if err_moved is not None and err_fault is not None:
            lo, hi = sorted((err_moved, err_fault))
            if hi > self.cfg.scan_tolerance_m and lo <= self.cfg.scan_decisive_ratio * hi:
                scan_moved = err_moved < err_fault
        kind = {None: JumpKind.UNKNOWN, True: JumpKind.ROBOT_MOVED, False: JumpKind.ODOMETRY_FAULT}[scan_moved]
        return replace(jump, scan_moved=scan_moved, kind=kind, settled=True)
