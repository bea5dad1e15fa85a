"""ONNX model loading: manifest checks, clear errors, provider selection.

Small models are built with torch (training side) once per module into a temp dir.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

import torch

from hjepa_agent.config.loader import ConfigError
from hjepa_agent.core import models as core_models
from hjepa_agent.core.models import ModelMismatchError, OnnxModel, load_manifest, select_providers
from hjepa_agent.train.export import export_onnx
from hjepa_agent.train.manifest import ModelRecord, write_manifest  # noqa: E402
from hjepa_agent.train.nets import Encoder, HabitualPolicy  # noqa: E402

CPU = ["CPUExecutionProvider"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    export_onnx(Encoder(), torch.rand(1, 3, 64, 64), d / "encoder.onnx", ["image"], ["latent"])
    export_onnx(HabitualPolicy(), torch.rand(1, 37), d / "habitual.onnx", ["features"], ["action"])
    write_manifest(d, "sample_diffbot", [ModelRecord("encoder", "encoder.onnx"),
                                         ModelRecord("habitual", "habitual.onnx")],
                   speed_norm=(0.8, 2.0), action_scale=(0.6, 1.8))
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
    enc = OnnxModel(models_dir, "encoder", m, CPU, expected_robot="sample_diffbot")
    hab = OnnxModel(models_dir, "habitual", m, CPU, expected_robot="sample_diffbot")
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


def test_wrong_robot(models_dir: Path) -> None:
    with pytest.raises(ModelMismatchError, match=r"trained for robot 'sample_diffbot'.*this robot is 'skidbot'"
                                                  r".*point models_dir"):
        OnnxModel(models_dir, "encoder", providers=CPU, expected_robot="skidbot")


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
