"""ONNX model loading: manifest checks, clear errors, provider selection, the robot fingerprint.

Small models are built with torch (training side) once per module into a temp dir, for the sample
diffbot with config/ego_model.yaml (SHIPPED: their fingerprint).
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import torch

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core import models as core_models
from hjepa_agent.core.fingerprint import load_robot_fingerprint, robot_fingerprint
from hjepa_agent.core.models import ModelMismatchError, OnnxModel, load_manifest, select_providers
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.train.export import export_onnx
from hjepa_agent.train.manifest import ModelRecord, stamp_fingerprint, write_manifest  # noqa: E402
from hjepa_agent.train.nets import Encoder, HabitualPolicy  # noqa: E402
from hjepa_agent.train.typical_risk import TypicalRiskNet  # noqa: E402

pytestmark = pytest.mark.training

CPU = ["CPUExecutionProvider"]
ROBOT = data_path("config", "robots", "diffbot.yaml")
EGO = data_path("config", "ego_model.yaml")
SHIPPED = load_robot_fingerprint(ROBOT, EGO)
"""The sample diffbot with the shipped ego model: the robot the test models are 'trained' for."""


def variant(robot=None, ego=None, **where):
    """The fingerprint of a robot derived from the sample one (``robot(desc)``, ``ego(ego)`` edit it)."""
    desc, model = load_robot_description(ROBOT), load_ego_model(EGO)
    return robot_fingerprint(robot(desc) if robot else desc, ego(model) if ego else model,
                             where.get("robot_file", "/robots/other.yaml"), where.get("ego_model_file", str(EGO)),
                             where.get("user", ""))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    export_onnx(Encoder(), torch.rand(1, 3, 64, 64), d / "encoder.onnx", ["image"], ["latent"])
    export_onnx(HabitualPolicy(), torch.rand(1, 37), d / "habitual.onnx", ["features"], ["action"])
    export_onnx(TypicalRiskNet(8), torch.rand(1, 21), d / "typical_risk.onnx", ["context"], ["risk_stats"])
    write_manifest(d, "sample_diffbot", [ModelRecord("encoder", "encoder.onnx"),
                                         ModelRecord("habitual", "habitual.onnx"),
                                         ModelRecord("typical_risk", "typical_risk.onnx")],
                   speed_norm=(0.8, 2.0), action_scale=(0.6, 1.8), fingerprint=SHIPPED)
    return d


@pytest.fixture
def models_dir(built: Path, tmp_path: Path) -> Path:
    d = tmp_path / "models"
    shutil.copytree(built, d)
    return d


def edit_manifest(d: Path, fn) -> None:
    p = d / "manifest.yaml"
    doc = yaml.safe_load(p.read_text())
    fn(doc)
    p.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_good_models_load_and_run(models_dir: Path) -> None:
    m = load_manifest(models_dir)
    assert m.robot == "sample_diffbot" and m.action_scale == (0.6, 1.8)
    assert m.fingerprint == SHIPPED
    enc = OnnxModel(models_dir, "encoder", m, CPU, expected=SHIPPED)
    hab = OnnxModel(models_dir, "habitual", m, CPU, expected=SHIPPED)
    z = enc(np.random.rand(1, 3, 64, 64).astype(np.float32))
    assert z.shape == (1, 16) and np.all(np.abs(z) <= 1.0)
    a = hab(np.random.rand(5, 37).astype(np.float32))
    assert a.shape == (5, 2) and np.all(np.abs(a) <= 1.0)
    assert enc.providers[0] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="expected"):
        hab(np.zeros((1, 36), np.float32))


def test_missing_file(models_dir: Path) -> None:
    (models_dir / "habitual.onnx").unlink()
    with pytest.raises(ModelMismatchError, match=r"habitual.onnx.*not found.*hjepa-agent train habitual"):
        OnnxModel(models_dir, "habitual", providers=CPU)


def test_unknown_model_name(models_dir: Path) -> None:
    with pytest.raises(ModelMismatchError, match="no model 'planner'"):
        OnnxModel(models_dir, "planner", providers=CPU)


def test_sha_mismatch(models_dir: Path) -> None:
    with open(models_dir / "encoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelMismatchError, match=r"sha256.*differs.*replaced or corrupted"):
        OnnxModel(models_dir, "encoder", providers=CPU)


def test_manifest_input_shape_disagrees_with_file(models_dir: Path, built: Path) -> None:
    # A manifest that describes 37 features while the file takes 40: the file is the odd one out.
    export_onnx(HabitualPolicy(features=40), torch.rand(1, 40), models_dir / "habitual.onnx",
                ["features"], ["action"])
    edit_manifest(models_dir, lambda d: d["models"]["habitual"].__setitem__(
        "sha256", core_models.sha256_file(models_dir / "habitual.onnx")))
    with pytest.raises(ModelMismatchError, match=r"'features' has shape \['batch', 40\] in the file"):
        OnnxModel(models_dir, "habitual", providers=CPU)


def test_manifest_shape_differs_from_runtime(models_dir: Path) -> None:
    edit_manifest(models_dir, lambda d: d["models"]["habitual"]["inputs"][0].__setitem__("shape", [-1, 40]))
    with pytest.raises(ModelMismatchError, match=r"models.habitual.inputs.*\[batch, 37\]"):
        OnnxModel(models_dir, "habitual", providers=CPU)


def test_same_robot_under_another_name_and_files_passes(models_dir: Path) -> None:
    """Names and file paths are not compared: a copy of the sample robot called otherwise is the same robot."""
    renamed = variant(robot=lambda d: dataclasses.replace(d, name="my_bot", left_wheel_joints=["l_joint"]),
                      ego=lambda e: dataclasses.replace(e, robot="my_bot"), user="habitual node")
    assert renamed == SHIPPED and renamed.sha256 == SHIPPED.sha256
    assert OnnxModel(models_dir, "habitual", providers=CPU, expected=renamed).name == "habitual"


@pytest.mark.parametrize("model, trainer", [("encoder", "habitual --latent encoder"),
                                            ("habitual", "habitual --latent encoder"),
                                            ("typical_risk", "typical-risk --runs RUNS")])
def test_a_robot_with_another_wheel_radius_is_refused_naming_key_file_and_command(models_dir: Path, model: str,
                                                                                   trainer: str) -> None:
    other = variant(robot=lambda d: dataclasses.replace(d, wheel_radius_m=0.07), user="watchdog node")
    with pytest.raises(ModelMismatchError) as err:
        OnnxModel(models_dir, model, providers=CPU, expected=other)
    msg = str(err.value)
    assert msg.startswith(f"watchdog node: {model} ({models_dir / (model + '.onnx')}) was trained for another robot")
    assert "wheel_radius_m: 0.05 trained, 0.07 here" in msg and msg.count(" trained, ") == 1
    assert f"`hjepa-agent train {trainer} --robot /robots/other.yaml --ego-model {EGO} --out DIR`" in msg
    if model == "typical_risk":   # not the habitual policy's command (issue 14): where its runs come from too
        assert "train habitual" not in msg and "hjepa-agent sim --scenario config/scenarios" in msg


def test_a_robot_with_another_scan_fov_is_refused(models_dir: Path) -> None:
    narrow = variant(robot=lambda d: dataclasses.replace(d, scan=dataclasses.replace(d.scan, fov_deg=270.0)))
    with pytest.raises(ModelMismatchError, match=r"scan\.coverage: '1{16}' trained, '0011{12}0' here; retrain "
                                                 r"it with "
                                                 r"`hjepa-agent train habitual --latent encoder --robot"):
        OnnxModel(models_dir, "habitual", providers=CPU, expected=narrow)


def test_an_ego_model_with_another_max_accel_is_refused(models_dir: Path) -> None:
    def faster(e):
        lin = dataclasses.replace(e.hard.kinematics.linear_x, max_accel=1.5)
        kin = dataclasses.replace(e.hard.kinematics, linear_x=lin)
        return dataclasses.replace(e, hard=dataclasses.replace(e.hard, kinematics=kin))
    fp = variant(ego=faster, ego_model_file="/robots/fast_ego.yaml")
    with pytest.raises(ModelMismatchError, match=r"ego\.hard\.kinematics\.linear_x\.max_accel: 1\.0 trained, 1\.5 "
                                                 r"here.*--ego-model /robots/fast_ego\.yaml --out DIR"):
        OnnxModel(models_dir, "encoder", providers=CPU, expected=fp)


def test_an_old_manifest_without_fingerprint_is_refused_with_the_fix(models_dir: Path) -> None:
    def old(doc: dict) -> None:
        doc["format"] = 1
        del doc["fingerprint"]
    edit_manifest(models_dir, old)
    m = load_manifest(models_dir)
    assert m.format == 1 and m.fingerprint is None
    with pytest.raises(ModelMismatchError, match=r"^perception node: encoder \(.*encoder\.onnx\): .*\(format 1\) "
                                                 r"records no robot fingerprint.*retrain it with `hjepa-agent train "
                                                 r"habitual --latent encoder --robot .*diffbot\.yaml --ego-model"):
        OnnxModel(models_dir, "encoder", providers=CPU, expected=SHIPPED.used_by("perception node"))
    assert OnnxModel(models_dir, "encoder", providers=CPU).name == "encoder"   # tools that name no robot


def test_a_fingerprint_edited_by_hand_or_an_unknown_format_is_a_config_error(models_dir: Path) -> None:
    edit_manifest(models_dir, lambda d: d["fingerprint"]["values"].__setitem__("wheel_radius_m", 0.07))
    with pytest.raises(ConfigError, match=r"fingerprint\.sha256: .* is not the sha256 of fingerprint\.values"):
        load_manifest(models_dir)
    edit_manifest(models_dir, lambda d: d.__setitem__("format", 3))
    with pytest.raises(ConfigError, match=r"format: unsupported format 3 \(this runtime reads 1, 2\)"):
        load_manifest(models_dir)


def test_a_merge_into_models_of_another_robot_is_refused(models_dir: Path) -> None:
    other = variant(robot=lambda d: dataclasses.replace(d, wheel_separation_m=0.3))
    with pytest.raises(ValueError, match=r"trained for another robot \(wheel_separation_m: 0\.27 there, 0\.3 here\)"):
        write_manifest(models_dir, "sample_diffbot", [ModelRecord("encoder", "encoder.onnx")], (0.8, 2.0), (0.6, 1.8),
                       merge=True, fingerprint=other)
    assert load_manifest(models_dir).fingerprint == SHIPPED   # untouched


def test_stamping_an_old_manifest_keeps_every_entry_and_refuses_another_ego_model(models_dir: Path,
                                                                                   tmp_path: Path) -> None:
    def old(doc: dict) -> None:
        doc["format"] = 1
        del doc["fingerprint"]
    edit_manifest(models_dir, old)
    before = yaml.safe_load((models_dir / "manifest.yaml").read_text())
    ego = tmp_path / "ego.yaml"
    ego.write_text(EGO.read_text().replace("max_linear_mps: 0.6", "max_linear_mps: 0.5"))
    with pytest.raises(ValueError, match=r"refusing to stamp.*action\.scale is \[0\.6, 1\.8\] there, \[0\.5, 1\.8\]"):
        stamp_fingerprint(models_dir, ROBOT, ego)
    ego.write_text(EGO.read_text().replace("robot: sample_diffbot", "robot: other_bot"))
    with pytest.raises(ValueError, match=r"robot is 'sample_diffbot' there, 'other_bot'"):
        stamp_fingerprint(models_dir, ROBOT, ego)
    assert load_manifest(models_dir).fingerprint is None   # refusals write nothing
    stamp_fingerprint(models_dir, ROBOT, EGO)
    after = yaml.safe_load((models_dir / "manifest.yaml").read_text())
    assert after["format"] == 2 and {k: v for k, v in after.items() if k not in ("format", "fingerprint")} == \
        {k: v for k, v in before.items() if k != "format"}
    assert load_manifest(models_dir).fingerprint == SHIPPED
    assert OnnxModel(models_dir, "encoder", providers=CPU, expected=SHIPPED).name == "encoder"


def test_latent_size_mismatch(models_dir: Path) -> None:
    edit_manifest(models_dir, lambda d: d["observation"].__setitem__("latent", 32))
    with pytest.raises(ModelMismatchError, match=r"observation.latent is 32 but this runtime builds 16"):
        OnnxModel(models_dir, "encoder", providers=CPU)


def test_action_names_mismatch(models_dir: Path) -> None:
    edit_manifest(models_dir, lambda d: d["action"].__setitem__("names", ["vx", "vy", "wz"]))
    with pytest.raises(ConfigError, match="action.scale"):
        load_manifest(models_dir)
    edit_manifest(models_dir, lambda d: d["action"].pop("scale"))
    with pytest.raises(ModelMismatchError, match="action.names"):
        OnnxModel(models_dir, "encoder", providers=CPU)


def test_malformed_manifest_names_key(models_dir: Path) -> None:
    edit_manifest(models_dir, lambda d: d["models"]["encoder"]["inputs"][0].__setitem__("dtype", "float99"))
    with pytest.raises(ConfigError, match=r"manifest.yaml: models.encoder.inputs\[0\].dtype: unknown dtype"):
        load_manifest(models_dir)
    with pytest.raises(ConfigError, match="file not found"):
        load_manifest(models_dir / "nowhere")


def test_provider_selection_logs_one_line_and_never_lies(caplog: pytest.LogCaptureFixture) -> None:
    core_models.probe_cuda.cache_clear()
    with caplog.at_level(logging.INFO, logger="hjepa_agent.core.models"):
        providers, why = select_providers()
        select_providers()
    lines = [r for r in caplog.records if r.name == "hjepa_agent.core.models"]
    if providers[0] == "CUDAExecutionProvider":  # a machine whose CUDA probe session really ran
        assert providers == ["CUDAExecutionProvider", "CPUExecutionProvider"] and why == "cuda"
        assert not [r for r in lines if "not usable" in r.getMessage()]
        return
    assert providers == CPU
    assert len(lines) == 1 and lines[0].getMessage().startswith("CUDA not usable (")
    assert lines[0].getMessage().endswith("running on CPU") and why.startswith("cpu (")
    assert select_providers(prefer_cuda=False)[0] == CPU


def test_load_habitual_latent_source(models_dir: Path) -> None:
    """No record means the policy reads 'encoder' (the old default); a differing record is refused."""
    from hjepa_agent.core.models import load_habitual
    model, scale, norm = load_habitual(models_dir, prefer_cuda=False, latent_source="encoder")
    assert scale == (0.6, 1.8) and norm == (0.8, 2.0)
    with pytest.raises(ModelMismatchError, match=r"no habitual policy trained on the 'world_encoder' latent "
                                                 r"\(entry 'habitual_world'\).*train habitual --latent world"):
        load_habitual(models_dir, prefer_cuda=False, latent_source="world_encoder")
    with pytest.raises(ValueError, match="latent_source must be one of"):
        load_habitual(models_dir, prefer_cuda=False, latent_source="world")

    def record(doc: dict) -> None:
        doc["models"]["habitual"]["trained"] = {"data": {"latent_source": "world_encoder",
                                                         "latent_encoder_sha256": "ab" * 32}}
        doc["models"]["habitual_world"] = dict(doc["models"]["habitual"])  # same file, as the world entry
    edit_manifest(models_dir, record)
    with pytest.raises(ModelMismatchError, match=r"trained on the 'world_encoder' latent.*"
                                                 r"latent_source is 'encoder'.*train habitual --latent encoder"):
        load_habitual(models_dir, prefer_cuda=False)
    # No world_encoder in this manifest: the recorded sha256 cannot be compared; the source matches.
    assert load_habitual(models_dir, prefer_cuda=False, latent_source="world_encoder")[0].name == "habitual_world"


def test_load_habitual_refuses_a_changed_encoder(models_dir: Path) -> None:
    from hjepa_agent.core.models import load_habitual

    def record(doc: dict) -> None:
        doc["models"]["habitual"]["trained"] = {"data": {"latent_source": "encoder",
                                                         "latent_encoder_sha256": "ab" * 32}}
    edit_manifest(models_dir, record)
    with pytest.raises(ModelMismatchError, match=r"trained on encoder sha256 abababababab.*changed since.*"
                                                 r"--latent encoder"):
        load_habitual(models_dir, prefer_cuda=False)

    def good(doc: dict) -> None:
        doc["models"]["habitual"]["trained"]["data"]["latent_encoder_sha256"] = doc["models"]["encoder"]["sha256"]
    edit_manifest(models_dir, good)
    assert load_habitual(models_dir, prefer_cuda=False)[0].name == "habitual"
