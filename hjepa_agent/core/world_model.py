"""Runtime side of the learned world model: a latent Kalman filter over the JEPA latent.

The encoder measures the latent z_t from the camera and the range sectors; the
predictor ensemble (M heads) gives the prior from the previous posterior and the
action actually commanded. Per latent dimension (diagonal covariance):

    prior mean   m⁻ = mean_m f_m(z_{t-1}, a_{t-1})
    prior var    P⁻ = P_{t-1} + s_pred * var_m f_m(...) + q          (ensemble disagreement, scaled)
    measurement  z_t with variance r
    gain         K  = P⁻ / (P⁻ + r)
    posterior    m  = m⁻ + K (z_t - m⁻),   P = (1 - K) P⁻

``s_pred``, ``q`` and ``r`` are per-dimension calibration constants fitted on held-out
data at training time (they travel with the models). The filter's variance therefore
reflects both sensor noise (r) and what the model does not know (the ensemble spread).
ROS-free and torch-free: the models are any callables with the documented shapes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hjepa_agent.config.loader import read_yaml
from hjepa_agent.core.fingerprint import RobotFingerprint
from hjepa_agent.core.models import WORLD_CALIBRATION_FILE, ModelMismatchError, OnnxModel, load_manifest
from hjepa_agent.core.look import load_look_model
from hjepa_agent.core.perception import IMAGE_STILL_K, image_change, image_noise_sigma
from hjepa_agent.core.types import N_LATENT

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(latent (N, D), action (N, 2) normalised) -> next latent of every head (N, M, D)."""


@dataclass(frozen=True)
class LatentCalibration:
    """Per-dimension constants (D,): ensemble-variance scale, process noise, measurement noise."""

    s_pred: np.ndarray
    q: np.ndarray
    r: np.ndarray

    def __post_init__(self) -> None:
        for name in ("s_pred", "q", "r"):
            v = np.asarray(getattr(self, name), dtype=np.float64)
            if v.ndim != 1 or not np.all(np.isfinite(v)) or np.any(v < 0):
                raise ValueError(f"{name}: must be a finite, non-negative vector, got {v}")
        if not (len(self.s_pred) == len(self.q) == len(self.r)):
            raise ValueError(f"s_pred/q/r: lengths differ ({len(self.s_pred)}, {len(self.q)}, {len(self.r)})")
        if np.any(np.asarray(self.r) <= 0):
            raise ValueError("r: measurement noise must be > 0")


@dataclass
class LatentFilter:
    """Fuses encoder measurements with the predictor ensemble's prior (module docstring)."""

    predictor: Predictor
    cal: LatentCalibration
    mean: np.ndarray | None = None
    var: np.ndarray | None = None
    disagreement: np.ndarray = field(default_factory=lambda: np.zeros(0))
    nis: float = 0.0

    def reset(self) -> None:
        """Forget the belief (new episode)."""
        self.mean, self.var = None, None

    def step(self, z_meas: np.ndarray, action: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Fold in a measurement z (D,) taken after ``action`` (2,) normalised, or None for the first.

        Returns the posterior mean and variance (D,). Sets ``disagreement`` (D,), the scaled
        ensemble variance of the prior, and ``nis``, the normalised innovation squared / D.
        Raises ValueError on non-finite or wrong-sized inputs (the belief is left unchanged).
        """
        z = np.asarray(z_meas, dtype=np.float64).reshape(-1)
        d = len(self.cal.r)
        if z.shape != (d,) or not np.all(np.isfinite(z)):
            raise ValueError(f"latent measurement must be {d} finite values, got shape {z.shape}")
        r = np.asarray(self.cal.r, dtype=np.float64)
        if self.mean is None or action is None:
            self.mean, self.var = z.copy(), r.copy()
            self.disagreement, self.nis = np.zeros(d), 0.0
            return self.mean.copy(), self.var.copy()
        a = np.asarray(action, dtype=np.float32).reshape(1, 2)
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action must be finite, got {a}")
        heads = np.asarray(self.predictor(self.mean[None].astype(np.float32), a), dtype=np.float64)
        if heads.ndim != 3 or heads.shape[0] != 1 or heads.shape[2] != d or not np.all(np.isfinite(heads)):
            raise ValueError(f"predictor returned shape {heads.shape} or non-finite values")
        prior_mean = heads[0].mean(axis=0)
        self.disagreement = np.asarray(self.cal.s_pred) * heads[0].var(axis=0)
        prior_var = self.var + self.disagreement + np.asarray(self.cal.q)
        innov = z - prior_mean
        s = prior_var + r
        self.nis = float(np.mean(innov * innov / s))
        gain = prior_var / s
        self.mean = prior_mean + gain * innov
        self.var = (1.0 - gain) * prior_var
        return self.mean.copy(), self.var.copy()


# --------------------------------------------------------------------------- ambiguity scores
# One implementation for the offline evaluation (hjepa_agent.train.eval_world_model) and the
# runtime: the scores below are what `hjepa-agent eval world-model` reports AUROCs for.


def episode_windows(episode: np.ndarray, horizon: int) -> np.ndarray:
    """Start indices t such that t..t+horizon lie in one episode (episode ids (N,)), shape (M,) int64."""
    n = len(episode)
    if n <= horizon:
        return np.zeros(0, dtype=np.int64)
    return np.nonzero(episode[:n - horizon] == episode[horizon:])[0].astype(np.int64)


SCORES = ("disagreement", "density", "surprise", "image_stillness", "sensor_noise", "appearance")
"""The per-frame scores; every one enters the combined ``ambiguity`` (max of the standardised scores).

``disagreement``, ``density`` and ``surprise`` are read off the latent and the predictor ensemble.
``sensor_noise`` (log of the image's Immerkaer noise sigma, core.perception.image_noise_sigma) is
the sensor-noise part of the uncertainty: the latent hardly moves under heavy pixel noise.
``appearance`` (log mean distance of core.perception.appearance_features to their nearest training
looks, core/look.py) flags a world that looks unlike the training one: the latent is trained to
ignore lighting and colours (look augmentation), so the latent scores cannot.
``image_stillness`` = log((motion + STILL_MOTION_EPS) / (image change + STILL_CHANGE_EPS)) over
IMAGE_STILL_K frames, motion = sum of |v| + STILL_W_WEIGHT |w| of the normalised commands in force:
a frozen camera while the robot is driven. It replaced a latent version (predicted vs observed latent
change) once the latent was made to carry the live range scan, which keeps it moving under a frozen
camera (frozen AUROC 0.82 latent vs 0.99 image, selection on the test split of one model).
Each score's AUROC is reported separately as well."""
STILL_MOTION_EPS = 0.05
"""Added to the command motion (sum over the window of normalised |v| + 0.3 |w|)."""
STILL_CHANGE_EPS = 0.05
"""Added to the image change (grey levels) so a still robot in a still scene scores ~0, not 0/0."""
STILL_W_WEIGHT = 0.3
"""Weight of the turn command in the motion sum (a turn changes the image less than driving)."""


def motion_of(actions: np.ndarray) -> np.ndarray:
    """Command motion of normalised actions (..., K, 2) over the window axis -> (...)."""
    a = np.abs(np.asarray(actions, np.float32))
    return (a[..., 0] + STILL_W_WEIGHT * a[..., 1]).sum(-1)


def stillness_score(motion: np.ndarray | float, change: np.ndarray | float) -> np.ndarray | float:
    """log((motion + eps) / (image change + eps)) (see SCORES)."""
    return np.log((motion + STILL_MOTION_EPS) / (np.asarray(change) + STILL_CHANGE_EPS))


def encode_frames(enc: Callable[..., np.ndarray], image_u8: np.ndarray, scan: np.ndarray,
                  batch: int = 512) -> np.ndarray:
    """Latents (N, 16) of frames through a world encoder: image (N, 3, 64, 64) uint8, scan (N, 16) in [0, 1]."""
    return np.concatenate([enc(image_u8[i:i + batch].astype(np.float32) / 255.0, scan[i:i + batch])
                           for i in range(0, len(scan), batch)])


AMBIGUITY_QUANTILE = 0.999
"""Quantile of the combined score on nominal calibration frames that maps to ambiguity 1.0."""


def _vector(v: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite with shape {shape}, got {a.shape}")
    return a


class WorldModel:
    """ONNX world model + calibration: encode, predict, sigma, scores (numpy in and out)."""

    def __init__(self, models_dir: Path, providers: list[str] | None = None, expected: RobotFingerprint | None = None,
                 with_encoder: bool = True) -> None:
        models_dir = Path(models_dir)
        manifest = load_manifest(models_dir)
        providers = providers or ["CPUExecutionProvider"]
        self.enc = (OnnxModel(models_dir, "world_encoder", manifest, providers, expected=expected)
                    if with_encoder else None)
        self.pred = OnnxModel(models_dir, "world_predictor", manifest, providers, expected=expected)
        path = models_dir / WORLD_CALIBRATION_FILE
        cal = read_yaml(path)
        try:
            self.s_pred = _vector(cal["s_pred"], (N_LATENT,), "s_pred")
            self.r = _vector(cal["r"], (N_LATENT,), "r")
            self.mean = _vector(cal["latent_mean"], (N_LATENT,), "latent_mean")
            self.prec = _vector(cal["latent_precision"], (N_LATENT, N_LATENT), "latent_precision")
            ref = cal.get("score_ref") or {}
            self.ref: dict[str, tuple[float, float]] = {k: (float(v[0]), float(v[1])) for k, v in ref.items()}
            """Nominal (mean, std) of each score, from the calibration split at training time."""
            self.ambiguity_scale = float(cal.get("ambiguity_scale", float("nan")))
            """The combined score's AMBIGUITY_QUANTILE on nominal calibration frames (ambiguity 1.0)."""
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelMismatchError(f"{path}: {exc}; retrain with `hjepa-agent train world-model`") from exc
        self.look = load_look_model(models_dir, manifest, expected)
        """The look model (core/look.py); None for models without one: the appearance score is NaN."""

    def online(self) -> "OnlineScores":
        """A fresh per-frame scorer over this model (see OnlineScores)."""
        return OnlineScores(self.heads, self.sigma, self.mahalanobis, has_appearance=self.look is not None)

    def ambiguity(self, scores: dict[str, float]) -> float:
        """The learned part of the world state's ambiguity: combine(scores) / ambiguity_scale, floored
        at 0 (1.0 = the AMBIGUITY_QUANTILE of nominal frames); NaN without ref statistics."""
        c = float(combine(scores, self.ref)) if self.ref else float("nan")
        return max(c, 0.0) / self.ambiguity_scale if np.isfinite(c) else float("nan")

    def encode(self, image_u8: np.ndarray, scan: np.ndarray, batch: int = 512) -> np.ndarray:
        """image (N, 3, 64, 64) uint8, scan (N, 16) in [0, 1] -> latents (N, 16)."""
        return encode_frames(self.enc, image_u8, scan, batch)

    def heads(self, z: np.ndarray, action: np.ndarray) -> np.ndarray:
        """(N, 16), (N, 2) -> every head's next latent (N, M, 16)."""
        return self.pred(z, action)

    def sigma(self, preds: np.ndarray) -> np.ndarray:
        """Calibrated predictive sigma (N, 16) from the heads' predictions (N, M, 16)."""
        return np.sqrt(preds.var(1) * self.s_pred + self.r)

    def mahalanobis(self, z: np.ndarray) -> np.ndarray:
        """(z - mean)^T P (z - mean), shape (N,)."""
        d = z - self.mean
        return np.einsum("ni,ij,nj->n", d, self.prec, d)

    def appearance(self, images: np.ndarray) -> np.ndarray:
        """Look score of images (N, 3, H, W) uint8 -> (N,) float32 (core/look.py); NaN without a look model."""
        if self.look is None:
            return np.full(len(images), np.nan, np.float32)
        return np.asarray(self.look.score(images), np.float32)


def frame_scores(wm: WorldModel, z: np.ndarray, action: np.ndarray, episode: np.ndarray,
                 images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame log scores (N,) each for latents z (N, 16) of consecutive ticks, actions (N, 2)
    (action[t] applied from tick t to t+1), episode ids (N,) and the images (N, 3, 64, 64) uint8 they
    came from. Causal, as at run time: frame t uses the action in force when it was taken, a[t-1]
    (zero at an episode's first frame). Surprise / image_stillness are NaN without 1 / IMAGE_STILL_K
    earlier ticks in the episode. :class:`OnlineScores` computes the same numbers one frame at a time."""
    has_prev = np.r_[False, episode[1:] == episode[:-1]]
    a_prev = np.where(has_prev[:, None], np.roll(action, 1, axis=0), 0.0).astype(np.float32)
    preds = wm.heads(z, a_prev)
    out = {"disagreement": np.log(preds.var(1).mean(1) + 1e-9), "density": np.log(wm.mahalanobis(z) + 1e-9)}
    surprise = np.full(len(z), np.nan, np.float32)
    idx = np.nonzero(has_prev)[0]
    prior = wm.heads(z[idx - 1], action[idx - 1])
    mu, sig = prior.mean(1), wm.sigma(prior)
    surprise[idx] = np.log((((z[idx] - mu) / sig) ** 2).mean(1) + 1e-9)
    out["surprise"] = surprise
    still = np.full(len(z), np.nan, np.float32)
    k = IMAGE_STILL_K
    starts = episode_windows(episode, k)
    motion = motion_of(action[starts[:, None] + np.arange(k)[None]])
    still[starts + k] = stillness_score(motion, image_change(images[starts + k], images[starts]))
    out["image_stillness"] = still
    out["sensor_noise"] = np.log(image_noise_sigma(images) + 1e-3).astype(np.float32)
    out["appearance"] = wm.appearance(images)
    return out


class OnlineScores:
    """:func:`frame_scores` one frame at a time (the estimator's learned mode), with one batched
    predictor call per frame (the current latent for disagreement, the previous one for surprise).

    ``heads``: (latent (N, D), action (N, 2)) -> (N, M, D); ``sigma``: heads' predictions -> (N, D);
    ``mahalanobis``: latents (N, D) -> (N,). The image scores come from perception (Percept.noise_log,
    .appearance_log, .image_change) and are passed in; ``appearance`` is NaN when ``has_appearance``
    is false.
    """

    def __init__(self, heads: Predictor, sigma: Callable[[np.ndarray], np.ndarray],
                 mahalanobis: Callable[[np.ndarray], np.ndarray], has_appearance: bool) -> None:
        self.heads, self.sigma, self.mahalanobis = heads, sigma, mahalanobis
        self.has_appearance = has_appearance
        self.reset()

    def reset(self) -> None:
        """Forget the history (new episode, or after a gap)."""
        self.prev: np.ndarray | None = None
        self.actions: list[np.ndarray] = []   # the last IMAGE_STILL_K actions in force, oldest first

    def step(self, z: np.ndarray, action_prev: np.ndarray | None, noise_log: float,
             appearance_log: float, image_change: float = -1.0) -> dict[str, float]:
        """Scores of frame z (D,), taken after ``action_prev`` (2,) was in force since the previous
        frame (None: first frame of an episode); ``image_change``: Percept.image_change (< 0: not
        available). Returns {score name: value} (NaN where undefined)."""
        z = np.asarray(z, np.float32).reshape(-1)
        first = self.prev is None or action_prev is None
        if first:
            self.reset()
        a = np.zeros(2, np.float32) if first else np.asarray(action_prev, np.float32).reshape(2)
        rows = [z] if first else [z, self.prev]
        preds = np.asarray(self.heads(np.stack(rows).astype(np.float32), np.tile(a, (len(rows), 1))))
        out = {"disagreement": float(np.log(preds[0].var(0).mean() + 1e-9)),
               "density": float(np.log(self.mahalanobis(z[None])[0] + 1e-9)),
               "surprise": float("nan"), "image_stillness": float("nan"),
               "sensor_noise": float(noise_log),
               "appearance": float(appearance_log) if self.has_appearance else float("nan")}
        if not first:
            prior = preds[1:2]
            mu, sig = prior.mean(1)[0], self.sigma(prior)[0]
            out["surprise"] = float(np.log((((z - mu) / sig) ** 2).mean() + 1e-9))
            self.actions = self.actions[-(IMAGE_STILL_K - 1):] + [a]
            if len(self.actions) == IMAGE_STILL_K and image_change >= 0.0:
                out["image_stillness"] = float(stillness_score(float(motion_of(np.stack(self.actions))),
                                                               image_change))
        self.prev = z
        return out


def combine(scores: dict[str, np.ndarray], ref: dict[str, tuple[float, float]]) -> np.ndarray:
    """Max over the SCORES of (score - mean) / std with ref stats; NaN scores (and scores
    without ref stats) are skipped; NaN when none is defined. Works on arrays and on floats."""
    z = np.stack([(np.asarray(scores[k], np.float64) - ref[k][0]) / ref[k][1] for k in SCORES if k in ref])
    with np.errstate(all="ignore"):
        allnan = np.all(np.isnan(z), axis=0)
        out = np.where(allnan, np.nan, np.nanmax(np.where(np.isnan(z), -np.inf, z), axis=0))
    return out
