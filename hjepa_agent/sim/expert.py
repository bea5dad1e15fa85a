"""Privileged scripted expert: A* on the scenario's occupancy grid, shortcutting, pure pursuit.

It sees the true obstacle layout (not the sensors), so it is a teacher for demonstrations
and a yardstick for scenarios, not an agent. Commands stay inside the ego model's
operating limits. Units: m, rad, s, m/s, rad/s.
"""
from __future__ import annotations

import heapq
import logging
import math
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.sim.scenario import Scenario, occupancy_grid

if TYPE_CHECKING:  # only for annotations: this module imports without pybullet
    from hjepa_agent.sim.world import SimWorld

_LOG = logging.getLogger(__name__)

MARGINS_M = (0.15, 0.08, 0.03, 0.01)
"""Safety margins added to the footprint radius, tried in order until A* finds a path."""


class _HasLayout(Protocol):
    @property
    def layout(self) -> Scenario: ...


def _wrap(a: float) -> float:
    return math.atan2(math.sin(a), math.cos(a))


class ScriptedExpert:
    """Plans on the privileged layout of ``world_or_scenario`` and tracks the path with pure pursuit.

    ``world_or_scenario``: a SimWorld (its current ``layout`` is used) or a Scenario whose
    obstacles are already where they will be (e.g. ``scenario.jittered(seed)``).
    """

    def __init__(self, world_or_scenario: Scenario | _HasLayout, ego: EgoModel, *,
                 resolution_m: float = 0.05, lookahead_m: float = 0.5, control_dt_s: float = 0.1,
                 side_bias: float = 0.0) -> None:
        self.scenario: Scenario = (world_or_scenario if isinstance(world_or_scenario, Scenario)
                                   else world_or_scenario.layout)
        self.ego = ego
        self.res = float(resolution_m)
        self.lookahead_m = float(lookahead_m)
        self.control_dt_s = float(control_dt_s)
        grid, self.origin = occupancy_grid(self.scenario, resolution_m)
        free = (~grid).astype(np.uint8)
        # clearance[iy, ix]: distance (m) from the cell centre to the nearest occupied cell.
        self.clearance = cv2.distanceTransform(free, cv2.DIST_L2, 5).astype(np.float64) * self.res
        # Route tie-break: cells right of the line from the scenario's start to its goal cost
        # (1 + side_bias) per metre, so of two routes of similar length the expert always takes the
        # left one. Behaviour cloning averages a demonstrator that flips between two routes on
        # near-identical observations into a command that takes neither; a consistent choice does not.
        self.side_cost = np.ones_like(self.clearance)
        if side_bias > 0.0:
            sx, sy = self.scenario.start.x_m, self.scenario.start.y_m
            gx, gy = self.scenario.goal.x_m, self.scenario.goal.y_m
            ny, nx = self.clearance.shape
            xs = self.origin[0] + (np.arange(nx) + 0.5) * self.res
            ys = self.origin[1] + (np.arange(ny) + 0.5) * self.res
            cross = (gx - sx) * (ys[:, None] - sy) - (gy - sy) * (xs[None, :] - sx)
            self.side_cost[cross < 0.0] = 1.0 + side_bias
        self.radius_m = ego.hard.footprint.radius_m
        self.path: np.ndarray | None = None
        """Current path, (N, 2) m, from the last plan to the goal; None before the first act()."""
        self.margin_m: float | None = None
        self._idx = 0
        self._v = 0.0

    # ----------------------------------------------------------------- planning
    def _cell(self, x: float, y: float) -> tuple[int, int]:
        ny, nx = self.clearance.shape
        ix = min(max(int((x - self.origin[0]) / self.res), 0), nx - 1)
        iy = min(max(int((y - self.origin[1]) / self.res), 0), ny - 1)
        return iy, ix

    def _xy(self, iy: int, ix: int) -> tuple[float, float]:
        return self.origin[0] + (ix + 0.5) * self.res, self.origin[1] + (iy + 0.5) * self.res

    def _astar(self, start: tuple[int, int], goal: tuple[int, int], passable: np.ndarray) -> list[tuple[int, int]]:
        ny, nx = passable.shape
        moves = [(dy, dx, math.hypot(dy, dx)) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
        g = {start: 0.0}
        parent: dict[tuple[int, int], tuple[int, int]] = {}
        heap = [(0.0, start)]
        closed: set[tuple[int, int]] = set()
        while heap:
            _, cur = heapq.heappop(heap)
            if cur == goal:
                path = [cur]
                while cur in parent:
                    cur = parent[cur]
                    path.append(cur)
                return path[::-1]
            if cur in closed:
                continue
            closed.add(cur)
            for dy, dx, step in moves:
                nb = (cur[0] + dy, cur[1] + dx)
                if not (0 <= nb[0] < ny and 0 <= nb[1] < nx) or not passable[nb] or nb in closed:
                    continue
                # Prefer cells far from obstacles: cost grows as clearance shrinks below 0.6 m.
                penalty = 1.0 + 2.0 * max(0.0, 0.6 - self.clearance[nb]) / 0.6
                cost = g[cur] + step * penalty * self.side_cost[nb]
                if cost < g.get(nb, math.inf):
                    g[nb] = cost
                    parent[nb] = cur
                    h = math.hypot(goal[0] - nb[0], goal[1] - nb[1])
                    heapq.heappush(heap, (cost + h, nb))
        return []

    def _segment_clear(self, a: np.ndarray, b: np.ndarray, min_clear_m: float) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / (self.res / 2)) + 1)
        for t in np.linspace(0.0, 1.0, n):
            pt = a + t * (b - a)
            if self.clearance[self._cell(float(pt[0]), float(pt[1]))] < min_clear_m:
                return False
        return True

    def _shortcut(self, pts: np.ndarray, min_clear_m: float) -> np.ndarray:
        out = [pts[0]]
        i = 0
        while i < len(pts) - 1:
            j = len(pts) - 1
            while j > i + 1 and not self._segment_clear(pts[i], pts[j], min_clear_m):
                j -= 1
            out.append(pts[j])
            i = j
        return np.array(out)

    def plan(self, x: float, y: float) -> np.ndarray:
        """Plan from (x, y) to the goal: resampled path (N, 2) m, 0.1 m spacing; empty (0, 2) if none."""
        gx, gy = self.scenario.goal.x_m, self.scenario.goal.y_m
        s, t = self._cell(x, y), self._cell(gx, gy)
        ny, nx = self.clearance.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        near = ((yy - s[0]) ** 2 + (xx - s[1]) ** 2 <= (0.4 / self.res) ** 2) | \
               ((yy - t[0]) ** 2 + (xx - t[1]) ** 2 <= (0.4 / self.res) ** 2)
        for margin in MARGINS_M:
            need = self.radius_m + margin
            passable = (self.clearance > need) | (near & (self.clearance > 0.75 * self.radius_m))
            passable[s] = passable[t] = True
            cells = self._astar(s, t, passable)
            if cells:
                self.margin_m = margin
                pts = np.array([self._xy(*c) for c in cells])
                pts[0], pts[-1] = (x, y), (gx, gy)
                pts = self._shortcut(pts, min(need, 0.9 * self.radius_m + margin))
                return self._resample(pts, 0.1)
            _LOG.debug("expert: no path with margin %.2f m in %s, trying smaller", margin, self.scenario.name)
        _LOG.warning("expert: no path from (%.2f, %.2f) to goal in %s", x, y, self.scenario.name)
        return np.zeros((0, 2))

    @staticmethod
    def _resample(pts: np.ndarray, spacing_m: float) -> np.ndarray:
        out = [pts[0]]
        for a, b in zip(pts[:-1], pts[1:]):
            n = max(1, int(math.ceil(np.linalg.norm(b - a) / spacing_m)))
            out.extend(a + (b - a) * k / n for k in range(1, n + 1))
        return np.array(out)

    # ----------------------------------------------------------------- control
    def act(self, pose: tuple[float, float, float], twist: tuple[float, float]) -> tuple[float, float]:
        """Command (v m/s, w rad/s) for the robot at ``pose`` (x, y, yaw); (0, 0) inside the goal."""
        x, y, yaw = pose
        op = self.ego.operating
        goal = self.scenario.goal
        dist_goal = math.hypot(goal.x_m - x, goal.y_m - y)
        if dist_goal <= 0.5 * self.scenario.goal_tolerance_m:
            self._v = 0.0
            return 0.0, 0.0
        pos = np.array([x, y])
        if self.path is None or len(self.path) == 0 or \
                float(np.min(np.linalg.norm(self.path - pos, axis=1))) > 0.4:
            self.path, self._idx = self.plan(x, y), 0
            if len(self.path) == 0:
                self._v = 0.0
                return 0.0, 0.0
        # Closest point, searched forward only, then the first point beyond the lookahead.
        window = self.path[self._idx:self._idx + 20]
        self._idx += int(np.argmin(np.linalg.norm(window - pos, axis=1)))
        target = self.path[-1]
        for pt in self.path[self._idx:]:
            if np.linalg.norm(pt - pos) >= self.lookahead_m:
                target = pt
                break
        alpha = _wrap(math.atan2(target[1] - y, target[0] - x) - yaw)
        if abs(alpha) > 0.9:  # facing away: turn on the spot
            v = 0.0
            w = math.copysign(min(op.max_angular_rps, 1.5), alpha)
        else:
            ld = max(float(np.linalg.norm(target - pos)), 1e-3)
            v = op.max_linear_mps * max(0.15, 1.0 - abs(alpha) / 1.0)   # slow for sharp turns
            v = min(v, max(0.08, 0.8 * dist_goal))                        # and near the goal
            w = 2.0 * v * math.sin(alpha) / ld
            if abs(w) > op.max_angular_rps:
                v *= op.max_angular_rps / abs(w)
                w = math.copysign(op.max_angular_rps, w)
        accel = self.ego.hard.kinematics.linear_x.max_accel * self.control_dt_s
        v = min(max(v, self._v - 2.0 * accel), self._v + accel)
        self._v = v
        return float(v), float(max(-op.max_angular_rps, min(op.max_angular_rps, w)))


def run_expert_episode(world: "SimWorld", scenario: Scenario, seed: int, ego: EgoModel,
                       control_dt_s: float = 0.1) -> dict:
    """Run one episode with the expert driving ``world`` directly (no ROS).

    Returns dict(success: bool, collision: bool, time_s: float, min_clearance_m: float):
    success = goal reached within the time limit; collision = any contact with walls or obstacles.
    """
    world.reset(scenario, seed)
    layout = world.layout
    expert = ScriptedExpert(world, ego, control_dt_s=control_dt_s)
    collision, min_clear, success = False, math.inf, False
    while world.time_s < layout.time_limit_s:
        v, w = expert.act(world.pose(), world.twist())
        world.set_cmd(v, w)
        world.step(control_dt_s)
        collision = collision or world.in_collision()
        min_clear = min(min_clear, world.min_obstacle_clearance())
        if world.goal_reached(layout.goal, layout.goal_tolerance_m):
            success = True
            break
    world.set_cmd(0.0, 0.0)
    return {"success": success, "collision": collision, "time_s": world.time_s, "min_clearance_m": min_clear}


__all__ = ["MARGINS_M", "ScriptedExpert", "run_expert_episode"]
