"""core/ must stay ROS-free and torch-free: parse every module and fail on such imports."""
import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "hjepa_agent" / "core"
FORBIDDEN = ("rclpy", "torch", "launch", "launch_ros")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_no_ros_or_torch_import(path):
    bad = [n for n in _imports(path) if n.split(".")[0] in FORBIDDEN or n.split(".")[0].endswith("_msgs")]
    assert not bad, f"{path} imports {bad}"


def test_core_has_modules():
    assert len(list(CORE.rglob("*.py"))) >= 8
