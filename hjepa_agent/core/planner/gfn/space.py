"""What a GFlowNet level provides to the one sampler (gfn/sampler.py) and refiner (gfn/refine.py).

A **state** is a row of ``n_slots`` integers, -1 for an empty slot: a plan's steps (the fast
level, gfn/plans.py: PlanSpace) or a route's columns (the slow level, gfn/routes.py:
SubgoalSpace). A **forward action** fills one empty slot or, in a space that has one, is the
``stop`` action; a **backward action** empties one filled slot (it is the slot's index).

The level's **policy** network maps ``[encode(states), condition]`` (float32) to the P_F logits
(``n_actions``), followed, where the backward policy is learned (``learned_backward``), by
``n_slots`` P_B logits (:func:`policy_logits`, :func:`forward_log_probs`,
:func:`backward_log_probs`). Where it is not (an append-only plan has one parent, so P_B = 1),
``backward_mask`` allows exactly one slot. Its **log Z** network maps the condition to (N, 1).
The **reward** is each level's own (a roll-out's cost; a route's integral over a raster) and
reaches the refiner as a ``score`` callable (gfn/refine.py).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

Policy = Callable[[np.ndarray], np.ndarray]
"""``policy(x (N, state_dim + cond_dim) float32) -> (N, n_actions [+ n_slots]) logits`` (an OnnxModel)."""


class Space(Protocol):
    """A level's state graph and state encoding (module doc)."""

    @property
    def n_slots(self) -> int:
        """Slots per state; also the largest back-and-forth move (K) of the refiner."""

    @property
    def n_actions(self) -> int:
        """Forward actions, the stop included where there is one."""

    @property
    def stop(self) -> int | None:
        """The forward action that ends a trajectory; None: it ends after ``max_steps`` actions."""

    @property
    def max_steps(self) -> int:
        """Forward actions of the longest trajectory (a stop counts)."""

    @property
    def learned_backward(self) -> bool:
        """Whether the policy's output carries P_B logits after the P_F ones."""

    def encode(self, states: np.ndarray) -> np.ndarray:
        """(N, state_dim) float32 features of states (N, n_slots) for the policy."""

    def forward_mask(self, states: np.ndarray) -> np.ndarray:
        """(N, n_actions) bool: the forward actions allowed in each state."""

    def backward_mask(self, states: np.ndarray) -> np.ndarray:
        """(N, n_slots) bool: the slots that can be emptied (its parents)."""

    def apply(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The states after forward ``actions`` (N,) (a stop leaves a state as it is); a new array."""

    def slot_of(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(N,) the slot each (non-stop) forward action fills in ``states``."""

    def action_of(self, slots: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(N,) the forward action that puts ``values`` into the empty ``slots``."""


def initial(space: Space, n: int) -> np.ndarray:
    """(n, n_slots) int64 empty states."""
    return np.full((n, space.n_slots), -1, np.int64)


def filled(states: np.ndarray) -> np.ndarray:
    """(N,) number of filled slots of each state."""
    return (np.asarray(states) >= 0).sum(axis=1)


def remove(states: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """The states with ``slots`` (N,) emptied (the backward step); a new array."""
    out = np.array(states, copy=True)
    out[np.arange(len(out)), slots] = -1
    return out


def log_softmax_masked(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, A) float64 log-softmax of ``logits`` over the actions ``mask`` allows (-inf elsewhere)."""
    z = np.where(mask, np.asarray(logits, np.float64), -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def policy_logits(space: Space, policy: Policy, states: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """(N, n_actions [+ n_slots]) float64: one policy call on ``states`` (N, n_slots) for condition ``cond``."""
    c = np.broadcast_to(cond[None], (len(states), cond.shape[0]))
    return np.asarray(policy(np.concatenate([space.encode(states), c], axis=1)), np.float64)


def forward_log_probs(space: Space, logits: np.ndarray, states: np.ndarray,
                      mask: np.ndarray | None = None) -> np.ndarray:
    """(N, n_actions) log P_F over the actions ``mask`` allows (default: the space's forward mask)."""
    return log_softmax_masked(logits[:, :space.n_actions], space.forward_mask(states) if mask is None else mask)


def backward_log_probs(space: Space, logits: np.ndarray, states: np.ndarray) -> np.ndarray:
    """(N, n_slots) log P_B over the filled slots (uniform over all where none is filled: the empty
    state has no parent, and its row is never read); only for a space with ``learned_backward``."""
    bm = space.backward_mask(states)
    return log_softmax_masked(logits[:, space.n_actions:], np.where(bm.any(axis=1, keepdims=True), bm, True))


__all__ = ["Policy", "Space", "backward_log_probs", "filled", "forward_log_probs", "initial", "log_softmax_masked",
           "policy_logits", "remove"]
