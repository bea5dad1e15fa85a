"""The watchdog's journal, read back: a recorded run's inputs and the watchdog's core re-run along it.

The watchdog node (nodes/watchdog.WatchdogNode) publishes on agent/watchdog/journal, once per tick,
one JSON: which inputs it consumed (by kind and header stamp, at what time; clears, live threshold
changes, graph observations and clock jumps too), and what it decided. :func:`read_run` reads a
rosbag2 recording's journal and the messages it names; :func:`rerun` feeds them, through the same
``apply_input`` and input validators the node uses, to a fresh core per session (one watchdog node
run) that ticks at the journal's times. With the thresholds the run used, every tick comes out as it
did live. What a re-run uses is passed in one :class:`ReplayContext` (thresholds, ego model,
typical-risk network, topic remaps): no module state.

Shared by ``hjepa-agent tune`` (tune/) and the typical-risk trainer (train/typical_risk.py), which
must not import tune/.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import time
from collections import defaultdict, deque
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from hjepa_agent.config.ego_model import EgoModel, load_ego_model
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import Watchdog, WatchdogConfig, load_watchdog_config
from hjepa_agent.nodes.codec import content_key, msg_to_command, time_ns
from hjepa_agent.nodes.topics import inputs_of
from hjepa_agent.nodes.watchdog import INPUTS, apply_input

JOURNAL = "agent/watchdog/journal"
"""The watchdog node's journal topic (relative: a recording under a namespace has it there)."""

Inputs = dict[str, dict[int, deque]]
"""A run's recorded watchdog inputs: kind -> journal key (header stamp ns) -> messages in recorded order."""


@dataclasses.dataclass(frozen=True)
class ReplayContext:
    """What a re-run of the watchdog's core uses: ``cfg`` (its thresholds), ``ego`` (the ego model),
    ``typical`` (the typical-risk network, core/risk.TypicalRisk, or None: the node's typical_risk:
    false), ``remaps`` (watchdog input topic -> the recorded name the robot launch remapped it to; a
    relative name is resolved in the recording's namespace); ``thresholds`` and ``ego_model``: the YAML
    files ``cfg`` and ``ego`` came from, for reports (None when made in code)."""

    cfg: WatchdogConfig
    ego: EgoModel
    typical: Any = None
    remaps: Mapping[str, str] = dataclasses.field(default_factory=dict)
    thresholds: Path | None = None
    ego_model: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "remaps", MappingProxyType(check_remaps(self.remaps)))

    @classmethod
    def load(cls, thresholds: str | Path, ego_model: str | Path, models: str | Path | None = None,
             typical_risk: bool = True, remaps: Mapping[str, str] | None = None) -> ReplayContext:
        """From files: the thresholds YAML, the ego model YAML and, with ``typical_risk``, the network in
        ``models`` (None: the package's models), as the watchdog node with that models_dir loads it
        (ModelMismatchError as the node's)."""
        typical = load_typical(models) if typical_risk else None
        return cls(load_watchdog_config(thresholds), load_ego_model(ego_model), typical, remaps or {},
                   Path(thresholds), Path(ego_model))

    def with_cfg(self, cfg: WatchdogConfig) -> ReplayContext:
        """The same context with other thresholds (a sweep's grid point)."""
        return dataclasses.replace(self, cfg=cfg)


def load_typical(models_dir: str | Path | None = None):
    """The typical-risk network in ``models_dir`` (None: the package's models), as core/risk.TypicalRisk."""
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.core.models import load_typical_risk
    from hjepa_agent.core.risk import TypicalRisk
    return TypicalRisk(load_typical_risk(models_dir or data_path("models")))


def check_remaps(remaps: Mapping[str, str]) -> dict[str, str]:
    """``remaps`` as a dict, each key a watchdog input topic (ValueError naming one that is not), e.g.
    {"camera/image_raw": "/front_camera/image_raw"}: the robot launch's ``*_topic`` arguments."""
    known = {topic for topic, _ in INPUTS.values()}
    for key in remaps:
        if key not in known:
            raise ValueError(f"--remap {key}=...: not a watchdog input topic (those: {', '.join(sorted(known))})")
    return dict(remaps)


def _resolve(topic: str, namespace: str) -> str:
    """A topic name as recorded: absolute names stay, relative ones go under ``namespace``."""
    return topic if topic.startswith("/") else f"{namespace}/{topic}"


def _message_class(msgtype: str) -> type:
    """The rclpy class of a recorded type name ("geometry_msgs/msg/Twist")."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def read_run(bag: Path, remaps: Mapping[str, str] | None = None) -> tuple[Inputs, list[dict[str, Any]]]:
    """The watchdog's recorded inputs (kind -> header stamp ns -> messages in recorded order) and its
    journal entries (in recorded order) from a rosbag2 recording; ``remaps`` as ReplayContext's."""
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from std_msgs.msg import String

    remaps = check_remaps(remaps or {})
    inputs: Inputs = {kind: defaultdict(deque) for kind in INPUTS}
    journal: list[dict[str, Any]] = []
    with Reader(bag) as reader:
        journals = sorted({c.topic for c in reader.connections if c.topic.endswith("/" + JOURNAL)})
        if not journals:
            raise ValueError(f"{bag}: no {JOURNAL} topic: the run was recorded without the watchdog's "
                             f"journal (watchdog parameter journal: true), so it cannot be replayed")
        if len(journals) > 1:
            raise ValueError(f"{bag}: several watchdog journals ({', '.join(journals)}): one robot per replay; "
                             f"record each robot's namespace on its own")
        ns = journals[0][: -len("/" + JOURNAL)]   # the recording's namespace ("" without one)
        by_topic = {_resolve(remaps.get(topic, topic), ns): kind for kind, (topic, _) in INPUTS.items()}
        conns = [c for c in reader.connections if c.topic in by_topic or c.topic == journals[0]]
        recorded = {c.id: _message_class(c.msgtype) for c in conns}   # e.g. cmd_vel as Twist on a Create 3
        for conn, _, raw in reader.messages(connections=conns):
            if conn.topic == journals[0]:
                journal.append(json.loads(deserialize_message(raw, String).data))
                continue
            msg = deserialize_message(raw, recorded[conn.id])
            # the node journals an unstamped message (a Twist cmd_vel) under stamp 0, in receipt order
            for key in stamp_keys(msg):
                inputs[by_topic[conn.topic]][key].append(msg)
    return inputs, journal


def stamp_keys(msg: Any) -> tuple[int, ...]:
    """The journal keys a recorded message may have been consumed under. A stamped one: its exact stamp in
    ns and, where it differs, what journals written before the exact key read (its stamp through a float
    of seconds, int(round(ns * 1e-9 * 1e9)): up to ~128 ns off for wall-clock stamps; exact for simulated
    time). An unstamped command (a Twist): its values (codec.content_key), and 0, what older journals
    read (those match commands in recorded order). So recordings of either age replay."""
    if not hasattr(msg, "header"):
        return (0, content_key(msg_to_command(msg))) if hasattr(msg, "linear") else (0,)
    exact = time_ns(msg.header.stamp)
    old = int(round(exact * 1e-9 * 1e9))
    return (exact,) if old == exact else (exact, old)


def rerun(journal: list[dict[str, Any]], inputs: Inputs, ctx: ReplayContext) -> Iterator[tuple]:
    """Re-run the core along the journal: yields (entry, core, output, tick seconds, missing inputs)
    per journal tick; one fresh core per session (watchdog node run). ``inputs`` is only read (the
    messages of one kind and stamp are taken in recorded order), so one parsed run serves any number
    of replays."""
    validators = inputs_of("watchdog")
    cores: dict[str, Watchdog] = {}
    taken: dict[tuple[str, int], int] = defaultdict(int)   # (kind, stamp) -> messages of it used so far
    for entry in journal:
        if entry["session"] not in cores:
            cores[entry["session"]] = Watchdog(ctx.cfg, ctx.ego, ctx.typical, enforced=entry.get("enforced", True))
        core = cores[entry["session"]]
        missing = 0
        for kind, key, now, *reading in entry["inputs"]:
            if kind == "clear":
                core.clear_safe_stop(now)
                continue
            if kind == "params":   # a live threshold change: key holds the changes
                core.reconfigure(dataclasses.replace(core.cfg, **key))
                continue
            if kind == "graph":    # what the ROS graph showed: who publishes a guarded topic
                core.foreign.on_graph(key["topic"], list(key["publishers"]), tuple(key["allowed"]), now)
                continue
            if kind == "clock_jump":
                core.on_clock_jump(now, float(key))
                continue
            if kind == "reactivated":   # the node was inactive this long: blind meanwhile
                core.on_reactivated(now, float(key))
                continue
            queue = inputs.get(kind, {}).get(int(key))
            used = taken[kind, int(key)]
            if not queue or used >= len(queue):
                missing += 1
                continue
            taken[kind, int(key)] = used + 1
            apply_input(core, kind, validators[kind].validate(queue[used]), now, reading[0] if reading else None)
        t0 = time.perf_counter()
        out = core.tick(entry["tick"])
        yield entry, core, out, time.perf_counter() - t0, missing


def started_ticks(bags: list[Path], ctx: ReplayContext) -> Iterator[tuple]:
    """Replay every recording in ``bags`` (as :func:`rerun`) and yield (episode key "bag:session",
    journal entry, core, output) for each tick from the one where the episode left the start-up
    SAFE_STOP (the wait for fresh inputs is nobody's score): what calibrate and the typical-risk
    trainer learn from."""
    for bag in bags:
        inputs, journal = read_run(bag, ctx.remaps)
        started: set[str] = set()
        for entry, core, out, _, _ in rerun(journal, inputs, ctx):
            key = f"{bag}:{entry['session']}"
            if out.mode != Mode.SAFE_STOP:
                started.add(key)
            if key in started:
                yield key, entry, core, out


__all__ = ["JOURNAL", "Inputs", "ReplayContext", "check_remaps", "load_typical", "read_run", "rerun", "started_ticks",
           "stamp_keys"]
