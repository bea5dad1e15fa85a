"""`hjepa-agent train world-model --quick` then the ONNX-only evaluation on it, end to end."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import yaml

from hjepa_agent.core.models import OnnxModel, load_manifest
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS
from hjepa_agent.train.eval_world_model import eval_main
from hjepa_agent.train.world_data import nearest_surface
from hjepa_agent.train.world_model import CALIBRATION_FILE, N_HEADS, train_main

CPU = ["CPUExecutionProvider"]


def _finite(x: object) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return not isinstance(x, float) or math.isfinite(x)


def test_quick_world_model_trains_exports_and_evaluates(tmp_path: Path) -> None:
    out = tmp_path / "models"
    assert train_main(["--quick", "--out", str(out)]) == 0

    m = load_manifest(out)
    assert {"world_encoder", "world_predictor"} <= set(m.models)
    trained = m.models["world_predictor"].trained
    assert trained["metrics"]["onnx_parity_max_abs_err"]["world_predictor"] <= 1e-4
    assert trained["metrics"]["onnx_parity_max_abs_err"]["world_encoder"] <= 1e-4
    assert len(trained["calibration"]["s_pred"]) == N_LATENT and trained["data"]["quick"] is True
    cal = yaml.safe_load((out / CALIBRATION_FILE).read_text())
    assert all(v > 0 for v in cal["s_pred"] + cal["r"])

    enc = OnnxModel(out, "world_encoder", m, CPU, expected_robot="sample_diffbot")
    pred = OnnxModel(out, "world_predictor", m, CPU, expected_robot="sample_diffbot")
    rng = np.random.default_rng(0)
    z = enc(rng.random((3, 3, 64, 64), dtype=np.float32), rng.random((3, N_SCAN_BINS), dtype=np.float32))
    assert z.shape == (3, N_LATENT) and np.all(np.isfinite(z))
    nxt = pred(z, rng.uniform(-1, 1, (3, 2)).astype(np.float32))
    assert nxt.shape == (3, N_HEADS, N_LATENT)
    assert np.all(nxt.std(axis=1) > 0)  # heads differ

    result = tmp_path / "eval.json"
    assert eval_main(["--models", str(out), "--quick", "--out", str(result)]) == 0
    res = json.loads(result.read_text())
    assert _finite(res)
    p = res["prediction_mse"]
    for k in (1, 5, 10):
        assert p[f"model_{k}"] >= 0.0 and p[f"copy_{k}"] > 0.0
    # Even a quick model learns the action-conditioned drift of the latent one step ahead.
    assert p["model_1"] < p["copy_1"]
    assert set(res["probe_r2"]) == {"obst_dist", "bearing_cos", "bearing_sin", "heading_cos", "heading_sin"}
    assert 0.0 < res["calibration"]["within_1sigma"] < res["calibration"]["within_2sigma"] <= 1.0
    assert set(res["ambiguity"]) == {"blackout", "frozen", "noise", "unseen"}
    for kind in res["ambiguity"].values():
        assert kind["frames"] > 0 and 0.0 <= kind["auroc_ambiguity"] <= 1.0


def test_nearest_surface_matches_obstacle_distance() -> None:
    from hjepa_agent.paths import data_path
    from hjepa_agent.sim.scenario import load_scenarios

    layout = load_scenarios(data_path("config", "scenarios"))[0].jittered(3)
    for x, y in [(0.0, 0.0), (1.0, -1.5), (-2.0, 2.2)]:
        d, px, py = nearest_surface(layout, x, y)
        assert math.isclose(d, math.hypot(px - x, py - y), abs_tol=1e-6) or d == 0.0
        hx, hy = layout.arena.size_x_m / 2, layout.arena.size_y_m / 2
        best = min([hx - abs(x), hy - abs(y)] + [ob.distance_to(x, y) for ob in layout.obstacles])
        assert math.isclose(d, best, abs_tol=1e-6)
