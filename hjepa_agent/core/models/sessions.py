"""Checked ONNX Runtime sessions: :class:`OnnxModel`, one per model of the manifest, built once per file."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from hjepa_agent.core.fingerprint import RobotFingerprint
from hjepa_agent.core.models.manifest import DTYPES, Manifest, TensorSpec, load_manifest, sha256_file
from hjepa_agent.core.models.providers import select_providers, session_options
from hjepa_agent.core.models.robot import ModelMismatchError, retrain_hint

log = logging.getLogger(__package__)

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
                self.session = ort.InferenceSession(str(self.path), session_options(), providers=providers)
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
        want = [(s.name, list(s.shape), DTYPES[s.dtype]) for s in specs]
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


__all__ = ["OnnxModel"]
