"""ONNX models of the agent: execution-provider choice, the manifest, checked sessions.

``models/manifest.yaml`` (written by :mod:`hjepa_agent.train.manifest`)::

    format: 2
    robot: sample_diffbot                  # ego model's robot name (informative: names are not compared)
    fingerprint: {sha256: ..., values: {wheel_radius_m: 0.05, scan.n_beams: 64, ...}}  # core/fingerprint.py
    observation: {image: [3, 64, 64], scan_bins: 16, latent: 16, habitual_features: 37,
                  speed_norm: [0.8, 2.0]}  # (max_linear_mps, max_angular_rps) given to habitual_features
    action: {names: [linear_x, angular_z], scale: [0.6, 1.8]}  # (v, w) = habitual output * scale
    models:
      encoder:  {file: encoder.onnx, sha256: ..., inputs: [{name: image, shape: [batch, 3, 64, 64],
                 dtype: float32}], outputs: [...], trained: {data: ..., metrics: {...}, ...}}
      habitual: {...}

A dynamic dimension is written as -1 or as a name. Every check fails loudly at
construction with :class:`ModelMismatchError` saying what differs and what to do;
a malformed manifest raises :class:`~hjepa_agent.config.loader.ConfigError`.
This module imports onnxruntime only (no onnx, no torch).

The robot: ``fingerprint`` is that of the robot description and ego model the models were
trained on (:mod:`hjepa_agent.core.fingerprint`); a loader given the fingerprint of the robot it
runs on (``expected``) refuses a model whose manifest has another one, naming each differing key
and the one command (:func:`train_command`) that trains that model for this robot. A format-1
manifest (written before fingerprints) is read as having none, and refused the same way.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import logging
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from hjepa_agent.config.loader import ConfigError, read_yaml
from hjepa_agent.core.fingerprint import ACTION_NAMES, EXPECTED_OBSERVATION, RobotFingerprint
from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.types import N_HABITUAL_FEATURES, N_LATENT, N_SCAN_BINS

log = logging.getLogger(__name__)

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
RETRAIN_HINT = "retrain with `hjepa-agent train habitual --out DIR` and point models_dir at DIR"
TRAINERS = {"encoder": "habitual --latent encoder", "habitual": "habitual --latent encoder",
            "habitual_world": "habitual --latent world",
            "world_encoder": "world-model", "world_predictor": "world-model", "planner_policy": "planner",
            "planner_logz": "planner", "subgoal_policy": "subgoals", "subgoal_logz": "subgoals",
            "typical_risk": "typical-risk --runs RUNS", "world_look": "world-model --recalibrate"}
"""The `hjepa-agent train` verb (with the options that matter) that makes each model of the manifest."""
_DTYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "int64": "tensor(int64)",
           "int32": "tensor(int32)", "uint8": "tensor(uint8)", "bool": "tensor(bool)"}
# A minimal ONNX model (y = x + x, x: float32 [1, 4], opset 13), serialised once with
# onnx.helper so the runtime can probe a provider without the onnx package.
_PROBE_MODEL = (b'\x08\x07\x12\x05hjepa:A\n\x0e\n\x01x\n\x01x\x12\x01y"\x03Add\x12\x05probeZ\x13\n\x01x'
                b'\x12\x0e\n\x0c\x08\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04b\x13\n\x01y\x12\x0e\n\x0c'
                b'\x08\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04B\x04\n\x00\x10\r')


class ModelMismatchError(RuntimeError):
    """A model cannot be used by this runtime; the message says what differs and what to do."""


def train_command(name: str, robot: RobotFingerprint | None = None, out: str = "DIR") -> str:
    """The one command that trains model ``name`` into ``out``: its trainer (TRAINERS) with
    ``--robot`` and ``--ego-model`` set to the files ``robot``'s fingerprint was read from (none
    given: the trainers' defaults, the shipped diffbot and ego model)."""
    verb = TRAINERS.get(name)
    if verb is None:
        return f"hjepa-agent train <the trainer of {name}> --out {out}"
    return f"hjepa-agent train {verb}{_robot_args(robot)} --out {out}"


def _robot_args(robot: RobotFingerprint | None) -> str:
    if robot is None:
        return ""
    return (f" --robot {shlex.quote(robot.robot_file or 'ROBOT.yaml')}"
            f" --ego-model {shlex.quote(robot.ego_model_file or 'EGO_MODEL.yaml')}")


def retrain_hint(name: str, robot: RobotFingerprint | None = None, verb: str = "retrain it") -> str:
    """'<verb> with `<train_command>` and point models_dir at DIR' for model ``name`` (for the
    typical risk also where its RUNS come from)."""
    note = ""
    if name == "typical_risk":
        note = (f" (RUNS: nominal runs of the agent on this robot, recorded with `hjepa-agent sim --scenario "
                f"config/scenarios --episodes 40{_robot_args(robot)} --out RUNS`, the watchdog's typical_risk: "
                f"false in its --params)")
    return f"{verb} with `{train_command(name, robot)}`{note} and point models_dir at DIR"


# --------------------------------------------------------------------------- providers
def _session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # small graphs, several nodes per process on 2-core machines
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def _cuda_major() -> int | None:
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return None
    version = getattr(info, "cuda_version", "") or ""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


@functools.lru_cache(maxsize=1)
def probe_cuda() -> tuple[bool, str]:
    """Whether ONNX Runtime can really run on CUDA here: (usable, reason when not).

    onnxruntime-gpu lists CUDAExecutionProvider even with no GPU, so this checks
    the driver and the CUDA libraries via ctypes first and then runs a tiny model.
    Cached per process; logs one info line when CUDA is not usable.
    """
    ort.set_default_logger_severity(3)
    ok, reason = False, ""
    major = _cuda_major()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        reason = "onnxruntime has no CUDAExecutionProvider"
    elif ort.get_device() != "GPU":
        reason = f"onnxruntime device is {ort.get_device()}"
    else:
        try:
            ctypes.CDLL("libcuda.so.1")
        except OSError:
            reason = "no NVIDIA driver: libcuda.so.1 not loadable"
    if not reason and hasattr(ort, "preload_dlls"):
        # Loads cudart/cublas from nvidia-* wheels when present; it prints, so keep it quiet.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ort.preload_dlls(cuda=True, cudnn=True, msvc=False)
    if not reason:
        suffix = f".so.{major}" if major else ".so"
        for lib in ("libcudart", "libcublas", "libcublasLt"):
            try:
                ctypes.CDLL(lib + suffix)
            except OSError:
                reason = f"{lib}{suffix} not loadable"
                break
    if not reason:
        try:
            sess = ort.InferenceSession(_PROBE_MODEL, _session_options(),
                                        providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            if sess.get_providers()[0] != "CUDAExecutionProvider":
                reason = "session fell back to CPU"
            else:
                y = sess.run(None, {"x": np.ones((1, 4), np.float32)})[0]
                ok = bool(np.allclose(y, 2.0))
                reason = "" if ok else "probe model gave wrong output on CUDA"
        except (RuntimeError, ValueError, OSError) as exc:  # ort raises its own RuntimeError subclasses
            reason = f"probe session failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if not ok:
        log.info("CUDA not usable (%s); running on CPU", reason)
    return ok, reason


def select_providers(prefer_cuda: bool = True) -> tuple[list[str], str]:
    """ONNX Runtime providers to use and a one-line description of the choice.

    Returns (["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda") only when
    :func:`probe_cuda` proves CUDA works; otherwise (["CPUExecutionProvider"], reason).
    """
    if not prefer_cuda:
        return ["CPUExecutionProvider"], "cpu (CUDA not requested)"
    ok, reason = probe_cuda()
    if ok:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    return ["CPUExecutionProvider"], f"cpu ({reason})"


# --------------------------------------------------------------------------- manifest
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
        """Raise ModelMismatchError unless the manifest's robot fingerprint equals ``expected``'s: the
        message names ``expected.user`` (the node), the model's file, each differing key (the value the
        models were trained with, then this robot's) and the command that trains ``model`` for this robot."""
        who = f"{expected.user}: " if expected.user else ""
        entry = self.models.get(model)
        what = f"{model} ({self.path.parent / entry.file})" if entry is not None else f"{model} ({self.path})"
        here = f"{expected.robot_file or '?'} with the ego model {expected.ego_model_file or '?'}"
        fix = retrain_hint(model, expected)
        if self.fingerprint is None:
            raise ModelMismatchError(
                f"{who}{what}: {self.path} (format {self.format}) records no robot fingerprint, so nothing shows "
                f"the model was trained for this robot ({here}); {fix}")
        if self.fingerprint.sha256 != expected.sha256:
            diffs = "; ".join(f"{key}: {mine!r} trained, {theirs!r} here"
                              for key, mine, theirs in self.fingerprint.differences(expected))
            raise ModelMismatchError(
                f"{who}{what} was trained for another robot than this one ({here}); what differs "
                f"({self.path} fingerprint.values vs this robot): {diffs}; {fix}")


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
    if dtype not in _DTYPES:
        raise ConfigError(path, f"{prefix}.dtype", f"unknown dtype {dtype!r} (known: {', '.join(_DTYPES)})")
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


# --------------------------------------------------------------------------- sessions
def _dims_match(want: int | str, got: Any) -> bool:
    want_dynamic = isinstance(want, str) or want == -1
    got_dynamic = not isinstance(got, int) or got < 0
    return want_dynamic == got_dynamic and (want_dynamic or want == got)


_SESSIONS: dict[tuple[str, tuple[str, ...]], tuple[str, ort.InferenceSession]] = {}
"""Checked sessions by (model file, providers), with the file's sha256 they were built from. Nodes that
are rebuilt every episode (`hjepa-agent sim`) reuse one session per model file instead of building
and freeing four or five sessions an episode; a file whose sha256 changed gets a new session."""
_MAX_SESSIONS = 16


class OnnxModel:
    """A checked ONNX Runtime session for one model of the manifest.

    Construction verifies: the manifest is compatible with this runtime (observation and
    action spaces) and, given ``expected`` (the fingerprint of the robot this runs on), was
    written for this robot (Manifest.check_robot); the file exists and its sha256 matches, and
    the session's inputs/outputs (names, shapes, dtypes) match the manifest. Then it runs one
    warm-up inference (the first call of a session is slow). Every refusal gives the command
    that trains this model (for ``expected``'s robot): ``hint`` (:func:`retrain_hint`), for the
    callers' own refusals too.
    """

    def __init__(self, models_dir: str | Path, name: str, manifest: Manifest | None = None,
                 providers: list[str] | None = None, expected: RobotFingerprint | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.manifest = manifest if manifest is not None else load_manifest(self.models_dir)
        self.hint = retrain_hint(name, expected)
        where = str(self.manifest.path)
        if name not in self.manifest.models:
            raise ModelMismatchError(f"{where}: no model {name!r} (has: {', '.join(self.manifest.models) or 'none'}); "
                                     f"{self.hint}")
        self.manifest.check_compatible(name, expected)
        self.name = name
        self.entry = self.manifest.models[name]
        self.path = self.models_dir / self.entry.file
        if not self.path.is_file():
            raise ModelMismatchError(f"{where}: models.{name}.file {self.entry.file!r} not found at {self.path}; "
                                     f"{self.hint}")
        digest = sha256_file(self.path)
        if digest != self.entry.sha256:
            raise ModelMismatchError(
                f"{self.path}: sha256 {digest[:12]}... differs from models.{name}.sha256 "
                f"{self.entry.sha256[:12]}... in {where}: the file was replaced or corrupted; restore it or "
                f"{self.hint}")
        if providers is None:
            providers = select_providers()[0]
        key = (str(self.path.resolve()), tuple(providers))
        cached = _SESSIONS.get(key)
        if cached is not None and cached[0] == digest:
            self.session = cached[1]
        else:
            try:
                self.session = ort.InferenceSession(str(self.path), _session_options(), providers=providers)
            except (RuntimeError, ValueError) as exc:
                raise ModelMismatchError(f"{self.path}: ONNX Runtime cannot load it ({exc}); {self.hint}") from exc
        self.providers = self.session.get_providers()
        if providers[0] == "CUDAExecutionProvider" and self.providers[0] != "CUDAExecutionProvider":
            log.info("%s: CUDA session not available; running on CPU", self.path.name)
        self._check_io("inputs", self.entry.inputs, self.session.get_inputs())
        self._check_io("outputs", self.entry.outputs, self.session.get_outputs())
        _SESSIONS.pop(key, None)
        while len(_SESSIONS) >= _MAX_SESSIONS:
            _SESSIONS.pop(next(iter(_SESSIONS)))   # the least recently used
        _SESSIONS[key] = (digest, self.session)
        self.input_names = tuple(spec.name for spec in self.entry.inputs)
        self.input_tails = tuple(tuple(int(d) for d in spec.fixed_tail()) for spec in self.entry.inputs)
        self.input_name, self.input_tail = self.input_names[0], self.input_tails[0]
        self(*(np.zeros((1, *tail), np.float32) for tail in self.input_tails))  # warm-up

    def _check_io(self, kind: str, specs: tuple[TensorSpec, ...], nodes: list) -> None:
        key = f"models.{self.name}.{kind}"
        got = [(n.name, list(n.shape), n.type) for n in nodes]
        want = [(s.name, list(s.shape), _DTYPES[s.dtype]) for s in specs]
        problem = ""
        if len(got) != len(want):
            problem = f"{len(got)} {kind} in the file, {len(want)} in the manifest"
        else:
            for (gn, gs, gt), (wn, ws, wt) in zip(got, want):
                if gn != wn:
                    problem = f"name {gn!r} in the file, {wn!r} in the manifest"
                elif len(gs) != len(ws) or not all(_dims_match(w, g) for w, g in zip(ws, gs)):
                    problem = f"{wn!r} has shape {gs} in the file, {ws} in the manifest"
                elif gt != wt:
                    problem = f"{wn!r} has type {gt} in the file, {wt} in the manifest"
                if problem:
                    break
        if problem:
            raise ModelMismatchError(f"{self.path}: {key} disagree: {problem}; the manifest does not describe "
                                     f"this file: {self.hint}")

    def __call__(self, *xs: np.ndarray) -> np.ndarray:
        """Run the model on batches, one per manifest input in order, each (N, *input shape)
        float32; returns the first output (N, ...). Raises ValueError on a wrong count or shape."""
        if len(xs) != len(self.input_names):
            raise ValueError(f"{self.name}: {len(xs)} inputs given, expected {len(self.input_names)} "
                             f"({', '.join(self.input_names)})")
        feeds = {}
        for name, tail, x in zip(self.input_names, self.input_tails, xs):
            x = np.ascontiguousarray(x, dtype=np.float32)
            if x.ndim != len(tail) + 1 or x.shape[1:] != tail:
                raise ValueError(f"{self.name}: input {name!r} has shape {x.shape}, "
                                 f"expected (N, {', '.join(map(str, tail))})")
            feeds[name] = x
        return self.session.run(None, feeds)[0]


# --------------------------------------------------------------------------- node-facing loaders
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
