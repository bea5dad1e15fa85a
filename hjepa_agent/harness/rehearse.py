"""`hjepa-agent rehearse`: the agent as it runs on a robot, against the simulator acting as its drivers.

One process per node of the node table, started with the command line robot.launch.py would give it
(node_table.node_command: its console script, name, namespace, params files, ego model, remaps), on
the system clock with no lockstep, talking real DDS; the simulator runs in this process as the robot's
drivers (nodes/driver.py), in real time, shaped by a driver profile (config/profiles/*.yaml: command
type, camera size/encoding/transport/rate, scan rate, topic names, which sensors exist).

Each episode starts the agent's processes afresh (as a robot brought up for one goal) once the world
is reset, waits until every node is on the ROS graph and the watchdog has left SAFE_STOP (the drivers
publishing, the robot standing still), then runs the scenario in real time and judges
it as `hjepa-agent sim` does: reaching the goal, collisions, timeouts, safe stops, and the commands on
the wire against the ego model's hard limits (on the bridge's own clock: :func:`sent_commands`). The camera -> command latency is measured on the wire:
from each frame's stamp (system clock) to the arrival of the bridge's record of the command that
answered it (agent/bridge/output, published with cmd_vel).

Falling behind real time (physics and rendering take longer than a tick) is measured, not hidden:
the summary reports the achieved real-time factor.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.types import Mode
from hjepa_agent.nodes.node_table import NODES, load_params_files, node_command
from hjepa_agent.config.paths import data_path
from hjepa_agent.harness.judge import agent_commands, count_limit_violations, episode_end, held_stop, settle
from hjepa_agent.harness.report import EpisodeResult, summarise
from hjepa_agent.sim.profile import DriverProfile, load_profile
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import load_scenarios

log = logging.getLogger("hjepa_agent.harness.rehearse")

START_TIMEOUT_S = 90.0
"""An agent whose nodes are not all on the graph this long after their processes started failed to start."""
READY_TIMEOUT_S = 30.0
"""An agent on the graph whose watchdog has not left SAFE_STOP this long after (inputs never became fresh,
a model still loading) was not ready: the episode ends ``agent_not_ready``."""
AGENT_NICENESS = 5
"""The agent's processes run this much nicer than the simulator: the simulated world must keep real time
(a real one does not wait for a busy computer); on 2 cores, starved by six node processes starting up, it
fell behind, and the watchdog rightly saw commands the robot did not follow (a wheel slip)."""
STOP_TIMEOUT_S = 10.0
"""A node process still running this long after SIGINT is killed."""


@dataclass(frozen=True)
class RehearsalConfig:
    """What `hjepa-agent rehearse` was asked to do."""

    profile: Path
    scenarios: tuple[Path, ...]
    episodes: int
    seed: int
    out: Path


def executable(name: str) -> str:
    """The console script ``name`` of this environment (next to this Python), else on PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"console script {name!r} not found next to {sys.executable} or on PATH: "
                                f"install the package (pip install -e .)")
    return found


def robot_params(profile: DriverProfile, path: Path) -> Path:
    """Write the params file that tells the agent which robot it runs on (what a user's own params file
    for the robot says): for every node its ``ego_model`` and ``robot`` (the description whose fingerprint
    the models must match), and ``urdf`` (where the scanner is mounted) for the nodes that place scan
    beams. Per node ('/**/<node>'), since rcl lets a node's own section win over '/**' and -p."""
    import yaml

    from hjepa_agent.nodes.mounts import MOUNT_NODES
    from hjepa_agent.sim.robot import load_robot_description
    urdf = load_robot_description(profile.robot).urdf
    ego = profile.ego_model or str(data_path("config", "ego_model.yaml"))
    doc = {}
    for spec in NODES:
        values = {"ego_model": str(Path(ego).resolve()), "robot": str(Path(profile.robot).resolve())}
        if spec.name in MOUNT_NODES:
            values["urdf"] = str(urdf)
        doc[f"/**/{spec.name}"] = {"ros__parameters": values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by hjepa-agent rehearse: the robot these nodes run on\n" + yaml.safe_dump(doc))
    return path


def agent_commands_for(profile: DriverProfile, robot_file: Path) -> list[tuple[str, list[str]]]:
    """(node name, command line) of each agent process for ``profile``, as robot.launch.py would start
    them with this profile's namespace, params files (then ``robot_file``: robot_params), ego model and
    the drivers' topic names as remaps."""
    params = (list(profile.params) or [str(data_path("config", "agent.yaml"))]) + [str(robot_file)]
    ego = profile.ego_model or str(data_path("config", "ego_model.yaml"))
    return [(spec.name, node_command(spec, executable(spec.executable), namespace=profile.namespace,
                                     params_files=params, ego_model=ego, remaps=dict(profile.topics)))
            for spec in NODES]


class AgentProcesses:
    """The agent's node processes of one episode, their logs in ``log_dir``."""

    def __init__(self, commands: list[tuple[str, list[str]]], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_LOGGING_BUFFERED_STREAM="0")
        for name, cmd in commands:
            path = log_dir / f"{name}.log"
            self.logs[name] = path
            with path.open("w") as f:
                f.write(" ".join(cmd) + "\n")
                f.flush()
                self.procs[name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                                    start_new_session=True,
                                                    preexec_fn=lambda: os.nice(AGENT_NICENESS))

    def exited(self) -> dict[str, int]:
        """Nodes whose process has exited: name -> exit code."""
        return {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}

    def tail(self, name: str, lines: int = 5) -> str:
        """The last lines of a node's log."""
        try:
            return "\n".join(self.logs[name].read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> dict[str, int]:
        """SIGINT every process (as launch does on Ctrl-C), kill what is still running after
        STOP_TIMEOUT_S; returns the exit codes."""
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        return {n: p.returncode for n, p in self.procs.items()}


def _graph_names(node) -> set[str]:
    """Fully qualified names of the nodes on the graph."""
    return {(ns.rstrip("/") + "/" + n) for n, ns in node.get_node_names_and_namespaces()}


def run(cfg: RehearsalConfig, progress: bool = True) -> dict[str, Any]:
    """Rehearse the profile's robot over the scenarios; write summary.json and episodes.jsonl to cfg.out."""
    from hjepa_agent.harness.runner import isolate_dds
    isolate_dds()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from tqdm import tqdm

    from hjepa_agent.nodes.driver import TICK_S, DriverNode
    from hjepa_agent.nodes.recorder import MetricsNode
    from hjepa_agent.nodes.node_table import normalise_namespace
    from hjepa_agent.sim.world import SimWorld

    profile = load_profile(cfg.profile)
    scenario_list = [s for p in cfg.scenarios for s in load_scenarios(p)]
    if not scenario_list:
        raise FileNotFoundError(f"no scenarios found in {', '.join(map(str, cfg.scenarios))}")
    ego_path = profile.ego_model or str(data_path("config", "ego_model.yaml"))
    ego = load_ego_model(ego_path)
    cfg.out.mkdir(parents=True, exist_ok=True)
    robot_file = robot_params(profile, cfg.out / "robot_params.yaml")
    load_params_files((list(profile.params) or [str(data_path("config", "agent.yaml"))]) + [str(robot_file)],
                      profile.namespace)
    commands = agent_commands_for(profile, robot_file)
    robot = load_robot_description(profile.robot)
    ns = normalise_namespace(profile.namespace)
    cfg.out.mkdir(parents=True, exist_ok=True)

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    world = SimWorld(robot)
    executor = SingleThreadedExecutor(context=ctx)
    remap = [a for t, name in profile.topics.items() for a in ("-r", f"{t}:={name}")]
    driver = DriverNode(world, profile, context=ctx, namespace=ns or None,
                        cli_args=["--ros-args", *remap] if remap else None)
    metrics = MetricsNode(context=ctx, namespace=ns or None,
                          parameter_overrides=[Parameter("use_sim_time", value=False)])
    for n in (driver, metrics):
        executor.add_node(n)
    want = {f"{ns}/{name}" for name, _ in commands}
    results: list[EpisodeResult] = []
    latency_ms: list[float] = []
    realtime: list[float] = []
    cmd_gaps: list[float] = []
    lags: list[float] = []
    episodes_file = (cfg.out / "episodes.jsonl").open("w")
    bar = tqdm(range(cfg.episodes), desc=f"rehearse {profile.name}", disable=not progress, unit="ep")
    try:
        for i in bar:
            scenario = scenario_list[i % len(scenario_list)]
            res = EpisodeResult(episode=i, scenario=scenario.name, seed=cfg.seed + i)
            driver.start_episode(scenario, cfg.seed + i)
            metrics.reset()
            procs = AgentProcesses(commands, cfg.out / "logs" / f"episode_{i:03d}")
            try:
                pace = Pace(driver, executor, TICK_S)
                started = _wait_for_agent(pace, procs, want)
                if started is None:
                    started = _wait_until_ready(pace, metrics, procs)
                    if started is not None:
                        res.outcome = "agent_not_ready"
                elif started is not None:
                    res.outcome = "agent_failed_to_start"
                if started is not None:
                    res.events = [{"kind": "start", "reasons": [started], "causes": []}] + metrics.events[-20:]
                else:
                    factor = _episode(res, scenario, pace, metrics, procs)
                    realtime.append(factor)
                lags.append(pace.lag_max_s)
            finally:
                codes = procs.stop()
            failed = {n: c for n, c in codes.items() if c not in (0, -signal.SIGINT, 130)}
            if failed and res.outcome not in ("agent_failed_to_start", "agent_not_ready"):
                res.node_failures = [{"node": n, "where": "process", "error": f"exit code {c}",
                                      "traceback": procs.tail(n)} for n, c in failed.items()]
            lg = driver.log
            _, _, _, res.foreign_commands = agent_commands(lg.sim_t, lg.v, lg.w, lg.stamp_ns, lg.frame, lg.declared,
                                                           unstamped_ours=True)   # no foreign publisher here
            t, v, w = sent_commands(lg.declared)
            res.limit_violations_by_kind = count_limit_violations(t, v, w, ego)
            if pace.episode_t0 is not None:   # between commands on the wire, once the agent was ready
                t_in = [t for t in lg.sim_t if t >= pace.episode_t0]
                cmd_gaps.append(float(np.diff(t_in).max()) if len(t_in) > 1 else math.inf)
            res.limit_violations = sum(res.limit_violations_by_kind.values())
            episodes_file.write(json.dumps({k: val for k, val in res.__dict__.items() if k != "path"}) + "\n")
            episodes_file.flush()
            res.path = np.asarray(res.path, dtype=np.float32).reshape(-1, 2)
            results.append(res)
            bar.set_postfix(ok=sum(r.success for r in results), last=res.outcome)
        latency_ms = list(driver.log.latency_ms)
    finally:
        episodes_file.close()
        executor.shutdown()
        for n in (driver, metrics):
            n.destroy_node()
        world.close()
        rclpy.shutdown(context=ctx)
    summary = summarise(results, latency_ms, enforced=True)
    summary["profile"] = profile.name
    summary["ego_model"] = str(ego_path)
    summary["scenarios"] = sorted({s.name for s in scenario_list})
    summary["realtime_factor_p50"] = float(np.percentile(realtime, 50)) if realtime else None
    summary["realtime_factor_min"] = float(min(realtime)) if realtime else None
    summary["cmd_vel_gap_max_s"] = max(cmd_gaps) if cmd_gaps else None
    summary["world_lag_max_s"] = max(lags) if lags else None
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def sent_commands(declared: dict[int, set[tuple[float, float]]]) -> tuple[list[float], list[float], list[float]]:
    """The bridge's commands in the order and at the times it sent them: (t s, v, w) from its records on
    agent/bridge/output (cmd_vel stamp ns -> the values sent with it). On the wall clock the arrival times
    at the base jitter by the scheduling of seven processes on the machine, which the lockstep run does not
    have; the limits are judged on the sender's clock, and the largest gap between arrivals is reported
    apart (summary cmd_vel_gap_max_s)."""
    rows = sorted((ns, v, w) for ns, vals in declared.items() for v, w in vals)
    return [ns * 1e-9 for ns, _, _ in rows], [v for _, v, _ in rows], [w for _, _, w in rows]


class Pace:
    """Steps the drivers' world in real time: one tick of physics, then callbacks until the tick's wall
    time. ``lag_max_s``: how far behind the wall clock the world fell (before a step); a world more than
    MAX_LAG_S behind gives up catching up (it then runs slower than real time, which the real-time factor
    shows)."""

    MAX_LAG_S = 0.25

    def __init__(self, driver, executor, tick_s: float) -> None:
        self.driver, self.executor, self.tick_s = driver, executor, tick_s
        self.next_t = time.monotonic()
        self.lag_max_s = 0.0
        self.episode_t0: float | None = None
        """The simulator's time (s, CmdLog's clock) when the episode proper started (the agent ready)."""

    def step(self) -> None:
        """One tick of the world, paced to the wall clock."""
        self.driver.advance()
        self.next_t += self.tick_s
        lag = time.monotonic() - self.next_t
        self.lag_max_s = max(self.lag_max_s, lag)
        if lag > self.MAX_LAG_S:
            self.next_t = time.monotonic()
        _spin_until(self.executor, self.next_t)


def _spin_until(executor, deadline: float) -> None:
    """Handle callbacks until the monotonic ``deadline``."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0.0:
            return
        executor.spin_once(timeout_sec=left)


def _wait_for_agent(pace: Pace, procs: AgentProcesses, want: set[str]) -> str | None:
    """Run the drivers (the world standing still: nothing commands it yet) until every agent node is on
    the graph; None when they are, else why not (a process exited, or START_TIMEOUT_S passed)."""
    t0 = time.monotonic()
    driver = pace.driver
    while True:
        pace.step()
        if want <= _graph_names(driver):
            return None
        gone = procs.exited()
        if gone:
            name, code = next(iter(gone.items()))
            return f"{name} exited with code {code}: {procs.tail(name, 3)}"
        if time.monotonic() - t0 > START_TIMEOUT_S:
            missing = sorted(want - _graph_names(driver))
            return f"not on the graph after {START_TIMEOUT_S:.0f} s: {', '.join(missing)}"


def _wait_until_ready(pace: Pace, metrics, procs: AgentProcesses) -> str | None:
    """Run the drivers, the robot standing still, until the watchdog leaves SAFE_STOP (every input fresh,
    every model loaded) and a command of the bridge reached the drivers (cmd_vel matched across the
    processes: the bridge sends zeros while stopped): None then, else why not (READY_TIMEOUT_S passed, or a
    process exited). Without the second, a start whose cmd_vel was not matched yet stood still under
    commands and the watchdog rightly stopped it for wheel slip (issue 16's rehearsal flake)."""
    t0 = time.monotonic()
    log = pace.driver.log
    while metrics.mode == Mode.SAFE_STOP or not log.v:
        pace.step()
        gone = procs.exited()
        if gone:
            name, code = next(iter(gone.items()))
            return f"{name} exited with code {code}: {procs.tail(name, 3)}"
        if time.monotonic() - t0 > READY_TIMEOUT_S:
            return (f"the watchdog stayed in SAFE_STOP {READY_TIMEOUT_S:.0f} s after every node was up"
                    if metrics.mode == Mode.SAFE_STOP else
                    f"no command of the bridge reached the drivers {READY_TIMEOUT_S:.0f} s after every node was up")
    return None


def _episode(res: EpisodeResult, scenario, pace: Pace, metrics, procs: AgentProcesses) -> float:
    """One episode in real time, judged into ``res``; returns the achieved real-time factor (sim s per wall s)."""
    driver = pace.driver
    t_start, wall_start = driver.world.time_s, time.monotonic()
    pace.episode_t0 = driver.sim_time_s
    stopped_since = None
    prev_mode = Mode.SAFE_STOP
    while True:
        pace.step()
        mode = metrics.mode
        res.mode_ticks[mode.name] += 1
        if mode == Mode.SAFE_STOP and prev_mode != Mode.SAFE_STOP:
            res.safe_stops += 1
        prev_mode = mode
        elapsed = driver.world.time_s - t_start
        world = driver.world
        if driver.tick % 10 == 0:
            x, y, _ = world.pose()
            res.path.append((round(x, 3), round(y, 3)))
            res.min_clearance_m = min(res.min_clearance_m, world.min_obstacle_clearance())
        stopped_since, given_up = held_stop(stopped_since, elapsed, mode, driver)
        end = episode_end(world.in_collision(), world.goal_reached(driver.goal_xy, scenario.goal_tolerance_m),
                          elapsed, scenario.time_limit_s, "node_failed" if procs.exited() else None, given_up)
        if end is not None:
            settle(res, end, elapsed)
            break
    res.time_s = driver.world.time_s - t_start
    res.events = metrics.events[-50:]
    wall = time.monotonic() - wall_start
    return res.time_s / wall if wall > 0 else math.nan


__all__ = ["AgentProcesses", "RehearsalConfig", "agent_commands_for", "robot_params", "run", "sent_commands"]
