"""Cross-entropy-method planner over a dynamics model: the baseline Mode-2 planner.

Phases per call: (1) warm start from the previous mean shifted by one step,
(2) sample N action sequences, roll them out, score them, (3) refit the
Gaussian to the elites, repeat until the iteration count, the world-model call
budget or the deadline runs out, (4) return the best plan seen.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import Budget, PlanCost, UnicycleModel, make_plan, obstacle_points
from hjepa_agent.core.types import Plan, WorldState


@dataclass(frozen=True)
class CEMConfig:
    """CEM settings. Speeds in m/s and rad/s; dt_s per plan step."""

    horizon: int = 15
    dt_s: float = 0.2
    samples: int = 64
    elites: int = 8
    iterations: int = 4
    max_linear_mps: float = 0.6
    max_angular_rps: float = 1.8
    min_linear_mps: float = 0.0
    init_std: tuple[float, float] = (0.3, 1.0)
    min_std: tuple[float, float] = (0.05, 0.1)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.elites <= self.samples:
            raise ValueError(f"elites: must be in [1, samples={self.samples}], got {self.elites}")
        if self.horizon < 1 or self.iterations < 1:
            raise ValueError(f"horizon/iterations: must be >= 1, got {self.horizon}/{self.iterations}")


@dataclass
class CEMPlanner:
    """CEM over ``model`` with ``cost``; warm-started across calls."""

    cfg: CEMConfig
    cost: PlanCost
    model: UnicycleModel = field(default_factory=UnicycleModel)
    name: str = "cem"
    _mean: np.ndarray | None = None
    _rng: np.random.Generator | None = None

    def reset(self) -> None:
        """Drop the warm start."""
        self._mean = None

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None) -> Plan:
        """Plan towards ``goal`` (2,) odom-frame metres; see module docstring for the phases.

        ``seed`` (H, 2) or (2,) actions: the sampling mean starts there and the cost draws
        plans towards it (the habitual policy's proposal, or a higher level's segment)."""
        c = self.cfg
        if self._rng is None:
            self._rng = np.random.default_rng(c.seed)
        lo = np.array([c.min_linear_mps, -c.max_angular_rps], dtype=np.float32)
        hi = np.array([c.max_linear_mps, c.max_angular_rps], dtype=np.float32)
        # (1) warm start: from the seed when given, else from the previous plan shifted by a step
        if seed is not None:
            seed = np.broadcast_to(np.asarray(seed, dtype=np.float32), (c.horizon, 2)).copy()
        if seed is not None:
            mean = np.clip(seed, lo, hi)
        elif self._mean is None:
            mean = np.tile(np.array([0.5 * c.max_linear_mps, 0.0], dtype=np.float32), (c.horizon, 1))
        else:
            mean = np.concatenate([self._mean[1:], self._mean[-1:]], axis=0)
        std = np.tile(np.array(c.init_std, dtype=np.float32), (c.horizon, 1))
        obstacles = obstacle_points(ws)
        goal = np.asarray(goal, dtype=np.float32)
        best = (np.inf, None, None, 0.0)
        calls = 0
        for _ in range(c.iterations):
            if calls + c.samples * c.horizon > budget.max_world_model_calls or (calls and budget.expired()):
                break
            # (2) sample, roll out, score; candidate 0 is the mean itself
            noise = self._rng.standard_normal((c.samples, c.horizon, 2)).astype(np.float32)
            actions = np.clip(mean[None] + std[None] * noise, lo, hi)
            actions[0] = np.clip(mean, lo, hi)
            states = self.model.rollout(ws.pose, actions, c.dt_s)
            calls += c.samples * c.horizon
            cost, clearance = self.cost(states, actions, goal, obstacles, seed, (c.max_linear_mps, c.max_angular_rps))
            i = int(np.argmin(cost))
            if cost[i] < best[0]:
                best = (float(cost[i]), actions[i].copy(), states[i].copy(), float(clearance[i]))
            # (3) refit to the elites
            elite = actions[np.argsort(cost)[: c.elites]]
            mean = elite.mean(axis=0)
            std = np.maximum(elite.std(axis=0), np.array(c.min_std, dtype=np.float32))
        if best[1] is None:  # budget too small for one iteration: hold still, flagged as risky
            actions = np.zeros((c.horizon, 2), dtype=np.float32)
            states = self.model.rollout(ws.pose, actions[None], c.dt_s)[0]
            cost, clearance = self.cost(states[None], actions[None], goal, obstacles)
            best = (float(cost[0]), actions, states, float(clearance[0]))
        self._mean = mean
        # (4) the best plan seen
        return make_plan(ws, best[1], best[2], best[0], best[3], self.cost.safe_clearance_m, c.dt_s,
                         self.name, calls)
