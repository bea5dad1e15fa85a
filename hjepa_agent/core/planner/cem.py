"""Cross-entropy-method planner: the sampling loop of :mod:`.sampling` with the CEM update
(refit the per-step Gaussian to the ``elites`` cheapest sampled plans)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hjepa_agent.core.planner.sampling import SamplingConfig, SamplingPlanner, motion_primitives

__all__ = ["CEMConfig", "CEMPlanner", "motion_primitives"]


@dataclass(frozen=True)
class CEMConfig(SamplingConfig):
    """CEM settings: the shared ones plus ``elites`` and the spread's floor ``min_std`` (v, w)."""

    elites: int = 8
    min_std: tuple[float, float] = (0.05, 0.1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"elites: must be in [1, samples={self.samples}], got {self.elites}")


@dataclass
class CEMPlanner(SamplingPlanner):
    """CEM over ``model`` with ``cost`` (see :class:`SamplingPlanner`); ``cfg`` is a CEMConfig."""

    name: str = "cem"

    def __post_init__(self) -> None:
        if not isinstance(self.cfg, CEMConfig):
            raise TypeError(f"CEMPlanner needs a CEMConfig, got {type(self.cfg).__name__}")

    def _update(self, actions: np.ndarray, cost: np.ndarray, mean: np.ndarray,
                std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        elite = actions[np.argsort(cost)[: self.cfg.elites]]
        return elite.mean(axis=0), np.maximum(elite.std(axis=0), np.array(self.cfg.min_std, dtype=np.float32))
