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
from hjepa_agent.core.models import WORLD_CALIBRATION_FILE, OnnxModel, load_manifest
from hjepa_agent.core.perception import appearance_features, image_noise_sigma

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


SCORES = ("disagreement", "density", "surprise", "stillness", "sensor_noise", "appearance")
COMBINED = SCORES
"""Scores entering the combined ``ambiguity``. Chosen on a selection set disjoint from the eval's
seeds (calib split 50_000+ and unseen seeds 70_010+): adding one-step surprise lifted noise AUROC
0.45 -> 0.64 at <= 0.015 cost elsewhere; mean-of-z-scores and log-sum-exp were no better than max.
``sensor_noise`` (log of the image's Immerkaer noise sigma, core.perception.image_noise_sigma) is
the sensor-noise part of the uncertainty: the latent hardly moves under heavy pixel noise, so no
latent score can see it. ``appearance`` (log Mahalanobis distance of core.perception.appearance_features
under the training images' statistics) flags a world that looks unlike the training one: the latent is
trained to ignore lighting and colours (look augmentation), so the latent scores cannot. Each score's
AUROC is reported separately as well."""
STILL_EPS = 1e-2
"""Added to both squared changes (latent units^2) so a robot at rest scores ~0, not noise / noise."""
STILL_K = 10
"""Window (ticks) of the stillness score: expected vs observed latent change over 1 s."""


class WorldModel:
    """ONNX world model + calibration: encode, predict, sigma, scores (numpy in and out)."""

    def __init__(self, models_dir: Path, providers: list[str] | None = None) -> None:
        models_dir = Path(models_dir)
        manifest = load_manifest(models_dir)
        providers = providers or ["CPUExecutionProvider"]
        self.enc = OnnxModel(models_dir, "world_encoder", manifest, providers)
        self.pred = OnnxModel(models_dir, "world_predictor", manifest, providers)
        cal = read_yaml(models_dir / WORLD_CALIBRATION_FILE)
        self.s_pred = np.asarray(cal["s_pred"], np.float32)
        self.r = np.asarray(cal["r"], np.float32)
        self.mean = np.asarray(cal["latent_mean"], np.float32)
        self.prec = np.asarray(cal["latent_precision"], np.float32)
        self.app_mean = np.asarray(cal.get("appearance_mean", []), np.float32)
        self.app_prec = np.asarray(cal.get("appearance_precision", []), np.float32)
        ref = cal.get("score_ref") or {}
        self.ref: dict[str, tuple[float, float]] = {k: (float(v[0]), float(v[1])) for k, v in ref.items()}
        """Nominal (mean, std) of each score, from the calibration split at training time."""

    def encode(self, image_u8: np.ndarray, scan: np.ndarray, batch: int = 512) -> np.ndarray:
        """image (N, 3, 64, 64) uint8, scan (N, 16) in [0, 1] -> latents (N, 16)."""
        out = [self.enc(image_u8[i:i + batch].astype(np.float32) / 255.0, scan[i:i + batch])
               for i in range(0, len(scan), batch)]
        return np.concatenate(out)

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
        """Log Mahalanobis distance of the images' look (N, 3, H, W) uint8 -> (N,); NaN without statistics."""
        return appearance_score(images, self.app_mean, self.app_prec)


def appearance_score(images: np.ndarray, mean: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """log((f - mean)^T prec (f - mean)) of appearance_features(images) (N,) (a float for one image);
    NaN when mean/prec are empty (models trained before the score existed)."""
    f = appearance_features(images)
    if len(mean) == 0:
        return np.full(f.shape[:-1], np.nan, np.float32) if f.ndim == 2 else float("nan")
    d = f - mean
    m = np.einsum("...i,ij,...j->...", d, prec, d)
    return np.log(m + 1e-9).astype(np.float32) if f.ndim == 2 else float(np.log(m + 1e-9))


def frame_scores(wm: WorldModel, z: np.ndarray, action: np.ndarray, episode: np.ndarray,
                 images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame log scores (N,) each for latents z (N, 16) of consecutive ticks, actions (N, 2),
    episode ids (N,) and the images (N, 3, 64, 64) uint8 they came from; surprise / stillness are
    NaN without 1 / STILL_K earlier ticks in the episode."""
    has_prev = np.r_[False, episode[1:] == episode[:-1]]
    preds = wm.heads(z, action)
    out = {"disagreement": np.log(preds.var(1).mean(1) + 1e-9), "density": np.log(wm.mahalanobis(z) + 1e-9)}
    surprise = np.full(len(z), np.nan, np.float32)
    idx = np.nonzero(has_prev)[0]
    mu, sig = preds[idx - 1].mean(1), wm.sigma(preds[idx - 1])
    surprise[idx] = np.log((((z[idx] - mu) / sig) ** 2).mean(1) + 1e-9)
    out["surprise"] = surprise
    # stillness: log(expected change / observed change) over STILL_K ticks, open loop with the true actions
    still = np.full(len(z), np.nan, np.float32)
    starts = episode_windows(episode, STILL_K)
    cur = z[starts]
    for j in range(STILL_K):
        cur = wm.heads(cur, action[starts + j]).mean(1)
    expected = ((cur - z[starts]) ** 2).sum(1)
    observed = ((z[starts + STILL_K] - z[starts]) ** 2).sum(1)
    still[starts + STILL_K] = np.log((expected + STILL_EPS) / (observed + STILL_EPS))
    out["stillness"] = still
    out["sensor_noise"] = np.log(image_noise_sigma(images) + 1e-3).astype(np.float32)
    out["appearance"] = wm.appearance(images)
    return out


def combine(scores: dict[str, np.ndarray], ref: dict[str, tuple[float, float]]) -> np.ndarray:
    """Max over COMBINED scores of (score - mean) / std with ref stats; NaN scores are skipped."""
    z = np.stack([(scores[k] - ref[k][0]) / ref[k][1] for k in COMBINED])
    return np.nanmax(z, axis=0)
