"""`hjepa-agent train planner --quick`: collects conditions, trains by trajectory balance, exports
P_F and log Z to ONNX (parity checked), merges the manifest; the runtime planner then loads the
networks through ONNX Runtime and plans within its call budget."""
import shutil
import subprocess
import sys

import numpy as np
import yaml

from builders import world_state
from hjepa_agent.core.planner import Budget, build_planner
from hjepa_agent.core.planner.gflownet import HORIZON, REPEAT
from hjepa_agent.config.paths import data_path


def test_quick_training_exports_networks_the_runtime_plans_with(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models)
    before = yaml.safe_load((models / "manifest.yaml").read_text())["models"]
    proc = subprocess.run([sys.executable, "-m", "hjepa_agent.cli", "train", "planner", "--quick", "--quiet",
                           "--out", str(models)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = yaml.safe_load((models / "manifest.yaml").read_text())["models"]
    for name in ("planner_policy", "planner_logz"):
        assert (models / after[name]["file"]).is_file()
        assert after[name]["trained"]["metrics"]["parity_max_abs_err"] <= 1e-4
        assert after[name]["trained"]["data"]["conditions"] > 100
    for name, entry in before.items():            # the other entries are untouched
        if name not in ("planner_policy", "planner_logz"):
            assert after[name]["sha256"] == entry["sha256"]
    planner = build_planner("gflownet", footprint_radius_m=0.2, max_linear_mps=0.6, max_angular_rps=1.8,
                            models_dir=models, prefer_cuda=False)
    ws = world_state(goal=(3.0, 0.0))
    plan = planner.plan(ws, np.array([3.0, 0.0], np.float32), Budget(10**6))
    assert plan.actions.shape == (HORIZON * REPEAT, 2) and plan.planner == "gflownet"
    assert plan.world_model_calls == (planner.samples + 3) * HORIZON * REPEAT   # no warm start yet
    assert np.isfinite(plan.extras["log_z"]) and plan.extras["min_clearance_m"] >= 0.0
