"""Predicted-state ambiguity of candidate plans, from the learned world model (issue 4, item 2:
"a penalty on predicted-state ambiguity so plans cannot exploit the world model's blind spots").

Every planner rolls its candidates out with the base's kinematics (the pose); this module also
rolls the *latent* out, with the learned predictor ensemble (``world_predictor.onnx``, 10 Hz
steps, actions divided by the manifest's speed_norm), from the world state's latent, along each
candidate's actions, and scores every predicted step the way the estimator scores a frame's
ensemble disagreement: d = log(mean over latent dims of the heads' variance), standardised by its
nominal (mean, std) from the world model's calibration and divided by the calibrated
ambiguity_scale (so 1.0 is the most unusual nominal frame in a thousand; below 0 counts as 0).
Only the plan's first ``horizon_s`` (1 s) is rolled out: the predictor was trained on up to 5 steps
(0.5 s), and further out its ensemble disagreement measures its own drift more than how unusual the
state would be (and each 0.1 s costs one batched ONNX call, ~0.2 ms on this machine).
A plan's ambiguity is the mean over those steps; :meth:`LatentAmbiguity.penalty` is
``weight`` times that, in the cost's units (metres of goal distance), added to the cost of every
candidate. The rolled-out latent follows the ensemble mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

MODEL_DT_S = 0.1
"""Seconds per predictor step (the world model's 10-Hz control tick)."""


@dataclass
class LatentAmbiguity:
    """Plan ambiguity from the predictor ensemble (module doc). ``heads(z (N, D), a (N, 2)) ->
    (N, M, D)``; ``ref``: nominal (mean, std) of the disagreement score; ``scale``: the calibrated
    ambiguity_scale; ``action_norm``: (m/s, rad/s) the predictor's actions are divided by."""

    heads: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ref: tuple[float, float]
    scale: float
    action_norm: tuple[float, float]
    weight: float = 0.5
    stride: int = 1
    """Score every ``stride``-th plan step (each step still advances the latent)."""
    horizon_s: float = 1.0
    """How much of each plan is rolled out and scored (module doc)."""
    evaluations: int = 0
    """Predictor rows evaluated since construction (for diagnostics)."""
    last: np.ndarray | None = field(default=None, repr=False)
    """Per-candidate ambiguity of the latest call."""

    def __post_init__(self) -> None:
        if not (self.ref[1] > 0.0 and self.scale > 0.0 and math.isfinite(self.scale) and self.weight >= 0.0
                and min(self.action_norm) > 0.0 and self.stride >= 1 and self.horizon_s > 0.0):
            raise ValueError(f"LatentAmbiguity: needs ref std > 0, a finite scale > 0, weight >= 0, action_norm > 0 "
                             f"and stride >= 1; got ref {self.ref}, scale {self.scale}, weight {self.weight}, "
                             f"action_norm {self.action_norm}, stride {self.stride}")

    def __call__(self, z0: np.ndarray, actions: np.ndarray, dt_s: float) -> np.ndarray:
        """(N,) mean predicted-state ambiguity of plans ``actions`` (N, H, 2) of (v, w) held ``dt_s``
        each, over their first ``horizon_s``, from latent ``z0`` (D,)."""
        n, h, _ = actions.shape
        h = max(1, min(h, int(round(self.horizon_s / dt_s))))
        sub = max(1, int(round(dt_s / MODEL_DT_S)))
        z = np.broadcast_to(np.asarray(z0, np.float32).reshape(1, -1), (n, np.size(z0))).copy()
        a = (np.asarray(actions, np.float32) / np.asarray(self.action_norm, np.float32)).clip(-1.0, 1.0)
        scores = []
        for t in range(h):
            for k in range(sub):
                preds = np.asarray(self.heads(z, a[:, t]), np.float64)
                self.evaluations += n
                if k == sub - 1 and t % self.stride == 0:
                    d = np.log(preds.var(axis=1).mean(axis=1) + 1e-9)
                    scores.append(np.maximum((d - self.ref[0]) / self.ref[1], 0.0) / self.scale)
                z = preds.mean(axis=1).astype(np.float32)
        self.last = np.mean(scores, axis=0)
        return self.last

    def penalty(self, z0: np.ndarray, dt_s: float) -> Callable[[np.ndarray], np.ndarray]:
        """``actions (N, H, 2) -> weight * ambiguity (N,)`` for plans from latent ``z0``: what the
        planners add to their cost (PlanCost's ``penalty``)."""
        return lambda actions: self.weight * self(z0, actions, dt_s)


def load_latent_ambiguity(models_dir, providers: list[str] | None = None, expected=None,
                          weight: float = 0.5, stride: int = 1) -> LatentAmbiguity:
    """The penalty over the world model in ``models_dir`` (manifest and calibration checked; ``expected``:
    the RobotFingerprint of the robot this runs on, core/fingerprint.py)."""
    from hjepa_agent.core.models import world_action_norm
    from hjepa_agent.core.world_model import WorldModel
    wm = WorldModel(models_dir, providers, expected, with_encoder=False)
    if "disagreement" not in wm.ref:
        from hjepa_agent.core.models import ModelMismatchError
        raise ModelMismatchError(f"{models_dir}: the world model's calibration has no disagreement statistics; "
                                 f"run `hjepa-agent train world-model --recalibrate`")
    return LatentAmbiguity(wm.heads, wm.ref["disagreement"], wm.ambiguity_scale, world_action_norm(wm.pred),
                           weight=weight, stride=stride)


__all__ = ["LatentAmbiguity", "MODEL_DT_S", "load_latent_ambiguity"]
