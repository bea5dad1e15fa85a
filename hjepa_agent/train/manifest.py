"""Write ``models/manifest.yaml`` for exported ONNX models.

The schema is the one :func:`hjepa_agent.core.models.load_manifest` reads (see
that module's docstring). Shapes, names and dtypes are read from the ONNX files
themselves, so the manifest cannot disagree with what was exported. The robot
fingerprint (hjepa_agent/core/fingerprint.py) is that of the robot description and ego
model the trainer ran on.

Maintainer step, not a user's fix: :func:`stamp_fingerprint` (``hjepa-agent train
fingerprint``) writes the fingerprint of a given robot into an existing manifest WITHOUT
retraining, for models known to have been trained on exactly that robot (the shipped models
on the sample diffbot, after a change that adds keys to the fingerprint, e.g. a new sensor
field). It refuses unless the manifest's robot name, speed normalisation and action scale
are the ego model's.
"""
from __future__ import annotations

import datetime
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch
import yaml

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.fingerprint import RobotFingerprint, load_robot_fingerprint
from hjepa_agent.core.models import (ACTION_NAMES, EXPECTED_OBSERVATION, MANIFEST_FILE, MANIFEST_FORMAT, load_manifest,
                                     sha256_file)

log = logging.getLogger(__name__)

_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
                onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
                onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.BOOL: "bool"}


@dataclass
class ModelRecord:
    """One exported model: its file (relative to the models dir) and how it was trained.

    trained: free-form record, e.g. {"data": {...}, "metrics": {...}}; versions and
    the date are added by :func:`write_manifest`.
    """

    name: str
    file: str
    trained: dict[str, Any] = field(default_factory=dict)
    io: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
    """(inputs, outputs) specs ({name, shape, dtype}) of a file that is not an ONNX model (the look
    bank, core/look.py); None: read from the ONNX file."""


def _io_specs(values: Any) -> list[dict[str, Any]]:
    specs = []
    for v in values:
        tt = v.type.tensor_type
        shape: list[int | str] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            else:
                shape.append(d.dim_param or -1)
        specs.append({"name": v.name, "shape": shape, "dtype": _ONNX_DTYPES.get(tt.elem_type, str(tt.elem_type))})
    return specs


def _plain(x: Any) -> Any:
    """Convert numpy scalars/arrays and tuples so yaml.safe_dump accepts them."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "tolist"):
        return x.tolist()
    return x


def _fingerprint_doc(fp: RobotFingerprint) -> dict[str, Any]:
    return {"sha256": fp.sha256, "values": dict(fp.values)}


def _write(path: Path, doc: dict[str, Any]) -> None:
    path.write_text("# Written by hjepa_agent.train.manifest; do not edit by hand (sha256 is checked).\n"
                    + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110))


def write_manifest(out_dir: str | Path, robot: str, records: list[ModelRecord],
                   speed_norm: tuple[float, float], action_scale: tuple[float, float],
                   merge: bool = False, *, fingerprint: RobotFingerprint) -> Path:
    """Write ``<out_dir>/manifest.yaml`` describing ``records``; returns its path.

    robot: the ego model's robot name (informative); fingerprint: of the robot description and ego
    model the models were trained on (core/fingerprint.py), what loaders compare;
    speed_norm: (max_linear_mps, max_angular_rps) passed to habitual_features;
    action_scale: multiply the habitual output by it to get (v m/s, w rad/s).
    merge: keep the entries of an existing manifest (unchanged) and add or replace only
    ``records``; raises ValueError if its format, fingerprint, observation or action differ from
    these (every model of a models dir is trained for one robot).
    """
    out_dir = Path(out_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    models: dict[str, Any] = {}
    for rec in records:
        path = out_dir / rec.file
        if rec.io is None:
            graph = onnx.load(str(path)).graph
            inputs, outputs = _io_specs(graph.input), _io_specs(graph.output)
        else:
            inputs, outputs = _plain(list(rec.io[0])), _plain(list(rec.io[1]))
        trained = dict(_plain(rec.trained))
        trained.setdefault("torch_version", str(torch.__version__))
        trained.setdefault("onnx_version", onnx.__version__)
        trained.setdefault("onnxruntime_version", ort.__version__)
        trained.setdefault("python_version", platform.python_version())
        trained.setdefault("date", stamp)
        models[rec.name] = {"file": rec.file, "sha256": sha256_file(path),
                            "bytes": path.stat().st_size,
                            "inputs": inputs, "outputs": outputs,
                            "trained": trained}
    obs = {k: list(v) if isinstance(v, tuple) else v for k, v in EXPECTED_OBSERVATION.items()}
    obs["speed_norm"] = [float(s) for s in speed_norm]
    doc = {"format": MANIFEST_FORMAT, "robot": robot, "fingerprint": _fingerprint_doc(fingerprint),
           "observation": obs,
           "action": {"names": list(ACTION_NAMES), "scale": [float(s) for s in action_scale],
                      "note": "habitual output is normalised to [-1, 1]; (v, w) = output * scale"},
           "models": models}
    path = out_dir / MANIFEST_FILE
    if merge and path.is_file():
        old = yaml.safe_load(path.read_text()) or {}
        if old.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{path}: cannot merge into a format-{old.get('format')} manifest (no robot "
                             f"fingerprint): train into an empty --out, or retrain its models (a maintainer "
                             f"whose models were trained on exactly this robot stamps it first: "
                             f"`hjepa-agent train fingerprint --out {out_dir}`)")
        old_fp = load_manifest(out_dir).fingerprint
        if old_fp is not None and old_fp.sha256 != fingerprint.sha256:
            diffs = "; ".join(f"{k}: {a!r} there, {b!r} here" for k, a, b in old_fp.differences(fingerprint))
            raise ValueError(f"{path}: cannot merge: its models were trained for another robot ({diffs}); "
                             f"every model of a models dir is trained for one robot: train into an empty --out")
        for key in ("observation", "action"):   # the robot's name is not compared, its fingerprint is
            if old.get(key) != doc[key]:
                raise ValueError(f"{path}: cannot merge: {key} is {old.get(key)!r} there, {doc[key]!r} here")
        doc["models"] = {**(old.get("models") or {}), **models}
    _write(path, doc)
    log.info("wrote %s (%s)", path, ", ".join(models))
    return path


def stamp_fingerprint(models_dir: str | Path, robot_file: str | Path, ego_model_file: str | Path) -> Path:
    """Maintainer step (module docstring): write the fingerprint of ``robot_file`` with ``ego_model_file``
    into ``<models_dir>/manifest.yaml`` (format 1 or 2) without retraining; every other key and entry is
    kept as it is. ValueError unless the manifest's robot name is the ego model's robot and its
    observation.speed_norm and action.scale are the ego model's hard velocity and operating limits (what
    the trainers derive from it), i.e. unless the models were evidently trained with this ego model."""
    fp = load_robot_fingerprint(robot_file, ego_model_file)
    ego = load_ego_model(ego_model_file)
    path = Path(models_dir) / MANIFEST_FILE
    manifest = load_manifest(models_dir)   # ConfigError on a malformed one
    manifest.check_compatible()            # this runtime's observation and action spaces
    k = ego.hard.kinematics
    want = {"robot": ego.robot, "observation.speed_norm": [k.linear_x.max_velocity, k.angular_z.max_velocity],
            "action.scale": [ego.operating.max_linear_mps, ego.operating.max_angular_rps]}
    have = {"robot": manifest.robot, "observation.speed_norm": list(manifest.observation.get("speed_norm") or []),
            "action.scale": list(manifest.action_scale or [])}
    wrong = [f"{key} is {have[key]!r} there, {want[key]!r} in {ego_model_file}" for key in want
             if have[key] != want[key]]
    if wrong:
        raise ValueError(f"{path}: refusing to stamp the fingerprint of {robot_file} with {ego_model_file}: "
                         f"{'; '.join(wrong)}; these models were not trained with this ego model: retrain them")
    doc = yaml.safe_load(path.read_text())
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "fingerprint":
            continue
        out[key] = MANIFEST_FORMAT if key == "format" else value
        if key == "robot":
            out["fingerprint"] = _fingerprint_doc(fp)
    _write(path, out)
    log.info("stamped %s with the fingerprint of %s + %s (sha256 %s...)", path, robot_file, ego_model_file,
             fp.sha256[:12])
    return path


def stamp_main(argv: list[str] | None = None) -> int:
    """``hjepa-agent train fingerprint``: :func:`stamp_fingerprint` (a maintainer step)."""
    import argparse

    from hjepa_agent.config.paths import data_path
    ap = argparse.ArgumentParser(
        prog="hjepa-agent train fingerprint",
        description="Maintainer step: write the robot fingerprint of --robot with --ego-model into the manifest "
                    "of --out WITHOUT retraining. Only for models known to have been trained on exactly that robot "
                    "(e.g. the shipped models after the fingerprint gained a key); a user whose robot differs "
                    "retrains instead (the refusal gives the command).")
    ap.add_argument("--out", type=Path, default=data_path("models"), help="models dir (default: the package's)")
    ap.add_argument("--robot", type=Path, default=data_path("config", "robots", "diffbot.yaml"),
                    help="robot description YAML the models were trained on")
    ap.add_argument("--ego-model", type=Path, default=data_path("config", "ego_model.yaml"),
                    help="ego model YAML the models were trained with")
    args = ap.parse_args(argv)
    stamp_fingerprint(args.out, args.robot, args.ego_model)
    return 0
