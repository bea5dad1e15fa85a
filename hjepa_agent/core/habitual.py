"""Habitual (Mode-1) policy: world state -> velocity proposal in one ONNX call, no plan."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from hjepa_agent.core.types import Proposal, WorldState, habitual_features


@dataclass
class HabitualPolicy:
    """Wraps a policy model mapping (1, N_HABITUAL_FEATURES) -> (1, 2) in [-1, 1].

    ``action_scale`` (m/s, rad/s) turns the normalised output into a command;
    ``feature_scale`` (m/s, rad/s) normalises the measured speeds in the features
    (the ego model's hard velocity limits, as in training).
    """

    model: Callable[[np.ndarray], np.ndarray]
    action_scale: tuple[float, float]
    feature_scale: tuple[float, float]

    def act(self, ws: WorldState) -> Proposal:
        """Proposal for this world state; with no goal the proposal is to stand still."""
        if not ws.has_goal:
            return Proposal(ws.stamp_s, 0.0, 0.0, "habitual")
        x = habitual_features(ws, *self.feature_scale)[None]
        y = np.asarray(self.model(x), dtype=np.float32).reshape(-1)
        if y.shape != (2,) or not np.all(np.isfinite(y)):
            raise ValueError(f"policy returned {y}")
        y = np.clip(y, -1.0, 1.0)
        return Proposal(ws.stamp_s, float(y[0] * self.action_scale[0]), float(y[1] * self.action_scale[1]),
                        "habitual")
