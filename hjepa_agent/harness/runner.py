"""The embedded default: the simulator and every agent node in one process, over real DDS.

`hjepa-agent sim` calls :func:`run`. Nodes come from the same node table as the launch
files (hjepa_agent.nodes.node_table.NODES), with parameters from config/agent.yaml. Each
episode gets freshly constructed agent nodes (no state carries over); the sim node
lives for the whole run and its clock never goes back. The loop is lockstep
(:mod:`hjepa_agent.harness.lockstep`): the simulator waits for everything each tick set off to be
handled, so the run is faster than real time yet the agent never misses a frame because the
computer was busy. Each episode is judged here (outcome, faults, limit violations on the wire).
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.core.events import Cause
from hjepa_agent.core.types import Mode
from hjepa_agent.harness.bench_latency import AFTER, HOPS, PLAN, hop_samples, latency_summary
from hjepa_agent.harness.lockstep import Lockstep, Tiered, garbage_between_ticks, reflex_node_names
from hjepa_agent.nodes.node_table import NODES, load_params, load_params_files
from hjepa_agent.harness.judge import (FaultJudge, agent_commands, breach, count_limit_violations, episode_end,
                                       held_stop, settle)
from hjepa_agent.harness.report import EpisodeResult, plot_trajectories, summarise
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.layouts import FAMILIES, layout_ids, make_layout
from hjepa_agent.sim.scenario import Scenario, load_scenarios

log = logging.getLogger("hjepa_agent.harness.runner")

MAX_MISSES = 10
"""An episode with more lockstep misses than this (each a lockstep.LOCKSTEP_WAIT_S wait) is abandoned: lockstep_lost."""
FAULT_EVENTS_KEPT = 30
"""The first events after a fault's onset kept in episodes.jsonl (``fault_events``), besides the last 50."""


@dataclass(frozen=True)
class RunConfig:
    """What `hjepa-agent sim` was asked to do."""

    scenarios: tuple[Path, ...]
    episodes: int
    seed: int
    out: Path
    gui: bool = False
    params_file: Path | tuple[Path, ...] | None = None
    """One params file, or several applied in order as several --params-file arguments are (a robot's own
    overlay after config/agent.yaml); None: config/agent.yaml."""
    ego_model: Path | None = None
    robot: Path | None = None
    record: bool = True
    faults: tuple = ()
    """sim/faults.Fault: applied to every episode; with ``fault_per_episode`` one per episode, in turn."""
    fault_per_episode: bool = False
    watchdog_off: bool = False
    """The watchdog decides but does not enforce (watchdog parameter enabled: false)."""
    split: str | None = None
    """Procedural layouts (sim/layouts.py) of this split instead of ``scenarios``: episode i is layout
    ``layout_ids(split, episodes, first=seed)[i]``, the families in turn."""
    families: tuple[str, ...] = ()
    """With ``split``: only these families (default all)."""


def isolate_dds(domain_id: int | None = None) -> int:
    """Give this process a private DDS domain, localhost-only discovery and a temp log dir."""
    if domain_id is None:
        domain_id = int(os.environ.get("ROS_DOMAIN_ID", "0")) or (100 + os.getpid() % 100)
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="hjepa_roslog_"))
    os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    return domain_id


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run the episodes; write summary.json, episodes.jsonl, trajectories.png and run.mcap to cfg.out."""
    isolate_dds()
    import rclpy
    from rclpy.parameter import Parameter
    from tqdm import tqdm

    from hjepa_agent.nodes.recorder import MetricsNode, Recorder
    from hjepa_agent.nodes.sim import SimNode
    from hjepa_agent.nodes.topics import Transport
    from hjepa_agent.nodes.traffic import time_publications
    from hjepa_agent.sim.faults import FaultInjector
    from hjepa_agent.sim.world import SimWorld

    ego_path = cfg.ego_model or data_path("config", "ego_model.yaml")
    ego = load_ego_model(ego_path)
    ids = layout_ids(cfg.split, cfg.episodes, cfg.seed, cfg.families or FAMILIES) if cfg.split else []
    scenario_list = ([make_layout(lid, ego) for lid in ids] if ids
                     else [s for p in cfg.scenarios for s in load_scenarios(p)])
    if not scenario_list:
        raise FileNotFoundError(f"no scenarios found in {', '.join(map(str, cfg.scenarios))}")
    files = cfg.params_file if isinstance(cfg.params_file, tuple) else (cfg.params_file,) if cfg.params_file else ()
    params = load_params_files(list(files) or [data_path("config", "agent.yaml")])
    if cfg.watchdog_off:
        params.setdefault("watchdog", {})["enabled"] = False
    robot = load_robot_description(cfg.robot or data_path("config", "robots", "diffbot.yaml"))
    cfg.out.mkdir(parents=True, exist_ok=True)

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    published = time_publications(ctx, [f"/{t}" for t in HOPS + AFTER + (PLAN,)])   # the reflex path, frame by frame
    latency: dict[str, list[float]] = {}
    frames = 0
    world = SimWorld(robot, gui=cfg.gui)
    params = with_robot_urdf(params, world.urdf_path)
    params = with_robot_description(params, cfg.robot or data_path("config", "robots", "diffbot.yaml"))
    executor = Tiered(ctx, reflex_node_names())   # the reflex path never queues behind the slow nodes
    carried = transport_params(params)
    sim = SimNode(world, context=ctx, parameter_overrides=[Parameter("use_sim_time", value=False)]
                  + [Parameter(k, value=v) for k, v in carried.items()])
    sim.attach(executor)
    # The tap keeps no time of its own (the runner judges on the simulator's): on the system clock it
    # cannot be upset by what an injected clock fault puts on /clock (rclpy raises on a negative one).
    metrics = MetricsNode(context=ctx, parameter_overrides=[Parameter("use_sim_time", value=False)])
    recorder = (Recorder(cfg.out / "run.mcap", context=ctx, transport=Transport(**carried), urdf=world.urdf_path)
                if cfg.record else None)
    for n in (sim, metrics) + ((recorder.node,) if recorder else ()):
        executor.add_node(n)
    results: list[EpisodeResult] = []
    episodes_file = (cfg.out / "episodes.jsonl").open("w")
    bar = tqdm(range(cfg.episodes), desc="episodes", disable=not progress, unit="ep")
    turns: dict[tuple, int] = {}
    try:
        for i in bar:
            n_faults = len(cfg.faults) if cfg.fault_per_episode and cfg.faults else 1
            scenario = scenario_list[i if ids else episode_scenario(i, len(scenario_list), n_faults)]
            faults = list(cfg.faults)
            if cfg.fault_per_episode and faults:
                faults = [faults[i % len(faults)]]
            key = tuple(faults)
            sim.faults = FaultInjector(faults, turn=turns.get(key, 0)) if faults else None
            turns[key] = turns.get(key, 0) + 1
            with garbage_between_ticks():   # no collection lands on a frame's way to cmd_vel
                res = _run_episode(i, scenario, cfg.seed + i, sim, metrics, executor, ctx, params, ego, ego_path)
            for key, ms in hop_samples(published).items():   # kept as samples: the table is per episode
                latency.setdefault(key, []).extend(ms)
            frames += len(published[f"/{HOPS[0]}"])
            for table in published.values():
                table.clear()
            res.family = ids[i].family if ids else ""
            episodes_file.write(json.dumps({k: v for k, v in res.__dict__.items() if k != "path"}) + "\n")
            episodes_file.flush()
            # Keep what the summary and the plot read: the events are in episodes.jsonl now, and the
            # path as float32 (8 bytes a point instead of a tuple of two floats, ~110 bytes).
            res.events = []
            res.path = np.asarray(res.path, dtype=np.float32).reshape(-1, 2)
            results.append(res)
            bar.set_postfix(ok=sum(r.success for r in results), last=res.outcome)
    finally:
        episodes_file.close()
        if recorder is not None:
            recorder.close()
        executor.shutdown()
        for n in (sim, metrics) + ((recorder.node,) if recorder else ()):
            n.destroy_node()
        world.close()
        rclpy.shutdown(context=ctx)
    summary = summarise(results, sim.log.latency_ms, enforced=not cfg.watchdog_off)
    summary["reflex_path_ms"] = latency_summary(latency, frames)
    summary["ego_model"] = str(ego_path)
    summary["scenarios"] = sorted({s.name for s in scenario_list})
    (cfg.out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_trajectories(results, {s.name: s for s in scenario_list}, cfg.out / "trajectories.png")
    return summary


def resident_mb() -> float | None:
    """This process's resident memory (MB, /proc/self/status VmRSS); None where /proc has no such field."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def episode_scenario(i: int, n_scenarios: int, n_faults: int = 1) -> int:
    """The scenario of episode ``i``: in turn (``i mod n_scenarios``); with ``n_faults`` kinds given one
    per episode in turn (``suite``), shifted by ``c`` more each round of kinds, the smallest ``c`` that
    makes ``n_faults + c`` coprime with ``n_scenarios``, so that each kind meets every scenario within
    ``n_scenarios`` of its episodes (c = 0 where it already does: the seven original kinds, 4 scenarios)."""
    c = next(c for c in range(n_scenarios + 1) if math.gcd(n_faults + c, n_scenarios) == 1)
    return (i + (i // n_faults) * c) % n_scenarios


def transport_params(params: dict) -> dict[str, str]:
    """How the params file says the robot carries its camera and commands (nodes/topics.py Transport:
    ``image_transport``, ``cmd_vel_type``, the same for every node: its '/**' section), for the simulator
    and the recorder, which must publish and subscribe the types the agent's nodes use."""
    from hjepa_agent.nodes.topics import Transport
    values = {k: params.get("sim", {}).get(k) for k in ("image_transport", "cmd_vel_type")}
    if values["image_transport"] == "compressed":
        raise ValueError("image_transport: compressed: the embedded simulator publishes raw images only; "
                         "rehearse a compressed camera with `hjepa-agent rehearse` and a driver profile")
    return {k: v for k, v in values.items() if v is not None and v != getattr(Transport, k)}


def with_robot_urdf(params: dict, urdf: str) -> dict:
    """``params`` (node name -> parameters) with ``urdf`` set for each node that places scan beams
    (nodes/mounts.py MOUNT_NODES) where the params file leaves it empty: the simulator publishes its scans
    in the laser link's frame, whose mount those nodes read from the simulated robot's URDF."""
    from hjepa_agent.nodes.mounts import MOUNT_NODES
    out = {name: dict(values) for name, values in params.items()}
    for name in MOUNT_NODES:
        if not out.setdefault(name, {}).get("urdf"):
            out[name]["urdf"] = str(urdf)
    return out


def with_robot_description(params: dict, robot: str | Path) -> dict:
    """``params`` with ``robot`` (the robot description YAML the simulator runs) set for every agent node
    where the params file leaves it empty or out: the nodes that load models check the models' robot
    fingerprint against it (nodes/common.py declare_robot); a node that declares no ``robot`` ignores it."""
    out = {name: dict(values) for name, values in params.items()}
    for spec in NODES:
        if not out.setdefault(spec.name, {}).get("robot"):
            out[spec.name]["robot"] = str(robot)
    return out


def build_agent_nodes(ctx, params: dict, ego_path: Path, executor) -> list:
    """Construct the node table's nodes (sim time, fresh state) and add them to ``executor``. The managed
    ones (nodes/guard.py GuardedLifecycleNode: the bridge, the watchdog) are made with ``autostart: false``
    and brought up here, configure then activate through their own transitions (guard.bring_up), so their
    publishers and inputs, made at configure, are in the lockstep accounting before the episode starts. A
    node that refuses (a bad file, a model for another robot) raises its reason, the nodes built so far
    destroyed."""
    from hjepa_agent.nodes.guard import GuardedLifecycleNode, bring_up

    nodes = []
    try:
        for spec in NODES:
            nodes.append(_build_node(spec, ctx, params, ego_path, executor))
            if isinstance(nodes[-1], GuardedLifecycleNode):
                bring_up(nodes[-1])
    except BaseException:
        for node in nodes:
            executor.remove_node(node)
            node.destroy_node()
        raise
    return nodes


def _build_node(spec, ctx, params: dict, ego_path: Path, executor):
    """One node of the table, added to ``executor``; a managed one unconfigured (autostart: false)."""
    from rclpy.parameter import Parameter

    from hjepa_agent.nodes.guard import GuardedLifecycleNode

    cls = spec.load_class()
    overrides = dict(params.get(spec.name, {}))
    overrides["use_sim_time"] = True
    if not overrides.get("ego_model"):   # every node gets the run's ego model (a node without one ignores it)
        overrides["ego_model"] = str(ego_path)
    # rosout off: nodes are rebuilt per episode under the same names; events are on agent/events.
    # ~/get_type_description off: rclpy (9.1) never destroys a node's type-description service, so
    # each rebuilt node left its DDS reader and writer behind (~80 KB a node, ~0.5 MB an episode).
    overrides["start_type_description_service"] = False
    if issubclass(cls, GuardedLifecycleNode):
        overrides["autostart"] = False   # the runner drives its transitions (build_agent_nodes)
    node = cls(context=ctx, enable_rosout=False,
               parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    executor.add_node(node)
    return node


class EmbeddedStack:
    """Simulator + every agent node, spun as the main job spins them (lockstep.Tiered) and stepped in
    lockstep: one episode, for tests and fault benchmarks (``hjepa-agent bench feeder-loss``)."""

    def __init__(self, ctx, scenario: Path, seed: int = 0, robot: Path | None = None,
                 params_file: Path | None = None, ego_model: Path | None = None) -> None:
        from rclpy.parameter import Parameter

        from hjepa_agent.nodes.recorder import MetricsNode
        from hjepa_agent.nodes.sim import SimNode
        from hjepa_agent.sim.scenario import load_scenario
        from hjepa_agent.sim.world import SimWorld

        self.world = SimWorld(load_robot_description(robot or data_path("config", "robots", "diffbot.yaml")))
        self.executor = Tiered(ctx, reflex_node_names())
        carried = transport_params(load_params(params_file or data_path("config", "agent.yaml")))
        self.sim = SimNode(self.world, context=ctx, parameter_overrides=[Parameter("use_sim_time", value=False)]
                           + [Parameter(k, value=v) for k, v in carried.items()])
        self.metrics = MetricsNode(context=ctx, parameter_overrides=[Parameter("use_sim_time", value=True)])
        for n in (self.sim, self.metrics):
            self.executor.add_node(n)
        self.sim.start_episode(load_scenario(scenario), seed)
        params = with_robot_urdf(load_params(params_file or data_path("config", "agent.yaml")), self.world.urdf_path)
        params = with_robot_description(params, robot or data_path("config", "robots", "diffbot.yaml"))
        self.nodes = build_agent_nodes(ctx, params, ego_model or data_path("config", "ego_model.yaml"), self.executor)
        self.step = Lockstep(self.sim, self.nodes, self.executor)

    def run(self, seconds: float) -> None:
        """Advance sim time by ``seconds`` in lockstep."""
        from hjepa_agent.nodes.sim import TICK_S
        for _ in range(int(round(seconds / TICK_S))):
            self.step.tick()

    def node(self, name: str):
        """The live agent node called ``name``."""
        return next(n for n in self.step.nodes if n.get_name() == name)

    def close(self) -> None:
        """Destroy everything."""
        self.step.close()
        for n in (self.sim, self.metrics):
            self.executor.remove_node(n)
            n.destroy_node()
        self.executor.shutdown()
        self.world.close()


def feeder_loss(ctx, feeder: str = "habitual", drive_s: float = 3.0, after_s: float = 3.0) -> dict[str, Any]:
    """Kill the node feeding the bridge (``feeder="habitual"``: the bridge must stop on its silence),
    or the bridge itself (``"bridge"``: the watchdog must stop the base alone), mid-run, and measure
    cmd_vel on the wire.

    Returns the delay from the last proposal's stamp to the first slowing output, the time
    to zero, the peak deceleration, the longest gap between outputs and how long zero held."""
    stack = EmbeddedStack(ctx, data_path("config", "scenarios", "open.yaml"))
    try:
        stack.run(drive_s)
        last = max(stack.sim.log.origins_ns) * 1e-9
        stack.step.remove(feeder)
        t_kill = stack.sim.sim_time_s
        stack.run(after_s)
        lg = stack.sim.log
        out = [(t, v) for t, v in zip(lg.sim_t, lg.v) if t >= t_kill]
        v0 = [v for t, v in zip(lg.sim_t, lg.v) if t < t_kill][-1]   # the last command before the kill
        out = [(t_kill, v0)] + out
        start = next(t for t, v in out if v < v0 - 1e-3)
        zero = next(t for t, v in out if abs(v) < 1e-9)
        held = all(abs(v) < 1e-9 for t, v in out if t >= zero)
        pairs = [(a, b) for a, b in zip(out, out[1:]) if b[0] > a[0]]
        return {"feeder": feeder, "speed_before_mps": round(v0, 4),
                "decel_start_after_last_proposal_s": round(start - last, 4),
                "decel_start_after_kill_s": round(start - t_kill, 4),
                "time_to_zero_s": round(zero - start, 4),
                "peak_decel_mps2": round(max((a[1] - b[1]) / (b[0] - a[0]) for a, b in pairs), 4),
                "max_output_gap_s": round(max(b[0] - a[0] for a, b in pairs), 4),
                "held_zero_s": round(out[-1][0] - zero, 3) if held else 0.0,
                "mode_after": stack.metrics.mode.name}
    finally:
        stack.close()


def _decided(nodes: list, metrics) -> tuple[Mode, int]:
    """What the watchdog decided now, enforced or not (``--watchdog off`` publishes HABITUAL at full speed
    whatever it decides): its mode and its graded level (an index of core/watchdog.LEVELS). The mode it
    published, if it is gone (failed stop)."""
    wd = next((n for n in nodes if n.get_name() == "watchdog"), None)
    if wd is None:
        return metrics.mode, 0
    level = 0 if wd.last is None else int(wd.last.readings["graded_level"])
    return wd.core.mode, level


def _rejections(nodes: list) -> dict[str, set[Cause]]:
    """Per topic, the typed causes for which some guarded node of the run rejected a message on it so far
    (nodes/guard.py counters, by input and cause)."""
    from hjepa_agent.nodes.topics import inputs_of

    out: dict[str, set[Cause]] = {}
    for node in nodes:
        counts = node.input_counts() if hasattr(node, "input_counts") else {}
        specs = inputs_of(node.get_name()) if counts else {}
        for key, row in counts.items():
            hit = {c for c in Cause if row.get(f"rejected_{c.value}", 0) > 0}
            if hit and key in specs:
                out.setdefault(specs[key].topic, set()).update(hit)
    return out


def _run_episode(i: int, scenario: Scenario, seed: int, sim, metrics, executor, ctx, params: dict,
                 ego: EgoModel, ego_path: Path) -> EpisodeResult:
    """One episode in lockstep, judged (harness/judge.py): outcome, collisions and breaches, limit violations
    on the wire and, with injected faults, detection (FaultJudge: the agent's response, read from what the
    watchdog decided, and the typed causes of the events after the onset)."""
    from hjepa_agent.nodes.sim import CAMERA_EVERY, CAMERA_PHASE

    res = EpisodeResult(episode=i, scenario=scenario.name, seed=seed)
    sim.start_episode(scenario, seed)
    metrics.reset()
    nodes = build_agent_nodes(ctx, params, ego_path, executor)
    log_start = len(sim.log.sim_t)
    step = None
    try:
        step = Lockstep(sim, nodes, executor)
        t_start = sim.sim_time_s
        stopped_since = None
        prev_mode = Mode.SAFE_STOP  # the watchdog starts in an unlatched SAFE_STOP until inputs are fresh
        injected = sim.faults.faults if sim.faults is not None else []
        kinds = [f.kind for f in injected]
        res.faults = [f"{f.kind}@{f.onset_s:g}" for f in injected]
        res.intruders = [{"kind": x.kind, "node": x.node or "(the topic's owner)", "topic": x.topic,
                          "rate_hz": x.rate_hz} for x in (sim.faults.intruders() if sim.faults else [])]
        onset = min((f.onset_s for f in injected), default=math.inf)
        fault = FaultJudge(kinds, onset)
        breach_at = None
        seen_events = 0
        prev_decided, prev_level = Mode.SAFE_STOP, 0
        hard = ego.hard
        while True:
            stamp_ns = step.tick()
            mode = metrics.mode
            decided, level = _decided(step.nodes, metrics)
            res.mode_ticks[mode.name] += 1
            if mode == Mode.SAFE_STOP and prev_mode != Mode.SAFE_STOP:
                res.safe_stops += 1
            # the episode's own clock, the one the fault injector starts its faults by (sim.sim_time_s - t_start
            # is the same up to rounding, which put a fault's first tick just before its onset)
            elapsed = sim.world.time_s
            if injected and elapsed >= onset:
                # the response: what the watchdog decided (enforced or not)
                fault.on_decision(elapsed, prev_decided, decided, prev_level, level)
                # the name: the typed causes of the events after the onset, in the order they came
                for ev in metrics.events[seen_events:]:
                    if len(res.fault_events) < FAULT_EVENTS_KEPT:
                        res.fault_events.append({**ev, "seen_s": round(elapsed, 3)})
                    causes = [str(c) for c in ev.get("causes") or ()]
                    for c in causes:
                        if c not in res.fault_causes:
                            res.fault_causes.append(c)
                    fault.on_causes(elapsed, causes)
                    if causes and ev.get("kind") == "mode" and not res.stop_causes:   # the watchdog's stop
                        res.stop_causes = causes
                why = breach(sim.world, hard)
                if why is not None and res.breach is None:
                    res.breach, breach_at = why, elapsed
            seen_events = len(metrics.events)
            prev_mode, prev_decided, prev_level = mode, decided, level
            if stamp_ns is None and sim.tick % CAMERA_EVERY != CAMERA_PHASE:
                continue   # judged at the camera's rate, whether a frame went out or not (a dead camera)
            x, y, _ = sim.world.pose()
            res.path.append((round(x, 3), round(y, 3)))
            res.min_clearance_m = min(res.min_clearance_m, sim.world.min_obstacle_clearance())
            stopped_since, given_up = held_stop(stopped_since, elapsed, mode, sim)
            end = episode_end(sim.world.in_collision(), sim.world.goal_reached(sim.goal_xy, scenario.goal_tolerance_m),
                              elapsed, scenario.time_limit_s, "lockstep_lost" if step.misses > MAX_MISSES else None,
                              given_up)   # the goal the user set now; MAX_MISSES: a hung node, a clock that never comes
            if end is not None:
                settle(res, end, elapsed)
                break
        res.time_s = sim.sim_time_s - t_start
        if injected:
            flooded = [x.topic for x in sim.faults.intruders() if x.payload == "garbage"]
            rejected = _rejections(step.nodes + [sim]) if flooded else {}
            res.rejected_on = {t: sorted(c.value for c in rejected.get(t, ())) for t in flooded}
            verdict = fault.verdict(flooded, rejected)
            res.fault_detected = verdict.detected
            res.fault_named_wrongly = verdict.named_wrongly
            res.naming_causes = [c.value if isinstance(c, Cause) else str(c) for c in verdict.causes]
            detected_at = fault.detected_at(verdict)
            res.detection_delay_s = None if detected_at is None else round(detected_at - onset, 3)
            if breach_at is not None and detected_at is not None:
                res.lead_s = round(breach_at - detected_at, 3)
    finally:
        sim.stop_intruders()
        if step is not None:
            res.lockstep_misses = step.misses
            res.node_failures = step.failures
            res.lost_messages = sum(step.lost.values())
            step.close()
            res.rss_mb = resident_mb()
        else:
            for node in nodes:
                executor.remove_node(node)
                node.destroy_node()
    res.events = metrics.events[-50:]
    if res.node_failures:   # a node failed stop: whatever else happened, the episode failed
        settle(res, "collision" if res.collision else "node_failed", res.time_s)
    lg = sim.log
    alone = not any(x["topic"] == "cmd_vel" for x in res.intruders)   # nobody else publishes on cmd_vel
    t, v, w, res.foreign_commands = agent_commands(lg.sim_t[log_start:], lg.v[log_start:], lg.w[log_start:],
                                                   lg.stamp_ns[log_start:], lg.frame[log_start:], lg.declared,
                                                   unstamped_ours=alone)
    res.limit_violations_by_kind = count_limit_violations(t, v, w, ego)
    res.limit_violations = sum(res.limit_violations_by_kind.values())
    return res
