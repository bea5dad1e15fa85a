"""GFlowNet planner (Mode 2, amortised): samples whole plans from a learned forward policy in one
batched pass per step, instead of iterating a sampling distribution like CEM or MPPI.

The policy P_F(a_t | a[0:t], c) was trained with trajectory balance (hjepa_agent.train.gflownet,
``hjepa-agent train planner``) so that it draws a plan tau with probability R(tau | c) / Z(c),
R = exp(-BETA * cost) with the same PlanCost every planner uses. At run time (ONNX Runtime only):

1. condition c = :func:`condition_features` of the world state and the navfield;
2. draw ``samples`` plans step by step (horizon ONNX calls of batch ``samples``), each action out
   of the ACTIONS table scaled by the ego model's operating limits;
3. roll them out with the same dynamics model and cost as CEM, keep the best (highest log R),
   with standing still and turning on the spot as fallbacks (so a robot standing clear is never
   handed a plan predicted to touch);
4. world-model calls = (samples + N_FALLBACKS) * HORIZON * REPEAT: 285 for 16 samples, against
   CEM's 2880.

Per-step log-probabilities are P_F's; log Z(c) comes from its own network.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import Budget, PlanCost, UnicycleModel, make_plan, obstacle_points
from hjepa_agent.core.planner.navfield import NavField
from hjepa_agent.core.planner.sampling import motion_primitives
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, Plan, WorldState

V_LEVELS = (0.0, 0.5, 1.0)
"""Linear speed choices as fractions of the operating maximum (0: turn on the spot or stop, which
a plan needs near the goal: without it every plan overshot and the robot parked 0.4 m short)."""
W_LEVELS = (-1.0, -0.5, 0.0, 0.5, 1.0)
"""Angular rate choices as fractions of the operating maximum."""
ACTIONS = np.array([(v, w) for v in V_LEVELS for w in W_LEVELS], dtype=np.float32)
"""(n_actions, 2) fractions of (max_linear_mps, max_angular_rps): the policy's action set."""
HORIZON = 5
"""Policy steps per plan; each action is held for REPEAT roll-out steps of DT_S (3 s in all)."""
REPEAT = 3
DT_S = 0.2
BETA = 5.0
"""log R = -BETA * cost (cost clipped at COST_CLIP, so a touching plan has log R = -BETA * COST_CLIP)."""
COST_CLIP = 20.0
GOAL_SCALE_M = 4.0
TO_GO_RADIUS_M = 1.0
"""The condition carries the navfield's cost-to-go change 1 m out in 8 directions."""
N_DIRECTIONS = 8
COND_DIM = 3 + N_SCAN_BINS + 2 + N_DIRECTIONS
N_FALLBACKS = 3
"""Stand still, turn left, turn right (the first three of sampling.motion_primitives)."""


def condition_features(pose: np.ndarray, goal: np.ndarray, scan_bins: np.ndarray, twist: np.ndarray,
                       to_go, max_linear_mps: float, max_angular_rps: float) -> np.ndarray:
    """(COND_DIM,) float32 in the robot frame: goal distance / GOAL_SCALE_M (clipped at 1), cos and
    sin of the goal bearing, scan sectors / range max, speeds / limits, and for N_DIRECTIONS
    directions (robot frame, from straight ahead anticlockwise) the change in cost-to-go 1 m out
    (m; ``to_go(points (K, 2)) -> (K,)`` in the odom frame, straight-line distance without a map)."""
    x, y, yaw = (float(a) for a in pose)
    dx, dy = float(goal[0]) - x, float(goal[1]) - y
    dist = math.hypot(dx, dy)
    bearing = math.atan2(dy, dx) - yaw
    ang = yaw + 2.0 * np.pi * np.arange(N_DIRECTIONS) / N_DIRECTIONS
    pts = np.stack([x + TO_GO_RADIUS_M * np.cos(ang), y + TO_GO_RADIUS_M * np.sin(ang)], axis=1)
    here = float(np.asarray(to_go(np.array([[x, y]])), np.float64).reshape(-1)[0])
    delta = np.asarray(to_go(pts), np.float64).reshape(-1) - here
    out = np.concatenate([[min(dist / GOAL_SCALE_M, 1.0), math.cos(bearing), math.sin(bearing)],
                          np.asarray(scan_bins, np.float64) / SCAN_RANGE_MAX_M,
                          [float(twist[0]) / max_linear_mps, float(twist[1]) / max_angular_rps],
                          np.clip(delta / TO_GO_RADIUS_M, -3.0, 3.0)])
    return out.astype(np.float32)


def encode_prefix(actions: np.ndarray, step: int, horizon: int = HORIZON, n_actions: int = len(ACTIONS)) -> np.ndarray:
    """(N, horizon * n_actions + horizon + 1) float32: the prefixes ``actions[:, :step]`` one-hot and
    the step one-hot (the layout of hjepa_agent.train.gflownet.PlanSpace.encode)."""
    n = actions.shape[0]
    prefix = np.zeros((n, horizon, n_actions), np.float32)
    if step:
        prefix[np.arange(n)[:, None], np.arange(step)[None, :], actions[:, :step]] = 1.0
    onehot = np.zeros((n, horizon + 1), np.float32)
    onehot[:, step] = 1.0
    return np.concatenate([prefix.reshape(n, -1), onehot], axis=1)


def expand(idx: np.ndarray, max_linear_mps: float, max_angular_rps: float) -> np.ndarray:
    """(N, HORIZON * REPEAT, 2) commands (m/s, rad/s) of plans given as action indices (N, HORIZON)."""
    acts = ACTIONS[idx] * np.array([max_linear_mps, max_angular_rps], np.float32)
    return np.repeat(acts, REPEAT, axis=1)


def log_reward(cost: np.ndarray) -> np.ndarray:
    """log R of plans with ``cost`` (module doc)."""
    return -BETA * np.minimum(np.asarray(cost, np.float64), COST_CLIP)


@dataclass
class GFlowNetPlanner:
    """The runtime planner of the module doc. ``policy(x (N, state+cond)) -> logits (N, n_actions)``
    and ``log_z(c (N, COND_DIM)) -> (N, 1)`` are the exported networks (OnnxModel or any callable)."""

    policy: object
    log_z: object
    cost: PlanCost
    max_linear_mps: float
    max_angular_rps: float
    samples: int = 16
    model: UnicycleModel = field(default_factory=UnicycleModel)
    navfield: NavField | None = None
    seed: int = 0
    name: str = "gflownet"
    last_samples: np.ndarray | None = None
    _rng: np.random.Generator | None = None

    def reset(self) -> None:
        """Nothing to forget between calls (the policy is amortised; the navfield stays)."""

    def observe(self, pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray,
                range_min: float = 0.0, range_max: float = float("inf")) -> None:
        """Fold a range scan into the navfield, if there is one (see NavField.observe)."""
        if self.navfield is not None:
            self.navfield.observe(pose, angles, ranges, range_min, range_max)

    def sample(self, cond: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n plans (action indices (n, HORIZON)) from P_F for one condition, and their per-step
        log-probabilities (n, HORIZON)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        idx = np.zeros((n, HORIZON), np.int64)
        logp = np.zeros((n, HORIZON), np.float32)
        c = np.broadcast_to(cond[None], (n, cond.shape[0]))
        for t in range(HORIZON):
            logits = np.asarray(self.policy(np.concatenate([encode_prefix(idx, t), c], axis=1)), np.float64)
            logits = logits - logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            u = self._rng.random((n, 1))
            choice = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), p.shape[1] - 1)
            idx[:, t] = choice
            logp[:, t] = np.log(p[np.arange(n), choice] + 1e-12)
        return idx, logp

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        """Best of ``samples`` plans from the policy and the fallback primitives (module doc).
        ``seed`` is not used: the policy is conditioned on the state, not on a proposal."""
        goal = np.asarray(goal, np.float32)
        nav = self.navfield
        to_go = ((lambda xy: nav.distance(xy, goal, ws.stamp_s)) if nav is not None
                 else (lambda xy: np.linalg.norm(np.asarray(xy) - goal, axis=-1)))
        cond = condition_features(ws.pose, goal, ws.scan_bins, ws.twist, to_go, self.max_linear_mps,
                                  self.max_angular_rps)
        idx, logp = self.sample(cond, self.samples)
        acts = expand(idx, self.max_linear_mps, self.max_angular_rps)
        prims = motion_primitives(HORIZON * REPEAT, DT_S, self.max_linear_mps, self.max_angular_rps, N_FALLBACKS)
        actions = np.concatenate([acts, prims], axis=0)
        states = self.model.rollout(ws.pose, actions, DT_S)
        obstacles = obstacle_points(ws) if obstacles is None else np.asarray(obstacles, np.float32).reshape(-1, 2)
        cost, clearance = self.cost(states, actions, goal, obstacles, None, (self.max_linear_mps, self.max_angular_rps),
                                    to_go)
        self.last_samples = states[:self.samples][clearance[:self.samples] >= 0.0]
        i = int(np.argmin(cost))
        calls = len(actions) * HORIZON * REPEAT
        plan = make_plan(ws, actions[i], states[i], float(cost[i]), float(clearance[i]), self.cost.safe_clearance_m,
                         DT_S, self.name, calls, beta=BETA)
        log_z = float(np.asarray(self.log_z(cond[None])).reshape(-1)[0])
        lp = np.repeat(logp[i] / REPEAT, REPEAT) if i < self.samples else np.zeros(HORIZON * REPEAT, np.float32)
        return dataclasses.replace(plan, log_probs=lp.astype(np.float32), log_reward=float(log_reward(cost[i])),
                                   extras={**plan.extras, "log_z": log_z, "from_policy": i < self.samples})


__all__ = ["ACTIONS", "BETA", "COND_DIM", "GFlowNetPlanner", "HORIZON", "REPEAT", "condition_features",
           "encode_prefix", "expand", "log_reward"]
