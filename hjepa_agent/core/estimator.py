"""World-state estimator: an EKF for the base, and either the foundation latent filter or the
learned world model (JEPA encoder + predictor ensemble) for the latent.

* Base state [x, y, yaw, v, w] is an extended Kalman filter with a unicycle
  process model, corrected by odometry (its covariance when given).
* The camera latent is passed on as the newest encoder output (what the
  habitual policy was trained on); its variance is the exponentially weighted
  variance of the innovations against an exponentially weighted mean, so a
  latent that jumps around (noise, a camera fault) reads as uncertain.
* Scan sectors pass through with a fixed sensor variance; unknown sectors (no beam of the scan
  covered them, or no fresh scan: core.types.UNKNOWN_RANGE_M, which the mean keeps) get
  ``missing_scan_variance_m2``.
* ``ambiguity`` is a scalar read off that uncertainty: the latent's RMS
  innovation relative to ``latent_nominal_std`` plus ``quality_weight`` times the
  image-quality deficit plus the position standard deviation in metres.
* Learned mode (a :class:`LearnedLatent` given, the estimator node's ``world_model: true``):
  the latent is the posterior mean of core.world_model.LatentFilter (predictor-ensemble prior from
  the last command, encoder measurement) and its variance the filter's, which carries both the
  calibrated sensor noise and the ensemble disagreement. The latent term of ``ambiguity`` is then
  ``ambiguity_fn(scores)`` of core.world_model.OnlineScores (ensemble disagreement, latent density,
  surprise, image stillness, image noise, appearance, each standardised by its nominal statistics, max,
  scaled so 1.0 is the 99.9th percentile of nominal frames) — the same numbers
  `hjepa-agent eval world-model` reports AUROCs for.
* Two steps per camera frame: :meth:`Estimator.on_early` folds in the latent and scan sectors (everything
  but the ambiguity: what the habitual policy reads), :meth:`Estimator.on_percept` completes the frame with
  the image statistics the ambiguity needs. on_percept alone does both (a recording of percepts).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hjepa_agent.core.models import WORLD_CALIBRATION_FILE, ModelMismatchError
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, EarlyPercept, Percept, WorldState, unknown_sectors
from hjepa_agent.core.world_model import LatentCalibration, LatentFilter, OnlineScores, WorldModel


LATENT_GAP_STEPS = 3.0
"""A gap between two world-model steps longer than this many steps (or a step back) restarts the latent
filter and its scores, as at the start of an episode."""


def wrap_angle(a: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class EstimatorConfig:
    """Noise model. Units: process noise per second on [x, y, yaw, v, w]; variances in unit^2."""

    process_noise: tuple[float, float, float, float, float] = (1e-4, 1e-4, 4e-4, 0.05, 0.2)
    odom_variance: tuple[float, float, float, float, float] = (1e-4, 1e-4, 1e-3, 4e-4, 4e-3)
    latent_alpha: float = 0.5
    latent_nominal_std: float = 0.5
    scan_variance_m2: float = 0.0004
    missing_scan_variance_m2: float = 16.0
    quality_weight: float = 2.0
    latent_step_s: float = 0.1
    """The world model's step (s): its predictor and scores were trained on frames this far apart (the
    trainers' CONTROL_DT_S; the manifest's control_hz 10). A faster camera's frames between two such steps
    update the scan, the quality and the pose, not the latent filter and its scores, so a 30 Hz camera is
    judged as the 10 Hz training camera was."""

    def __post_init__(self) -> None:
        if not 0.0 < self.latent_alpha <= 1.0:
            raise ValueError(f"latent_alpha: must be in (0, 1], got {self.latent_alpha}")
        if self.latent_nominal_std <= 0.0:
            raise ValueError(f"latent_nominal_std: must be > 0, got {self.latent_nominal_std}")
        if not 0.0 < self.latent_step_s <= 1.0:
            raise ValueError(f"latent_step_s: must be in (0, 1] s, got {self.latent_step_s}")


@dataclass(frozen=True)
class LearnedLatent:
    """The learned world model's part of the estimator (module doc, learned mode): the latent filter and,
    optionally, the per-frame scorer and the map from its scores to the latent ambiguity."""

    latent_filter: LatentFilter
    scorer: OnlineScores | None = None
    ambiguity_fn: Callable[[dict[str, float]], float] | None = None

    @classmethod
    def from_world_model(cls, wm: WorldModel, models_dir: str) -> "LearnedLatent":
        """The filter and scores of a loaded world model. The calibrated one-step residual variance r splits
        evenly into process noise (model error per step) and measurement noise (encoder noise): an assumption,
        see core/world_model.py. ModelMismatchError when the calibration has no runtime ambiguity."""
        if not wm.ref or not math.isfinite(wm.ambiguity_scale) or wm.ambiguity_scale <= 0:
            raise ModelMismatchError(f"{models_dir}/{WORLD_CALIBRATION_FILE} has no score_ref / ambiguity_scale "
                                     "(models trained before the runtime ambiguity existed); retrain with "
                                     "`hjepa-agent train world-model`")
        return cls(LatentFilter(wm.heads, LatentCalibration(wm.s_pred, wm.r / 2, wm.r / 2)), wm.online(), wm.ambiguity)


class Estimator:
    """Fuses odometry, percepts and the goal into a WorldState with a variance: ``cfg`` its noise model,
    ``learned`` the learned world model's latent filter and scores (None: the foundation filter)."""

    def __init__(self, cfg: EstimatorConfig | None = None, learned: LearnedLatent | None = None) -> None:
        self.cfg = cfg if cfg is not None else EstimatorConfig()
        self.latent_filter: LatentFilter | None = None if learned is None else learned.latent_filter
        self.scorer: OnlineScores | None = None if learned is None else learned.scorer
        """Learned mode: per-frame ambiguity scores (see the module docstring)."""
        self.ambiguity_fn: Callable[[dict[str, float]], float] | None = None if learned is None else learned.ambiguity_fn
        self.x = np.zeros(5)
        self.P = np.diag([1.0, 1.0, 1.0, 1.0, 1.0])
        self.t_s: float | None = None
        self.goal: np.ndarray | None = None
        self.latent_mean: np.ndarray | None = None
        self.latent_var = np.ones(N_LATENT, dtype=np.float64)
        self.scan_bins = np.zeros(N_SCAN_BINS, dtype=np.float32)
        self.latent = np.zeros(N_LATENT, dtype=np.float32)
        self.quality = 0.0
        self.odom_count = 0
        self.action: np.ndarray | None = None
        """Last commanded action (2,), normalised by the hard velocity limits; the filter's a_{t-1}."""
        self.latent_ambiguity = 1.0
        self.scores: dict[str, float] = {}
        """The latest frame's scores (learned mode), for diagnostics."""
        self.latent_t_s: float | None = None
        """Stamp of the percept the latent filter last stepped on (learned mode)."""
        self._pending: _Pending | None = None
        """The frame folded in by on_early, waiting for its image statistics (on_percept)."""
        self._folded_t_s: float | None = None
        """Stamp of the frame folded in last."""

    def restart_clock(self) -> None:
        """Stamps before a clock jump say nothing about time after it: the next reading starts the filter's
        time again (a frame waiting for its statistics is dropped: they would complete it after the jump)."""
        self.t_s = None
        self._pending = None
        self._folded_t_s = None

    def _predict(self, t_s: float) -> None:
        if self.t_s is None:
            self.t_s = t_s
            return
        dt = t_s - self.t_s
        if dt <= 0.0:
            return
        x, y, yaw, v, w = self.x
        self.x = np.array([x + v * math.cos(yaw) * dt, y + v * math.sin(yaw) * dt,
                           wrap_angle(yaw + w * dt), v, w])
        F = np.eye(5)
        F[0, 2] = -v * math.sin(yaw) * dt
        F[0, 3] = math.cos(yaw) * dt
        F[1, 2] = v * math.cos(yaw) * dt
        F[1, 3] = math.sin(yaw) * dt
        F[2, 4] = dt
        Q = np.diag(self.cfg.process_noise) * dt
        self.P = F @ self.P @ F.T + Q
        self.t_s = t_s

    def on_odom(self, t_s: float, pose_xyyaw: np.ndarray, twist_vw: np.ndarray,
                variance: np.ndarray | None = None) -> None:
        """Correct with an odometry reading. pose (3,) m, m, rad; twist (2,) m/s, rad/s; ``variance`` (5,)
        of x, y, yaw, v, w from the reading's covariance, used where every one is finite and > 0 (else the
        configured odom_variance).

        Raises ValueError on non-finite input (the caller counts and drops it).
        """
        z = np.concatenate([np.asarray(pose_xyyaw, float), np.asarray(twist_vw, float)])
        if z.shape != (5,) or not np.all(np.isfinite(z)):
            raise ValueError(f"odometry must be 5 finite values, got {z}")
        self._predict(t_s)
        usable = variance is not None and np.all(np.asarray(variance) > 0) and np.all(np.isfinite(variance))
        R = np.diag(variance if usable else self.cfg.odom_variance)
        innov = z - self.x
        innov[2] = wrap_angle(innov[2])
        S = self.P + R
        K = self.P @ np.linalg.inv(S)
        self.x = self.x + K @ innov
        self.x[2] = wrap_angle(self.x[2])
        self.P = (np.eye(5) - K) @ self.P
        self.P = 0.5 * (self.P + self.P.T)
        self.odom_count += 1

    @property
    def localised(self) -> bool:
        """Whether an odometry reading has been fused: before that the pose is the prior's (the origin,
        its variance growing with time) and a world state would place the robot, its goal and its scan
        where it is not; the estimator node publishes none until then."""
        return self.odom_count > 0

    def reanchor(self, t_s: float, pose_xyyaw: np.ndarray, twist_vw: np.ndarray) -> None:
        """Start the pose filter again at an odometry reading (pose (3,), twist (2,)): after an odometry
        jump no motion explains, the filter's belief is worth nothing. Goal and latent are kept."""
        z = np.concatenate([np.asarray(pose_xyyaw, float), np.asarray(twist_vw, float)])
        if z.shape != (5,) or not np.all(np.isfinite(z)):
            raise ValueError(f"odometry must be 5 finite values, got {z}")
        self.x = z
        self.P = np.diag(self.cfg.odom_variance).astype(float)
        self.t_s = t_s

    def on_goal(self, goal_xy: np.ndarray) -> None:
        """Set the goal (odom frame, metres); raises ValueError when not 2 finite values."""
        g = np.asarray(goal_xy, dtype=float)
        if g.shape != (2,) or not np.all(np.isfinite(g)):
            raise ValueError(f"goal must be 2 finite values, got {g}")
        self.goal = g

    def on_action(self, action_norm: np.ndarray) -> None:
        """Record the command sent to the robot (v/v_max, w/w_max); ValueError if not 2 finite values."""
        a = np.asarray(action_norm, dtype=np.float32).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite values, got {a}")
        self.action = a

    def _latent_due(self, stamp_s: float) -> bool:
        """Whether a percept stamped ``stamp_s`` is the latent filter's next step: the world model's step
        since the last one has passed (within a fifth of it: a 10 Hz camera's jitter), or the clock went back."""
        last = self.latent_t_s
        return last is None or stamp_s < last or stamp_s - last >= 0.8 * self.cfg.latent_step_s

    def on_early(self, p: EarlyPercept) -> WorldState | None:
        """Fold in a frame's latent and scan sectors (perception's early percept: the filter's step) and return
        the world state at its stamp, its ambiguity NaN: :meth:`on_percept` with the same frame's image
        statistics completes it. None when this frame was already folded in (its whole percept came first)."""
        if self._pending is None and self._folded_t_s == p.stamp_s:
            return None
        self._predict(p.stamp_s)
        step = None
        if self.latent_filter is not None and self._latent_due(p.stamp_s):
            gap = None if self.latent_t_s is None else p.stamp_s - self.latent_t_s
            if gap is not None and not 0.0 <= gap <= LATENT_GAP_STEPS * self.cfg.latent_step_s:
                # frames lost (a camera stall, a busy computer starting six nodes) or time went back: the
                # predictor steps 0.1 s, so stepping across the gap would read as surprise; start afresh
                self.latent_filter.reset()
                if self.scorer is not None:
                    self.scorer.reset()
            self.latent_t_s = p.stamp_s
            first = self.latent_filter.mean is None
            a_prev = None if first else (self.action if self.action is not None else np.zeros(2, np.float32))
            mean, var = self.latent_filter.step(p.latent, a_prev)
            step = (p.latent, a_prev)
            if self.scorer is None or self.ambiguity_fn is None:
                r = np.asarray(self.latent_filter.cal.r)
                self.latent_ambiguity = (math.sqrt(float(np.mean(self.latent_filter.disagreement / r)))
                                         + math.sqrt(self.latent_filter.nis))
            self.latent, self.latent_var = mean.astype(np.float32), var
        elif self.latent_filter is None:
            z = p.latent.astype(np.float64)
            a = self.cfg.latent_alpha
            if self.latent_mean is None:
                self.latent_mean = z.copy()
                self.latent_var = np.full(N_LATENT, self.cfg.latent_nominal_std ** 2)
            else:
                innov = z - self.latent_mean
                self.latent_mean = self.latent_mean + a * innov
                self.latent_var = (1.0 - a) * (self.latent_var + a * innov * innov)
            self.latent = p.latent.astype(np.float32)
        # else: a frame between two world-model steps updates the scan (and, completed, the quality) only
        self.scan_bins = p.scan_bins.astype(np.float32)
        ws = dataclasses.replace(self.world_state(p.stamp_s), ambiguity=math.nan)
        self._pending = _Pending(ws, self._pos_std(), step)
        self._folded_t_s = p.stamp_s
        return ws

    def on_percept(self, p: Percept) -> WorldState:
        """Complete the frame :meth:`on_early` folded in with its image statistics (quality, noise, look,
        change: the ambiguity) and return its world state: the early one with its ambiguity. A percept of
        another frame is folded in whole first (its early part never came, or a recording holds percepts
        only: the same result). ValueError when the learned ambiguity is not finite (nothing published);
        OutOfOrder for a frame older than the one folded in last (superseded)."""
        pending = self._pending
        if pending is None or pending.ws.stamp_s != p.stamp_s:
            if self._folded_t_s is not None and 0.0 < self._folded_t_s - p.stamp_s <= LATE_PERCEPT_S:
                raise OutOfOrder(f"percept at {p.stamp_s:.3f} s came after the frame at {self._folded_t_s:.3f} s "
                                 f"was folded in")
            self._pending = None
            self.on_early(p.early)
            pending = self._pending
        self._pending = None
        self.quality = float(p.quality)
        if pending.step is not None and self.scorer is not None and self.ambiguity_fn is not None:
            latent, a_prev = pending.step
            self.scores = self.scorer.step(latent, a_prev, p.noise_log, p.appearance_log, p.image_change)
            learned = self.ambiguity_fn(self.scores)
            if not math.isfinite(learned):
                raise ValueError(f"world-model ambiguity is not finite: scores {self.scores}")
            self.latent_ambiguity = learned
        return dataclasses.replace(pending.ws, ambiguity=self._ambiguity(pending.pos_std))

    @property
    def folded_t_s(self) -> float | None:
        """Stamp of the frame folded in last (s); None before one, or after a clock jump."""
        return self._folded_t_s

    def _pos_std(self) -> float:
        """The position's standard deviation (m): sqrt of the trace of its covariance."""
        return math.sqrt(max(float(self.P[0, 0] + self.P[1, 1]), 0.0))

    def _ambiguity(self, pos_std: float) -> float:
        """The latent term (learned: the world model's; foundation: the latent's spread) + the image quality's
        + the position's spread ``pos_std``."""
        if self.latent_filter is not None:
            latent_term = self.latent_ambiguity
        else:
            latent_term = math.sqrt(float(np.mean(self.latent_var))) / self.cfg.latent_nominal_std
        return float(latent_term + self.cfg.quality_weight * (1.0 - self.quality) + pos_std)

    def world_state(self, stamp_s: float) -> WorldState:
        """Current belief as a WorldState (mean, variance in WORLD_STATE_LABELS order, ambiguity)."""
        latent = self.latent.copy()
        scan_var = np.where(unknown_sectors(self.scan_bins), self.cfg.missing_scan_variance_m2,
                            self.cfg.scan_variance_m2)
        goal = self.goal if self.goal is not None else np.zeros(2)
        variance = np.concatenate([np.diag(self.P), [0.0, 0.0, 0.0], scan_var, self.latent_var]).astype(np.float32)
        return WorldState(stamp_s, self.x[:3].astype(np.float32), self.x[3:].astype(np.float32),
                          np.asarray(goal, dtype=np.float32), self.goal is not None,
                          self.scan_bins.copy(), latent, variance, self._ambiguity(self._pos_std()))


LATE_PERCEPT_S = 1.0
"""A percept up to this much (s) older than the frame folded in last is late (its frame was superseded:
:class:`OutOfOrder`); an older one is a clock that went back, folded in as a new frame."""


class OutOfOrder(ValueError):
    """A percept whose frame was superseded by a later one already folded in."""


@dataclass(frozen=True)
class _Pending:
    """A frame :meth:`Estimator.on_early` folded in and :meth:`Estimator.on_percept` has not completed: its
    world state (ambiguity NaN), its position spread then, and its latent step (latent, previous action)
    for the scores; None when it was not a step of the learned filter."""

    ws: WorldState
    pos_std: float
    step: tuple[np.ndarray, np.ndarray | None] | None
