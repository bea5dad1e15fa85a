"""OdometryConsistency: jumps in the odom frame are reported once, classified with the scan, and
nominal odometry (noise, turns, dropped messages, gaps) is never reported."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M
from hjepa_agent.core.watchdog.odometry import JumpKind, OdometryCheckConfig, OdometryConsistency, OdometryJump

ROOT = Path(__file__).resolve().parents[2]
EGO = load_ego_model(ROOT / "config" / "ego_model.yaml")
CFG = OdometryCheckConfig.from_ego(EGO)
HARD = EGO.hard.kinematics
SIGMA_POS_M, SIGMA_YAW_RAD, SIGMA_SPEED = 0.002, 0.005, 0.005
ODOM_DT_S = 0.02

# ---- a small world: a 6 m x 5 m room with two boxes, seen as 16 sector minimum ranges -------------
_WALLS = [((-3.0, -2.5), (3.0, -2.5)), ((3.0, -2.5), (3.0, 2.5)), ((3.0, 2.5), (-3.0, 2.5)),
          ((-3.0, 2.5), (-3.0, -2.5))]
for (x0, y0, x1, y1) in ((1.0, 0.8, 1.6, 1.3), (-2.0, -1.6, -1.2, -1.0)):
    _WALLS += [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))]
_SEG = np.array(_WALLS, dtype=np.float64)  # (S, 2, 2)


def room_scan(x: float, y: float, yaw: float, rays_per_sector: int = 9) -> np.ndarray:
    """Sector minimum ranges (m) from pose (x, y, yaw) in the room, clipped at SCAN_RANGE_MAX_M."""
    width = 2 * math.pi / N_SCAN_BINS
    ang = -math.pi + width * (np.arange(N_SCAN_BINS * rays_per_sector) + 0.5) / rays_per_sector + yaw
    d = np.stack([np.cos(ang), np.sin(ang)], 1)[:, None, :]  # (R, 1, 2)
    a, e = _SEG[None, :, 0, :] - np.array([x, y]), (_SEG[:, 1, :] - _SEG[:, 0, :])[None]  # (1, S, 2)
    den = d[..., 0] * e[..., 1] - d[..., 1] * e[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (a[..., 0] * e[..., 1] - a[..., 1] * e[..., 0]) / den
        u = (a[..., 0] * d[..., 1] - a[..., 1] * d[..., 0]) / den
    r = np.where((t > 0) & (u >= 0) & (u <= 1), t, np.inf).min(1)
    return np.minimum(r.reshape(N_SCAN_BINS, rays_per_sector).min(1), SCAN_RANGE_MAX_M)


# ---- trajectories -------------------------------------------------------------------------------
@dataclass
class Drive:
    """True motion at 50 Hz: t, x, y, yaw, v, w (arrays) and the commands (v_cmd, w_cmd)."""

    t: np.ndarray
    pose: np.ndarray  # (N, 3)
    v: np.ndarray
    w: np.ndarray
    v_cmd: np.ndarray
    w_cmd: np.ndarray


def drive(rng: np.random.Generator, duration_s: float, v_max: float = 0.6, w_max: float = 1.8,
          accel: float = 1.0, decel: float = 1.6, ang_accel: float = 5.0, start: tuple = (0.0, 0.0, 0.0)) -> Drive:
    """A unicycle chasing random (v, w) targets (held 0.3-3 s, a stop now and then) within the given limits."""
    n, sub = int(duration_s / ODOM_DT_S) + 1, 10
    h = ODOM_DT_S / sub
    out = np.zeros((n, 7))
    x, y, yaw = start
    v = w = vt = wt = 0.0
    hold = 0.0
    for i in range(n):
        if hold <= 0.0:
            vt = 0.0 if rng.random() < 0.15 else rng.uniform(0.0, v_max)
            wt = rng.uniform(-w_max, w_max) if rng.random() < 0.7 else 0.0
            hold = rng.uniform(0.3, 3.0)
        out[i] = (x, y, yaw, v, w, vt, wt)
        for _ in range(sub):
            v = min(vt, v + accel * h) if vt > v else max(vt, v - decel * h)
            w = min(wt, w + ang_accel * h) if wt > w else max(wt, w - ang_accel * h)
            x, y, yaw = x + v * h * math.cos(yaw + 0.5 * w * h), y + v * h * math.sin(yaw + 0.5 * w * h), yaw + w * h
        hold -= ODOM_DT_S
    return Drive(np.arange(n) * ODOM_DT_S, out[:, :3], out[:, 3], out[:, 4], out[:, 5], out[:, 6])


def frame_jump(pose: np.ndarray, at: np.ndarray, jump: tuple[float, float, float]) -> np.ndarray:
    """Poses re-expressed in an odom frame that jumped at pose ``at`` by (dx m, dy m, dyaw rad): ``at``
    becomes at + jump, and the motion after it stays consistent with the speeds."""
    th = jump[2]
    c, s = math.cos(th), math.sin(th)
    rx, ry = pose[:, 0] - at[0], pose[:, 1] - at[1]
    return np.stack([at[0] + jump[0] + c * rx - s * ry, at[1] + jump[1] + s * rx + c * ry, pose[:, 2] + th], 1)


def feed(mon: OdometryConsistency, d: Drive, rng: np.random.Generator, noise: float = 1.0,
         keep: np.ndarray | None = None, odom_pose: np.ndarray | None = None, scan_pose: np.ndarray | None = None,
         scan_every: int = 5) -> list[OdometryJump]:
    """Feed commands, odometry (noise x the stated sigmas; messages where keep is False dropped; poses
    odom_pose, default the true ones) and scans from scan_pose every scan_every messages (None: no
    scans). Returns every report and update, in order."""
    odom_pose = d.pose if odom_pose is None else odom_pose
    keep = np.ones(len(d.t), bool) if keep is None else keep
    reports = []
    for i, t in enumerate(d.t):
        if i == 0 or d.v_cmd[i] != d.v_cmd[i - 1] or d.w_cmd[i] != d.w_cmd[i - 1]:
            mon.on_command(t, d.v_cmd[i], d.w_cmd[i])
        if keep[i]:
            p = odom_pose[i] + noise * rng.normal(0.0, [SIGMA_POS_M, SIGMA_POS_M, SIGMA_YAW_RAD])
            v, w = d.v[i] + noise * rng.normal(0.0, SIGMA_SPEED), d.w[i] + noise * rng.normal(0.0, SIGMA_SPEED)
            reports.append(mon.on_odom(t, p[0], p[1], math.atan2(math.sin(p[2]), math.cos(p[2])), v, w))
        if scan_pose is not None and i % scan_every == 0:
            reports.append(mon.on_scan(t + 0.001, room_scan(*scan_pose[i])))
    return [r for r in reports if r is not None]


def monitor() -> OdometryConsistency:
    return OdometryConsistency(CFG)


# ---- config ---------------------------------------------------------------------------------------
def test_config_from_ego_takes_hard_limits():
    assert (CFG.max_linear_mps, CFG.max_angular_rps) == (HARD.linear_x.max_velocity, HARD.angular_z.max_velocity)
    assert OdometryCheckConfig.from_ego(EGO, jump_margin_m=0.3).jump_margin_m == 0.3


@pytest.mark.parametrize("field,value", [("max_linear_mps", 0.0), ("max_angular_rps", -1.0), ("jump_margin_m", 0.0),
                                         ("jump_margin_rad", 4.0), ("speed_margin", 0.9), ("max_gap_s", math.nan),
                                         ("classify_wait_s", 0.0), ("scan_decisive_ratio", 1.5),
                                         ("scan_tolerance_m", -0.1)])
def test_config_rejects_bad_values_naming_the_field(field, value):
    kwargs = {"max_linear_mps": 0.8, "max_angular_rps": 2.0, field: value}
    with pytest.raises(ValueError, match=f"^{field}:"):
        OdometryCheckConfig(**kwargs)


# ---- nominal odometry ------------------------------------------------------------------------------
def test_nominal_60s_trajectory_has_no_reports():
    rng = np.random.default_rng(7)
    d = drive(rng, 60.0, start=(0.0, 0.0, 3.0))
    assert d.v.max() == pytest.approx(0.6, abs=0.01) and np.abs(d.w).max() > 1.7  # it did reach the envelope
    assert np.any(np.diff(np.sign(np.sin(d.pose[:, 2]))) != 0)  # and crossed the yaw wrap-around
    assert feed(monitor(), d, rng) == []


def test_yaw_wrap_around_is_not_a_jump():
    mon = monitor()
    assert mon.on_odom(0.0, 0.0, 0.0, 3.1, 0.0, 1.0) is None
    assert mon.on_odom(0.02, 0.0, 0.0, -3.1, 0.0, 1.0) is None
    assert mon.on_odom(0.04, 0.0, 0.0, 3.1 + 2 * math.pi, 0.0, -1.0) is None


# ---- the reported fault: a jump sideways that stays --------------------------------------------------
def _straight(duration_s: float = 4.0, v: float = 0.4, start: tuple = (-1.5, 0.0, 0.0)) -> Drive:
    t = np.arange(int(duration_s / ODOM_DT_S) + 1) * ODOM_DT_S
    pose = np.stack([start[0] + v * t * math.cos(start[2]), start[1] + v * t * math.sin(start[2]),
                     np.full_like(t, start[2])], 1)
    return Drive(t, pose, np.full_like(t, v), np.zeros_like(t), np.full_like(t, v), np.zeros_like(t))


def test_odometry_jumping_sideways_and_staying_is_one_report_classified_as_odometry_fault():
    rng = np.random.default_rng(1)
    d = _straight()
    j = 100  # t = 2.0 s, just after a scan (scans every 5 messages, 10 Hz)
    odom = d.pose.copy()
    odom[j:] = frame_jump(d.pose[j:], d.pose[j], (0.0, 2.0, 0.0))
    reports = feed(monitor(), d, rng, odom_pose=odom, scan_pose=d.pose)  # the robot itself did not move sideways
    first, update = reports
    assert first.stamp_s == update.stamp_s == pytest.approx(d.t[j])
    assert first.pose_jumped and first.kind is JumpKind.UNKNOWN and not first.settled
    assert first.distance_m == pytest.approx(2.0, rel=0.02) and first.explained_m < 0.2
    assert (update.kind, update.scan_moved, update.settled) == (JumpKind.ODOMETRY_FAULT, False, True)
    assert "jumped 2.0" in update.describe() and "odometry_fault" in update.describe()


@pytest.mark.parametrize("jump", [(0.0, 2.0, 0.0), (0.6, -0.3, 0.0), (0.0, 0.0, 0.8), (0.3, 0.4, -1.2)])
@pytest.mark.parametrize("robot_moved", [True, False])
def test_scan_tells_a_moved_robot_from_an_odometry_fault(jump, robot_moved):
    rng = np.random.default_rng(2)
    d = _straight(v=0.3)
    j = 101
    odom = d.pose.copy()
    odom[j:] = frame_jump(d.pose[j:], d.pose[j], jump)
    reports = feed(monitor(), d, rng, odom_pose=odom, scan_pose=odom if robot_moved else d.pose)
    assert len(reports) == 2 and reports[0].kind is JumpKind.UNKNOWN
    assert reports[1].kind is (JumpKind.ROBOT_MOVED if robot_moved else JumpKind.ODOMETRY_FAULT)
    assert reports[1].scan_moved is robot_moved


def test_classification_unknown_where_the_scan_cannot_tell():
    d = _straight()
    odom = d.pose.copy()
    odom[100:] = frame_jump(d.pose[100:], d.pose[100], (0.0, 1.0, 0.0))
    mon = monitor()
    reports = []
    for i, t in enumerate(d.t):
        reports.append(mon.on_odom(t, *odom[i], d.v[i], d.w[i]))
        if i % 5 == 0:  # open space: every sector reads max range
            reports.append(mon.on_scan(t + 0.001, np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M)))
    first, update = [r for r in reports if r is not None]
    assert (update.kind, update.scan_moved, update.settled) == (JumpKind.UNKNOWN, None, True)


def test_without_a_scan_before_the_jump_the_report_is_settled_unknown():
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    jump = mon.on_odom(0.02, 0.0, 2.0, 0.0, 0.0, 0.0)
    assert jump.settled and jump.kind is JumpKind.UNKNOWN
    assert mon.on_scan(0.05, room_scan(0.0, 0.0, 0.0)) is None


def test_no_update_when_the_scan_after_comes_too_late():
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    mon.on_scan(0.0, room_scan(0.0, 0.0, 0.0))
    assert not mon.on_odom(0.02, 0.0, 2.0, 0.0, 0.0, 0.0).settled
    assert mon.on_scan(0.02 + CFG.classify_wait_s + 0.1, room_scan(0.0, 0.0, 0.0)) is None


# ---- stamps, gaps, commands, speeds -------------------------------------------------------------------
def test_duplicate_and_backward_stamps_are_ignored():
    mon = monitor()
    mon.on_odom(1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert mon.on_odom(1.0, 5.0, 5.0, 2.0, 0.0, 0.0) is None
    assert mon.on_odom(0.5, 5.0, 5.0, 2.0, 0.0, 0.0) is None
    assert mon.on_odom(1.02, 0.01, 0.0, 0.0, 0.0, 0.0) is None  # compared with the last accepted message
    assert mon.on_odom(1.04, 5.0, 5.0, 0.0, 0.0, 0.0).pose_jumped


def test_a_gap_reanchors_silently_unless_the_robot_could_not_have_driven_that_far():
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert mon.on_odom(1.0, 0.8, 0.0, 1.5, 0.0, 0.0) is None  # 1 s silent: it may have driven 0.8 m, turned 1.5 rad
    assert mon.on_odom(11.0, 6.0, 3.0, 0.0, 0.0, 0.0) is None  # 10 s silent: anything drivable
    jump = mon.on_odom(11.6, 6.0, 5.0, 0.0, 0.0, 0.0)  # 0.6 s silent, 2 m: beyond 1.5 x 0.8 m/s x 0.6 s + 0.15 m
    assert jump.pose_jumped and jump.distance_m == pytest.approx(2.0)


def test_commanded_speed_explains_motion_the_odometry_twist_does_not_report():
    def run(command: bool) -> list[OdometryJump]:
        mon = monitor()
        if command:
            mon.on_command(0.0, 0.6, 0.0)
        out = [mon.on_odom(t, 0.6 * t, 0.0, 0.0, 0.0, 0.0) for t in np.arange(0.0, 3.0, 0.4)]  # 2.5 Hz, twist 0
        return [r for r in out if r is not None]
    assert run(command=True) == []
    assert len(run(command=False)) == 7


def test_velocity_jump_is_reported_once_with_its_value():
    mon = monitor()
    out = [mon.on_odom(0.02 * i, 0.0, 0.0, 0.0, v, 0.0) for i, v in enumerate([0.5, 0.5, 5.0, 5.0, 0.5, 0.5, -4.0])]
    reports = [r for r in out if r is not None]
    assert [r.speed_mps for r in reports] == [5.0, -4.0]
    assert not any(r.pose_jumped for r in reports) and reports[0].rate_rps is None
    assert "speed +5.00 m/s" in reports[0].describe()
    rate = mon.on_odom(1.0, 0.0, 0.0, 0.0, 0.0, 1.5 * HARD.angular_z.max_velocity + 0.1)
    assert rate.rate_rps == pytest.approx(3.1) and rate.speed_mps is None


def test_a_bogus_speed_does_not_excuse_a_pose_jump():
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, 100.0, 0.0)
    jump = mon.on_odom(0.02, 2.0, 0.0, 0.0, 100.0, 0.0)
    assert jump.pose_jumped and jump.explained_m == pytest.approx(1.5 * 0.8 * 0.02 + 0.15)


@pytest.mark.parametrize("v,w,jump", [(0.8, 0.0, (0.5, 0.0, 0.0)), (0.0, 2.0, (0.0, 0.0, 0.5)),
                                       (0.8, 2.0, (0.0, -0.5, 0.0))])
def test_jump_size_excludes_the_motion_the_speeds_explain(v, w, jump):
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, v, w)
    dyaw = w * 0.02
    x, y = v * 0.02 * math.cos(dyaw / 2), v * 0.02 * math.sin(dyaw / 2)
    r = mon.on_odom(0.02, x + jump[0], y + jump[1], dyaw + jump[2], v, w)
    assert (r.dx_m, r.dy_m, r.dyaw_rad) == pytest.approx(jump, abs=1e-9)


def test_reset_reanchors():
    mon = monitor()
    mon.on_odom(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    mon.reset()
    assert mon.on_odom(0.02, 3.0, 0.0, 0.0, 0.0, 0.0) is None


@pytest.mark.parametrize("field", ["stamp_s", "x_m", "y_m", "yaw_rad", "v_mps", "w_rps"])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_odometry_raises_naming_the_field(field, bad):
    args = {"stamp_s": 1.0, "x_m": 0.0, "y_m": 0.0, "yaw_rad": 0.0, "v_mps": 0.0, "w_rps": 0.0, field: bad}
    with pytest.raises(ValueError, match=f"^{field}:"):
        monitor().on_odom(**args)


def test_non_finite_command_or_scan_raises_naming_the_field():
    mon = monitor()
    with pytest.raises(ValueError, match="^w_rps:"):
        mon.on_command(0.0, 0.1, math.nan)
    with pytest.raises(ValueError, match="^scan_bins:"):
        mon.on_scan(0.0, np.r_[np.ones(N_SCAN_BINS - 1), math.inf])
    with pytest.raises(ValueError, match="^scan_bins:"):
        mon.on_scan(0.0, np.ones(3))


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(msgs=st.lists(st.tuples(st.sampled_from(["odom", "scan", "cmd"]), st.lists(finite, min_size=6, max_size=6),
                               st.lists(finite, min_size=N_SCAN_BINS, max_size=N_SCAN_BINS)), max_size=40))
def test_never_raises_on_finite_input(msgs):
    mon = monitor()
    for kind, vals, scan in msgs:
        if kind == "odom":
            mon.on_odom(*vals)
        elif kind == "scan":
            mon.on_scan(vals[0], np.array(scan))
        else:
            mon.on_command(*vals[:3])


# ---- properties -------------------------------------------------------------------------------------
@st.composite
def smooth_drives(draw, duration_s: float = 15.0):
    """A trajectory within the hard limits, noise up to the stated sigmas, random dropped messages."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frac = st.floats(0.05, 1.0)
    d = drive(rng, duration_s, v_max=draw(frac) * HARD.linear_x.max_velocity,
              w_max=draw(frac) * HARD.angular_z.max_velocity, accel=draw(frac) * HARD.linear_x.max_accel,
              decel=draw(frac) * HARD.linear_x.max_decel, ang_accel=draw(frac) * HARD.angular_z.max_accel,
              start=(0.0, 0.0, draw(st.floats(-math.pi, math.pi))))
    keep = rng.random(len(d.t)) >= draw(st.floats(0.0, 0.4))
    if draw(st.booleans()):  # a blackout now and then
        a = rng.integers(0, len(d.t))
        keep[a:a + rng.integers(1, 150)] = False
    return d, rng, draw(st.floats(0.0, 1.0)), keep


@settings(max_examples=60, deadline=None)
@given(case=smooth_drives())
def test_property_smooth_odometry_within_hard_limits_is_never_reported(case):
    d, rng, noise, keep = case
    assert feed(monitor(), d, rng, noise=noise, keep=keep) == []


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=smooth_drives(), at=st.floats(0.1, 0.9), size=st.floats(0.5, 3.0), angle=st.floats(-math.pi, math.pi),
       yaw=st.booleans())
def test_property_one_injected_jump_is_reported_once_with_its_size(case, at, size, angle, yaw):
    d, rng, noise, keep = case
    j = int(at * len(d.t))
    keep[j - 1:j + 1] = True  # the jump is between two consecutive messages
    if yaw:
        jump = (0.0, 0.0, math.copysign(min(size, 2.5), angle))
    else:
        jump = (size * math.cos(angle), size * math.sin(angle), 0.0)
    odom = d.pose.copy()
    odom[j:] = frame_jump(d.pose[j:], d.pose[j], jump)
    reports = feed(monitor(), d, rng, noise=noise, keep=keep, odom_pose=odom)
    assert len(reports) == 1 and reports[0].stamp_s == pytest.approx(d.t[j])
    got = abs(reports[0].dyaw_rad) if yaw else reports[0].distance_m
    assert got == pytest.approx(abs(jump[2]) if yaw else size, rel=0.05)
