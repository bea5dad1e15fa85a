"""The planner interface, its budget, the dynamics model and the plan cost.

Every planner answers ``plan(world_state, goal, budget) -> Plan`` and counts
its world-model calls the same way: one call = one predicted state for one
candidate (a batch of N candidates over H steps costs N*H calls).

Obstacles: the points given to ``plan`` (a raw scan's returns) or, without them, the arcs of the
world state's scan sectors with a return (:func:`obstacle_points`). Unknown sectors (no beam of the
scan covered them, or no fresh scan: core.types.UNKNOWN_RANGE_M) are never free: with the world
state given to :class:`PlanCost` (``ws``), a plan whose centre enters one beyond
core.types.UNKNOWN_ENTRY_M from the world state's pose is contact (core.types.unknown_clearance_m, the
rule the watchdog's clearance uses too); standing, turning in place and driving into seen sectors are not.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from hjepa_agent.core.types import (N_SCAN_BINS, SCAN_RANGE_MAX_M, Plan, WorldState, sector_angles,
                                    unknown_clearance_m, unknown_sectors)
from hjepa_agent.core.risk import clearance_risk


@dataclass(frozen=True)
class Budget:
    """What one plan() call may spend: world-model calls and a wall-clock deadline.

    ``deadline_s`` is an absolute time on ``clock`` (seconds); None = no deadline.
    ``refine``: the watchdog's OPTIMISING mode: a planner that can improve its plan in steps
    (the GFlowNet's back-and-forth moves) keeps at it until the calls or the deadline run out,
    instead of returning after one planning pass.
    """

    max_world_model_calls: int
    deadline_s: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    refine: bool = False

    def remaining_s(self) -> float:
        """Seconds left before the deadline (inf without one)."""
        return math.inf if self.deadline_s is None else self.deadline_s - self.clock()

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self.deadline_s is not None and self.clock() >= self.deadline_s


class Planner(Protocol):
    """One interface for every planner (CEM, MPPI, the GFlowNet and the two-level planner over any of them)."""

    name: str

    def plan(self, ws: WorldState, goal: np.ndarray, budget: Budget, seed: np.ndarray | None = None,
             obstacles: np.ndarray | None = None) -> Plan:
        """Return a plan from the world state towards ``goal`` (odom frame, m) within ``budget``.

        ``seed`` (H, 2) or (2,): actions proposed by a higher level or by the habitual policy;
        the planner starts from them and is drawn towards them (it refines, not replaces, them).
        ``obstacles`` (K, 2): odom-frame points to keep clear of, e.g. the returns of a raw scan
        taken at ``ws.pose`` (see :func:`beam_points`); default: the world state's scan sectors
        (:func:`obstacle_points`, conservative arcs).
        """
        ...

    def reset(self) -> None:
        """Forget any warm start (new episode or goal)."""
        ...

    def observe(self, pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray,
                range_min: float, range_max: float) -> None:
        """Take in a range scan (beams at ``angles`` in the robot frame, taken at ``pose`` in the
        odom frame) whether or not a plan is asked for: a planner may keep a map between plans."""
        ...


def obstacle_points(ws: WorldState, points_per_sector: int = 5) -> np.ndarray:
    """Obstacle points (K, 2) in the odom frame implied by the scan sectors.

    Each sector with a return becomes an arc of ``points_per_sector`` points at
    its minimum range spread over the sector's width: conservative, since the
    minimum is assumed across the whole sector. Unknown sectors give no points: they are
    contact for a plan entering them (:meth:`PlanCost.step_clearance` with ``ws``).
    """
    width = 2.0 * math.pi / N_SCAN_BINS
    offsets = (np.arange(points_per_sector) + 0.5) / points_per_sector * width - width / 2.0
    hit = (ws.scan_bins < SCAN_RANGE_MAX_M - 1e-3) & ~unknown_sectors(ws.scan_bins)
    if not np.any(hit):
        return np.zeros((0, 2), dtype=np.float32)
    ang = (sector_angles()[hit][:, None] + offsets[None, :]).reshape(-1)
    rng = np.repeat(ws.scan_bins[hit], points_per_sector)
    x, y, yaw = (float(a) for a in ws.pose)
    world_ang = ang + yaw
    return np.stack([x + rng * np.cos(world_ang), y + rng * np.sin(world_ang)], axis=1).astype(np.float32)


def beam_points(pose: np.ndarray, angles: np.ndarray, ranges: np.ndarray, range_min: float,
                range_max: float) -> np.ndarray:
    """Odom-frame points (K, 2) of a raw scan's returns: beams at ``angles`` (rad, robot frame)
    with finite ``ranges`` in [range_min, range_max], taken at ``pose`` (x, y, yaw). Sharper than
    the sector arcs: a sector's arc puts its nearest return across its whole width, which can
    close a passage a metre wide that the beams see open."""
    pose = np.asarray(pose, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64)
    ranges = np.asarray(ranges, dtype=np.float64)
    ok = np.isfinite(angles) & np.isfinite(ranges) & (ranges >= range_min) & (ranges <= range_max)
    a = angles[ok] + pose[2]
    return np.stack([pose[0] + ranges[ok] * np.cos(a), pose[1] + ranges[ok] * np.sin(a)], axis=1).astype(np.float32)


@dataclass(frozen=True)
class UnicycleModel:
    """Known kinematics of a differential-drive base: the foundation's dynamics model."""

    name: str = "unicycle"

    def rollout(self, pose: np.ndarray, actions: np.ndarray, dt_s: float) -> np.ndarray:
        """Predict states (N, H+1, 3) from pose (3,) or one pose per plan (N, 3) under actions
        (N, H, 2) of (v, w) (midpoint rule)."""
        n, h, _ = actions.shape
        start = np.broadcast_to(np.asarray(pose, dtype=np.float64), (n, 3))
        v = actions[..., 0].astype(np.float64)
        w = actions[..., 1].astype(np.float64)
        yaw = start[:, 2:3] + np.cumsum(w * dt_s, axis=1)
        mid = yaw - 0.5 * w * dt_s
        out = np.empty((n, h + 1, 3), dtype=np.float32)
        out[:, 0] = start
        out[:, 1:, 0] = start[:, 0:1] + np.cumsum(v * np.cos(mid) * dt_s, axis=1)
        out[:, 1:, 1] = start[:, 1:2] + np.cumsum(v * np.sin(mid) * dt_s, axis=1)
        out[:, 1:, 2] = yaw
        return out


@dataclass(frozen=True)
class PlanCost:
    """Cost of candidate plans (lower is better); the same for every planner.

    Weights: goal distance at the end, progress along the way, clearance below what the step's speed
    needs (quadratic), collision (clearance below zero), effort.

    **Speed and clearance** (one rule for every planner and the GFlowNet's reward): with
    ``speed_ref_mps`` set, a step at speed ``v`` needs ``safe_clearance_m * min(1, (v / speed_ref_mps)^2)``
    (:meth:`needed_clearance`): like a stopping distance it grows with the square of the speed, and it is
    the whole ``safe_clearance_m`` at the operating speed (0.25 m at 0.6 m/s for the sample robot, 2.2
    times its braking distance v^2 / (2 max_decel) there). So a passage with clearance ``c`` each side costs nothing
    extra at ``v <= speed_ref_mps * sqrt(c / safe_clearance_m)`` (:func:`passage_speed`): a gap 1.2
    footprint widths wide (c = 0.04 m for the 0.2-m radius) at 0.24 m/s, 1.5 widths (0.1 m) at 0.38 m/s.
    Touching (clearance below zero) is a collision at any speed. Without ``speed_ref_mps`` every step
    needs ``safe_clearance_m``.
    """

    footprint_radius_m: float
    safe_clearance_m: float = 0.25
    speed_ref_mps: float | None = None
    w_goal: float = 1.0
    w_progress: float = 0.2
    w_clearance: float = 20.0
    w_collision: float = 1000.0
    w_effort: float = 0.01
    w_seed: float = 1.0

    def needed_clearance(self, speed: np.ndarray) -> np.ndarray:
        """Clearance (m) a step at ``speed`` (m/s, any shape) needs before the clearance cost starts."""
        if self.speed_ref_mps is None:
            return np.full(np.shape(speed), self.safe_clearance_m, np.float32)
        frac = np.minimum(np.abs(np.asarray(speed, np.float32)) / self.speed_ref_mps, 1.0)
        return (self.safe_clearance_m * frac * frac).astype(np.float32)

    def step_clearance(self, states: np.ndarray, obstacles: np.ndarray, ws: WorldState | None = None) -> np.ndarray:
        """Clearance (N, H) in m between the footprint and the nearest obstacle point after each step;
        with ``ws`` (the world state the plans start from), the lower of that and the clearance from
        its unknown sectors (core.types.unknown_clearance_m, taken at ``ws.pose``: < 0 inside one)."""
        if obstacles.shape[0] == 0:
            clear = np.full(states.shape[:2], SCAN_RANGE_MAX_M, dtype=np.float32)[:, 1:]
        else:
            xy = states[:, 1:, :2].astype(np.float32)
            d2 = (np.sum(xy * xy, axis=-1)[..., None] - 2.0 * xy @ obstacles.T
                  + np.sum(obstacles * obstacles, axis=-1)[None, None, :])
            clear = np.sqrt(np.maximum(d2.min(axis=-1), 0.0)) - self.footprint_radius_m
        if ws is not None and unknown_sectors(ws.scan_bins).any():
            x, y, yaw = (float(a) for a in ws.pose)
            dx, dy = states[:, 1:, 0] - x, states[:, 1:, 1] - y
            c, s = math.cos(yaw), math.sin(yaw)
            rel = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)
            clear = np.minimum(clear, unknown_clearance_m(rel, ws.scan_bins)).astype(np.float32)
        return clear

    def clearance(self, states: np.ndarray, obstacles: np.ndarray, ws: WorldState | None = None) -> np.ndarray:
        """Minimum clearance (N,) in m between footprint and obstacles (and ``ws``'s unknown sectors,
        :meth:`step_clearance`) along each plan."""
        return self.step_clearance(states, obstacles, ws).min(axis=1).astype(np.float32)

    def __call__(self, states: np.ndarray, actions: np.ndarray, goal: np.ndarray,
                 obstacles: np.ndarray, seed: np.ndarray | None = None,
                 action_scale: tuple[float, float] = (1.0, 1.0),
                 to_go: Callable[[np.ndarray], np.ndarray] | None = None,
                 penalty: Callable[[np.ndarray], np.ndarray] | None = None,
                 ws: WorldState | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cost (N,) and minimum clearance (N,) of plans with states (N, H+1, 3), actions (N, H, 2).

        With a ``seed`` (H, 2), the mean squared deviation from it (actions divided by
        ``action_scale``) is added with weight ``w_seed``. ``to_go`` maps positions (N, H, 2)
        to metres still to go (a navigation function round known obstacles, see navfield);
        without it the straight-line distance to ``goal`` is used. ``penalty`` maps the actions to an
        extra cost (N,), e.g. the learned world model's predicted-state ambiguity (planner/latent.py).
        ``ws``: the world state the plans start from; its unknown sectors count as occupied
        (:meth:`step_clearance`). Every planner passes it."""
        xy = states[:, 1:, :2]
        goal_d = (np.linalg.norm(xy - goal[None, None, :], axis=-1) if to_go is None
                  else np.asarray(to_go(xy), dtype=np.float32))
        final = goal_d[:, -1]
        progress = goal_d.mean(axis=1)
        per_step = self.step_clearance(states, obstacles, ws)
        short = np.clip(self.needed_clearance(actions[..., 0]) - per_step, 0.0, None)
        collide = (per_step < 0.0).any(axis=1)
        effort = np.sum(actions[..., 1] ** 2, axis=1)
        cost = (self.w_goal * final + self.w_progress * progress + self.w_clearance * np.sum(short ** 2, axis=1)
                + self.w_collision * collide + self.w_effort * effort)
        if seed is not None:
            dev = (actions - seed[None]) / np.asarray(action_scale, dtype=np.float32)
            cost = cost + self.w_seed * np.mean(np.sum(dev * dev, axis=-1), axis=1)
        if penalty is not None:
            cost = cost + np.asarray(penalty(actions), np.float32)
        return cost.astype(np.float32), np.min(per_step, axis=1).astype(np.float32)


def passage_speed(clearance_m: float, cost: PlanCost) -> float:
    """The speed (m/s) at which ``cost`` asks no extra for clearance ``clearance_m`` (PlanCost doc)."""
    if cost.speed_ref_mps is None:
        return math.inf if clearance_m >= cost.safe_clearance_m else 0.0
    return cost.speed_ref_mps * math.sqrt(min(max(clearance_m, 0.0) / cost.safe_clearance_m, 1.0))


def make_plan(ws: WorldState, actions: np.ndarray, states: np.ndarray, cost: float, clearance_m: float,
              safe_clearance_m: float, dt_s: float, planner: str, calls: int, beta: float = 1.0) -> Plan:
    """Assemble a Plan for a planner without log-probabilities (log R = -beta * cost)."""
    risk = clearance_risk(clearance_m, safe_clearance_m)
    return Plan(stamp_s=ws.stamp_s, actions=actions.astype(np.float32), states=states.astype(np.float32),
                log_probs=np.zeros(actions.shape[0], dtype=np.float32), log_reward=float(-beta * cost),
                risk=risk, ambiguity=float(ws.ambiguity), dt_s=dt_s, planner=planner,
                world_model_calls=calls, extras={"min_clearance_m": float(clearance_m), "cost": float(cost)})


def with_predicted_ambiguity(plan: Plan, ambiguity, ws: WorldState) -> Plan:
    """``plan`` with ``extras["predicted_ambiguity"]``: the learned world model's mean predicted-state
    ambiguity along it (planner/latent.LatentAmbiguity), from the world state's latent."""
    import dataclasses
    amb = float(ambiguity(ws.latent, np.asarray(plan.actions)[None], plan.dt_s)[0])
    return dataclasses.replace(plan, extras={**plan.extras, "predicted_ambiguity": amb})
