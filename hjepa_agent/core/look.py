"""The world model's look score: k-nearest-neighbour density of the camera image's look statistics.

``appearance`` (one of core.world_model.SCORES) says whether the camera sees a world that looks like
the training one. It is the log of the mean Euclidean distance from the image's
:func:`~hjepa_agent.core.perception.appearance_features` (26 colour and lighting statistics),
whitened per feature, to their ``k`` nearest neighbours in a bank of whitened training frames::

    f = (appearance_features(image) - mean) / scale
    appearance = log(mean of the k smallest |f - bank_i| + LOOK_EPS)

A single Gaussian over the same features (what this replaced) called a nominal close-up unseen: a
frame filled with one obstacle colour lies far from the mean of all training frames although many
training frames look like it. A nearest-neighbour distance is small wherever training frames lie,
however the training looks spread, and large away from all of them (an unseen look).

The bank is a file of the models dir, ``world_look.npz`` (:data:`LOOK_FILE`, numpy arrays, read with
``allow_pickle=False``), listed in ``manifest.yaml`` as the model ``world_look`` with its sha256
(written by ``hjepa-agent train world-model``, also with ``--recalibrate``; hjepa_agent/train/look.py).
:func:`load_look_model` refuses a listed file that is missing or whose sha256 differs, saying what to
run. Models whose manifest has no ``world_look`` entry (trained before this score) have no look
model: the ``appearance`` score is NaN (skipped by the combined ambiguity) and a percept's
appearance_log is 0.0, as before for models without appearance statistics.
ROS-free, numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hjepa_agent.core.fingerprint import RobotFingerprint
from hjepa_agent.core.models import Manifest, ModelMismatchError, load_manifest, retrain_hint, sha256_file
from hjepa_agent.core.perception import APPEARANCE_FEATURES, appearance_features

LOOK_MODEL = "world_look"
"""The look model's name in manifest.yaml."""
LOOK_FILE = "world_look.npz"
"""Its file in the models dir."""
LOOK_FORMAT = 1
"""Version of the file's layout (the ``format`` array)."""
LOOK_EPS = 1e-3
"""Added to the mean neighbour distance (whitened units) before the log."""
MAX_BANK = 8192
"""Banks larger than this are refused (the score must stay cheap: one frame at 10 Hz on a weak CPU)."""
_CHUNK = 2048
"""Query frames per distance block in batch scoring (memory: _CHUNK x bank floats)."""


@dataclass(frozen=True)
class LookModel:
    """Per-feature ``mean`` and ``scale`` (F,) (whitening), a ``bank`` (M, F) float32 of whitened
    training looks and ``k`` (module docstring)."""

    mean: np.ndarray
    scale: np.ndarray
    bank: np.ndarray
    k: int

    def __post_init__(self) -> None:
        n = len(APPEARANCE_FEATURES)
        mean, scale = np.asarray(self.mean, np.float32), np.asarray(self.scale, np.float32)
        bank = np.ascontiguousarray(self.bank, dtype=np.float32)
        if mean.shape != (n,) or scale.shape != (n,):
            raise ValueError(f"mean and scale must have shape ({n},), got {mean.shape} and {scale.shape}")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
            raise ValueError("mean and scale must be finite, scale > 0")
        if bank.ndim != 2 or bank.shape[1] != n or not 1 <= bank.shape[0] <= MAX_BANK:
            raise ValueError(f"bank must have shape (M, {n}) with 1 <= M <= {MAX_BANK}, got {bank.shape}")
        if not np.all(np.isfinite(bank)):
            raise ValueError("bank must be finite")
        if not 1 <= int(self.k) <= bank.shape[0]:
            raise ValueError(f"k must be in [1, {bank.shape[0]}] (the bank's size), got {self.k}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "bank", bank)
        object.__setattr__(self, "k", int(self.k))
        object.__setattr__(self, "_bank_sq", (bank.astype(np.float64) ** 2).sum(1).astype(np.float32))

    def whiten(self, features: np.ndarray) -> np.ndarray:
        """appearance_features rows (..., F) -> whitened (..., F) float32."""
        return ((np.asarray(features, np.float32) - self.mean) / self.scale).astype(np.float32)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """Look score of appearance_features rows (N, F) -> (N,) float32 (module docstring)."""
        x = self.whiten(np.atleast_2d(features))
        out = np.empty(len(x), np.float32)
        k = self.k
        for i in range(0, len(x), _CHUNK):
            q = x[i:i + _CHUNK]
            d2 = self._bank_sq[None, :] - 2.0 * (q @ self.bank.T) + (q * q).sum(1)[:, None]
            near = np.partition(d2, k - 1, axis=1)[:, :k] if k < d2.shape[1] else d2
            out[i:i + _CHUNK] = np.log(np.sqrt(np.maximum(near, 0.0)).mean(1) + LOOK_EPS)
        return out

    def score(self, images: np.ndarray) -> np.ndarray | float:
        """Look score of images (N, 3, H, W) uint8 -> (N,) float32, or of one image (3, H, W) -> float."""
        f = appearance_features(images)
        s = self.score_features(f)
        return s if f.ndim == 2 else float(s[0])

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (.npz of plain arrays, no pickled objects)."""
        with open(path, "wb") as fh:   # a file object: np.savez would append .npz to another name
            np.savez(fh, format=np.int64(LOOK_FORMAT), features=np.array(APPEARANCE_FEATURES),
                     mean=self.mean, scale=self.scale, bank=self.bank, k=np.int64(self.k))

    @staticmethod
    def read(path: str | Path) -> "LookModel":
        """The model in ``path`` (no checks against a manifest: :func:`load_look_model` does those).
        ValueError when the file is not a look model of this runtime's features."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {key: z[key] for key in z.files}
        except (OSError, ValueError) as exc:   # not a zip/npz, or an object array (needs pickle)
            raise ValueError(f"not a readable .npz of plain arrays ({exc})") from exc
        missing = {"format", "features", "mean", "scale", "bank", "k"} - set(arrays)
        if missing:
            raise ValueError(f"missing arrays: {', '.join(sorted(missing))}")
        if int(arrays["format"]) != LOOK_FORMAT:
            raise ValueError(f"format {int(arrays['format'])}, this runtime reads {LOOK_FORMAT}")
        names = tuple(str(s) for s in arrays["features"].reshape(-1))
        if names != APPEARANCE_FEATURES:
            raise ValueError(f"its features {list(names)} are not this runtime's appearance_features "
                             f"{list(APPEARANCE_FEATURES)}")
        return LookModel(arrays["mean"], arrays["scale"], arrays["bank"], int(arrays["k"]))


def load_look_model(models_dir: str | Path, manifest: Manifest | None = None,
                    expected: RobotFingerprint | None = None) -> LookModel | None:
    """The look model listed in ``models_dir``'s manifest, or None when it lists none (models trained
    before the score existed: no appearance score). ModelMismatchError, with the command to run, when
    the manifest is incompatible with this runtime or (given ``expected``) trained for another robot,
    or when the listed file is missing, its sha256 differs from the manifest's or it does not read."""
    models_dir = Path(models_dir)
    manifest = manifest if manifest is not None else load_manifest(models_dir)
    entry = manifest.models.get(LOOK_MODEL)
    if entry is None:
        return None
    manifest.check_compatible(LOOK_MODEL, expected)
    hint = retrain_hint(LOOK_MODEL, expected, verb="remake it (the networks are kept)")
    path = models_dir / entry.file
    where = f"models.{LOOK_MODEL}"
    if not path.is_file():
        raise ModelMismatchError(f"{manifest.path}: {where}.file {entry.file!r} not found at {path}; {hint}")
    digest = sha256_file(path)
    if digest != entry.sha256:
        raise ModelMismatchError(f"{path}: sha256 {digest[:12]}... differs from {where}.sha256 {entry.sha256[:12]}... "
                                 f"in {manifest.path}: the file was replaced or corrupted; restore it or {hint}")
    try:
        return LookModel.read(path)
    except ValueError as exc:
        raise ModelMismatchError(f"{path}: {exc}; {hint}") from exc


__all__ = ["LOOK_EPS", "LOOK_FILE", "LOOK_FORMAT", "LOOK_MODEL", "LookModel", "MAX_BANK", "load_look_model"]
