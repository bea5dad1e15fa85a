"""The fast level's space (gfn/space.py): plans of ``horizon`` actions out of ``n_actions``, built
by appending one action at a time (core/planner/gflownet.py plans with it, train/gflownet.py
trains it).

A state is the prefix: the actions taken in slots 0..t-1, -1 after. Every state has one parent
(drop the last action), so P_B = 1 and a trajectory *is* its terminal plan; there is no stop (a
plan ends after ``horizon`` actions). The encoding, ``[prefix one-hot (horizon * n_actions),
step one-hot (horizon + 1)]``, is injective, so the network can represent any P_F over prefixes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlanSpace:
    """Plans of ``horizon`` actions from ``n_actions`` choices, conditioned on ``cond_dim`` floats."""

    horizon: int
    n_actions: int
    cond_dim: int = 0
    stop = None
    learned_backward = False

    def __post_init__(self) -> None:
        if self.horizon < 1 or self.n_actions < 2 or self.cond_dim < 0:
            raise ValueError(f"PlanSpace: horizon >= 1, n_actions >= 2, cond_dim >= 0; got {self}")

    @property
    def n_slots(self) -> int:
        """One slot per step of the plan."""
        return self.horizon

    @property
    def max_steps(self) -> int:
        """A plan ends after ``horizon`` actions (there is no stop)."""
        return self.horizon

    @property
    def state_dim(self) -> int:
        """Length of the state encoding (prefix one-hot + step one-hot), without the condition."""
        return self.horizon * self.n_actions + self.horizon + 1

    def encode(self, states: np.ndarray) -> np.ndarray:
        """(N, state_dim) float32 of prefixes ``states`` (N, horizon), -1 after the last action taken."""
        states = np.asarray(states).reshape(-1, self.horizon)
        n = len(states)
        prefix = np.zeros((n, self.horizon, self.n_actions), np.float32)
        rows, slots = np.nonzero(states >= 0)
        prefix[rows, slots, states[rows, slots]] = 1.0
        step = np.zeros((n, self.horizon + 1), np.float32)
        step[np.arange(n), (states >= 0).sum(axis=1)] = 1.0
        return np.concatenate([prefix.reshape(n, -1), step], axis=1)

    def forward_mask(self, states: np.ndarray) -> np.ndarray:
        """(N, n_actions) bool: every action may follow any prefix."""
        return np.ones((len(states), self.n_actions), bool)

    def backward_mask(self, states: np.ndarray) -> np.ndarray:
        """(N, horizon) bool: only the last action taken can go."""
        states = np.asarray(states)
        out = np.zeros(states.shape, bool)
        last = (states >= 0).sum(axis=1) - 1
        out[np.nonzero(last >= 0)[0], last[last >= 0]] = True
        return out

    def slot_of(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(N,) the next step of each prefix (where an appended action goes)."""
        return (np.asarray(states) >= 0).sum(axis=1)

    def apply(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The prefixes with ``actions`` appended; a new array."""
        out = np.array(states, copy=True)
        out[np.arange(len(out)), self.slot_of(out, actions)] = actions
        return out

    def action_of(self, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The action that puts ``values`` into ``slots``: the value itself."""
        return np.asarray(values)

    def prefixes(self, plans: np.ndarray, step: int) -> np.ndarray:
        """The states after the first ``step`` actions of ``plans`` (N, horizon)."""
        out = np.array(plans, np.int64, copy=True).reshape(-1, self.horizon)
        out[:, step:] = -1
        return out

    def all_plans(self) -> np.ndarray:
        """Every plan (n_actions ** horizon, horizon) int64, lexicographic; only for small spaces."""
        if self.n_actions ** self.horizon > 1_000_000:
            raise ValueError("all_plans: too many plans to enumerate")
        return np.array(list(itertools.product(range(self.n_actions), repeat=self.horizon)), np.int64)


__all__ = ["PlanSpace"]
