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
