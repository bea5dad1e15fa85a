"""Shared test builders: shipped configs as dicts, a YAML writer, a simulated world, world states (test/builders.py,
re-exported here); and the suite's markers (KINDS): every test is exactly one of unit, integration, system,
training. A module may say its
kind (``pytestmark = pytest.mark.training``); otherwise its folder does (test/unit: unit, test/integration:
integration, test/system: system). ``pytest -m unit`` is the pure-core loop: no ROS graph, no simulator
episodes, no torch training."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from hjepa_agent.config.paths import data_path


KINDS = ("unit", "integration", "system", "training")
"""The suite's markers (setup.cfg registers them): what a test needs and so how long it takes."""


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Give every test its kind: the module's own mark, else its folder's; two kinds is an error."""
    for item in items:
        kinds = {m.name for m in item.iter_markers() if m.name in KINDS}
        if not kinds:
            folder = Path(str(item.fspath)).parent.name
            kinds = {folder if folder in KINDS else "unit"}
            item.add_marker(getattr(pytest.mark, next(iter(kinds))))
        if len(kinds) > 1:
            raise pytest.UsageError(f"{item.nodeid}: marked {sorted(kinds)}; a test is one of {KINDS}")


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
    from hjepa_agent.harness.runner import isolate_dds
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
        from hjepa_agent.harness.lockstep import spin_until_idle
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


@pytest.fixture
def stack(ros_context: Any) -> Iterator[Any]:
    """A running simulator + agent on the 'open' scenario (hjepa_agent.harness.runner.EmbeddedStack)."""
    from hjepa_agent.harness.runner import EmbeddedStack
    s = EmbeddedStack(ros_context, data_path("config", "scenarios", "open.yaml"))
    yield s
    s.close()


# ---- the fault and fuzz battery (test/integration/test_fuzz_*.py, helpers in test/fuzz_strategies.py) ----
def pytest_addoption(parser: Any) -> None:
    """--long: the fuzz battery's acceptance budget (>= 10,000 generated sequences) instead of CI's."""
    parser.addoption("--long", action="store_true", default=False,
                     help="fuzz battery: the long (acceptance) budget of generated sequences")


@pytest.fixture(scope="session")
def fuzz_long(request: Any) -> bool:
    """True under --long."""
    return bool(request.config.getoption("--long"))


@pytest.fixture(scope="session")
def fuzz_report(fuzz_long: bool) -> Iterator[Any]:
    """The battery's report (fuzz_strategies.FuzzReport), shared by every fuzz test of the session;
    written as JSON to $FUZZ_REPORT at the end of the session when that is set."""
    import json
    import os

    from fuzz_strategies import FuzzReport
    report = FuzzReport(mode="long" if fuzz_long else "default")
    yield report
    path = os.environ.get("FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps(report.to_json(), indent=2, default=lambda o: dict(o)))
