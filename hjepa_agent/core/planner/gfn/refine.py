"""The one refiner of both GFlowNet levels (their optimisation mode): back-and-forth moves of K
steps on chains of terminal states, accepted by Metropolis-Hastings for the target R.

A move takes a chain x K steps **back** through P_B to a state s (each emptied slot drawn from the
learned P_B; where P_B = 1, the one parent: an append-only plan loses its last K actions) and
**forth** again by K insertions drawn from the proposal

    q = (1 - explore) P_F' + explore * uniform,   P_F' = P_F over the insertions (no stop),

so the move keeps the number of filled slots and its reverse is a move of the same kind (a
collapsed P_F still moves, and q stays an exact proposal). x' is accepted with probability

    min(1, R(x') P_B(x' -> s) q(s -> x) / (R(x) P_B(x -> s) q(s -> x'))),

the reverse path taking out what was inserted (last first) and putting back what was taken out
(in reverse order). The reverse path's q is computed in the same batched policy call as the
proposal's, step by step; its P_B from the proposal's own calls and one more. K starts at
``n_slots`` and halves (ceiling) to 1, then starts over; a :class:`Pace` says when to stop.
Tests check that the moves leave R (restricted to the chains' number of filled slots) invariant.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from hjepa_agent.core.planner.base import Budget
from hjepa_agent.core.planner.gfn.sampler import draw
from hjepa_agent.core.planner.gfn.space import (Policy, Space, backward_log_probs, filled, log_softmax_masked,
                                                policy_logits, remove)

Score = Callable[[np.ndarray, int, object], tuple[np.ndarray, object]]
"""``score(proposals (n, n_slots), k, extra of the chains they came from) -> (log R (n,), their extra)``:
the level's reward; ``extra`` is whatever it keeps per chain (the fast level: the roll-outs, so a
K-step move rolls out only the K new steps), or None."""


def proposal_log_probs(space: Space, logits: np.ndarray, states: np.ndarray, explore: float) -> np.ndarray:
    """(N, n_actions) log q of the module doc: P_F renormalised over the insertions, mixed with
    ``explore`` of uniform over them."""
    mask = np.array(space.forward_mask(states), copy=True)
    if space.stop is not None:
        mask[:, space.stop] = False
    lp = log_softmax_masked(logits[:, :space.n_actions], mask)
    if explore > 0.0:
        with np.errstate(divide="ignore"):
            lp = np.log((1.0 - explore) * np.exp(lp) + explore * mask / mask.sum(axis=1, keepdims=True))
    return lp


def mh_round(space: Space, policy: Policy, cond: np.ndarray, states: np.ndarray, log_r: np.ndarray, k: int,
             score: Score, rng: np.random.Generator, explore: float = 0.0,
             extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """One back-and-forth move of ``k`` steps (module doc) on every chain with at least k filled
    slots: chains ``states`` (M, n_slots), their log R (M,) and ``extra`` (M, ...) or None.
    Returns the chains after the accept/reject, their log R and extra, and which moves were accepted."""
    m = len(states)
    able = filled(states) >= k
    if k < 1 or not able.any():
        return states, log_r, extra, np.zeros(m, bool)
    x = states[able]
    n, rows = len(x), np.arange(len(x))
    # back: k slots emptied through P_B
    s, lpb_fwd, removed = x.copy(), np.zeros(n), []
    for _ in range(k):
        if space.learned_backward:
            lb = backward_log_probs(space, policy_logits(space, policy, s, cond), s)
            j = draw(rng, lb)
            lpb_fwd += lb[rows, j]
        else:
            j = np.argmax(space.backward_mask(s), axis=1)      # the one parent
        removed.append((j, s[rows, j].copy()))
        s = remove(s, j)
    # forth: k insertions from q; the reverse path's q (what was taken out put back, last first) in the same call
    y, w = s.copy(), s.copy()
    lq_new, lq_old = np.zeros(n), np.zeros(n)
    inserted, logits_y = [], []
    for i in range(k):
        both = np.concatenate([y, w], axis=0)
        logits = policy_logits(space, policy, both, cond)
        logits_y.append(logits[:n])
        lq = proposal_log_probs(space, logits, both, explore)
        a = draw(rng, lq[:n])
        a_old = space.action_of(*removed[k - 1 - i])
        lq_new += lq[rows, a]
        lq_old += lq[n + rows, a_old]
        inserted.append(space.slot_of(y, a))
        y, w = space.apply(y, a), space.apply(w, a_old)
    # the reverse path's P_B: from y take out the inserted slots, last first (P_B at y_k, ..., y_1)
    lpb_rev = np.zeros(n)
    if space.learned_backward:
        logits_y.append(policy_logits(space, policy, y, cond))
        at = y
        for i in reversed(range(k)):
            lpb_rev += backward_log_probs(space, logits_y[i + 1], at)[rows, inserted[i]]
            at = remove(at, inserted[i])
    new_lr, new_extra = score(y, k, None if extra is None else extra[able])
    log_a = (new_lr - log_r[able]) + (lpb_rev + lq_old) - (lpb_fwd + lq_new)
    acc_sub = np.log(rng.random(n) + 1e-300) < log_a
    out, out_lr = states.copy(), np.array(log_r, np.float64, copy=True)
    out_extra = None if extra is None else extra.copy()
    idx = np.nonzero(able)[0][acc_sub]
    out[idx], out_lr[idx] = y[acc_sub], new_lr[acc_sub]
    if out_extra is not None:
        out_extra[idx] = new_extra[acc_sub]
    acc = np.zeros(m, bool)
    acc[idx] = True
    return out, out_lr, out_extra, acc


class Pace(Protocol):
    """When the refiner stops: asked before each round, told when it starts and ends."""

    def allows(self, k: int, chains: int) -> bool:
        """Whether a round of ``k``-step moves on ``chains`` chains fits in what is left."""

    def begin(self) -> None:
        """A round starts."""

    def end(self, k: int, chains: int) -> None:
        """The round of ``k``-step moves on ``chains`` chains has ended."""


@dataclass
class DeadlinePace:
    """Rounds until ``deadline_s`` on ``clock`` (None: time.monotonic): a round is started only if
    the previous one's duration still fits (the first always is)."""

    deadline_s: float
    clock: Callable[[], float] | None = None
    per_round_s: float | None = None
    _t0: float = 0.0

    def _now(self) -> float:
        return time.monotonic() if self.clock is None else self.clock()

    def allows(self, k: int, chains: int) -> bool:
        return self.per_round_s is None or self._now() + self.per_round_s < self.deadline_s

    def begin(self) -> None:
        self._t0 = self._now()

    def end(self, k: int, chains: int) -> None:
        self.per_round_s = max(self._now() - self._t0, 1e-5)


@dataclass
class BudgetPace:
    """Rounds within a planner Budget: a K-step move on a chain costs ``calls_per_step`` * K
    world-model calls (the new steps rolled out), counted on from ``calls``; before each round
    its time is estimated from the earlier ones per policy step (K + 1 calls a round; before the
    first, from ``per_step_s``), and a round that would pass the deadline is not started."""

    budget: Budget
    calls: int
    calls_per_step: int
    per_step_s: float | None = None
    _t0: float = 0.0

    def allows(self, k: int, chains: int) -> bool:
        if self.calls + chains * k * self.calls_per_step > self.budget.max_world_model_calls:
            return False
        if self.per_step_s is not None and self.budget.remaining_s() < self.per_step_s * (k + 1):
            return False
        return not self.budget.expired()

    def begin(self) -> None:
        self._t0 = time.perf_counter()

    def end(self, k: int, chains: int) -> None:
        self.calls += chains * k * self.calls_per_step
        dt = (time.perf_counter() - self._t0) / (k + 1)
        self.per_step_s = dt if self.per_step_s is None else max(0.8 * self.per_step_s, dt)


@dataclass
class Refined:
    """The best chain seen per chain (states, log R, extra) and the rounds' statistics."""

    states: np.ndarray
    log_r: np.ndarray
    extra: np.ndarray | None
    stats: dict = field(default_factory=dict)
    """rounds, proposals (chains moved), accepted, improved (a chain's best got better), k (per round)."""


def refine(space: Space, policy: Policy, cond: np.ndarray, states: np.ndarray, log_r: np.ndarray, score: Score,
           rng: np.random.Generator, pace: Pace, explore: float = 0.0, extra: np.ndarray | None = None) -> Refined:
    """Back-and-forth rounds (K = n_slots, halving to 1, again) on the chains ``states`` (M, n_slots)
    with log R (M,) and ``extra``, while ``pace`` allows; the best state seen per chain."""
    m = len(states)
    best, best_lr = states.copy(), np.array(log_r, np.float64, copy=True)
    best_extra = None if extra is None else extra.copy()
    stats = {"rounds": 0, "proposals": 0, "accepted": 0, "improved": 0, "k": []}
    k = space.n_slots
    while pace.allows(k, m):
        pace.begin()
        states, log_r, extra, acc = mh_round(space, policy, cond, states, log_r, k, score, rng, explore, extra)
        better = log_r > best_lr
        best[better], best_lr[better] = states[better], log_r[better]
        if best_extra is not None:
            best_extra[better] = extra[better]
        stats["rounds"] += 1
        stats["proposals"] += m
        stats["accepted"] += int(acc.sum())
        stats["improved"] += int(better.sum())
        stats["k"].append(k)
        pace.end(k, m)
        k = space.n_slots if k == 1 else math.ceil(k / 2)
    return Refined(best, best_lr, best_extra, stats)


__all__ = ["BudgetPace", "DeadlinePace", "Pace", "Refined", "Score", "mh_round", "proposal_log_probs", "refine"]
