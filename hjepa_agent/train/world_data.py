"""Roll-out data for the world model: headless sim episodes with an exploring expert.

Every control tick (10 Hz, :data:`CONTROL_DT_S`) of an episode stores what the runtime
sees and the command that was executed, plus privileged probe targets:

* ``image`` (N, 3, 64, 64) uint8: camera after :func:`preprocess_image`'s resize rules;
* ``scan`` (N, 16) float32: :func:`scan_to_bins` of the sim scan (angle_min=-pi,
  increment 2pi/n_beams, range limits from the robot description) / SCAN_RANGE_MAX_M, in [0, 1];
* ``action`` (N, 2) float32: the executed (v, w) after the bridge's clip and rate limit,
  divided by the ego model's HARD velocity limits (so in [-1, 1]); applied from tick t to t+1;
* ``pose`` (N, 3): x, y (m), yaw (rad) in the world frame;
* ``obst_dist`` (N,): distance (m) from the base centre to the nearest obstacle or wall SURFACE;
* ``obst_bearing`` (N, 2): (cos, sin) of the body-frame bearing to the CLOSEST SURFACE POINT
  of that obstacle/wall (not its centre: for walls and long boxes the centre says little);
* ``heading`` (N, 2): (cos yaw, sin yaw);
* ``episode`` (N,) int, ``tick`` (N,) int: episode id (unique within a data set) and tick index.

Exploration makes action-conditioning matter: the expert's command gets smoothed Gaussian
noise (sigma 0.12 m/s, 0.5 rad/s, per-episode gain in [0.5, 1.5]) and, with probability
0.04 per tick, a random command (v in [-max_linear_mps / 3, max_linear_mps], w in
[-max_angular_rps, max_angular_rps] of the ego model's operating limits: [-0.2, 0.6] m/s and
[-1.8, 1.8] rad/s for the sample diffbot) held for 0.5-1.5 s. Episodes end at the goal, a
collision or after ``max_time_s`` (default 20 s).

Seeds (episode seed = scenario jitter seed; appearance drawn from an rng seeded with it):
train ``0..n-1``, calibration ``50_000 + i``, test ``60_000 + i``, unseen-appearance test
``70_000 + i``: disjoint by construction. Appearance: ``Appearance.sample(rng, "nominal")``
per episode, except the ``unseen`` split (``"unseen"``) and every DEFAULT_LOOK_EVERY-th episode of
the other splits, which uses the sim's default look (see :func:`appearance_for`). The world model's
look bank (train/look.py) also rolls these splits out on procedural layouts (sim/layouts.py, whose
own train/val/test splits are disjoint by seed): train on the layouts' train split, calib on their val
split from index 500 on; the eval's test and unseen splits use the shipped scenarios only.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from tqdm import tqdm

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.core.types import SCAN_RANGE_MAX_M
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.appearance import Appearance
from hjepa_agent.sim.expert import ScriptedExpert
from hjepa_agent.sim.robot import RobotDescription, load_robot_description
from hjepa_agent.sim.scenario import Scenario, load_scenarios
from hjepa_agent.sim.world import SimWorld
from hjepa_agent.train.collect import CONTROL_DT_S, Limits, observe, rate_limit

log = logging.getLogger(__name__)

SEED_BASE = {"train": 0, "calib": 50_000, "test": 60_000, "unseen": 70_000}
"""First episode seed of each split; split s uses SEED_BASE[s] + 0..n-1."""
MAX_EPISODE_S = 20.0
"""Default episode length cap, s."""
KEYS = ("image", "scan", "action", "pose", "obst_dist", "obst_bearing", "heading", "episode", "tick")


def nearest_surface(layout: Scenario, x: float, y: float) -> tuple[float, float, float]:
    """Nearest obstacle or wall surface to (x, y): (distance m, closest point x, y in the world frame).

    Walls are the arena rectangle's sides (|x| = size_x/2, |y| = size_y/2). Obstacle distances
    agree with :meth:`Obstacle.distance_to`; the closest point is computed in the obstacle frame.
    """
    hx, hy = layout.arena.size_x_m / 2.0, layout.arena.size_y_m / 2.0
    cands = [(hx - x, hx, y), (x + hx, -hx, y), (hy - y, x, hy), (y + hy, x, -hy)]
    for ob in layout.obstacles:
        dx, dy = x - ob.x_m, y - ob.y_m
        if ob.shape == "cylinder":
            r = math.hypot(dx, dy)
            k = float(ob.radius_m) / max(r, 1e-9)
            cands.append((max(r - float(ob.radius_m), 0.0), ob.x_m + dx * k, ob.y_m + dy * k))
        else:
            c, s = math.cos(ob.yaw_rad), math.sin(ob.yaw_rad)
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            px = min(max(lx, -float(ob.size_x_m) / 2.0), float(ob.size_x_m) / 2.0)
            py = min(max(ly, -float(ob.size_y_m) / 2.0), float(ob.size_y_m) / 2.0)
            cands.append((ob.distance_to(x, y), ob.x_m + c * px - s * py, ob.y_m + s * px + c * py))
    return min(cands, key=lambda t: t[0])


DEFAULT_LOOK_EVERY = 5
"""In the nominal splits, episodes whose seed % DEFAULT_LOOK_EVERY == DEFAULT_LOOK_EVERY - 1 use the
sim's default look (the one `hjepa-agent sim` and the habitual policy's training run in): it is part
of what the robot normally sees, so it belongs in the nominal statistics."""


def appearance_for(split: str, seed: int) -> Appearance:
    """The look of episode ``seed`` of ``split`` (module docstring)."""
    if split == "unseen":
        return Appearance.sample(np.random.default_rng(seed), "unseen")
    if seed % DEFAULT_LOOK_EVERY == DEFAULT_LOOK_EVERY - 1:
        return Appearance.default()
    return Appearance.sample(np.random.default_rng(seed), "nominal")


def _episode(world: SimWorld, ego: EgoModel, limits: Limits, scenario: Scenario, seed: int, split: str,
             max_time_s: float, explore: bool = True) -> dict[str, np.ndarray]:
    """One episode's per-tick arrays (see the module docstring), without episode ids; besides KEYS also
    ``twist`` (N, 2) (v m/s, w rad/s at the observation), ``goal`` (N, 2) (the layout goal x, y m) and
    ``command`` (N, 2) (the executed (v m/s, w rad/s), un-normalised), which :func:`collect` leaves out."""
    rng = np.random.default_rng([seed, 7])
    look = appearance_for(split, seed)
    world.reset(scenario, seed, look)
    layout = world.layout
    goal = (layout.goal.x_m, layout.goal.y_m)
    expert = ScriptedExpert(world, ego)
    hard = limits.speed_norm
    gain = rng.uniform(0.5, 1.5) if explore else 0.0
    noise = np.zeros(2)
    random_left, random_cmd = 0, (0.0, 0.0)
    prev = (0.0, 0.0)
    rows: dict[str, list] = {k: [] for k in (*KEYS, "twist", "goal", "command") if k != "episode"}
    for tick in range(int(math.ceil(max_time_s / CONTROL_DT_S))):
        image_u8, _, _, bins = observe(world, limits, goal, tick * CONTROL_DT_S)
        x, y, yaw = world.pose()
        dist, px, py = nearest_surface(layout, x, y)
        bearing = math.atan2(py - y, px - x) - yaw
        twist = world.twist()
        v_e, w_e = expert.act((x, y, yaw), twist)
        if explore and random_left == 0 and rng.random() < 0.04:
            random_left = int(rng.integers(5, 16))
            lin, ang = limits.action_scale
            random_cmd = (float(rng.uniform(-lin / 3.0, lin)), float(rng.uniform(-ang, ang)))
        if random_left > 0:
            cmd = random_cmd
            random_left -= 1
        else:
            noise = 0.7 * noise + 0.714 * rng.normal(0.0, [0.12, 0.5]) * gain  # AR(1), stationary sigma*gain
            cmd = (v_e + float(noise[0]), w_e + float(noise[1]))
        prev = rate_limit(prev, cmd, limits)
        rows["image"].append(image_u8)
        rows["scan"].append(np.minimum(bins, SCAN_RANGE_MAX_M) / SCAN_RANGE_MAX_M)
        rows["action"].append((prev[0] / hard[0], prev[1] / hard[1]))
        rows["pose"].append((x, y, yaw))
        rows["obst_dist"].append(dist)
        rows["obst_bearing"].append((math.cos(bearing), math.sin(bearing)))
        rows["heading"].append((math.cos(yaw), math.sin(yaw)))
        rows["tick"].append(tick)
        rows["twist"].append(twist)
        rows["goal"].append(goal)
        rows["command"].append(prev)
        world.set_cmd(*prev)
        world.step(CONTROL_DT_S)
        if world.in_collision() or world.goal_reached(layout.goal, scenario.goal_tolerance_m):
            break
    out = {k: np.asarray(v) for k, v in rows.items()}
    for k in ("scan", "action", "pose", "obst_dist", "obst_bearing", "heading", "twist", "goal", "command"):
        out[k] = out[k].astype(np.float32)
    return out


def collect(split: str, episodes_per_scenario: int, *, robot: RobotDescription | None = None,
            ego: EgoModel | None = None, scenarios: list[Scenario] | None = None,
            max_time_s: float = MAX_EPISODE_S, first: int = 0) -> dict[str, np.ndarray]:
    """Roll out ``episodes_per_scenario`` episodes of every scenario for ``split``.

    split: "train" | "calib" | "test" | "unseen" (seeds SEED_BASE[split] + first .. + n-1).
    Returns the arrays of the module docstring, concatenated; ``episode`` ids are unique.
    """
    if split not in SEED_BASE:
        raise ValueError(f"split: must be one of {tuple(SEED_BASE)}, got {split!r}")
    robot = robot or load_robot_description(data_path("config", "robots", "diffbot.yaml"))
    ego = ego or load_ego_model(data_path("config", "ego_model.yaml"))
    scenarios = scenarios or load_scenarios(data_path("config", "scenarios"))
    limits = Limits.from_ego(ego)
    seeds = [SEED_BASE[split] + first + i for i in range(episodes_per_scenario)]
    jobs = [(sc, s) for s in seeds for sc in scenarios]
    parts: list[dict[str, np.ndarray]] = []
    with SimWorld(robot) as world:
        for i, (sc, seed) in enumerate(tqdm(jobs, desc=f"world data ({split})", unit="ep", leave=False)):
            ep = _episode(world, ego, limits, sc, seed, split, max_time_s)
            ep["episode"] = np.full(len(ep["tick"]), i, dtype=np.int64)
            parts.append(ep)
    data = {k: np.concatenate([p[k] for p in parts]) for k in KEYS}
    log.info("%s: %d episodes, %d frames (seeds %d..%d)", split, len(jobs), len(data["tick"]), seeds[0], seeds[-1])
    return data


def windows(data: dict[str, np.ndarray], horizon: int) -> np.ndarray:
    """Start indices t such that t..t+horizon lie in one episode, shape (M,) int64."""
    ep = data["episode"]
    n = len(ep)
    if n <= horizon:
        return np.zeros(0, dtype=np.int64)
    ok = ep[:n - horizon] == ep[horizon:]
    return np.nonzero(ok)[0].astype(np.int64)


def describe(splits: dict[str, Any], max_time_s: float) -> dict[str, Any]:
    """Manifest-ready description of the data: splits -> episodes per scenario and seeds."""
    return {"control_hz": round(1.0 / CONTROL_DT_S), "max_episode_s": max_time_s,
            "appearance": f"Appearance.sample(rng(seed), 'nominal') per episode; seed % {DEFAULT_LOOK_EVERY} == "
                          f"{DEFAULT_LOOK_EVERY - 1}: the sim's default look",
            "actions": "expert + AR(1) noise (0.12 m/s, 0.5 rad/s, gain U[0.5,1.5]/episode) + random commands "
                       "(p=0.04/tick, held 0.5-1.5 s); executed (v, w) / hard limits",
            "probe_bearing": "to the closest surface point of the nearest obstacle or wall",
            "splits": {k: {"episodes_per_scenario": n, "seeds": f"{SEED_BASE[k]}..{SEED_BASE[k] + n - 1}"}
                       for k, n in splits.items()}}


__all__ = ["KEYS", "MAX_EPISODE_S", "SEED_BASE", "collect", "describe", "nearest_surface", "windows"]
