"""Shared test builders: shipped configs as dicts, a YAML writer, and a simulated world."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from hjepa_agent.paths import data_path


def load_yaml_dict(*parts: str) -> dict[str, Any]:
    """A shipped YAML file (under the package data dir) as a fresh dict, for editing in tests."""
    return yaml.safe_load(data_path(*parts).read_text())


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, dict[str, Any]], Path]:
    """Write ``data`` to tmp_path/name and return the path."""
    def _write(name: str, data: dict[str, Any]) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data))
        return path
    return _write


@pytest.fixture(scope="module")
def diffbot_world() -> Iterator[Any]:
    """A SimWorld with the sample diffbot, shared by a test module; closed afterwards."""
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.world import SimWorld
    world = SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml")))
    yield world
    world.close()


@pytest.fixture
def ros_context() -> Iterator[Any]:
    """A fresh rclpy Context on this run's private, localhost-only DDS domain; shut down afterwards."""
    from hjepa_agent.runner import isolate_dds
    isolate_dds()
    import rclpy
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.shutdown(context=ctx)


class SimClock:
    """Drives /clock from a test so nodes under use_sim_time see exactly the time the test says."""

    def __init__(self, node: Any, executor: Any) -> None:
        from rosgraph_msgs.msg import Clock
        self._cls = Clock
        self._pub = node.create_publisher(Clock, "/clock", 10)
        self._executor = executor
        self.t_s = 0.0

    def advance(self, dt_s: float) -> None:
        """Publish t + dt on /clock and let the executor process what follows before returning."""
        from hjepa_agent.nodes.codec import to_time
        from hjepa_agent.runner import spin_until_idle
        self.t_s += dt_s
        self._pub.publish(self._cls(clock=to_time(self.t_s)))
        spin_until_idle(self._executor)


def spin_until(executor: Any, cond: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Spin until cond() holds or the wall-clock timeout passes; returns cond()."""
    import time
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)
    return cond()


class Stack:
    """The simulator and every agent node in one executor, stepped in lockstep (as `hjepa-agent sim`)."""

    def __init__(self, ctx: Any, scenario: str = "open.yaml", seed: int = 0) -> None:
        from rclpy.experimental import EventsExecutor
        from rclpy.parameter import Parameter

        from hjepa_agent.node_table import load_params
        from hjepa_agent.nodes.recorder import MetricsNode
        from hjepa_agent.nodes.sim import SimNode
        from hjepa_agent.runner import Lockstep, build_agent_nodes
        from hjepa_agent.sim.robot import load_robot_description
        from hjepa_agent.sim.scenario import load_scenario
        from hjepa_agent.sim.world import SimWorld

        self.world = SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml")))
        self.executor = EventsExecutor(context=ctx)
        self.sim = SimNode(self.world, context=ctx, parameter_overrides=[Parameter("use_sim_time", value=False)])
        self.metrics = MetricsNode(context=ctx, parameter_overrides=[Parameter("use_sim_time", value=True)])
        for n in (self.sim, self.metrics):
            self.executor.add_node(n)
        self.sim.start_episode(load_scenario(data_path("config", "scenarios", scenario)), seed)
        params = load_params(data_path("config", "agent.yaml"))
        self.nodes = build_agent_nodes(ctx, params, data_path("config", "ego_model.yaml"), self.executor)
        self.step = Lockstep(self.sim, self.nodes, self.executor)

    def run(self, seconds: float) -> None:
        """Advance sim time by ``seconds`` in lockstep."""
        from hjepa_agent.nodes.sim import TICK_S
        for _ in range(int(round(seconds / TICK_S))):
            self.step.tick()

    def node(self, name: str) -> Any:
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


@pytest.fixture
def stack(ros_context: Any) -> Iterator[Stack]:
    """A running simulator + agent on the 'open' scenario."""
    s = Stack(ros_context)
    yield s
    s.close()
