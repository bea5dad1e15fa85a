"""The one table of the agent's nodes, read by launch/*.launch.py and by `hjepa-agent sim`.

Both ways of starting the agent build their nodes from NODES, with parameters from
config/agent.yaml (``ros__parameters`` per node name), so they cannot drift.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hjepa_agent.config.loader import ConfigError, read_yaml


@dataclass(frozen=True)
class NodeSpec:
    """One node: its ROS name, console script, class (module:Class) and default remaps."""

    name: str
    executable: str
    cls: str
    remaps: tuple[tuple[str, str], ...] = ()

    def load_class(self) -> type:
        """Import and return the node class."""
        module, _, attr = self.cls.partition(":")
        return getattr(importlib.import_module(module), attr)


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("perception", "perception", "hjepa_agent.nodes.perception:PerceptionNode"),
    NodeSpec("estimator", "estimator", "hjepa_agent.nodes.estimator:EstimatorNode"),
    NodeSpec("habitual", "habitual", "hjepa_agent.nodes.habitual:HabitualNode"),
    NodeSpec("planner", "planner", "hjepa_agent.nodes.planner:PlannerNode"),
    NodeSpec("watchdog", "watchdog", "hjepa_agent.nodes.watchdog:WatchdogNode"),
    NodeSpec("bridge", "bridge", "hjepa_agent.nodes.bridge:BridgeNode"),
)
"""The agent's nodes, in data-flow order."""

SIM_NODE = NodeSpec("sim", "sim", "hjepa_agent.nodes.sim:SimNode")
"""The PyBullet simulator node (sim.launch.py and `hjepa-agent sim` only)."""

RECORDER_NODE = NodeSpec("recorder", "recorder", "hjepa_agent.nodes.recorder:RecorderNode")
"""The rosbag2/MCAP recorder (robot.launch.py with record:=true, `hjepa-agent record`); takes no
params_file section (its one parameter, out, is given by the launch file or the CLI)."""


LATENT_PARAMS = (("perception", "encoder_model"), ("habitual", "latent_source"))
"""Parameters naming the encoder of the latent: perception computes it, the habitual policy reads it;
a params file must set them equal (both default to "encoder", the nodes' defaults)."""


def check_latent_params(path: str | Path, params: dict[str, dict[str, Any]]) -> None:
    """ConfigError if perception.encoder_model and habitual.latent_source differ (a missing one is the nodes' default, "encoder")."""
    values = {f"{node}.{key}": params.get(node, {}).get(key, "encoder") for node, key in LATENT_PARAMS}
    if len(set(values.values())) > 1:
        a, b = values.items()
        raise ConfigError(path, b[0], f"is {b[1]!r} but {a[0]} is {a[1]!r}: set both to the encoder the habitual "
                                      f"policy was trained on ('encoder' or 'world_encoder')")


def load_params(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a ros__parameters YAML: {node_name: {param: value}}. ConfigError names unknown nodes,
    and perception.encoder_model differing from habitual.latent_source."""
    data = read_yaml(path)
    known = {n.name for n in NODES} | {SIM_NODE.name}
    out: dict[str, dict[str, Any]] = {}
    for node, body in data.items():
        if node not in known:
            raise ConfigError(path, node, f"unknown node (known: {', '.join(sorted(known))})")
        if not isinstance(body, dict) or set(body) != {"ros__parameters"} or not isinstance(body["ros__parameters"], dict):
            raise ConfigError(path, node, "expected exactly one key 'ros__parameters' holding a mapping")
        out[node] = dict(body["ros__parameters"])
    check_latent_params(path, out)
    return out
