"""`hjepa-agent train habitual --quick`: runs end to end and writes loadable, well-described models."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hjepa_agent.core.models import OnnxModel, load_manifest
from hjepa_agent.core.types import N_HABITUAL_FEATURES, N_LATENT
from hjepa_agent.train.habitual import train_main

CPU = ["CPUExecutionProvider"]


def test_quick_training_writes_loadable_models(tmp_path: Path) -> None:
    out = tmp_path / "models"
    assert train_main(["--quick", "--out", str(out)]) == 0

    m = load_manifest(out)
    assert m.robot == "sample_diffbot"
    assert m.action_scale == (0.6, 1.8) and m.observation["speed_norm"] == [0.8, 2.0]
    hab_metrics = m.models["habitual"].trained["metrics"]
    assert hab_metrics["onnx_parity_max_abs_err"]["habitual"] <= 1e-4
    assert hab_metrics["onnx_parity_max_abs_err"]["encoder"] <= 1e-4
    assert [r["round"] for r in hab_metrics["rounds"]] == [0, 1]
    assert "policy_success" in hab_metrics["rounds"][0]
    assert hab_metrics["final_onnx_success"]["all"]["episodes"] == 4
    assert m.models["habitual"].trained["data"]["quick"] is True
    assert m.models["encoder"].trained["torch_version"]

    enc = OnnxModel(out, "encoder", m, CPU, expected_robot="sample_diffbot")
    hab = OnnxModel(out, "habitual", m, CPU, expected_robot="sample_diffbot")
    z = enc(np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32))
    assert z.shape == (3, N_LATENT) and np.all(np.abs(z) <= 1.0)
    a = hab(np.zeros((2, N_HABITUAL_FEATURES), np.float32))
    assert a.shape == (2, 2) and np.all(np.abs(a) <= 1.0)
    assert sum(p.stat().st_size for p in out.iterdir()) < 2_000_000
