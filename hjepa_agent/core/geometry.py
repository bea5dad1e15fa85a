"""Roll-out geometry: where a unicycle goes under (v, w) actions, and how close it comes to the
obstacles a world state's scan sectors imply (the watchdog's risk proxy; core/watchdog/risk.py).

A scan sector is one obstacle point at its centre angle and range (base frame); sectors reading
SCAN_RANGE_MAX_M are free. Unknown sectors (no beam of the scan covered them, or no fresh scan:
core.types.UNKNOWN_RANGE_M) are occupied beyond the footprint: a roll-out point entering one is contact
(core.types.unknown_clearance_m, the planners' rule too), so a robot whose scanner sees 270 deg may
stand, turn and drive into what it sees, never into its blind sector. Known limits: obstacles are
static, a sector is one point (gaps between sector centres are not seen), the world state's own
uncertainty is ignored here (the watchdog weighs it through ``ambiguity_stop``).

Units: m, s, rad, m/s, rad/s.
"""
from __future__ import annotations

import math

import numpy as np

from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M, sector_angles, unknown_clearance_m, unknown_sectors


def obstacle_points(scan_bins: np.ndarray) -> np.ndarray:
    """Obstacle points (K, 2) in the base frame (m): one per sector with a return (reading less than
    SCAN_RANGE_MAX_M and not unknown; unknown sectors are :func:`rollout_clearance`'s, not points)."""
    r = np.asarray(scan_bins, dtype=np.float64)
    if r.shape != (N_SCAN_BINS,) or not np.all(np.isfinite(r)):
        raise ValueError(f"scan_bins must be {N_SCAN_BINS} finite ranges, got shape {r.shape}")
    th = sector_angles().astype(np.float64)
    hit = (r < SCAN_RANGE_MAX_M) & ~unknown_sectors(r)
    return np.stack([r[hit] * np.cos(th[hit]), r[hit] * np.sin(th[hit])], axis=1)


ROLLOUT_MAX_STEPS = 10_000
"""A rollout takes at most about this many steps: its sampling coarsens for speeds beyond ~200 m/s
(at a 1 s horizon) or steps below horizon/ROLLOUT_MAX_STEPS (a habitual proposal of 1e300 m/s, or a
plan step of 5e-324 s, made it loop without end: found by the fuzz battery)."""


def rollout(actions: np.ndarray, dt_s: float, horizon_s: float) -> np.ndarray:
    """Positions (N, 2) in m of a unicycle from the origin (heading +x) under ``actions``.

    actions (H, 2): (v m/s, w rad/s), each held ``dt_s``; the last is held if the
    horizon is longer. Exact arcs, sampled at most every 0.02 m / 0.05 rad / 0.05 s, and in at
    most about ROLLOUT_MAX_STEPS steps.
    """
    acts = np.asarray(actions, dtype=np.float64).reshape(-1, 2)
    if acts.shape[0] == 0 or not np.all(np.isfinite(acts)) or not (dt_s > 0.0 and horizon_s >= 0.0):
        raise ValueError(f"rollout needs finite actions, dt_s > 0, horizon_s >= 0; got {acts.shape}, {dt_s}, {horizon_s}")
    x = y = th = 0.0
    pts = [(0.0, 0.0)]
    t = 0.0
    min_h = horizon_s / ROLLOUT_MAX_STEPS
    while t < horizon_s - 1e-12:
        k = t / float(dt_s) + 1e-9
        if math.isfinite(k):
            v, w = (float(a) for a in acts[min(int(k), acts.shape[0] - 1)])
            seg_end = min(horizon_s, (math.floor(k) + 1) * dt_s)
        else:   # dt_s so small that t / dt_s overflows: past the last action, held to the horizon
            v, w = (float(a) for a in acts[-1])
            seg_end = horizon_s
        h = min(seg_end - t, 0.05, 0.02 / max(abs(v), 1e-9), 0.05 / max(abs(w), 1e-9))
        if h < min_h:   # an absurd speed or a tiny dt_s: a coarser sampling, not a loop without end
            h = min(min_h, horizon_s - t)
        if abs(w) < 1e-9:
            x, y = x + v * h * math.cos(th), y + v * h * math.sin(th)
        else:
            x += v / w * (math.sin(th + w * h) - math.sin(th))
            y -= v / w * (math.cos(th + w * h) - math.cos(th))
        th += w * h
        t += h
        pts.append((x, y))
    return np.asarray(pts)


def rollout_clearance(scan_bins: np.ndarray, actions: np.ndarray, dt_s: float, horizon_s: float,
                      footprint_radius_m: float) -> float:
    """Minimum clearance (m) along :func:`rollout`: from the footprint to the sectors' obstacle points,
    and from the unknown sectors (core.types.unknown_clearance_m: a rollout point entering one is
    contact); negative = predicted contact; inf if no obstacle and no unknown sector is entered."""
    obs = obstacle_points(scan_bins)
    unknown = unknown_sectors(scan_bins).any()
    if obs.shape[0] == 0 and not unknown:
        return math.inf
    pos = rollout(actions, dt_s, horizon_s)
    clear = math.inf
    if obs.shape[0]:
        clear = float(np.sqrt(((pos[:, None, :] - obs[None, :, :]) ** 2).sum(axis=-1)).min()) - footprint_radius_m
    if unknown:
        clear = min(clear, float(unknown_clearance_m(pos, scan_bins).min()))
    return clear


def predicted_clearance(scan_bins: np.ndarray, v: float, w: float, horizon_s: float,
                        footprint_radius_m: float) -> float:
    """Clearance (m) of holding (v m/s, w rad/s) for ``horizon_s`` against the scan sectors."""
    return rollout_clearance(scan_bins, np.array([[v, w]]), max(horizon_s, 1e-3), horizon_s, footprint_radius_m)


__all__ = ["ROLLOUT_MAX_STEPS", "obstacle_points", "predicted_clearance", "rollout", "rollout_clearance"]
