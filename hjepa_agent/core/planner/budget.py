"""When the planner node plans, with how much, and which of its latest inputs it plans from.

* **Mode gating** (:func:`deliberating`): a plan is asked for in PLANNING and OPTIMISING (the watchdog's
  deliberation), or in every mode with ``always_plan``; otherwise the planner's warm start is dropped.
* **Budget** (:func:`plan_budget`): ``iterations`` sampling iterations' world-model calls, times
  ``optimise_factor`` in OPTIMISING, capped at ``max_world_model_calls``; the wall-clock deadline
  ``deadline_ms`` (``optimise_deadline_ms`` in OPTIMISING, where a refining planner keeps at it until
  then: ``Budget.refine``).
* **Freshness**: the habitual proposal seeds the plan only while its stamp is within SEED_MAX_SKEW_S of
  the world state's, and never while the habitual policy is stalled (:func:`plan_seed`); a scan is folded
  into the map at a world state's pose only within SCAN_POSE_SKEW_S of it (:func:`scan_at_pose`); its
  raw beams stand for the obstacles while at most BEAMS_MAX_AGE_S old at the world state's stamp, else
  the world state's sectors do (:func:`fresh_beams`).

Pure: stamps and start times are values (s); the budget's clock is ``time.monotonic`` unless given.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hjepa_agent.core.planner.base import Budget
from hjepa_agent.core.types import Mode

SEED_MAX_SKEW_S = 0.5
"""The habitual proposal seeds a plan only if its stamp is this close to the world state's (s)."""
SCAN_POSE_SKEW_S = 0.25
"""A scan is folded into the navfield at a world state's pose only if their stamps are this close (s)."""
BEAMS_MAX_AGE_S = 0.25
"""A plan's clearance is taken from the latest scan's raw beams while they are at most this old (s) at the
world state's stamp (a 10 Hz scanner's period and its skew); older, from the world state's sectors."""


@dataclass(frozen=True)
class BudgetConfig:
    """The planner node's budget parameters: sampling ``iterations`` per plan in PLANNING, their multiplier
    ``optimise_factor`` in OPTIMISING, the cap ``max_world_model_calls`` per plan, and the wall-clock
    deadlines per plan ``deadline_ms`` (PLANNING) and ``optimise_deadline_ms`` (OPTIMISING), ms."""

    iterations: int = 3
    optimise_factor: int = 3
    max_world_model_calls: int = 20000
    deadline_ms: float = 60.0
    optimise_deadline_ms: float = 20.0

    def __post_init__(self) -> None:
        for name in ("iterations", "optimise_factor", "max_world_model_calls"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in ("deadline_ms", "optimise_deadline_ms"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name}: must be > 0 ms, got {getattr(self, name)}")


def deliberating(mode: Mode, always_plan: bool = False) -> bool:
    """Whether a plan is asked for in ``mode`` (module doc)."""
    return always_plan or mode in (Mode.PLANNING, Mode.OPTIMISING)


def plan_calls(cfg: BudgetConfig, mode: Mode, calls_per_iteration: int) -> int:
    """World-model calls one plan may make in ``mode`` (module doc)."""
    factor = cfg.optimise_factor if mode == Mode.OPTIMISING else 1
    return min(cfg.max_world_model_calls, calls_per_iteration * cfg.iterations * factor)


def plan_budget(cfg: BudgetConfig, mode: Mode, calls_per_iteration: int, start_s: float,
                clock: Callable[[], float] = time.monotonic) -> Budget:
    """The Budget of a plan started at ``start_s`` on ``clock`` (s) in ``mode``: :func:`plan_calls` calls, the
    mode's deadline, and ``refine`` in OPTIMISING."""
    optimising = mode == Mode.OPTIMISING
    deadline_ms = cfg.optimise_deadline_ms if optimising else cfg.deadline_ms
    return Budget(plan_calls(cfg, mode, calls_per_iteration), start_s + deadline_ms * 1e-3, clock=clock,
                  refine=optimising)


def plan_seed(seed: tuple[float, float, float] | None, stamp_s: float, stalled: bool) -> np.ndarray | None:
    """The habitual proposal ``seed`` (stamp s, v m/s, w rad/s) as the plan's seed (2,) for a world state
    stamped ``stamp_s``; None while the habitual policy is ``stalled``, without one, or when it is not
    within SEED_MAX_SKEW_S."""
    if stalled or seed is None or not abs(seed[0] - stamp_s) < SEED_MAX_SKEW_S:
        return None
    return np.array(seed[1:], dtype=np.float32)


def scan_at_pose(scan_stamp_s: float, stamp_s: float) -> bool:
    """Whether a scan stamped ``scan_stamp_s`` is folded in at the pose of a world state stamped ``stamp_s``."""
    return abs(scan_stamp_s - stamp_s) <= SCAN_POSE_SKEW_S


def fresh_beams(beams: tuple[float, np.ndarray] | None, stamp_s: float) -> np.ndarray | None:
    """The obstacle points of ``beams`` ((stamp s of the world state they were folded in at, odom-frame
    points (K, 2): they hold at any later pose)) for a world state stamped ``stamp_s``, while fresh (module
    doc); else None. Not only a world state stamped with the scan: with a 30 Hz camera and a 10 Hz scan two
    plans in three saw the coarser sectors, which can close a passage the beams see open, and the plans
    flipped between driving through and standing still (a Jackal-like rehearsal stuck in 7 of 20 episodes)."""
    if beams is None or not 0.0 <= stamp_s - beams[0] <= BEAMS_MAX_AGE_S:
        return None
    return beams[1]


__all__ = ["BEAMS_MAX_AGE_S", "BudgetConfig", "SCAN_POSE_SKEW_S", "SEED_MAX_SKEW_S", "deliberating", "fresh_beams",
           "plan_budget", "plan_calls", "plan_seed", "scan_at_pose"]
