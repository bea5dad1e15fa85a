"""GFlowNet planner (Mode 2, amortised): samples whole plans from a learned forward policy in one
batched pass per step, instead of iterating a sampling distribution like CEM or MPPI.

The policy P_F(a_t | a[0:t], c) was trained by (sub-)trajectory balance (hjepa_agent.train.gflownet,
``hjepa-agent train planner``) so that it draws a plan tau with probability R(tau | c) / Z(c),
R = exp(-BETA * cost) with the same PlanCost every planner uses. At run time (ONNX Runtime only):

1. condition c = :func:`condition_features` of the world state and the navfield;
2. draw ``samples`` plans step by step (horizon ONNX calls of batch ``samples``), each action out
   of the ACTIONS table scaled by the ego model's operating limits;
3. roll them out with the same dynamics model and cost as CEM, keep the best (highest log R),
   with standing still and turning on the spot as fallbacks (so a robot standing clear is never
   handed a plan predicted to touch);
4. world-model calls = (samples + N_FALLBACKS + warm start) * HORIZON * REPEAT: 285 for 15
   samples, against CEM's 2880 (1/10.1).

Per-step log-probabilities are P_F's; log Z(c) comes from its own network. The plan space, the
sampler and the optimisation mode's refiner are the ones the slow level uses too (core/planner/gfn).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import (Budget, PlanCost, UnicycleModel, make_plan, obstacle_points,
                                          with_predicted_ambiguity)
from hjepa_agent.core.planner import gfn
from hjepa_agent.core.planner.gfn.plans import PlanSpace
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
BETA = 10.0
"""log R = -BETA * cost (cost clipped at COST_CLIP, so a touching plan has log R = -BETA * COST_CLIP).
Training's defaults; the networks' own values are in their manifest record and are the ones used.
(At beta 5 the many stand-and-turn plans out-weighed the few that thread a passage.)"""
COST_CLIP = 6.0
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


def expand(idx: np.ndarray, max_linear_mps: float, max_angular_rps: float, repeat: int = REPEAT) -> np.ndarray:
    """(N, horizon * repeat, 2) commands (m/s, rad/s) of plans given as action indices (N, horizon)."""
    acts = ACTIONS[idx] * np.array([max_linear_mps, max_angular_rps], np.float32)
    return np.repeat(acts, repeat, axis=1)


def log_reward(cost: np.ndarray, beta: float = BETA, cost_clip: float = COST_CLIP) -> np.ndarray:
    """log R = -beta * min(cost, cost_clip) of plans with ``cost`` (module doc; the networks'
    beta and clip are in their manifest record)."""
    return -beta * np.minimum(np.asarray(cost, np.float64), cost_clip)


def plan_risk(log_r: float, log_z: float, horizon: int, n_actions: int = len(ACTIONS)) -> float:
    """Probability-like risk of a plan from its log R and the condition's log Z.

    log Z - horizon * log(n_actions) is the log of the *mean* reward over every plan of the
    action space, R_mean = Z / |X|. The risk is the Bradley-Terry probability that a plan of
    mean reward is preferred to this one:

        risk = R_mean / (R_mean + R(tau)) = sigmoid(log Z - log |X| - log R(tau))

    0.5: the plan is no better than an average plan of the space; -> 0: it is far better (it
    carries much more reward than the average: the rest of the space is worse, e.g. every other
    way hits something); -> 1: it is worse than average. The reading is relative: when every
    plan is equally bad (boxed in) it is 0.5, so the clearance risk is kept beside it
    (``extras["clearance_risk"]``)."""
    x = float(log_z) - horizon * math.log(n_actions) - float(log_r)
    return float(1.0 / (1.0 + math.exp(-x))) if x > -700 else 0.0


@dataclass
class GFlowNetPlanner:
    """The runtime planner of the module doc. ``policy(x (N, state+cond)) -> logits (N, n_actions)``
    and ``log_z(c (N, COND_DIM)) -> (N, 1)`` are the exported networks (OnnxModel or any callable).

    Candidates per call: ``samples`` plans from P_F, the N_FALLBACKS primitives, the previous
    plan shifted by the time since it was made (warm start) and, when given, the seed (the
    habitual proposal held over the horizon). In ``budget.refine`` (OPTIMISING) it then refines
    the best ``chains`` policy samples by back-and-forth moves (gfn.refine) until the deadline or
    the call budget (gfn.BudgetPace)."""

    policy: object
    log_z: object
    cost: PlanCost
    max_linear_mps: float
    max_angular_rps: float
    samples: int = 15
    horizon: int = HORIZON
    repeat: int = REPEAT
    chains: int = 8
    explore: float = 0.2
    """Optimisation mode: each resampled step is drawn from (1 - explore) P_F + explore uniform (the
    MH ratio uses that mixture, so it stays exact); a P_F that has collapsed onto one plan (it put
    all its mass on standing still at a passage mouth it had not been trained on) still moves."""
    beta: float = BETA
    cost_clip: float = COST_CLIP
    model: UnicycleModel = field(default_factory=UnicycleModel)
    navfield: NavField | None = None
    ambiguity: object | None = None
    """planner/latent.LatentAmbiguity: the learned world model's predicted-state ambiguity of each
    candidate, added to its cost at run time (the networks were trained without it); None: not used."""
    seed: int = 0
    name: str = "gflownet"
    last_samples: np.ndarray | None = None
    last_refine: dict = field(default_factory=dict)
    """Statistics of the latest refinement (gfn.Refined.stats): rounds, proposals, accepted, improved, k."""
    _rng: np.random.Generator | None = None
    _prev: tuple[float, np.ndarray] | None = None

    @property
    def calls_per_iteration(self) -> int:
        """World-model calls of one planning pass at most (samples, fallbacks, warm start; a seed
        replaces a sample)."""
        return (self.samples + N_FALLBACKS + 1) * self.horizon * self.repeat

    def reset(self) -> None:
        """Forget the warm start (the policy is amortised; the navfield stays)."""
        self._prev = None

    def observe(self, pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray,
                range_min: float = 0.0, range_max: float = float("inf")) -> None:
        """Fold a range scan into the navfield, if there is one (see NavField.observe)."""
        if self.navfield is not None:
            self.navfield.observe(pose, angles, ranges, range_min, range_max)

    @property
    def space(self) -> PlanSpace:
        """The networks' plan space (gfn/plans.py)."""
        return PlanSpace(self.horizon, len(ACTIONS), COND_DIM)

    def _generator(self) -> np.random.Generator:
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    def sample(self, cond: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n plans (action indices (n, horizon)) from P_F for one condition (gfn.sample), and their
        per-step log-probabilities (n, horizon) float32."""
        traj = gfn.sample(self.space, self.policy, cond, n, self._generator())
        return traj.states, traj.log_pf.astype(np.float32)

    def _others(self, ws: WorldState, seed: np.ndarray | None, steps: int) -> tuple[list[np.ndarray], list[str]]:
        """The candidates beside the policy's (class doc): commands (1 or N_FALLBACKS, steps, 2) and sources."""
        scale = (self.max_linear_mps, self.max_angular_rps)
        out, sources = [motion_primitives(steps, DT_S, *scale, N_FALLBACKS)], ["fallback"] * N_FALLBACKS
        if self._prev is not None and 0.0 <= ws.stamp_s - self._prev[0] < steps * DT_S:
            shift = int(round((ws.stamp_s - self._prev[0]) / DT_S))
            prev = self._prev[1]
            out.append(np.concatenate([prev[shift:], np.repeat(prev[-1:], shift, axis=0)])[None])
            sources.append("warm start")
        if seed is not None:
            held = np.broadcast_to(np.asarray(seed, np.float32), (steps, 2)) if np.ndim(seed) == 1 else seed
            if held.shape == (steps, 2):
                out.append(np.clip(held, -np.asarray(scale), np.asarray(scale))[None].astype(np.float32))
                sources.append("seed")
        return out, sources

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        """Best plan of the candidates of the class doc (and of the refiner's chains when ``budget.refine``)."""
        rng = self._generator()
        goal = np.asarray(goal, np.float32)
        h, r = self.horizon, self.repeat
        steps = h * r
        scale = (self.max_linear_mps, self.max_angular_rps)
        nav = self.navfield
        to_go = ((lambda xy: nav.distance(xy, goal, ws.stamp_s)) if nav is not None
                 else (lambda xy: np.linalg.norm(np.asarray(xy) - goal, axis=-1)))
        obstacles = obstacle_points(ws) if obstacles is None else np.asarray(obstacles, np.float32).reshape(-1, 2)
        pen = None if self.ambiguity is None else self.ambiguity.penalty(ws.latent, DT_S)

        def cost_of(states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return self.cost(states, actions, goal, obstacles, None, scale, to_go, pen, ws)

        # 1. candidates: policy samples within the call budget, after the fallbacks, warm start and seed
        # (the fallbacks are always evaluated: they are what keeps a plan from touching); a seed takes a
        # policy sample's place, so a pass never costs more than calls_per_iteration
        n = int(min(self.samples - (seed is not None), max(1, budget.max_world_model_calls // steps - N_FALLBACKS - 2)))
        t_pass = time.perf_counter()
        cond = condition_features(ws.pose, goal, ws.scan_bins, ws.twist, to_go, *scale)
        traj = gfn.sample(self.space, self.policy, cond, n, rng, self.log_z)
        idx, logp = traj.states, traj.log_pf.astype(np.float32)
        others, other_sources = self._others(ws, seed, steps)
        actions = np.concatenate([expand(idx, *scale, r)] + others, axis=0)
        sources = ["policy"] * n + other_sources
        states = self.model.rollout(ws.pose, actions, DT_S)
        cost, clearance = cost_of(states, actions)
        calls = len(actions) * steps
        log_r = log_reward(cost, self.beta, self.cost_clip)
        self.last_samples = states[:n][clearance[:n] >= 0.0]
        step_s = (time.perf_counter() - t_pass) / (h + 1)
        # 2. optimisation mode: back-and-forth moves on the best policy samples (gfn.refine); a K-step
        # move rolls out only its K new steps, from the kept prefix's last state
        refined_idx = None
        self.last_refine = {"rounds": 0, "proposals": 0, "accepted": 0, "improved": 0, "k": []}
        if budget.refine and not budget.expired():
            def score(new: np.ndarray, k: int, old_states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                keep = h - k
                tail = self.model.rollout(old_states[:, keep * r], expand(new[:, keep:], *scale, r), DT_S)
                new_states = np.concatenate([old_states[:, :keep * r + 1], tail[:, 1:]], axis=1)
                return log_reward(cost_of(new_states, expand(new, *scale, r))[0], self.beta, self.cost_clip), new_states

            top = np.argsort(cost[:n])[:min(self.chains, n)]
            pace = gfn.BudgetPace(budget, calls, r, step_s)
            best = gfn.refine(self.space, self.policy, cond, idx[top], log_r[top], score, rng, pace, self.explore,
                              states[top])
            calls, self.last_refine = pace.calls, best.stats
            j = int(np.argmax(best.log_r))
            if best.log_r[j] > log_r.max():
                refined_idx = best.states[j]
                r_act = expand(best.states[j:j + 1], *scale, r)
                r_cost, r_clear = cost_of(best.extra[j:j + 1], r_act)
                actions = np.concatenate([actions, r_act])
                states = np.concatenate([states, best.extra[j:j + 1]])
                cost, clearance = np.r_[cost, r_cost], np.r_[clearance, r_clear]
                log_r = np.r_[log_r, log_reward(r_cost, self.beta, self.cost_clip)]
                sources.append("refined")
        # 3. select: the refined plan where it beat every candidate, else the cheapest
        i = int(np.argmin(cost)) if refined_idx is None else len(cost) - 1
        self._prev = (ws.stamp_s, actions[i].copy())
        plan = make_plan(ws, actions[i], states[i], float(cost[i]), float(clearance[i]), self.cost.safe_clearance_m,
                         DT_S, self.name, calls, beta=self.beta)
        # 4. risk: the plan's log R against the condition's log Z, with its P_F where the policy made it
        src = sources[i]
        from_policy = src in ("policy", "refined")
        if from_policy:
            logp_i = (gfn.path_log_pf(self.space, self.policy, cond, refined_idx[None])[0] if src == "refined"
                      else logp[i].astype(np.float64))
            lp, log_pf = np.repeat(logp_i / r, r), float(logp_i.sum())
        else:
            lp, log_pf = np.zeros(steps), float("nan")
        lr, log_z = float(log_r[i]), traj.log_z
        if self.ambiguity is not None:
            plan = with_predicted_ambiguity(plan, self.ambiguity, ws)
        return dataclasses.replace(
            plan, log_probs=lp.astype(np.float32), log_reward=lr, risk=plan_risk(lr, log_z, h),
            extras={**plan.extras, "log_z": log_z, "log_pf": log_pf, "source": src,
                    "from_policy": from_policy, "clearance_risk": plan.risk,
                    "tb_residual": log_z + log_pf - lr if from_policy else float("nan"),
                    **({"refine": dict(self.last_refine)} if budget.refine else {})})


__all__ = ["ACTIONS", "BETA", "COND_DIM", "GFlowNetPlanner", "HORIZON", "REPEAT", "condition_features", "expand",
           "log_reward", "plan_risk"]
