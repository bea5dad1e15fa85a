"""``models/manifest.yaml``: its schema (the package docstring), reading it with every key checked, and
whether its observation and action spaces and shapes are this runtime's."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hjepa_agent.config.loader import ConfigError, read_yaml
from hjepa_agent.core.fingerprint import ACTION_NAMES, EXPECTED_OBSERVATION, RobotFingerprint
from hjepa_agent.core.models.robot import RETRAIN_HINT, ModelMismatchError, check_robot, retrain_hint
from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.types import N_HABITUAL_FEATURES, N_LATENT, N_SCAN_BINS

MANIFEST_FILE = "manifest.yaml"
MANIFEST_FORMAT = 2
"""Format written; 2 added the robot fingerprint."""
MANIFEST_FORMATS_READ = (1, 2)
"""Formats read; a format-1 manifest has no fingerprint (refused by a loader that expects one)."""
EXPECTED_IO = {"encoder": (((3, IMAGE_SIZE, IMAGE_SIZE),), ((N_LATENT,),)),
               "habitual": (((N_HABITUAL_FEATURES,),), ((len(ACTION_NAMES),),)),
               "habitual_world": (((N_HABITUAL_FEATURES,),), ((len(ACTION_NAMES),),)),
               "world_encoder": (((3, IMAGE_SIZE, IMAGE_SIZE), (N_SCAN_BINS,)), ((N_LATENT,),)),
               "world_predictor": (((N_LATENT,), (len(ACTION_NAMES),)), ((5, N_LATENT),)),
               "typical_risk": (((5 + N_SCAN_BINS,),), ((4,),)), "world_look": (((3, IMAGE_SIZE, IMAGE_SIZE),), ((),))}
"""Per known model: (input shapes, output shapes) without the batch axis, in manifest order (world_look: look.py)."""
"""dtype name in the manifest -> ONNX Runtime type string."""
DTYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "int64": "tensor(int64)",
           "int32": "tensor(int32)", "uint8": "tensor(uint8)", "bool": "tensor(bool)"}


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, shape (int, or -1 / a name for a dynamic axis), dtype name."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str

    def fixed_tail(self) -> tuple[int | str, ...]:
        """Shape without the leading batch axis."""
        return self.shape[1:]


@dataclass(frozen=True)
class ModelEntry:
    """A model of the manifest: file (relative to models_dir), its sha256, inputs, outputs, training record."""

    name: str
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    trained: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """Parsed ``manifest.yaml``; see the module docstring for the schema."""

    path: Path
    format: int
    robot: str
    observation: dict[str, Any]
    action_names: tuple[str, ...]
    action_scale: tuple[float, ...] | None
    models: dict[str, ModelEntry]
    fingerprint: RobotFingerprint | None = None
    """The robot the models were trained for (core/fingerprint.py); None in a format-1 manifest."""

    def check_compatible(self, model: str | None = None, expected: RobotFingerprint | None = None) -> None:
        """Raise ModelMismatchError if the observation/action spaces differ from this runtime's or, with
        ``expected`` (the fingerprint of the robot this runs on), if the manifest's robot fingerprint
        is missing or differs. ``model``: the model being loaded, whose training command the message gives."""
        where = str(self.path)
        hint = retrain_hint(model, expected) if model else RETRAIN_HINT
        for key, want in EXPECTED_OBSERVATION.items():
            got = self.observation.get(key)
            got_cmp = tuple(got) if isinstance(got, list) else got
            if got_cmp != want:
                raise ModelMismatchError(
                    f"{where}: observation.{key} is {got!r} but this runtime builds {list(want) if isinstance(want, tuple) else want} "
                    f"(hjepa_agent/core/types.py, core/perception.py); {hint}")
        if self.action_names != ACTION_NAMES:
            raise ModelMismatchError(f"{where}: action.names is {list(self.action_names)} but this runtime "
                                     f"commands {list(ACTION_NAMES)}; {hint}")
        for name, entry in self.models.items():
            if name not in EXPECTED_IO:
                continue
            want_in, want_out = EXPECTED_IO[name]
            for kind, specs, want in (("inputs", entry.inputs, want_in), ("outputs", entry.outputs, want_out)):
                if tuple(tuple(spec.fixed_tail()) for spec in specs) != tuple(want):
                    shapes = [list(s.shape) for s in specs]
                    raise ModelMismatchError(
                        f"{where}: models.{name}.{kind} shapes are {shapes} but this runtime needs "
                        f"{', '.join('[batch, ' + ', '.join(map(str, w)) + ']' for w in want)}; "
                        f"{retrain_hint(name, expected)}")
        if expected is not None:
            self.check_robot(model or "?", expected)

    def check_robot(self, model: str, expected: RobotFingerprint) -> None:
        """Raise ModelMismatchError unless the manifest's robot fingerprint equals ``expected``'s
        (:func:`hjepa_agent.core.models.robot.check_robot`)."""
        check_robot(self, model, expected)


def _need(d: dict, key: str, typ: type | tuple[type, ...], path: Path, prefix: str) -> Any:
    full = f"{prefix}.{key}" if prefix else key
    if key not in d:
        raise ConfigError(path, full, "missing required key")
    val = d[key]
    if not isinstance(val, typ) or isinstance(val, bool) and typ is not bool:
        raise ConfigError(path, full, f"expected {getattr(typ, '__name__', typ)}, got {val!r}")
    return val


def _tensor(d: Any, path: Path, prefix: str) -> TensorSpec:
    if not isinstance(d, dict):
        raise ConfigError(path, prefix, f"expected a mapping, got {d!r}")
    shape = _need(d, "shape", list, path, prefix)
    for i, dim in enumerate(shape):
        if isinstance(dim, bool) or not isinstance(dim, (int, str)) or (isinstance(dim, int) and dim < -1):
            raise ConfigError(path, f"{prefix}.shape[{i}]", f"expected an int >= -1 or a name, got {dim!r}")
    dtype = _need(d, "dtype", str, path, prefix)
    if dtype not in DTYPES:
        raise ConfigError(path, f"{prefix}.dtype", f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    return TensorSpec(_need(d, "name", str, path, prefix), tuple(shape), dtype)


def load_manifest(models_dir: str | Path) -> Manifest:
    """Read ``<models_dir>/manifest.yaml``. Raises ConfigError naming file, key and value."""
    path = Path(models_dir) / MANIFEST_FILE
    data = read_yaml(path)
    fmt = _need(data, "format", int, path, "")
    if fmt not in MANIFEST_FORMATS_READ:
        raise ConfigError(path, "format", f"unsupported format {fmt} (this runtime reads "
                                          f"{', '.join(map(str, MANIFEST_FORMATS_READ))})")
    fingerprint = None if fmt < 2 else _fingerprint(_need(data, "fingerprint", dict, path, ""), path)
    obs = _need(data, "observation", dict, path, "")
    action = _need(data, "action", dict, path, "")
    names = _need(action, "names", list, path, "action")
    scale = action.get("scale")
    if scale is not None and (not isinstance(scale, list) or len(scale) != len(names)
                              or not all(isinstance(s, (int, float)) and s > 0 for s in scale)):
        raise ConfigError(path, "action.scale", f"expected {len(names)} positive numbers, got {scale!r}")
    models: dict[str, ModelEntry] = {}
    for name, m in _need(data, "models", dict, path, "").items():
        pre = f"models.{name}"
        if not isinstance(m, dict):
            raise ConfigError(path, pre, f"expected a mapping, got {m!r}")
        ins = _need(m, "inputs", list, path, pre)
        outs = _need(m, "outputs", list, path, pre)
        trained = m.get("trained") or {}
        models[str(name)] = ModelEntry(
            str(name), _need(m, "file", str, path, pre), _need(m, "sha256", str, path, pre),
            tuple(_tensor(t, path, f"{pre}.inputs[{i}]") for i, t in enumerate(ins)),
            tuple(_tensor(t, path, f"{pre}.outputs[{i}]") for i, t in enumerate(outs)),
            trained if isinstance(trained, dict) else {})
    return Manifest(path, fmt, str(_need(data, "robot", str, path, "")), dict(obs), tuple(names),
                    tuple(float(s) for s in scale) if scale is not None else None, models, fingerprint)


def _fingerprint(d: dict, path: Path) -> RobotFingerprint:
    """The manifest's ``fingerprint: {sha256, values}``; ConfigError unless the sha256 is that of the values."""
    values = _need(d, "values", dict, path, "fingerprint")
    digest = _need(d, "sha256", str, path, "fingerprint")
    try:
        fp = RobotFingerprint.of(values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(path, "fingerprint.values", str(exc)) from exc
    if fp.sha256 != digest:
        raise ConfigError(path, "fingerprint.sha256", f"{digest[:12]}... is not the sha256 of fingerprint.values "
                                                      f"({fp.sha256[:12]}...): the manifest was edited by hand; "
                                                      f"restore it or retrain the models")
    return fp


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["DTYPES", "EXPECTED_IO", "MANIFEST_FILE", "MANIFEST_FORMAT", "MANIFEST_FORMATS_READ", "Manifest", "ModelEntry",
           "TensorSpec", "load_manifest", "sha256_file"]
