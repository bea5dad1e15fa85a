"""Scenarios: arena, obstacles, start and goal, with seeded per-episode jitter.

Coordinates: metres in the world frame; the arena is centred on the origin and spans
[-size_x_m/2, size_x_m/2] x [-size_y_m/2, size_y_m/2], walled on all four sides.
Pure geometry (numpy only), so the expert and tests use it without a simulator.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hjepa_agent.config.loader import build, read_yaml, require

OBSTACLE_HEIGHT_M = 0.5
"""Height of every obstacle, m (above the camera and the laser)."""
WALL_THICKNESS_M = 0.1
"""Thickness of the arena walls, m; they stand just outside the arena rectangle."""
ENDPOINT_CLEARANCE_M = 0.25
"""Start and goal must be at least this far from obstacle surfaces and walls, m."""
JITTER_KEEP_OUT_M = 0.6
"""A jittered obstacle is never placed closer than this to the start or goal, m."""


@dataclass(frozen=True)
class Arena:
    """Walled rectangle centred on the origin: sizes and wall height in m."""

    size_x_m: float
    size_y_m: float
    wall_height_m: float

    def __post_init__(self) -> None:
        require(1.0 <= self.size_x_m <= 100.0, "size_x_m", f"must be in [1, 100] m, got {self.size_x_m}")
        require(1.0 <= self.size_y_m <= 100.0, "size_y_m", f"must be in [1, 100] m, got {self.size_y_m}")
        require(0.05 <= self.wall_height_m <= 5.0, "wall_height_m",
                f"must be in [0.05, 5] m, got {self.wall_height_m}")


@dataclass(frozen=True)
class Obstacle:
    """A box (size_x_m, size_y_m, yaw_rad) or a cylinder (radius_m) centred at (x_m, y_m)."""

    shape: str
    x_m: float
    y_m: float
    size_x_m: float | None = None
    size_y_m: float | None = None
    radius_m: float | None = None
    yaw_rad: float = 0.0

    def __post_init__(self) -> None:
        require(self.shape in ("box", "cylinder"), "shape", f"must be 'box' or 'cylinder', got {self.shape!r}")
        if self.shape == "box":
            for name in ("size_x_m", "size_y_m"):
                val = getattr(self, name)
                require(val is not None, name, "required for a box")
                require(0.02 <= val <= 50.0, name, f"must be in [0.02, 50] m, got {val}")
            require(self.radius_m is None, "radius_m", "not allowed for a box")
        else:
            require(self.radius_m is not None, "radius_m", "required for a cylinder")
            require(0.01 <= self.radius_m <= 10.0, "radius_m", f"must be in [0.01, 10] m, got {self.radius_m}")
            for name in ("size_x_m", "size_y_m"):
                require(getattr(self, name) is None, name, "not allowed for a cylinder")

    def distance_to(self, x_m: float, y_m: float) -> float:
        """Distance (m) from point (x_m, y_m) to this obstacle's surface; 0 inside."""
        dx, dy = x_m - self.x_m, y_m - self.y_m
        if self.shape == "cylinder":
            return max(math.hypot(dx, dy) - float(self.radius_m), 0.0)
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        lx, ly = c * dx + s * dy, -s * dx + c * dy
        ex = max(abs(lx) - float(self.size_x_m) / 2.0, 0.0)
        ey = max(abs(ly) - float(self.size_y_m) / 2.0, 0.0)
        return math.hypot(ex, ey)

    def bounding_radius_m(self) -> float:
        """Radius of the smallest circle about the centre enclosing the obstacle, m."""
        if self.shape == "cylinder":
            return float(self.radius_m)
        return 0.5 * math.hypot(float(self.size_x_m), float(self.size_y_m))


@dataclass(frozen=True)
class Start:
    """Start pose: x, y (m), yaw (rad, counter-clockwise from +x)."""

    x_m: float
    y_m: float
    yaw_rad: float


@dataclass(frozen=True)
class Goal:
    """Goal position, m."""

    x_m: float
    y_m: float


@dataclass(frozen=True)
class Jitter:
    """Per-episode randomisation: uniform offsets up to obstacle_m (m, per axis), start_yaw_rad, goal_m."""

    obstacle_m: float = 0.0
    start_yaw_rad: float = 0.0
    goal_m: float = 0.0

    def __post_init__(self) -> None:
        for name in ("obstacle_m", "start_yaw_rad", "goal_m"):
            val = getattr(self, name)
            require(0.0 <= val <= 1.0 or (name == "start_yaw_rad" and 0.0 <= val <= math.pi), name,
                    f"must be in [0, 1] (start_yaw_rad: [0, pi]), got {val}")


@dataclass(frozen=True)
class Scenario:
    """A navigation task: arena, obstacles, start pose, goal, tolerance (m) and time limit (s)."""

    name: str
    seed: int
    arena: Arena
    obstacles: list[Obstacle]
    start: Start
    goal: Goal
    goal_tolerance_m: float
    time_limit_s: float
    jitter: Jitter = field(default_factory=Jitter)

    def __post_init__(self) -> None:
        require(bool(self.name), "name", "must not be empty")
        require(0.05 <= self.goal_tolerance_m <= 2.0, "goal_tolerance_m",
                f"must be in [0.05, 2] m, got {self.goal_tolerance_m}")
        require(0.0 < self.time_limit_s <= 3600.0, "time_limit_s", f"must be in (0, 3600] s, got {self.time_limit_s}")
        for i, ob in enumerate(self.obstacles):
            require(self.inside_arena(ob.x_m, ob.y_m, 0.0), "obstacles",
                    f"obstacles[{i}] centre ({ob.x_m}, {ob.y_m}) is outside the arena")
        for key, pt in (("start", self.start), ("goal", self.goal)):
            require(self.inside_arena(pt.x_m, pt.y_m, ENDPOINT_CLEARANCE_M), key,
                    f"({pt.x_m}, {pt.y_m}) is not inside the arena with {ENDPOINT_CLEARANCE_M} m to the walls")
            for i, ob in enumerate(self.obstacles):
                d = ob.distance_to(pt.x_m, pt.y_m)
                require(d >= ENDPOINT_CLEARANCE_M, key,
                        f"({pt.x_m}, {pt.y_m}) is {d:.2f} m from obstacles[{i}] "
                        f"(needs >= {ENDPOINT_CLEARANCE_M} m)")

    def inside_arena(self, x_m: float, y_m: float, margin_m: float) -> bool:
        """True if (x_m, y_m) lies inside the arena at least margin_m from every wall."""
        return (abs(x_m) <= self.arena.size_x_m / 2.0 - margin_m
                and abs(y_m) <= self.arena.size_y_m / 2.0 - margin_m)

    def start_goal_distance_m(self) -> float:
        """Straight-line distance from start to goal, m."""
        return math.hypot(self.goal.x_m - self.start.x_m, self.goal.y_m - self.start.y_m)

    def jittered(self, episode_seed: int) -> "Scenario":
        """The layout of one episode: obstacles, start yaw and goal moved by seeded uniform noise.

        Deterministic in (self.seed, episode_seed). An obstacle whose samples all come within
        JITTER_KEEP_OUT_M of the start or goal keeps its nominal place if that is clear, else
        is dropped. The goal keeps its nominal place if its samples are all blocked.
        """
        rng = np.random.default_rng([int(self.seed) & 0xFFFFFFFF, int(episode_seed) & 0xFFFFFFFF])
        j = self.jitter
        yaw = self.start.yaw_rad + float(rng.uniform(-j.start_yaw_rad, j.start_yaw_rad))
        start = Start(self.start.x_m, self.start.y_m, math.atan2(math.sin(yaw), math.cos(yaw)))
        goal = self.goal
        for _ in range(20):
            gx = self.goal.x_m + float(rng.uniform(-j.goal_m, j.goal_m))
            gy = self.goal.y_m + float(rng.uniform(-j.goal_m, j.goal_m))
            if self.inside_arena(gx, gy, ENDPOINT_CLEARANCE_M) and all(
                    ob.distance_to(gx, gy) >= JITTER_KEEP_OUT_M for ob in self.obstacles):
                goal = Goal(gx, gy)
                break

        def clear(ob: Obstacle) -> bool:
            return (ob.distance_to(start.x_m, start.y_m) >= JITTER_KEEP_OUT_M
                    and ob.distance_to(goal.x_m, goal.y_m) >= JITTER_KEEP_OUT_M)

        obstacles: list[Obstacle] = []
        for ob in self.obstacles:
            placed = None
            for _ in range(20):
                cand = dataclasses.replace(ob, x_m=ob.x_m + float(rng.uniform(-j.obstacle_m, j.obstacle_m)),
                                           y_m=ob.y_m + float(rng.uniform(-j.obstacle_m, j.obstacle_m)))
                if clear(cand) and self.inside_arena(cand.x_m, cand.y_m, 0.0):
                    placed = cand
                    break
            if placed is None and clear(ob):
                placed = ob
            if placed is not None:
                obstacles.append(placed)
        return dataclasses.replace(self, obstacles=obstacles, start=start, goal=goal)


def occupancy_grid(scenario: Scenario, resolution_m: float = 0.05) -> tuple[np.ndarray, tuple[float, float]]:
    """Rasterise walls and obstacles: (grid (ny, nx) bool, True = occupied; origin_xy (m)).

    Cell (iy, ix) covers [ox + ix*res, ox + (ix+1)*res) x [oy + iy*res, oy + (iy+1)*res).
    The grid spans the arena plus one wall thickness; the walls are marked occupied.
    """
    require(0.005 <= resolution_m <= 1.0, "resolution_m", f"must be in [0.005, 1] m, got {resolution_m}")
    hx = scenario.arena.size_x_m / 2.0 + WALL_THICKNESS_M
    hy = scenario.arena.size_y_m / 2.0 + WALL_THICKNESS_M
    nx, ny = int(math.ceil(2 * hx / resolution_m)), int(math.ceil(2 * hy / resolution_m))
    ox, oy = -hx, -hy
    xs = ox + (np.arange(nx) + 0.5) * resolution_m
    ys = oy + (np.arange(ny) + 0.5) * resolution_m
    gx, gy = np.meshgrid(xs, ys)
    grid = (np.abs(gx) >= scenario.arena.size_x_m / 2.0) | (np.abs(gy) >= scenario.arena.size_y_m / 2.0)
    half = resolution_m / 2.0  # mark every cell the obstacle touches, not only those whose centre it covers
    for ob in scenario.obstacles:
        dx, dy = gx - ob.x_m, gy - ob.y_m
        if ob.shape == "cylinder":
            grid |= np.hypot(dx, dy) <= float(ob.radius_m) + half
        else:
            c, s = math.cos(ob.yaw_rad), math.sin(ob.yaw_rad)
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            grid |= (np.abs(lx) <= float(ob.size_x_m) / 2.0 + half) & (np.abs(ly) <= float(ob.size_y_m) / 2.0 + half)
    return grid, (ox, oy)


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate one scenario YAML; ConfigError names file, key and value."""
    return build(Scenario, read_yaml(path), path)


def load_scenarios(path_or_dir: str | Path) -> list[Scenario]:
    """Load one scenario file, or every *.yaml in a directory; sorted by name."""
    p = Path(path_or_dir)
    files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return sorted((load_scenario(f) for f in files), key=lambda s: s.name)


__all__ = ["Arena", "Goal", "Jitter", "Obstacle", "Scenario", "Start", "load_scenario",
           "load_scenarios", "occupancy_grid"]
