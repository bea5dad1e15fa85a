"""Small builders shared by the tests (test/conftest.py imports them too): a WorldState by named fields
instead of nine positional arguments and hand-counted slices of WORLD_STATE_LABELS."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M, WORLD_STATE_LABELS, WorldState


def clear_scan() -> np.ndarray:
    """Scan sectors (N_SCAN_BINS,) float32 with nothing in range: every one at SCAN_RANGE_MAX_M."""
    return np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)


def world_state(*, stamp_s: float = 0.0, pose: Sequence[float] = (0.0, 0.0, 0.0), twist: Sequence[float] = (0.0, 0.0),
                goal: Sequence[float] | None = None, has_goal: bool | None = None, scan: Sequence[float] | None = None,
                latent: Sequence[float] | None = None, variance: Sequence[float] | float = 0.0,
                ambiguity: float = 0.0) -> WorldState:
    """A WorldState as the estimator makes one (float32 arrays): pose (x m, y m, yaw rad), twist (v m/s,
    w rad/s), ``goal`` (x, y m; None: no goal, zeros) and ``has_goal`` (default: a goal was given), ``scan``
    (N_SCAN_BINS,) m (default :func:`clear_scan`), ``latent`` (N_LATENT,) (default zeros), ``variance``
    (len(WORLD_STATE_LABELS),) or one value for all, ``ambiguity``. Arrays are copied, as WorldState.from_vector does."""
    n = len(WORLD_STATE_LABELS)
    var = np.full(n, variance, np.float32) if np.ndim(variance) == 0 else np.array(variance, np.float32)
    return WorldState(stamp_s, np.array(pose, np.float32), np.array(twist, np.float32),
                      np.zeros(2, np.float32) if goal is None else np.array(goal, np.float32),
                      goal is not None if has_goal is None else has_goal,
                      clear_scan() if scan is None else np.array(scan, np.float32),
                      np.zeros(N_LATENT, np.float32) if latent is None else np.array(latent, np.float32),
                      var, float(ambiguity))


__all__ = ["clear_scan", "world_state"]
