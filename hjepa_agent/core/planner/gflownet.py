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
4. world-model calls = (samples + N_FALLBACKS + warm start) * HORIZON * REPEAT: 285 for 15
   samples, against CEM's 2880 (1/10.1).

Per-step log-probabilities are P_F's; log Z(c) comes from its own network.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from hjepa_agent.core.planner.base import (Budget, PlanCost, UnicycleModel, make_plan, obstacle_points,
                                          with_predicted_ambiguity)
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
    habitual proposal held over the horizon). In ``budget.refine`` (OPTIMISING) it then runs
    :meth:`refine` on the best ``chains`` policy samples until the deadline or the call budget."""

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
    """Statistics of the latest refine(): rounds, proposals, accepted, improved, calls, K schedule."""
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

    def _log_softmax(self, idx: np.ndarray, step: int, cond: np.ndarray) -> np.ndarray:
        """(N, n_actions) log P_F at ``step`` after the prefixes ``idx[:, :step]``."""
        c = np.broadcast_to(cond[None], (idx.shape[0], cond.shape[0]))
        x = np.concatenate([encode_prefix(idx, step, self.horizon), c], axis=1)
        logits = np.asarray(self.policy(x), np.float64)
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    def _draw(self, logp: np.ndarray) -> np.ndarray:
        u = self._rng.random((logp.shape[0], 1))
        return np.minimum((np.cumsum(np.exp(logp), axis=1) < u).sum(axis=1), logp.shape[1] - 1)

    def sample(self, cond: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """n plans (action indices (n, horizon)) from P_F for one condition, and their per-step
        log-probabilities (n, horizon)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        idx = np.zeros((n, self.horizon), np.int64)
        logp = np.zeros((n, self.horizon), np.float32)
        for t in range(self.horizon):
            lp = self._log_softmax(idx, t, cond)
            idx[:, t] = self._draw(lp)
            logp[:, t] = lp[np.arange(n), idx[:, t]]
        return idx, logp

    def mh_round(self, cond: np.ndarray, idx: np.ndarray, states: np.ndarray, log_r: np.ndarray, k: int,
                 score) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One back-and-forth move of K steps on every chain (see :meth:`refine`); returns the
        chains after the Metropolis-Hastings accept/reject, and which moves were accepted."""
        m, h, r = idx.shape[0], self.horizon, self.repeat
        keep = h - k
        new = idx.copy()
        both = np.concatenate([new, idx], axis=0)   # proposals and current plans in one batch
        lp_new = np.zeros(m)
        lp_old = np.zeros(m)
        for t in range(keep, h):
            lp = self._log_softmax(both, t, cond)
            if self.explore > 0.0:
                lp = np.log((1.0 - self.explore) * np.exp(lp) + self.explore / lp.shape[1])
            new[:, t] = self._draw(lp[:m])
            both[:m, t] = new[:, t]
            lp_new += lp[np.arange(m), new[:, t]]
            lp_old += lp[m + np.arange(m), idx[:, t]]
        tail = expand(new[:, keep:], self.max_linear_mps, self.max_angular_rps, r)
        tail_states = self.model.rollout(states[:, keep * r], tail, DT_S)
        new_states = np.concatenate([states[:, :keep * r + 1], tail_states[:, 1:]], axis=1)
        new_lr = log_reward(score(new_states, new)[0], self.beta, self.cost_clip)
        log_a = (new_lr - log_r) + (lp_old - lp_new)
        acc = np.log(self._rng.random(m) + 1e-300) < log_a
        out_idx, out_states, out_lr = idx.copy(), states.copy(), np.array(log_r, np.float64, copy=True)
        out_idx[acc], out_states[acc], out_lr[acc] = new[acc], new_states[acc], new_lr[acc]
        return out_idx, out_states, out_lr, acc

    def refine(self, cond: np.ndarray, idx: np.ndarray, states: np.ndarray, log_r: np.ndarray, score,
               budget: Budget, calls: int, step_s: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Optimisation mode: back-and-forth moves on chains of plans (indices (M, horizon), with
        their states (M, horizon*repeat+1, 3) and log R (M,)), until the deadline or the budget.

        A move takes a chain K steps back (P_B of append-only plans is 1: the last K actions go)
        and completes it again with q = (1 - explore) P_F + explore uniform; it is accepted with the
        Metropolis-Hastings ratio for the target R,  min(1, R(x') q(x_tail | s) / (R(x) q(x'_tail | s))),
        s the kept prefix.
        K starts at the horizon and shrinks geometrically (ceil of half) to 1, then starts over.
        Only the tail is rolled out again (from the prefix's cached last state); those states
        are the calls counted. Anytime: before each round the time it will take is estimated from
        the previous rounds (per policy step) and the round is skipped if it would pass the
        deadline (before the first, from ``step_s``: seconds per policy step of the planning pass).
        ``score(states, idx) -> (cost, clearance)``. Returns the best plan seen per
        chain (indices, states, log R) and the calls spent."""
        m, h, r = idx.shape[0], self.horizon, self.repeat
        best_idx, best_states, best_lr = idx.copy(), states.copy(), log_r.copy()
        cur_idx, cur_states, cur_lr = idx.copy(), states.copy(), log_r.copy()
        k, rounds, proposals, accepted, improved, ks = h, 0, 0, 0, 0, []
        per_step_s = step_s
        while True:
            need = m * k * r
            if calls + need > budget.max_world_model_calls:
                break
            if per_step_s is not None and budget.remaining_s() < per_step_s * (k + 1):
                break
            if budget.expired():
                break
            t0 = time.perf_counter()
            cur_idx, cur_states, cur_lr, acc = self.mh_round(cond, cur_idx, cur_states, cur_lr, k, score)
            better = cur_lr > best_lr
            best_idx[better], best_states[better], best_lr[better] = (cur_idx[better], cur_states[better],
                                                                      cur_lr[better])
            calls += need
            rounds += 1
            proposals += m
            accepted += int(acc.sum())
            improved += int(better.sum())
            ks.append(k)
            dt = (time.perf_counter() - t0) / (k + 1)
            per_step_s = dt if per_step_s is None else max(0.8 * per_step_s, dt)
            k = h if k == 1 else math.ceil(k / 2)
        self.last_refine = {"rounds": rounds, "proposals": proposals, "accepted": accepted,
                            "improved": improved, "k": ks}
        return best_idx, best_states, best_lr, calls

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        """Best plan of the candidates of the class doc (and of refine() when ``budget.refine``)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        goal = np.asarray(goal, np.float32)
        h, r = self.horizon, self.repeat
        steps = h * r
        # policy samples within the call budget, after the fallbacks, warm start and seed (the
        # fallbacks are always evaluated: they are what keeps a plan from touching); a seed takes a
        # policy sample's place, so a pass never costs more than calls_per_iteration
        n = int(min(self.samples - (seed is not None), max(1, budget.max_world_model_calls // steps - N_FALLBACKS - 2)))
        nav = self.navfield
        to_go = ((lambda xy: nav.distance(xy, goal, ws.stamp_s)) if nav is not None
                 else (lambda xy: np.linalg.norm(np.asarray(xy) - goal, axis=-1)))
        scale = (self.max_linear_mps, self.max_angular_rps)
        obstacles = obstacle_points(ws) if obstacles is None else np.asarray(obstacles, np.float32).reshape(-1, 2)
        t_pass = time.perf_counter()
        cond = condition_features(ws.pose, goal, ws.scan_bins, ws.twist, to_go, *scale)
        idx, logp = self.sample(cond, n)
        extra = [motion_primitives(steps, DT_S, *scale, N_FALLBACKS)]
        sources = ["policy"] * n + ["fallback"] * N_FALLBACKS
        if self._prev is not None and 0.0 <= ws.stamp_s - self._prev[0] < steps * DT_S:
            shift = int(round((ws.stamp_s - self._prev[0]) / DT_S))
            prev = self._prev[1]
            extra.append(np.concatenate([prev[shift:], np.repeat(prev[-1:], shift, axis=0)])[None])
            sources.append("warm start")
        if seed is not None:
            held = np.broadcast_to(np.asarray(seed, np.float32), (steps, 2)) if np.ndim(seed) == 1 else seed
            if held.shape == (steps, 2):
                extra.append(np.clip(held, -np.asarray(scale), np.asarray(scale))[None].astype(np.float32))
                sources.append("seed")
        actions = np.concatenate([expand(idx, *scale, r)] + extra, axis=0)
        states = self.model.rollout(ws.pose, actions, DT_S)
        pen = None if self.ambiguity is None else self.ambiguity.penalty(ws.latent, DT_S)
        cost, clearance = self.cost(states, actions, goal, obstacles, None, scale, to_go, pen, ws)
        calls = len(actions) * steps
        log_r = log_reward(cost, self.beta, self.cost_clip)
        self.last_samples = states[:n][clearance[:n] >= 0.0]
        step_s = (time.perf_counter() - t_pass) / (h + 1)
        refined = False
        self.last_refine = {"rounds": 0, "proposals": 0, "accepted": 0, "improved": 0, "k": []}
        if budget.refine and not budget.expired():
            top = np.argsort(cost[:n])[:min(self.chains, n)]
            score = lambda st, ix: self.cost(st, expand(ix, *scale, r), goal, obstacles, None, scale,  # noqa: E731
                                             to_go, pen, ws)
            b_idx, b_states, b_lr, calls = self.refine(cond, idx[top], states[top], log_r[top], score, budget, calls,
                                                            step_s)
            j = int(np.argmax(b_lr))
            if b_lr[j] > log_r.max():
                refined = True
                r_act = expand(b_idx[j:j + 1], *scale, r)
                r_cost, r_clear = self.cost(b_states[j:j + 1], r_act, goal, obstacles, None, scale, to_go, pen, ws)
                refined_idx = b_idx[j]
                actions = np.concatenate([actions, r_act])
                states = np.concatenate([states, b_states[j:j + 1]])
                cost, clearance = np.r_[cost, r_cost], np.r_[clearance, r_clear]
                log_r = np.r_[log_r, log_reward(r_cost, self.beta, self.cost_clip)]
                sources.append("refined")
        i = int(np.argmin(cost)) if not refined else len(cost) - 1
        self._prev = (ws.stamp_s, actions[i].copy())
        plan = make_plan(ws, actions[i], states[i], float(cost[i]), float(clearance[i]), self.cost.safe_clearance_m,
                         DT_S, self.name, calls, beta=self.beta)
        log_z = float(np.asarray(self.log_z(cond[None])).reshape(-1)[0])
        src = sources[i]
        if src in ("policy", "refined"):
            if src == "refined":
                logp_i = np.array([self._log_softmax(refined_idx[None], t, cond)[0, refined_idx[t]]
                                   for t in range(h)])
            else:
                logp_i = logp[i].astype(np.float64)
            lp = np.repeat(logp_i / r, r)
            log_pf = float(logp_i.sum())
        else:
            lp, log_pf = np.zeros(steps), float("nan")
        lr = float(log_r[i])
        if self.ambiguity is not None:
            plan = with_predicted_ambiguity(plan, self.ambiguity, ws)
        return dataclasses.replace(
            plan, log_probs=lp.astype(np.float32), log_reward=lr, risk=plan_risk(lr, log_z, h),
            extras={**plan.extras, "log_z": log_z, "log_pf": log_pf, "source": src,
                    "from_policy": src in ("policy", "refined"), "clearance_risk": plan.risk,
                    "tb_residual": log_z + log_pf - lr if src in ("policy", "refined") else float("nan"),
                    **({"refine": dict(self.last_refine)} if budget.refine else {})})


__all__ = ["ACTIONS", "BETA", "COND_DIM", "GFlowNetPlanner", "HORIZON", "REPEAT", "condition_features",
           "encode_prefix", "expand", "log_reward", "plan_risk"]
