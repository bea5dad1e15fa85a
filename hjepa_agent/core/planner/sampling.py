"""The sampling loop shared by the CEM and MPPI planners over a dynamics model.

Phases per call: (1) warm start from the seed, or from the previous nominal plan shifted by
one step, (2) sample N action sequences around the nominal, roll them out, score them,
(3) update the nominal and its spread (the one thing CEM and MPPI do differently), repeat
until the iteration count, the world-model call budget or the deadline runs out, (4) return
the best plan seen.

Every iteration's candidates include, besides the current nominal, the plans a sampler with
independent per-step noise almost never draws (see :func:`motion_primitives`): standing
still, turning on the spot at full rate either way, and "turn to a heading, then drive" for
eight headings. The first three never move the centre of a round footprint, so when the robot
stands clear the planner never returns a plan that it predicts to touch: it stops and turns
instead (the way DWA always keeps v = 0 in its window). The others let it leave a dead end the
way it came. The primitives compete for the best plan but not in the update, so they never
stop the search.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import (Budget, PlanCost, UnicycleModel, make_plan, obstacle_points,
                                          with_predicted_ambiguity)
from hjepa_agent.core.planner.navfield import NavField
from hjepa_agent.core.planner.recovery import route_primitives
from hjepa_agent.core.types import Plan, WorldState


@dataclass(frozen=True)
class SamplingConfig:
    """Settings shared by the sampling planners. Speeds in m/s and rad/s; dt_s per plan step;
    init_std: the per-step sampling spread (v, w) at the start of a call."""

    horizon: int = 15
    dt_s: float = 0.2
    samples: int = 64
    iterations: int = 4
    max_linear_mps: float = 0.6
    max_angular_rps: float = 1.8
    min_linear_mps: float = 0.0
    init_std: tuple[float, float] = (0.3, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.iterations < 1 or self.samples < 4:
            raise ValueError(f"horizon/iterations must be >= 1 and samples >= 4, got "
                             f"{self.horizon}/{self.iterations}/{self.samples}")


N_HEADINGS = 8
"""Turn-then-drive primitives per call: relative headings k * 45 deg."""
DRIVE_FRACTIONS = (0.4, 1.0)
"""Turn-then-drive primitives drive for these fractions of the horizon, then stand: a short
move is what gets out of a gap that every straight 3-s line would hit the other side of."""


def motion_primitives(horizon: int, dt_s: float, max_linear_mps: float, max_angular_rps: float,
                      room: int) -> np.ndarray:
    """Up to ``room`` plans (K, horizon, 2) of (v, w): stand still, turn left, turn right at
    ``max_angular_rps`` (these three never move the footprint's centre), then for each of
    N_HEADINGS relative headings and each of DRIVE_FRACTIONS: turn there on the spot at full
    rate, then drive straight at ``max_linear_mps`` for that fraction of the horizon, then stand."""
    plans = [np.zeros((horizon, 2)), np.tile([0.0, max_angular_rps], (horizon, 1)),
             np.tile([0.0, -max_angular_rps], (horizon, 1))]
    for k in range(N_HEADINGS):
        rel = (2.0 * np.pi * k / N_HEADINGS + np.pi) % (2.0 * np.pi) - np.pi
        turn = abs(rel) / max(max_angular_rps, 1e-6)           # seconds on the spot
        for frac in DRIVE_FRACTIONS:
            drive_until = turn + frac * horizon * dt_s
            a = np.zeros((horizon, 2))
            for i in range(horizon):
                t0, t1 = i * dt_s, (i + 1) * dt_s
                t_turn = max(0.0, min(t1, turn) - t0)               # turning time within step i
                t_drive = max(0.0, min(t1, drive_until) - max(t0, turn))
                a[i, 1] = np.sign(rel) * max_angular_rps * t_turn / dt_s
                a[i, 0] = max_linear_mps * t_drive / dt_s
            plans.append(a)
    return np.asarray(plans[:room], dtype=np.float32)


@dataclass
class SamplingPlanner(ABC):
    """The loop of the module doc over ``model`` with ``cost``; warm-started across calls. With a
    ``navfield`` the goal terms use its cost-to-go round the obstacles it has seen (fed by
    :meth:`observe`). Subclasses supply :meth:`_update`."""

    cfg: SamplingConfig
    cost: PlanCost
    model: UnicycleModel = field(default_factory=UnicycleModel)
    navfield: NavField | None = None
    ambiguity: object | None = None
    """planner/latent.LatentAmbiguity: adds the learned world model's predicted-state ambiguity of
    each candidate (from the world state's latent) to its cost; None: not used."""
    name: str = "sampling"
    _mean: np.ndarray | None = None
    _rng: np.random.Generator | None = None
    last_samples: np.ndarray | None = None
    """Predicted states (K, H+1, 3) of the latest iteration's sampled plans (not the primitives)
    that keep clear of every obstacle: what route diversity is measured on."""

    @abstractmethod
    def _update(self, actions: np.ndarray, cost: np.ndarray, mean: np.ndarray,
                std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New (nominal (H, 2), spread (H, 2)) from the sampled plans ``actions`` (K, H, 2) and
        their ``cost`` (K,) (the primitives are not among them)."""

    @property
    def calls_per_iteration(self) -> int:
        """World-model calls of one sampling iteration (samples x horizon)."""
        return self.cfg.samples * self.cfg.horizon

    def reset(self) -> None:
        """Drop the warm start (the navfield's memory stays: the obstacles have not moved)."""
        self._mean = None

    def observe(self, pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray,
                range_min: float = 0.0, range_max: float = float("inf")) -> None:
        """Fold a range scan into the navfield, if there is one (see NavField.observe)."""
        if self.navfield is not None:
            self.navfield.observe(pose, angles, ranges, range_min, range_max)

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        """Plan towards ``goal`` (2,) odom-frame metres; see the module doc for the phases.

        ``seed`` (H, 2) or (2,) actions: the sampling mean starts there and the cost draws
        plans towards it (the habitual policy's proposal, or a higher level's segment)."""
        c = self.cfg
        if self._rng is None:
            self._rng = np.random.default_rng(c.seed)
        lo = np.array([c.min_linear_mps, -c.max_angular_rps], dtype=np.float32)
        hi = np.array([c.max_linear_mps, c.max_angular_rps], dtype=np.float32)
        # (1) warm start: from the seed when given, else from the previous nominal shifted by a step
        if seed is not None:
            seed = np.broadcast_to(np.asarray(seed, dtype=np.float32), (c.horizon, 2)).copy()
        if seed is not None:
            mean = np.clip(seed, lo, hi)
        elif self._mean is None:
            mean = np.tile(np.array([0.5 * c.max_linear_mps, 0.0], dtype=np.float32), (c.horizon, 1))
        else:
            mean = np.concatenate([self._mean[1:], self._mean[-1:]], axis=0)
        std = np.tile(np.array(c.init_std, dtype=np.float32), (c.horizon, 1))
        goal = np.asarray(goal, dtype=np.float32)
        nav = self.navfield
        # the fixed primitives, then the ones that follow the navfield's route (core/planner/recovery.py)
        route = route_primitives(nav, ws.pose, goal, ws.stamp_s, c.horizon, c.dt_s, c.max_linear_mps,
                                 c.max_angular_rps)[:max(0, c.samples - 4)]
        fallback = np.concatenate([motion_primitives(c.horizon, c.dt_s, c.max_linear_mps, c.max_angular_rps,
                                                     max(0, c.samples - 1 - len(route))), route])
        obstacles = obstacle_points(ws) if obstacles is None else np.asarray(obstacles, np.float32).reshape(-1, 2)
        to_go = None if nav is None else (lambda xy: nav.distance(xy, goal, ws.stamp_s))
        pen = None if self.ambiguity is None else self.ambiguity.penalty(ws.latent, c.dt_s)
        best = (np.inf, None, None, 0.0)
        calls = 0
        for _ in range(c.iterations):
            if calls + c.samples * c.horizon > budget.max_world_model_calls or (calls and budget.expired()):
                break
            # (2) sample, roll out, score; candidate 0 is the mean itself
            noise = self._rng.standard_normal((c.samples, c.horizon, 2)).astype(np.float32)
            actions = np.clip(mean[None] + std[None] * noise, lo, hi)
            actions[0] = np.clip(mean, lo, hi)
            actions[1:1 + len(fallback)] = fallback
            states = self.model.rollout(ws.pose, actions, c.dt_s)
            calls += c.samples * c.horizon
            cost, clearance = self.cost(states, actions, goal, obstacles, seed, (c.max_linear_mps, c.max_angular_rps),
                                        to_go, pen, ws)
            i = int(np.argmin(cost))
            if cost[i] < best[0]:
                best = (float(cost[i]), actions[i].copy(), states[i].copy(), float(clearance[i]))
            # (3) update from the sampled plans only (the primitives would drag the distribution
            # to standing still whenever they win, and stop the search)
            sampled = np.r_[0, np.arange(1 + len(fallback), c.samples)]
            mean, std = self._update(actions[sampled], cost[sampled], mean, std)
            # for benchmarks: the latest iteration's sampled plans predicted clear of obstacles
            self.last_samples = states[sampled][clearance[sampled] >= 0.0]
        if best[1] is None:  # budget too small for one iteration: hold still, flagged as risky
            actions = np.zeros((c.horizon, 2), dtype=np.float32)
            states = self.model.rollout(ws.pose, actions[None], c.dt_s)[0]
            cost, clearance = self.cost(states[None], actions[None], goal, obstacles, to_go=to_go, penalty=pen, ws=ws)
            best = (float(cost[0]), actions, states, float(clearance[0]))
        self._mean = mean
        # (4) the best plan seen
        plan = make_plan(ws, best[1], best[2], best[0], best[3], self.cost.safe_clearance_m, c.dt_s,
                         self.name, calls)
        return plan if self.ambiguity is None else with_predicted_ambiguity(plan, self.ambiguity, ws)
