"""`hjepa-agent train habitual --quick` (both --latent modes): runs end to end and writes loadable,
well-described models."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from hjepa_agent.core.fingerprint import load_robot_fingerprint
from hjepa_agent.core.models import ModelMismatchError, OnnxModel, load_manifest
from hjepa_agent.core.types import N_HABITUAL_FEATURES, N_LATENT
from hjepa_agent.config.paths import data_path
from hjepa_agent.train.habitual import train_main

pytestmark = pytest.mark.training

CPU = ["CPUExecutionProvider"]
SHIPPED = load_robot_fingerprint(data_path("config", "robots", "diffbot.yaml"), data_path("config", "ego_model.yaml"))
"""The sample diffbot with the shipped ego model: what the trainers' defaults train for."""


def test_quick_training_writes_loadable_models(tmp_path: Path) -> None:
    out = tmp_path / "models"
    assert train_main(["--quick", "--out", str(out)]) == 0

    m = load_manifest(out)
    assert m.robot == "sample_diffbot" and m.format == 2
    assert m.fingerprint == SHIPPED   # the trainer's defaults: the sample diffbot with config/ego_model.yaml
    assert m.action_scale == (0.6, 1.8) and m.observation["speed_norm"] == [0.8, 2.0]
    hab_metrics = m.models["habitual"].trained["metrics"]
    assert hab_metrics["onnx_parity_max_abs_err"]["habitual"] <= 1e-4
    assert hab_metrics["onnx_parity_max_abs_err"]["encoder"] <= 1e-4
    assert [r["round"] for r in hab_metrics["rounds"]] == [0, 1]
    assert "policy_success" in hab_metrics["rounds"][0]
    assert hab_metrics["final_onnx_success"]["all"]["episodes"] == 4
    assert m.models["habitual"].trained["data"]["quick"] is True
    assert m.models["encoder"].trained["torch_version"]

    enc = OnnxModel(out, "encoder", m, CPU, expected=SHIPPED)
    hab = OnnxModel(out, "habitual", m, CPU, expected=SHIPPED)
    z = enc(np.random.default_rng(0).random((3, 3, 64, 64), dtype=np.float32))
    assert z.shape == (3, N_LATENT) and np.all(np.abs(z) <= 1.0)
    a = hab(np.zeros((2, N_HABITUAL_FEATURES), np.float32))
    assert a.shape == (2, 2) and np.all(np.abs(a) <= 1.0)
    assert sum(p.stat().st_size for p in out.iterdir()) < 2_000_000

    # The default policy reads encoder.onnx's latent, and says so.
    from hjepa_agent.core.models import load_habitual, sha256_file
    data = m.models["habitual"].trained["data"]
    assert data["latent_source"] == "encoder"
    assert data["latent_encoder_sha256"] == sha256_file(out / "encoder.onnx")
    assert load_habitual(out, prefer_cuda=False, expected=SHIPPED)[1] == (0.6, 1.8)
    with pytest.raises(ModelMismatchError, match=r"no habitual policy trained on the 'world_encoder' latent.*"
                                                 r"--latent world"):
        load_habitual(out, prefer_cuda=False, latent_source="world_encoder")


def test_world_latent_is_what_perception_computes() -> None:
    """The trainer's world latent (from observe()'s image and head) equals the runtime perception's
    with encoder_model=world_encoder, and the head's scan part is the scan input it feeds."""
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.perception import Perception
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.scenario import load_scenarios
    from hjepa_agent.sim.world import SimWorld
    from hjepa_agent.train.collect import Limits, observe, run_many
    from hjepa_agent.train.habitual import HEAD_SCAN, world_latent

    models = data_path("models")
    enc = OnnxModel(models, "world_encoder", load_manifest(models), CPU, expected=SHIPPED)
    robot = load_robot_description(data_path("config", "robots", "diffbot.yaml"))
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    limits = Limits.from_ego(ego)
    scenario = load_scenarios(data_path("config", "scenarios"))[0]
    with SimWorld(robot) as world:
        _, data = run_many(world, ego, [scenario], [0], limits, max_time_s=2.0)
        arr = data.arrays()
        assert np.array_equal(arr["head"][:, HEAD_SCAN], arr["scan"])
        world.reset(scenario, 3)
        spec = robot.scan
        perception = Perception(enc, encoder_reads_scan=True)
        for tick in range(3):
            _, image, head, _ = observe(world, limits, (0.0, 0.0), 0.1 * tick)
            perception.on_scan(0.1 * tick, world.scan(), spec.angle_min_rad, spec.angle_increment_rad,
                               spec.range_min_m, spec.range_max_m)
            percept = perception.on_image(0.1 * tick, world.render_camera(), 0.35)
            z = world_latent(enc, head[None], image)[0]
            assert np.array_equal(z, percept.latent)
            world.set_cmd(0.3, 0.5)
            world.step(0.1)


def test_quick_world_latent_training(tmp_path: Path) -> None:
    """--latent world trains only habitual_world.onnx on the frozen world encoder, merges the manifest."""
    from hjepa_agent.core.models import load_habitual
    from hjepa_agent.config.paths import data_path

    out = tmp_path / "models"
    shutil.copytree(data_path("models"), out)
    before_doc = yaml.safe_load((out / "manifest.yaml").read_text())
    before_text = (out / "manifest.yaml").read_text()
    before_bytes = {p.name: p.read_bytes() for p in out.iterdir()
                    if p.is_file() and p.name not in ("manifest.yaml", "habitual_world.onnx")}
    old_habitual = (out / "habitual_world.onnx").read_bytes()

    assert train_main(["--quick", "--latent", "world", "--out", str(out)]) == 0

    assert {p.name: p.read_bytes() for p in out.iterdir()
            if p.is_file() and p.name not in ("manifest.yaml", "habitual_world.onnx")} == before_bytes
    assert (out / "habitual_world.onnx").read_bytes() != old_habitual
    after_doc = yaml.safe_load((out / "manifest.yaml").read_text())
    after_text = (out / "manifest.yaml").read_text()
    for name in ("encoder", "habitual", "world_encoder", "world_predictor"):
        assert after_doc["models"][name] == before_doc["models"][name]
        assert _entry_text(after_text, name) == _entry_text(before_text, name)
    assert list(after_doc["models"]) == list(before_doc["models"])

    m = load_manifest(out)
    hab = m.models["habitual_world"].trained
    assert hab["data"]["latent_source"] == "world_encoder"
    assert hab["data"]["latent_encoder_sha256"] == m.models["world_encoder"].sha256
    assert hab["data"]["quick"] is True
    assert hab["metrics"]["onnx_parity_max_abs_err"]["habitual"] <= 1e-4
    assert set(hab["metrics"]["onnx_parity_max_abs_err"]) == {"habitual"}
    assert [r["round"] for r in hab["metrics"]["rounds"]] == [0, 1]
    assert "val_scan" not in hab["metrics"]["rounds"][0] and hab["metrics"]["rounds"][0]["val_bc"] > 0
    assert hab["metrics"]["final_onnx_success"]["all"]["episodes"] == 4
    assert set(hab["metrics"]["onnx_us_per_call"]) == {"world_encoder", "habitual"}

    model, _, _ = load_habitual(out, prefer_cuda=False, expected=SHIPPED,
                                latent_source="world_encoder")
    a = model(np.zeros((2, N_HABITUAL_FEATURES), np.float32))
    assert a.shape == (2, 2) and np.all(np.abs(a) <= 1.0)
    # the foundation policy (entry "habitual") is untouched and still loads for the "encoder" latent
    assert load_habitual(out, prefer_cuda=False, latent_source="encoder")[0].name == "habitual"


def _entry_text(manifest_text: str, name: str) -> list[str]:
    lines = manifest_text.splitlines()
    i = lines.index(f"  {name}:")
    j = i + 1
    while j < len(lines) and lines[j].startswith("    "):
        j += 1
    return lines[i:j]
