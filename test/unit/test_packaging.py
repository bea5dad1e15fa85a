"""What a robot installs: ONNX Runtime's GPU build only where it has wheels (Linux x86_64), the CPU
build elsewhere (aarch64 robots: Jetson, Raspberry Pi), the same in .ci/requirements.txt and setup.py;
and package.xml declares every third-party module the runtime imports (a rosdep key), or names it
as pip-only."""
import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = {   # name -> (sys_platform, platform_machine)
    "linux x86_64": ("linux", "x86_64"), "linux aarch64 (Jetson, Raspberry Pi)": ("linux", "aarch64"),
    "macOS arm64": ("darwin", "arm64"), "macOS x86_64": ("darwin", "x86_64"), "Windows": ("win32", "AMD64")}
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}
MODULE_KEYS = {"numpy": "python3-numpy", "yaml": "python3-yaml", "cv2": "python3-opencv", "tqdm": "python3-tqdm",
               "matplotlib": "python3-matplotlib"}
"""Python module -> rosdep key, where they differ (ROS packages: the module's own name)."""
PIP_ONLY = {"onnxruntime", "pybullet", "pybullet_utils", "rosbags"}
"""Runtime modules with no rosdep key: package.xml must name them for pip."""


def _requirements() -> list[Requirement]:
    lines = [ln.split("#")[0].strip() for ln in (ROOT / ".ci" / "requirements.txt").read_text().splitlines()]
    return [Requirement(ln) for ln in lines if ln]


def _setup_requires() -> list[Requirement]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    consts = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              for t in n.targets if isinstance(t, ast.Name) and t.id == "ONNX_RUNTIME"}
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    reqs = next(k.value for k in call.keywords if k.arg == "install_requires")
    out = []
    for elt in reqs.elts:
        out += [Requirement(r) for r in consts[elt.value.id]] if isinstance(elt, ast.Starred) else [Requirement(elt.value)]
    return out


def _chosen(reqs: list[Requirement], platform: str, machine: str) -> set[str]:
    env = {"sys_platform": platform, "platform_machine": machine, "python_version": "3.11"}
    return {r.name for r in reqs if r.name in RUNTIMES and (r.marker is None or r.marker.evaluate(env))}


@pytest.mark.parametrize("where", ENVIRONMENTS)
@pytest.mark.parametrize("source", ["requirements", "setup.py"])
def test_exactly_one_onnx_runtime_and_the_gpu_build_only_where_it_has_wheels(source, where):
    reqs = _requirements() if source == "requirements" else _setup_requires()
    chosen = _chosen(reqs, *ENVIRONMENTS[where])
    assert chosen == ({"onnxruntime-gpu"} if where == "linux x86_64" else {"onnxruntime"}), (source, where, chosen)


def test_requirements_and_setup_choose_the_runtime_alike():
    markers = lambda reqs: sorted((r.name, str(r.marker)) for r in reqs if r.name in RUNTIMES)  # noqa: E731
    assert markers(_requirements()) == markers(_setup_requires())


def _runtime_modules() -> set[str]:
    """Third-party top-level modules imported anywhere in hjepa_agent but its trainers and datasets (torch,
    pyarrow, ray live there: a workstation's tools, installed from .ci/requirements.txt, not the robot's)."""
    out = set()
    for path in (ROOT / "hjepa_agent").rglob("*.py"):
        if {"train", "dataset"} & set(path.relative_to(ROOT / "hjepa_agent").parts):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
    return {m for m in out if m not in sys.stdlib_module_names and m not in ("hjepa_agent", "__future__")}


def test_package_xml_declares_every_runtime_dependency():
    xml = (ROOT / "package.xml").read_text()
    declared = {e.text for e in ET.fromstring(xml).iter("exec_depend")}
    modules = _runtime_modules()
    assert {"rclpy", "numpy", "onnxruntime"} <= modules, "the scan found too little: it checks nothing"
    missing = sorted(m for m in modules - PIP_ONLY if MODULE_KEYS.get(m, m) not in declared)
    assert not missing, f"package.xml lacks exec_depend for {missing}"
    unnamed = sorted(m for m in modules & PIP_ONLY if m.split("_")[0] not in xml)
    assert not unnamed, f"package.xml does not name the pip-only dependencies {unnamed}"
