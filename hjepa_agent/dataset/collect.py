"""``hjepa-agent dataset collect``: the simulator's expert roll-outs written as a dataset (format.py).

Each episode is :func:`hjepa_agent.train.world_data._episode` (the world model's roll-outs: the
scripted expert with exploration noise, headless PyBullet, 10 Hz) turned into the dataset's columns by
:func:`episode_record`, plus the privileged ``sim.*`` columns (format.PRIVILEGED).

Jobs and seeds, exactly as :func:`world_data.collect` enumerates them: episode seeds
``SEED_BASE[split] + i`` for ``i < episodes_per_scenario`` (train 0.., calib 50_000.., test 60_000..,
unseen 70_000..), jobs ``[(scenario, seed) for seed in seeds for scenario in scenarios]`` (scenarios
sorted by name); then, with ``layouts > 0``, the first ``layouts`` procedural layouts of the layouts'
train split (sim/layouts.py) on seeds ``SEED_BASE[split] + j`` for ``j < layout_episodes``, enumerated
the same way. The episode seed is the scenario's jitter seed and draws the look
(world_data.appearance_for). Episode index = job index, so the same arguments give the same dataset
content whatever the number of workers or the order they finish in.

Workers: ``workers=0`` rolls out in this process; ``workers >= 1`` starts that many Ray actors (a local
Ray with ``num_cpus=workers``, or the cluster at ``address``), each with its own SimWorld (PyBullet is
one per process), fed the next job by a ``ray.util.ActorPool`` as soon as it is free. Every actor writes
its episodes' Parquet files straight into ``out``; the driver then writes meta/ (format.finalize). On
a multi-machine cluster ``out`` must therefore be on a filesystem every node sees at the same path, and
the package must be installed on every node. (Ray 2.60's ``ray start`` turns on token authentication, and
a driver joining with ``address`` was refused here unless the head ran with ``RAY_AUTH_MODE=disabled``
or the drivers are given the cluster's token: see Ray's token-auth documentation.)
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.core.types import SCAN_RANGE_MAX_M
from hjepa_agent.dataset import format as fmt
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import RobotDescription, load_robot_description
from hjepa_agent.sim.scenario import Scenario, load_scenarios
from hjepa_agent.train import world_data
from hjepa_agent.train.collect import CONTROL_DT_S, Limits

SIM_FEATURES: dict[str, fmt.Feature] = {**fmt.FEATURES, **fmt.PRIVILEGED}
"""The columns of a simulator-collected dataset."""
MODE = "EXPERT"
"""The ``mode`` of every frame: the scripted expert drives."""


def episode_record(ep: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One :func:`world_data._episode` result as the dataset's columns (units of format.FEATURES)."""
    n = len(ep["tick"])
    command = np.asarray(ep["command"], np.float32)   # executed (v m/s, w rad/s): clipped and rate-limited
    pose = np.asarray(ep["pose"], np.float32)         # the sim's odometry reports the true pose
    return {"timestamp": np.asarray(ep["tick"], np.float64) * CONTROL_DT_S,
            "observation.image": np.asarray(ep["image"], np.uint8),
            "observation.scan": np.asarray(ep["scan"], np.float32) * np.float32(SCAN_RANGE_MAX_M),
            "observation.pose": pose,
            "observation.twist": np.asarray(ep["twist"], np.float32),
            "observation.goal": np.asarray(ep["goal"], np.float32),
            "observation.has_goal": np.ones(n, bool),
            "action": command,             # held for the whole tick: its average over [t, t + dt) is itself
            "action.command": command,
            "mode": np.full(n, MODE, dtype=object),
            "sim.pose": pose,
            "sim.obst_dist": np.asarray(ep["obst_dist"], np.float32),
            "sim.obst_bearing": np.asarray(ep["obst_bearing"], np.float32)}


class EpisodeWriter:
    """Rolls out jobs in its own SimWorld and writes each as episode ``index`` of the dataset at ``out``.
    Used as is for ``workers=0`` and as a Ray actor (one per worker process) otherwise."""

    def __init__(self, out: str, robot: RobotDescription, ego: EgoModel, split: str, max_time_s: float) -> None:
        from hjepa_agent.sim.world import SimWorld
        self.out, self.ego, self.split, self.max_time_s = Path(out), ego, split, float(max_time_s)
        self.limits = Limits.from_ego(ego)
        self.world = SimWorld(robot)

    def run(self, index: int, scenario: Scenario, seed: int) -> dict[str, Any]:
        """Roll out (scenario, seed), write it; returns format.write_episode's meta with scenario and seed."""
        ep = world_data._episode(self.world, self.ego, self.limits, scenario, seed, self.split, self.max_time_s)
        meta = fmt.write_episode(self.out, index, episode_record(ep), SIM_FEATURES)
        return {**meta, "source": {"scenario": scenario.name, "seed": int(seed), "split": self.split}}

    def close(self) -> None:
        self.world.close()


def jobs_for(split: str, episodes_per_scenario: int, scenarios: list[Scenario], layouts: list[Scenario],
             layout_episodes: int, first: int = 0) -> list[tuple[Scenario, int]]:
    """(scenario, seed) per episode index (module docstring); ``first`` offsets every seed."""
    seeds = [world_data.SEED_BASE[split] + first + i for i in range(episodes_per_scenario)]
    jobs = [(sc, s) for s in seeds for sc in scenarios]
    lseeds = [world_data.SEED_BASE[split] + first + j for j in range(layout_episodes)]
    return jobs + [(sc, s) for s in lseeds for sc in layouts]


def _start_ray(workers: int, address: str | None) -> tuple[Any, bool, float]:
    """Ray, whether this call started it, and the seconds ray.init took."""
    import ray
    if ray.is_initialized():
        return ray, False, 0.0
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                          "configure_logging": True}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(address="local", num_cpus=workers, **kw)   # a new one, even if `ray start` ran here
    return ray, True, time.perf_counter() - t0


def _rollout_here(jobs: list[tuple[Scenario, int]], args: tuple, bar: Any) -> list[dict[str, Any]]:
    """``workers=0``: every job in this process, in order."""
    writer = EpisodeWriter(*args)
    try:
        metas = []
        for i, (sc, s) in enumerate(jobs):
            metas.append(writer.run(i, sc, s))
            bar.update(1)
        return metas
    finally:
        writer.close()


def _rollout_ray(ray: Any, workers: int, jobs: list[tuple[Scenario, int]], args: tuple,
                 bar: Any) -> list[dict[str, Any]]:
    """One EpisodeWriter actor per worker; an ActorPool hands each free actor the next job."""
    from ray.util import ActorPool
    actor_cls = ray.remote(num_cpus=1)(EpisodeWriter)
    actors = [actor_cls.remote(*args) for _ in range(min(workers, len(jobs)))]
    try:
        metas = []
        for meta in ActorPool(actors).map_unordered(lambda a, job: a.run.remote(*job),
                                                    [(i, sc, s) for i, (sc, s) in enumerate(jobs)]):
            metas.append(meta)
            bar.update(1)
        ray.get([a.close.remote() for a in actors])
        return metas
    finally:
        for a in actors:
            ray.kill(a)


def collect_dataset(out: str | Path, *, split: str = "train", episodes_per_scenario: int,
                    scenarios_dir: str | Path | None = None, layouts: int = 0, layout_episodes: int = 1,
                    workers: int = 1, address: str | None = None, robot: str | Path | None = None,
                    ego_model: str | Path | None = None, max_time_s: float = world_data.MAX_EPISODE_S,
                    held_out: float = 0.3, seed: int = 0, progress: bool = True,
                    scenarios: list[Scenario] | None = None, layout_split: str = "train", first_layout: int = 0,
                    first: int = 0) -> dict[str, Any]:
    """Roll out the jobs (module docstring) on ``workers`` workers into a new dataset at ``out``.

    robot, ego_model: YAML paths (default: the sample diffbot and config/ego_model.yaml);
    scenarios_dir: a scenario file or a folder of them (default config/scenarios); held_out, seed: the
    share of episodes held out (half val, half test) and its draw (format.split_episodes; the episode
    seeds come from ``split``). For the trainers' own roll-outs: ``robot`` and ``ego_model`` may also be
    loaded objects; ``scenarios`` replaces scenarios_dir (an empty list: layouts only); the layouts come
    from ``layout_split`` from index ``first_layout`` of each family; ``first`` offsets every episode
    seed (world_data.collect's ``first``). Returns episodes, frames, wall_s (the whole
    call: Ray's start and meta/ included), episodes_per_s, workers, ray_init_s, rollout_s (actors' start
    and the roll-outs) and finalize_s (format.finalize; info.json's collection.wall_s stops before it).
    """
    if split not in world_data.SEED_BASE:
        raise ValueError(f"split: must be one of {tuple(world_data.SEED_BASE)}, got {split!r}")
    if workers < 0 or episodes_per_scenario < 0 or layouts < 0 or layout_episodes < 0:
        raise ValueError("workers, episodes, layouts and layout_episodes must be >= 0")
    t_start = time.perf_counter()
    loaded = isinstance(robot, RobotDescription)
    robot_path = robot.name if loaded else Path(robot) if robot else data_path("config", "robots", "diffbot.yaml")
    robot_desc = robot if loaded else load_robot_description(robot_path)
    ego_loaded = isinstance(ego_model, EgoModel)
    ego_path = ego_model.robot if ego_loaded else Path(ego_model) if ego_model else data_path("config", "ego_model.yaml")
    ego = ego_model if ego_loaded else load_ego_model(ego_path)
    scen_path = Path(scenarios_dir) if scenarios_dir else data_path("config", "scenarios")
    if scenarios is None:
        scenarios = load_scenarios(scen_path)
    lay: list[Scenario] = []
    if layouts:
        from hjepa_agent.sim.layouts import layout_scenarios
        lay = layout_scenarios(layout_split, layouts, ego, first_layout)
    jobs = jobs_for(split, episodes_per_scenario, scenarios, lay, layout_episodes, first)
    if not jobs:
        raise ValueError("no episodes to collect: give --episodes >= 1 (or --layouts with --layout-episodes)")
    out = fmt.prepare_out(Path(out))
    ray, started, ray_init_s = None, False, 0.0
    bar = None
    try:
        if workers:
            ray, started, ray_init_s = _start_ray(workers, address)
        t_roll = time.perf_counter()
        bar = tqdm(total=len(jobs), desc=f"dataset collect ({split})", unit="ep", disable=not progress)
        args = (str(out.resolve()), robot_desc, ego, split, max_time_s)
        metas = _rollout_ray(ray, workers, jobs, args, bar) if workers else _rollout_here(jobs, args, bar)
        rollout_s = time.perf_counter() - t_roll
        bar.close()
        frames = sum(m["length"] for m in metas)
        ep_seeds = [s for _, s in jobs]
        sources = []
        if episodes_per_scenario:
            sources.append(f"sim: {len(scenarios)} scenarios ({', '.join(sc.name for sc in scenarios)}) from "
                           f"{scen_path}, {episodes_per_scenario} episodes each, seeds {world_data.SEED_BASE[split] + first}.."
                           f"{world_data.SEED_BASE[split] + first + episodes_per_scenario - 1} ({split})")
        if lay and layout_episodes:
            sources.append(f"sim: {len(lay)} procedural {layout_split}-split layouts (sim/layouts.py) from index "
                           f"{first_layout}, {layout_episodes} "
                           f"episodes each, seeds {world_data.SEED_BASE[split] + first}.."
                           f"{world_data.SEED_BASE[split] + first + layout_episodes - 1} ({split})")
        wall_s = time.perf_counter() - t_start
        collection = {"workers": workers, "address": address, "split": split, "seeds": [min(ep_seeds), max(ep_seeds)],
                      "episodes_per_scenario": episodes_per_scenario, "layouts": layouts,
                      "layout_episodes": layout_episodes, "max_episode_s": max_time_s, "robot": str(robot_path),
                      "ego_model": str(ego_path), "first_seed_offset": first, "wall_s": round(wall_s, 3), "ray_init_s": round(ray_init_s, 3),
                      "rollout_s": round(rollout_s, 3), "episodes_per_s": round(len(jobs) / wall_s, 4)}
        t_fin = time.perf_counter()
        fmt.finalize(out, metas, SIM_FEATURES, source="sim", sources=sources, held_out=held_out, seed=seed,
                     extra={"collection": collection, "robot": robot_desc.name})
        finalize_s = time.perf_counter() - t_fin
    except BaseException:
        if bar is not None:
            bar.close()
        fmt.discard(out)
        raise
    finally:
        t_down = time.perf_counter()
        if started:
            ray.shutdown()
        ray_shutdown_s = time.perf_counter() - t_down
    wall_s = time.perf_counter() - t_start
    return {"out": str(out), "episodes": len(jobs), "frames": frames, "wall_s": round(wall_s, 3),
            "episodes_per_s": round(len(jobs) / wall_s, 4), "workers": workers,
            "ray_init_s": round(ray_init_s, 3), "rollout_s": round(rollout_s, 3), "finalize_s": round(finalize_s, 3),
            "ray_shutdown_s": round(ray_shutdown_s, 3)}


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``hjepa-agent dataset collect``."""
    parser.add_argument("--out", required=True, help="new dataset folder (refused if it exists and is not empty)")
    parser.add_argument("--split", choices=tuple(world_data.SEED_BASE), default="train",
                        help="episode seeds: train 0.., calib 50000.., test 60000.., unseen 70000.. (unseen looks)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per scenario (default 5)")
    parser.add_argument("--scenario", default=None,
                        help="a scenario YAML or a folder of them (default the package's config/scenarios)")
    parser.add_argument("--layouts", type=int, default=0, help="also this many procedural train-split layouts")
    parser.add_argument("--layout-episodes", type=int, default=1, help="episodes per procedural layout (default 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Ray worker processes, one SimWorld each (0: in this process, no Ray; default 1)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster (e.g. auto or host:6379) instead of starting a local one; "
                             "--out must then be on a filesystem every node sees")
    parser.add_argument("--robot", default=None, help="robot description YAML (default the sample diffbot)")
    parser.add_argument("--ego-model", default=None, help="ego model YAML (default config/ego_model.yaml)")
    parser.add_argument("--max-episode-s", type=float, default=world_data.MAX_EPISODE_S,
                        help=f"episode length cap, s (default {world_data.MAX_EPISODE_S:g})")
    parser.add_argument("--held-out", type=float, default=0.3,
                        help="fraction of the episodes held out: half val (calibration), half test (evaluation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out draw (not of the episodes)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def collect_main(args: argparse.Namespace) -> int:
    """Run :func:`collect_dataset` from parsed :func:`add_arguments` options; prints its result as JSON."""
    result = collect_dataset(args.out, split=args.split, episodes_per_scenario=args.episodes,
                             scenarios_dir=args.scenario, layouts=args.layouts, layout_episodes=args.layout_episodes,
                             workers=args.workers, address=args.address, robot=args.robot, ego_model=args.ego_model,
                             max_time_s=args.max_episode_s, held_out=args.held_out, seed=args.seed,
                             progress=not args.quiet)
    print(json.dumps(result))
    return 0


__all__ = ["MODE", "SIM_FEATURES", "EpisodeWriter", "add_arguments", "collect_dataset", "collect_main",
           "episode_record", "jobs_for"]
