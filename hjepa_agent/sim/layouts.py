"""Procedural layouts: seeded families of arenas the agent never saw, split by seed into train/val/test.

Each family draws one :class:`~hjepa_agent.sim.scenario.Scenario` from a seed:

* ``rooms``: two or three rooms joined by doors (0.7-1.2 m) in dividing walls;
* ``corridor``: an S-bend: two staggered walls, the way through runs up, across and down;
* ``gap``: a divider across the arena with a passage of 1.2x-3x the footprint width near the
  straight route (sometimes a second, wide one far off it);
* ``dead_end``: a U-shaped pocket opening towards the start, the goal behind it;
* ``clutter``: 5-16 cylinders and boxes scattered between start and goal;
* ``long_wall``: a long wall across the straight route, ways round either end;
* ``goal_behind``: the goal behind a box, the robot starting with its back to it.

Start poses face a random way in a third of the layouts of every family (always away from the goal in
``goal_behind``). Every layout is checked solvable by the privileged expert (A* on the true layout at
:data:`CHECK_RESOLUTION_M`, the footprint plus at least the expert's smallest margin); a draw that is not
is drawn again from the same seed's stream, so the layout of a (family, split, index) never changes.
The time limit comes from the expert's path length: :func:`time_limit_s`.

Splits are disjoint by construction: layout ``index`` of split ``s`` has seed
``SPLIT_BASE[s] + index`` and indices are below :data:`SPLIT_SIZE`. Pure geometry (numpy, OpenCV via
the expert); units m, rad, s.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hjepa_agent.config.ego_model import EgoModel
from hjepa_agent.sim.scenario import (ENDPOINT_CLEARANCE_M, Arena, Goal, Obstacle, Scenario, Start)

FAMILIES = ("rooms", "corridor", "gap", "dead_end", "clutter", "long_wall", "goal_behind")
"""The layout families, in the order episodes cycle through them."""
SPLITS = ("train", "val", "test")
SPLIT_SIZE = 1_000_000
"""Layouts per split and family; index i of split s is seed SPLIT_BASE[s] + i."""
SPLIT_BASE = {s: k * SPLIT_SIZE for k, s in enumerate(SPLITS)}
WALL_M = 0.1
"""Thickness of the inner walls, m."""
WALL_HEIGHT_M = 0.5
GAP_FACTORS = (1.2, 3.0)
"""The gap family's passage width, as multiples of the footprint width (2 x footprint radius)."""
CHECK_RESOLUTION_M = 0.025
"""Grid of the solvability check, m (fine enough that a 1.2x passage is not closed by rasterising)."""
FACING_AWAY_P = 1.0 / 3.0
MAX_DRAWS = 50


@dataclass(frozen=True)
class LayoutId:
    """Which layout: family, split and index in the split."""

    family: str
    split: str
    index: int

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family: must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.split not in SPLITS:
            raise ValueError(f"split: must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if not 0 <= self.index < SPLIT_SIZE:
            raise ValueError(f"index: must be in [0, {SPLIT_SIZE}), got {self.index}")

    @property
    def seed(self) -> int:
        return SPLIT_BASE[self.split] + self.index

    @property
    def name(self) -> str:
        return f"{self.family}_{self.split}_{self.index}"


def _wall(x0: float, y0: float, x1: float, y1: float) -> Obstacle | None:
    """An axis-aligned wall (box) along the segment (x0, y0)-(x1, y1), WALL_M thick; None if too short."""
    if abs(x1 - x0) >= abs(y1 - y0):
        length = abs(x1 - x0)
        if length < 0.05:
            return None
        return Obstacle("box", (x0 + x1) / 2, y0, size_x_m=length, size_y_m=WALL_M)
    length = abs(y1 - y0)
    if length < 0.05:
        return None
    return Obstacle("box", x0, (y0 + y1) / 2, size_x_m=WALL_M, size_y_m=length)


def _walls(*segments: tuple[float, float, float, float]) -> list[Obstacle]:
    return [w for w in (_wall(*s) for s in segments) if w is not None]


def _divider(x: float, hy: float, doors: list[tuple[float, float]]) -> list[Obstacle]:
    """A vertical wall at x from -hy to hy with openings (centre y, width)."""
    cuts = sorted((c - w / 2, c + w / 2) for c, w in doors)
    segs, y = [], -hy
    for lo, hi in cuts:
        segs.append((x, y, x, lo))
        y = hi
    segs.append((x, y, x, hy))
    return _walls(*segs)


def _yaw_to(sx: float, sy: float, gx: float, gy: float) -> float:
    return math.atan2(gy - sy, gx - sx)


def _start_yaw(rng: np.random.Generator, toward: float) -> float:
    """Roughly towards the goal, or (FACING_AWAY_P) any way at all."""
    yaw = float(rng.uniform(-math.pi, math.pi)) if rng.random() < FACING_AWAY_P else toward + float(rng.uniform(-0.5, 0.5))
    return math.atan2(math.sin(yaw), math.cos(yaw))


def _either_side(rng: np.random.Generator, hx: float, hy: float, x_wall: float, clear_m: float, yc: float,
                 spread_m: float) -> tuple[float, float, float, float]:
    """Start (x, y) left and goal (x, y) right of a wall across the arena at ``x_wall``, each at least
    ``clear_m`` from it and 0.5 m from the arena's walls, within ``spread_m`` of the line y = ``yc``."""
    sx = float(rng.uniform(-hx + 0.5, x_wall - clear_m))
    gx = float(rng.uniform(x_wall + clear_m, hx - 0.5))
    sy = float(np.clip(yc + rng.uniform(-spread_m, spread_m), -hy + 0.5, hy - 0.5))
    gy = float(np.clip(yc + rng.uniform(-spread_m, spread_m), -hy + 0.5, hy - 0.5))
    return sx, sy, gx, gy


Draw = tuple[tuple[float, float], list[Obstacle], tuple[float, float, float], tuple[float, float]]
"""(arena size x, y), obstacles, start (x, y, yaw), goal (x, y)."""


def _rooms(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.0, 8.0)), float(rng.uniform(5.0, 7.0))
    hx, hy = sx_ / 2, sy_ / 2
    x1 = float(rng.uniform(-1.5, -0.3))
    walls_x = [x1]
    if rng.random() < 0.6:
        walls_x.append(min(x1 + float(rng.uniform(1.6, 2.4)), hx - 1.4))
    obstacles: list[Obstacle] = []
    for x in walls_x:
        door = float(rng.uniform(0.7, 1.2))
        c = float(rng.uniform(-hy + 0.4 + door / 2, hy - 0.4 - door / 2))
        obstacles += _divider(x, hy, [(c, door)])
    sx, sy = float(rng.uniform(-hx + 0.5, walls_x[0] - 0.6)), float(rng.uniform(-hy + 0.5, hy - 0.5))
    gx, gy = float(rng.uniform(walls_x[-1] + 0.6, hx - 0.5)), float(rng.uniform(-hy + 0.5, hy - 0.5))
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _corridor(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.5, 8.0)), float(rng.uniform(5.0, 6.5))
    hx, hy = sx_ / 2, sy_ / 2
    width = float(rng.uniform(1.0, 1.6))       # the corridor between the two walls
    a = float(rng.uniform(-1.2, -0.4))
    b = a + width
    g1, g2 = float(rng.uniform(0.8, 1.3)), float(rng.uniform(0.8, 1.3))
    flip = 1.0 if rng.random() < 0.5 else -1.0
    obstacles = _walls((a, -hy, a, hy - g1), (b, -hy + g2, b, hy))
    if flip < 0:
        obstacles = [Obstacle("box", o.x_m, -o.y_m, size_x_m=o.size_x_m, size_y_m=o.size_y_m) for o in obstacles]
    sx, sy = float(rng.uniform(-hx + 0.5, a - 0.6)), float(rng.uniform(-hy + 0.5, hy - 0.5))
    gx, gy = float(rng.uniform(b + 0.6, hx - 0.5)), float(rng.uniform(-hy + 0.5, hy - 0.5))
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _gap(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.0, 7.5)), float(rng.uniform(5.0, 6.5))
    hx, hy = sx_ / 2, sy_ / 2
    xd = float(rng.uniform(-0.5, 0.5))
    width = float(rng.uniform(*GAP_FACTORS)) * 2.0 * r
    yc = float(rng.uniform(-hy + 1.2, hy - 1.2))
    doors = [(yc, width)]
    if rng.random() < 0.3:   # a second, wide way far off the straight route
        far = -hy + 0.6 if yc > 0 else hy - 0.6
        doors.append((far, 3.0 * 2.0 * r))
    obstacles = _divider(xd, hy, doors)
    sx, sy, gx, gy = _either_side(rng, hx, hy, xd, 1.2, yc, 0.8)
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _dead_end(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.5, 8.0)), float(rng.uniform(6.0, 7.0))
    hx, hy = sx_ / 2, sy_ / 2
    xb = float(rng.uniform(0.0, 0.8))           # the pocket's back wall
    h = float(rng.uniform(1.4, 2.4))            # its width (inside)
    depth = float(rng.uniform(0.9, 1.6))
    yc = float(rng.uniform(-hy + h / 2 + 1.0, hy - h / 2 - 1.0))
    obstacles = _walls((xb, yc - h / 2, xb, yc + h / 2), (xb - depth, yc - h / 2, xb, yc - h / 2),
                       (xb - depth, yc + h / 2, xb, yc + h / 2))
    sx = float(rng.uniform(max(-hx + 0.5, xb - depth - 2.0), xb - depth - 0.6))
    sy = float(yc + rng.uniform(-0.3, 0.3) * h)
    gx = float(rng.uniform(xb + 0.8, hx - 0.5))
    gy = float(np.clip(yc + rng.uniform(-0.4, 0.4), -hy + 0.5, hy - 0.5))
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _clutter(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.0, 8.0)), float(rng.uniform(5.5, 7.0))
    hx, hy = sx_ / 2, sy_ / 2
    sx, sy = -hx + 0.6, float(rng.uniform(-hy + 0.6, hy - 0.6))
    gx, gy = hx - 0.6, float(rng.uniform(-hy + 0.6, hy - 0.6))
    n = int(rng.integers(5, 17))
    min_gap = 1.3 * 2.0 * r
    obstacles: list[Obstacle] = []
    for _ in range(n * 30):
        if len(obstacles) >= n:
            break
        x, y = float(rng.uniform(-hx + 1.3, hx - 1.3)), float(rng.uniform(-hy + 0.4, hy - 0.4))
        if rng.random() < 0.5:
            ob = Obstacle("cylinder", x, y, radius_m=float(rng.uniform(0.12, 0.3)))
        else:
            ob = Obstacle("box", x, y, size_x_m=float(rng.uniform(0.25, 0.6)), size_y_m=float(rng.uniform(0.25, 0.6)),
                          yaw_rad=float(rng.uniform(-math.pi, math.pi)))
        far = all(math.hypot(o.x_m - x, o.y_m - y) - o.bounding_radius_m() - ob.bounding_radius_m() >= min_gap
                  for o in obstacles)
        clear = ob.distance_to(sx, sy) >= 0.6 and ob.distance_to(gx, gy) >= 0.6
        if far and clear:
            obstacles.append(ob)
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _long_wall(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(6.5, 8.0)), float(rng.uniform(6.0, 7.5))
    hx, hy = sx_ / 2, sy_ / 2
    length = float(rng.uniform(0.55, 0.75)) * sy_
    xw = float(rng.uniform(-0.4, 0.4))
    room = sy_ - length                        # split between the two ends
    lo = -hy + room * float(rng.uniform(0.35, 0.65))
    obstacles = _walls((xw, lo, xw, lo + length))
    sx, sy, gx, gy = _either_side(rng, hx, hy, xw, 1.0, lo + length / 2, 0.4)
    return (sx_, sy_), obstacles, (sx, sy, _start_yaw(rng, _yaw_to(sx, sy, gx, gy))), (gx, gy)


def _goal_behind(rng: np.random.Generator, r: float) -> Draw:
    sx_, sy_ = float(rng.uniform(5.5, 7.0)), float(rng.uniform(5.5, 7.0))
    hx, hy = sx_ / 2, sy_ / 2
    sx, sy = float(rng.uniform(-hx + 1.0, -0.3)), float(rng.uniform(-hy + 1.0, hy - 1.0))
    bx = float(rng.uniform(sx + 1.0, hx - 1.3))
    by = float(np.clip(sy + rng.uniform(-0.5, 0.5), -hy + 1.0, hy - 1.0))
    bw, bd = float(rng.uniform(0.6, 1.3)), float(rng.uniform(0.3, 0.6))
    gx = float(min(bx + bd / 2 + float(rng.uniform(0.45, 0.8)), hx - 0.4))
    gy = float(np.clip(by + rng.uniform(-0.2, 0.2), -hy + 0.5, hy - 0.5))
    obstacles = [Obstacle("box", bx, by, size_x_m=bd, size_y_m=bw)]
    if rng.random() < 0.5 and bx - sx > 1.3:   # a second obstacle between the start and the box
        obstacles.append(Obstacle("cylinder", float(rng.uniform(sx + 0.6, bx - 0.5)),
                                  float(np.clip(sy + rng.uniform(-1.2, 1.2), -hy + 0.5, hy - 0.5)),
                                  radius_m=float(rng.uniform(0.15, 0.3))))
    away = _yaw_to(sx, sy, gx, gy) + math.pi + float(rng.uniform(-0.6, 0.6))
    return (sx_, sy_), obstacles, (sx, sy, math.atan2(math.sin(away), math.cos(away))), (gx, gy)


_DRAW: dict[str, Callable[[np.random.Generator, float], Draw]] = {
    "rooms": _rooms, "corridor": _corridor, "gap": _gap, "dead_end": _dead_end, "clutter": _clutter,
    "long_wall": _long_wall, "goal_behind": _goal_behind}


def time_limit_s(path_length_m: float, max_linear_mps: float) -> float:
    """The episode's time limit: 20 s plus three times the expert path at the operating speed, rounded up
    to 5 s (the shipped arenas allow 40-45 s for 4-5 m)."""
    return float(5.0 * math.ceil((20.0 + 3.0 * path_length_m / max_linear_mps) / 5.0))


def _path_length(path: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1))) if len(path) > 1 else 0.0


def make_layout(lid: LayoutId, ego: EgoModel) -> Scenario:
    """The layout ``lid`` for a robot with ``ego``'s footprint, checked solvable by the expert; ValueError
    if MAX_DRAWS draws from its seed are all unsolvable (never seen for the shipped families)."""
    from hjepa_agent.sim.expert import ScriptedExpert

    r = ego.hard.footprint.radius_m
    rng = np.random.default_rng([FAMILIES.index(lid.family), lid.seed])
    for _ in range(MAX_DRAWS):
        (ax, ay), obstacles, (sx, sy, syaw), (gx, gy) = _DRAW[lid.family](rng, r)
        try:
            sc = Scenario(name=lid.name, seed=lid.seed, arena=Arena(ax, ay, WALL_HEIGHT_M), obstacles=obstacles,
                          start=Start(sx, sy, syaw), goal=Goal(gx, gy), goal_tolerance_m=0.25, time_limit_s=600.0)
        except ValueError:   # start or goal too near a wall or an obstacle: draw again
            continue
        if any(ob.distance_to(p[0], p[1]) < max(ENDPOINT_CLEARANCE_M, r + 0.05)
               for ob in obstacles for p in ((sx, sy), (gx, gy))):
            continue
        quiet = logging.getLogger("hjepa_agent.sim.expert")
        level, quiet.level = quiet.level, logging.ERROR   # an unsolvable draw is drawn again, not a warning
        try:
            path = ScriptedExpert(sc, ego, resolution_m=CHECK_RESOLUTION_M).plan(sx, sy)
        finally:
            quiet.setLevel(level)
        if len(path) == 0:
            continue
        return Scenario(name=sc.name, seed=sc.seed, arena=sc.arena, obstacles=sc.obstacles, start=sc.start,
                        goal=sc.goal, goal_tolerance_m=sc.goal_tolerance_m,
                        time_limit_s=time_limit_s(_path_length(path), ego.operating.max_linear_mps))
    raise ValueError(f"{lid.name}: no solvable layout in {MAX_DRAWS} draws for a footprint of radius {r} m (the rooms "
                     f"and corridor families' doors and corridors are sized for robots up to about 0.3 m; "
                     f"--families without them)")


def layout_ids(split: str, n: int, first: int = 0, families: tuple[str, ...] = FAMILIES) -> list[LayoutId]:
    """``n`` layouts of ``split``, the families in turn: episode k is family k mod len(families), index
    first + k // len(families) of that family."""
    return [LayoutId(families[k % len(families)], split, first + k // len(families)) for k in range(n)]


def layout_scenarios(split: str, n: int, ego: EgoModel, first: int = 0) -> list[Scenario]:
    """The first ``n`` procedural layouts of ``split`` from index ``first`` (the families in turn)."""
    return [make_layout(lid, ego) for lid in layout_ids(split, n, first)]


def training_jobs(ego: EgoModel, episodes_per_scenario: int, seed0: int, layouts: int = 0,
                  split: str = "train") -> list[tuple[Scenario, int]]:
    """(scenario, episode seed) jobs of a trainer: every shipped scenario (config/scenarios) on seeds
    seed0 .. seed0 + episodes_per_scenario - 1, then ``layouts`` procedural layouts of ``split`` (the
    families in turn), one episode each on seed ``seed0``: the layout itself is what varies."""
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.sim.scenario import load_scenarios

    jobs = [(sc, seed0 + i) for sc in load_scenarios(data_path("config", "scenarios"))
            for i in range(episodes_per_scenario)]
    return jobs + [(sc, seed0) for sc in layout_scenarios(split, layouts, ego)]


__all__ = ["CHECK_RESOLUTION_M", "FAMILIES", "GAP_FACTORS", "LayoutId", "SPLITS", "SPLIT_BASE", "SPLIT_SIZE",
           "layout_ids", "layout_scenarios", "make_layout", "time_limit_s", "training_jobs"]
