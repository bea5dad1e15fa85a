"""What the nodes load: the encoders, the habitual policy (with its latent source checked), the typical
risk and the world model's action normalisation, each a checked :class:`OnnxModel`."""
from __future__ import annotations

from pathlib import Path

from hjepa_agent.core.fingerprint import RobotFingerprint
from hjepa_agent.core.models.manifest import ModelEntry, load_manifest
from hjepa_agent.core.models.providers import select_providers
from hjepa_agent.core.models.robot import ModelMismatchError, retrain_hint, train_command
from hjepa_agent.core.models.sessions import OnnxModel


def load_encoder(models_dir: str | Path, prefer_cuda: bool = True,
                 expected: RobotFingerprint | None = None) -> OnnxModel:
    """The checked perception encoder: (N, 3, 64, 64) float32 -> (N, N_LATENT); ``expected``: the
    fingerprint of the robot this runs on (OnnxModel)."""
    return OnnxModel(models_dir, "encoder", providers=select_providers(prefer_cuda)[0], expected=expected)


LATENT_SOURCES = ("encoder", "world_encoder")
"""Encoders the habitual policy's latent can come from (perception's encoder_model)."""
HABITUAL_MODELS = {"encoder": "habitual", "world_encoder": "habitual_world"}
"""Manifest entry of the habitual policy trained on each latent source (both can ship side by side)."""


def habitual_latent_source(entry: ModelEntry) -> tuple[str, str | None]:
    """(latent source, sha256 of that encoder or None) recorded in a habitual entry's
    ``trained.data``; a policy with no record was trained on "encoder" (the old default)."""
    data = entry.trained.get("data") if isinstance(entry.trained.get("data"), dict) else {}
    sha = data.get("latent_encoder_sha256")
    return str(data.get("latent_source", "encoder")), (str(sha) if sha else None)


def load_habitual(models_dir: str | Path, prefer_cuda: bool = True, expected: RobotFingerprint | None = None,
                  latent_source: str = "encoder") -> tuple[OnnxModel, tuple[float, float], tuple[float, float]]:
    """The checked habitual policy, its action scale (m/s, rad/s) and the speed normalisation
    (m/s, rad/s) its features were trained with, both read from the manifest; ``expected``: the
    fingerprint of the robot this runs on (OnnxModel).

    ``latent_source``: the encoder perception computes the latent with ("encoder" or
    "world_encoder"); ModelMismatchError if the policy was trained on another one, or on
    another version of it (the manifest's sha256 of that encoder differs from the recorded one).
    """
    if latent_source not in LATENT_SOURCES:
        raise ValueError(f"latent_source must be one of {', '.join(LATENT_SOURCES)}, got {latent_source!r}")
    name = HABITUAL_MODELS[latent_source]
    if name not in load_manifest(models_dir).models:
        raise ModelMismatchError(
            f"{Path(models_dir) / 'manifest.yaml'}: no habitual policy trained on the {latent_source!r} latent "
            f"(entry {name!r}); train one with `{train_command(name, expected)}` and point "
            f"models_dir at DIR, or set latent_source and perception's encoder_model to a latent that has one")
    model = OnnxModel(models_dir, name, providers=select_providers(prefer_cuda)[0], expected=expected)
    m = model.manifest
    trained_on, trained_sha = habitual_latent_source(model.entry)
    retrain = retrain_hint(name, expected)
    if trained_on != latent_source:
        raise ModelMismatchError(
            f"{m.path}: the habitual policy was trained on the {trained_on!r} latent "
            f"(models.habitual.trained.data.latent_source) but latent_source is {latent_source!r}; set the "
            f"habitual node's latent_source and perception's encoder_model both to {trained_on!r} "
            f"(config/agent.yaml), or {retrain}")
    current = m.models.get(latent_source)
    if trained_sha is not None and current is not None and current.sha256 != trained_sha:
        raise ModelMismatchError(
            f"{m.path}: the habitual policy was trained on {latent_source} sha256 {trained_sha[:12]}... but "
            f"models.{latent_source}.sha256 is {current.sha256[:12]}...: that encoder changed since; {retrain}")
    if m.action_scale is None or len(m.action_scale) != 2:
        raise ModelMismatchError(f"{m.path}: action.scale missing or not 2 values; {retrain}")
    norm = m.observation.get("speed_norm")
    if not (isinstance(norm, (list, tuple)) and len(norm) == 2):
        raise ModelMismatchError(f"{m.path}: observation.speed_norm missing or not 2 values; {retrain}")
    return model, (float(m.action_scale[0]), float(m.action_scale[1])), (float(norm[0]), float(norm[1]))


def load_typical_risk(models_dir: str | Path, expected: RobotFingerprint | None = None) -> OnnxModel:
    """The checked typical-risk network (core/risk.py): context (N, 21) -> (N, 4). Always on the CPU:
    it runs once per world state inside the watchdog's tick, where a GPU round trip costs more.
    ``expected``: the fingerprint of the robot this runs on (OnnxModel)."""
    if "typical_risk" not in load_manifest(models_dir).models:
        raise ModelMismatchError(
            f"{Path(models_dir) / 'manifest.yaml'}: no typical_risk model; "
            f"{retrain_hint('typical_risk', expected, verb='train one')} (the watchdog's models_dir), or set "
            f"the watchdog's typical_risk: false (no risk-deviation scores)")
    return OnnxModel(models_dir, "typical_risk", providers=["CPUExecutionProvider"], expected=expected)


WORLD_CALIBRATION_FILE = "world_model_calibration.yaml"
"""Written next to the world models by `hjepa-agent train world-model`: s_pred, r per latent dim."""


def load_world_encoder(models_dir: str | Path, prefer_cuda: bool = True,
                       expected: RobotFingerprint | None = None) -> OnnxModel:
    """The checked JEPA encoder: image (N, 3, 64, 64) in [0, 1] and scan sectors / range max (N, 16) -> (N, 16);
    ``expected``: the fingerprint of the robot this runs on (OnnxModel)."""
    return OnnxModel(models_dir, "world_encoder", providers=select_providers(prefer_cuda)[0], expected=expected)


def world_action_norm(predictor: OnnxModel) -> tuple[float, float]:
    """(m/s, rad/s) the predictor's actions are divided by (the manifest's observation.speed_norm)."""
    norm = predictor.manifest.observation.get("speed_norm")
    if not (isinstance(norm, (list, tuple)) and len(norm) == 2):
        raise ModelMismatchError(f"{predictor.manifest.path}: observation.speed_norm missing; {predictor.hint}")
    return (float(norm[0]), float(norm[1]))


__all__ = ["HABITUAL_MODELS", "LATENT_SOURCES", "WORLD_CALIBRATION_FILE", "habitual_latent_source", "load_encoder",
           "load_habitual", "load_typical_risk", "load_world_encoder", "world_action_norm"]
