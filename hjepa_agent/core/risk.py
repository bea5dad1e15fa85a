"""Risk that is unexpected for the context: the watchdog's learned typical risk, and the affective charge.

The watchdog does not react to a raw risk number: near a wall the habitual policy's risk is high in
every nominal run, in the open it is low. The *typical-risk* network (``models/typical_risk.onnx``,
trained by ``hjepa-agent train typical-risk`` on nominal recorded runs) maps the context -- the
world state's goal, speed and scan, :func:`risk_features` -- to the mean and spread of two risks
seen there in nominal runs, in logit space:

* the habitual proposal's risk: :func:`clearance_risk` of its predicted clearance over the
  watchdog's ``risk_horizon_s``, with the safe clearance at twice ``clearance_plan_m`` (so the risk
  is 0.5 exactly where the watchdog starts deliberating);
* the best plan's own risk, as the planner reports it (the GFlowNet reads it off its log R and
  log Z, core/planner/gflownet.plan_risk; CEM and MPPI from the plan's clearance).

The watchdog scores each as a one-sided deviation z = (logit(risk) - mean) / spread and takes the
larger one. The camera latent is left out of the context on purpose: a blind or frozen camera
must not move the typical level (ambiguity watches the camera).

The *affective charge* is how much the current course's log reward drops when the world state is
updated but the rest of the course is kept: ``log(1 - risk)`` of the course's remaining actions
from the previous world state minus the same from the new one. An obstacle that appears in front
of the robot charges the course at once, before any threshold on the clearance is crossed.
Units: m, s; risks in [0, 1]; log rewards in nats.
"""
from __future__ import annotations

import math

import numpy as np

from hjepa_agent.core.types import N_SCAN_BINS, WorldState, habitual_features

N_RISK_FEATURES = 5 + N_SCAN_BINS
"""Context of the typical-risk network: the habitual features without the camera latent."""
N_RISK_STATS = 4
"""Its output: [mean, log spread] of the habitual risk's logit, then of the plan risk's logit."""
RISK_EPS = 1e-2
"""Risks are clipped to [RISK_EPS, 1 - RISK_EPS] before the logit: below 1 % (for the habitual risk, a
clearance above about 0.38 m) risk is "none", and the logit's long tail there is not a signal."""
MIN_LOG_SPREAD = math.log(0.5)
"""The spread is floored at 0.5 logits (a factor 1.6 in the odds), so a context where nominal runs
always read "no risk" cannot make every small change alarming."""


def risk_features(ws: WorldState, max_linear_mps: float, max_angular_rps: float) -> np.ndarray:
    """Context of the typical-risk network, (N_RISK_FEATURES,) float32: goal distance and bearing,
    speeds, scan sectors (core.types.habitual_features without the latent), so training and runtime
    cannot drift."""
    return habitual_features(ws, max_linear_mps, max_angular_rps)[:N_RISK_FEATURES]


def clearance_risk(clearance_m: float, safe_clearance_m: float) -> float:
    """Probability-like risk in [0, 1] from a minimum clearance: 1 at contact, 0.5 at half the safe
    clearance, -> 0 well beyond it (logistic with scale safe/6). inf clearance (nothing seen) -> 0."""
    scale = max(safe_clearance_m / 6.0, 1e-6)
    x = (clearance_m - 0.5 * safe_clearance_m) / scale
    return 0.0 if x > 700.0 else float(1.0 / (1.0 + math.exp(x)))


def risk_logit(risk: float) -> float:
    """logit of a risk clipped to [RISK_EPS, 1 - RISK_EPS]."""
    r = min(max(float(risk), RISK_EPS), 1.0 - RISK_EPS)
    return math.log(r / (1.0 - r))


def course_log_reward(risk: float) -> float:
    """The watchdog's log reward of a course with this risk: log(1 - risk), risk clipped as in risk_logit."""
    return math.log(1.0 - min(max(float(risk), RISK_EPS), 1.0 - RISK_EPS))


class TypicalRisk:
    """The typical-risk network behind a callable ``model(features (N, N_RISK_FEATURES)) -> (N, 4)``
    (an OnnxModel of ``typical_risk``, or any callable in tests)."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean (2,), spread (2,)) of the [habitual, plan] risk logits in this context; ValueError
        on a wrong feature shape or a non-finite output."""
        x = np.asarray(features, np.float32).reshape(1, -1)
        if x.shape[1] != N_RISK_FEATURES:
            raise ValueError(f"typical risk: {x.shape[1]} features, expected {N_RISK_FEATURES}")
        out = np.asarray(self.model(x), np.float64).reshape(-1)
        if out.shape != (N_RISK_STATS,) or not np.all(np.isfinite(out)):
            raise ValueError(f"typical risk: output {out} is not {N_RISK_STATS} finite values")
        mean = out[[0, 2]]
        spread = np.exp(np.maximum(out[[1, 3]], MIN_LOG_SPREAD))
        return mean, spread


def deviation(risk: float, mean: float, spread: float) -> float:
    """How unexpected ``risk`` is: (logit(risk) - mean) / spread; > 0 riskier than typical."""
    return (risk_logit(risk) - float(mean)) / float(spread)


__all__ = ["MIN_LOG_SPREAD", "N_RISK_FEATURES", "N_RISK_STATS", "RISK_EPS", "TypicalRisk", "clearance_risk",
           "course_log_reward", "deviation", "risk_features", "risk_logit"]
