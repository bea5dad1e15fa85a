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
from typing import Callable

import numpy as np

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
