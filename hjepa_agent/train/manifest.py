"""Write ``models/manifest.yaml`` for exported ONNX models.

The schema is the one :func:`hjepa_agent.core.models.load_manifest` reads (see
that module's docstring). Shapes, names and dtypes are read from the ONNX files
themselves, so the manifest cannot disagree with what was exported.
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

from hjepa_agent.core.models import ACTION_NAMES, EXPECTED_OBSERVATION, MANIFEST_FILE, MANIFEST_FORMAT, sha256_file

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


def write_manifest(out_dir: str | Path, robot: str, records: list[ModelRecord],
                   speed_norm: tuple[float, float], action_scale: tuple[float, float],
                   merge: bool = False) -> Path:
    """Write ``<out_dir>/manifest.yaml`` describing ``records``; returns its path.

    speed_norm: (max_linear_mps, max_angular_rps) passed to habitual_features;
    action_scale: multiply the habitual output by it to get (v m/s, w rad/s).
    merge: keep the entries of an existing manifest (unchanged) and add or replace only
    ``records``; raises ValueError if its robot, observation or action differ from these.
    """
    out_dir = Path(out_dir)
    stamp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    models: dict[str, Any] = {}
    for rec in records:
        path = out_dir / rec.file
        graph = onnx.load(str(path)).graph
        trained = dict(_plain(rec.trained))
        trained.setdefault("torch_version", str(torch.__version__))
        trained.setdefault("onnx_version", onnx.__version__)
        trained.setdefault("onnxruntime_version", ort.__version__)
        trained.setdefault("python_version", platform.python_version())
        trained.setdefault("date", stamp)
        models[rec.name] = {"file": rec.file, "sha256": sha256_file(path),
                            "bytes": path.stat().st_size,
                            "inputs": _io_specs(graph.input), "outputs": _io_specs(graph.output),
                            "trained": trained}
    obs = {k: list(v) if isinstance(v, tuple) else v for k, v in EXPECTED_OBSERVATION.items()}
    obs["speed_norm"] = [float(s) for s in speed_norm]
    doc = {"format": MANIFEST_FORMAT, "robot": robot, "observation": obs,
           "action": {"names": list(ACTION_NAMES), "scale": [float(s) for s in action_scale],
                      "note": "habitual output is normalised to [-1, 1]; (v, w) = output * scale"},
           "models": models}
    path = out_dir / MANIFEST_FILE
    if merge and path.is_file():
        old = yaml.safe_load(path.read_text()) or {}
        for key in ("format", "robot", "observation", "action"):
            if old.get(key) != doc[key]:
                raise ValueError(f"{path}: cannot merge: {key} is {old.get(key)!r} there, {doc[key]!r} here")
        doc["models"] = {**(old.get("models") or {}), **models}
    path.write_text("# Written by hjepa_agent.train.manifest; do not edit by hand (sha256 is checked).\n"
                    + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=110))
    log.info("wrote %s (%s)", path, ", ".join(models))
    return path
