"""The one forward sampler of both GFlowNet levels: trajectories from P_F, one batched policy call
per step over the trajectories still going, with their per-step log P_F and log P_B and the
condition's log Z (the watchdog's risk reads log R against it: gflownet.plan_risk).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hjepa_agent.core.planner.gfn.space import (Policy, Space, backward_log_probs, forward_log_probs, initial,
                                                policy_logits)


@dataclass(frozen=True)
class Trajectories:
    """N trajectories of at most T = ``space.max_steps`` forward actions.

    states (N, n_slots): the terminal states; actions (N, T): the forward actions (-1 after the
    last); log_pf (N, T): log P_F of each action (0 after the last); log_pb (N, T): log P_B of
    undoing each action, at the state it led to (0 for a stop, and where P_B = 1); log_z: the
    condition's log Z (nan without a log Z network)."""

    states: np.ndarray
    actions: np.ndarray
    log_pf: np.ndarray
    log_pb: np.ndarray
    log_z: float


def draw(rng: np.random.Generator, logp: np.ndarray) -> np.ndarray:
    """(N,) one action per row of log-probabilities ``logp`` (N, A), by inverse CDF (one uniform a row)."""
    u = rng.random((logp.shape[0], 1))
    return np.minimum((np.cumsum(np.exp(logp), axis=1) < u).sum(axis=1), logp.shape[1] - 1)


def condition_log_z(log_z: Policy | None, cond: np.ndarray) -> float:
    """log Z of one condition from the level's log Z network (nan without one)."""
    return float("nan") if log_z is None else float(np.asarray(log_z(cond[None])).reshape(-1)[0])


def sample(space: Space, policy: Policy, cond: np.ndarray, n: int, rng: np.random.Generator,
           log_z: Policy | None = None) -> Trajectories:
    """``n`` trajectories from P_F for one condition ``cond`` (cond_dim,)."""
    t_max = space.max_steps
    states = initial(space, n)
    actions = np.full((n, t_max), -1, np.int64)
    log_pf, log_pb = np.zeros((n, t_max)), np.zeros((n, t_max))
    came_by = np.full(n, -1, np.int64)          # the slot the previous action filled (for its P_B)
    live = np.ones(n, bool)
    for t in range(t_max):
        if not live.any():
            break
        rows = np.nonzero(live)[0]
        at = states[rows]
        logits = policy_logits(space, policy, at, cond)
        if space.learned_backward and t > 0:   # every live row got here by filling a slot
            log_pb[rows, t - 1] = backward_log_probs(space, logits, at)[np.arange(len(rows)), came_by[rows]]
        lp = forward_log_probs(space, logits, at)
        a = draw(rng, lp)
        actions[rows, t] = a
        log_pf[rows, t] = lp[np.arange(len(rows)), a]
        fills = a != space.stop if space.stop is not None else np.ones(len(rows), bool)
        came_by[rows[fills]] = space.slot_of(at[fills], a[fills])
        states[rows] = space.apply(at, a)
        if space.stop is not None:
            live[rows[a == space.stop]] = False
    return Trajectories(states, actions, log_pf, log_pb, condition_log_z(log_z, cond))


def path_log_pf(space: Space, policy: Policy, cond: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """(N, T) log P_F of each forward action of ``actions`` (N, T) replayed from the empty state
    (T calls; every row must still be going at each step, as plans of a space without a stop are)."""
    n, t_max = actions.shape
    states = initial(space, n)
    out = np.zeros((n, t_max))
    for t in range(t_max):
        lp = forward_log_probs(space, policy_logits(space, policy, states, cond), states)
        out[:, t] = lp[np.arange(n), actions[:, t]]
        states = space.apply(states, actions[:, t])
    return out


__all__ = ["Trajectories", "condition_log_z", "draw", "path_log_pf", "sample"]
