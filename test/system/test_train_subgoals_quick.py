"""`hjepa-agent train subgoals --quick`: collects route rasters from planner-driven episodes, trains
the slow level (P_F, learned P_B, log Z) by trajectory balance, exports both networks (parity
checked), merges the manifest with the route space; the two-level planner then loads them and
routes through ONNX Runtime."""
import shutil
import subprocess
import sys

import numpy as np
import yaml

from builders import world_state
from hjepa_agent.core.planner import Budget, build_planner
from hjepa_agent.core.planner.gfn.routes import SubgoalSpace
from hjepa_agent.config.paths import data_path


def test_quick_training_exports_a_slow_level_the_two_level_planner_routes_with(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models)
    before = yaml.safe_load((models / "manifest.yaml").read_text())["models"]
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "train", "subgoals", "--quick", "--quiet",
                           "--out", str(models)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = yaml.safe_load((models / "manifest.yaml").read_text())["models"]
    for name in ("subgoal_policy", "subgoal_logz"):
        rec = after[name]["trained"]
        assert rec["metrics"]["parity_max_abs_err"] <= 1e-4 and rec["data"]["conditions"] > 50
        assert rec["data"]["laterals"] == list(SubgoalSpace().laterals)
        assert 0.0 <= rec["metrics"]["exact_tv_mean"] <= 1.0
    for name, entry in before.items():            # the other entries are untouched
        if name not in ("subgoal_policy", "subgoal_logz"):
            assert after[name]["sha256"] == entry["sha256"]
    planner = build_planner("cem", footprint_radius_m=0.2, max_linear_mps=0.6, max_angular_rps=1.8,
                            models_dir=models, prefer_cuda=False, hierarchy=True)
    assert planner.name == "cem+subgoals"
    pose = np.zeros(3, np.float32)
    angles = np.linspace(-np.pi, np.pi, 90, endpoint=False)
    planner.observe(pose, angles, np.full(90, 3.0), 0.1, 4.0)     # a ring of returns 3 m out
    goal = np.array([2.5, 0.0], np.float32)
    ws = world_state(pose=pose, goal=goal)
    plan = planner.plan(ws, goal, Budget(10**6))
    assert "subgoals" in plan.extras and np.isfinite(plan.extras["route_log_z"])
    assert plan.extras["route_source"] in ("policy", "straight", "none under the clip")
