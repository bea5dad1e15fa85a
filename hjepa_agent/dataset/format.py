"""The dataset's on-disk format (docs/datasets.md): LeRobotDataset's layout, images stored losslessly.

::

    DS/meta/info.json          format, version, fps, features (dtype, shape, unit), totals, splits, sources
    DS/meta/episodes.jsonl     one line per episode: index, length, source (bag, start/end time), modes
    DS/meta/stats.json         per feature: mean, std, min, max (the normalisation statistics)
    DS/meta/problems.jsonl     what the build found and cut around (bag, topic, time): empty when none
    DS/data/chunk-NNN/episode_NNNNNN.parquet   one row per control tick (1/fps s)

As in LeRobot (v2.1): one Parquet file per episode under chunked folders, the columns ``index``,
``episode_index``, ``frame_index``, ``timestamp`` and dotted feature names (``observation.scan``,
``action``). Unlike LeRobot's default, the camera is not an MP4 video: the encoder's input is a
64x64 image (core/perception.py preprocess_image), which a lossy codec would change by more than the
look statistics the watchdog's ``appearance`` score measures; it is stored as PNG bytes in the Parquet
row (LeRobot's ``image`` dtype does the same), lossless, about 8 KB a frame. The dataset holds the
preprocessed image, not the raw one: it is tied to IMAGE_SIZE and the preprocessing rule, both
recorded in info.json and checked by :func:`open_dataset`.

``info.json`` is written last: a folder without it is an unfinished build and is refused.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from hjepa_agent.core.perception import IMAGE_SIZE

FORMAT = "hjepa-dataset"
VERSION = 1
CHUNK_SIZE = 1000
"""Episodes per data/chunk-NNN folder (LeRobot's default)."""
FPS = 10
"""Control ticks per second: one row per tick (train/collect.py CONTROL_DT_S)."""
PREPROCESS = ("core.perception.preprocess_image: the largest central square, resized to "
              f"{IMAGE_SIZE}x{IMAGE_SIZE} (INTER_AREA when shrinking), RGB uint8")


@dataclass(frozen=True)
class Feature:
    """One column: dtype ("png" = PNG bytes of an HxWx3 RGB uint8 image), shape of one row's value, unit,
    meaning, and whether only a simulator knows it (``privileged``: never a training input)."""

    dtype: str
    shape: tuple[int, ...]
    unit: str
    description: str
    privileged: bool = False


FEATURES: dict[str, Feature] = {
    "observation.image": Feature("png", (IMAGE_SIZE, IMAGE_SIZE, 3), "", "camera frame, preprocessed (PREPROCESS)"),
    "observation.scan": Feature("float32", (16,), "m", "scan sectors in the base frame (core.perception.scan_to_bins)"),
    "observation.pose": Feature("float32", (3,), "m, m, rad", "odometry pose x, y, yaw in the odom frame"),
    "observation.twist": Feature("float32", (2,), "m/s, rad/s", "odometry velocity (linear x, angular z)"),
    "observation.goal": Feature("float32", (2,), "m", "the goal in the odom frame (0, 0 without one)"),
    "observation.has_goal": Feature("bool", (), "", "a goal had been given"),
    "action": Feature("float32", (2,), "m/s, rad/s",
                      "the executed command (cmd_vel) averaged over [t, t + 1/fps): what the world model steps with"),
    "action.command": Feature("float32", (2,), "m/s, rad/s",
                              "the latest command of [t, t + 1/fps): the behaviour-cloning label"),
    "mode": Feature("string", (), "", "the watchdog's mode at the frame (empty when not recorded: teleoperation)"),
}
"""Every dataset's columns besides index, episode_index, frame_index, timestamp."""
PRIVILEGED: dict[str, Feature] = {
    "sim.pose": Feature("float32", (3,), "m, m, rad", "true pose in the world frame", True),
    "sim.obst_dist": Feature("float32", (), "m", "distance to the nearest obstacle or wall surface", True),
    "sim.obst_bearing": Feature("float32", (2,), "", "cos, sin of the body-frame bearing to that surface", True),
}
"""Columns only a simulator-collected dataset has (the world model eval's probe targets)."""
INDEX_COLUMNS = {"index": "int64", "episode_index": "int64", "frame_index": "int64", "timestamp": "float64"}


class DatasetError(ValueError):
    """A dataset that cannot be used; the message says which file and what to do."""


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:   # training extra: the runtime never needs it
        raise DatasetError("datasets need pyarrow (pip install pyarrow; bash .ci/setup installs it)") from exc
    return pa, pq


def episode_path(root: Path, index: int) -> Path:
    """Where episode ``index`` lives."""
    return Path(root) / "data" / f"chunk-{index // CHUNK_SIZE:03d}" / f"episode_{index:06d}.parquet"


def encode_png(image_chw: np.ndarray) -> bytes:
    """(3, H, W) uint8 RGB -> PNG bytes (lossless)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(image_chw.transpose(1, 2, 0)), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DatasetError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (3, H, W) uint8 RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError("a stored image is not a readable PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)


def write_episode(root: Path, index: int, ep: dict[str, np.ndarray], features: dict[str, Feature]) -> dict[str, Any]:
    """Write one episode (arrays keyed by feature name, ``observation.image`` as (N, 3, H, W) uint8, plus
    ``timestamp`` (N,) s from the episode's start) as its Parquet file; returns its length and mode counts."""
    pa, pq = _pa()
    n = len(ep["timestamp"])
    cols: dict[str, Any] = {"index": pa.array(np.zeros(n, np.int64)),   # global index: set by finalize
                            "episode_index": pa.array(np.full(n, index, np.int64)),
                            "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                            "timestamp": pa.array(np.asarray(ep["timestamp"], np.float64))}
    for name, f in features.items():
        v = ep[name]
        if len(v) != n:
            raise DatasetError(f"episode {index}: {name} has {len(v)} rows, timestamp {n}")
        if f.dtype == "png":
            cols[name] = pa.array([encode_png(img) for img in v], type=pa.binary())
        elif f.dtype == "string":
            cols[name] = pa.array([str(s) for s in v], type=pa.string())
        elif f.dtype == "bool":
            cols[name] = pa.array(np.asarray(v, bool))
        elif f.shape:
            flat = np.asarray(v, np.float32).reshape(n, -1)
            cols[name] = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
        else:
            cols[name] = pa.array(np.asarray(v, np.float32).reshape(n))
    path = episode_path(root, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path, compression="zstd")
    modes = {}
    if "mode" in ep:
        for m in ep["mode"]:
            modes[str(m)] = modes.get(str(m), 0) + 1
    return {"episode_index": index, "length": n, "modes": modes}


def read_episode(root: Path, index: int, columns: Sequence[str] | None = None,
                 features: dict[str, Feature] | None = None) -> dict[str, np.ndarray]:
    """One episode's columns as arrays (images (N, 3, H, W) uint8, vectors (N, k) float32)."""
    _, pq = _pa()
    path = episode_path(root, index)
    try:
        table = pq.read_table(path, columns=list(columns) if columns is not None else None)
    except Exception as exc:   # pyarrow raises its own types: name the file
        raise DatasetError(f"{path}: unreadable ({type(exc).__name__}: {str(exc)[:120]}); rebuild the dataset") from None
    out: dict[str, np.ndarray] = {}
    for name in table.column_names:
        col = table.column(name)
        f = (features or {}).get(name) or FEATURES.get(name) or PRIVILEGED.get(name)
        if f is None:
            out[name] = col.to_numpy()
        elif f.dtype == "png":
            out[name] = np.stack([decode_png(b) for b in col.to_pylist()]) if len(col) else np.zeros((0, 3, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        elif f.dtype == "string":
            out[name] = np.asarray(col.to_pylist(), dtype=object)
        elif f.dtype == "bool":
            out[name] = np.asarray(col.to_pylist(), bool)
        elif f.shape:
            flat = col.combine_chunks().flatten().to_numpy(zero_copy_only=False)
            out[name] = flat.astype(np.float32).reshape(len(col), *f.shape)
        else:
            out[name] = col.to_numpy().astype(np.float32)
    return out


def _stats(values: np.ndarray) -> dict[str, Any]:
    v = values.reshape(len(values), -1).astype(np.float64)
    return {"mean": v.mean(0).round(6).tolist(), "std": v.std(0).round(6).tolist(),
            "min": v.min(0).round(6).tolist(), "max": v.max(0).round(6).tolist(), "count": int(len(v))}


def split_episodes(n: int, held_out: float, seed: int) -> dict[str, list[int]]:
    """Episode indices of the parts: a seeded draw of round(held_out * n) episodes (at least two when
    n >= 3) is held out, its first half ``val`` (calibration, model selection) and its second half
    ``test`` (the evaluation only); the rest is ``train``."""
    if not 0.0 <= held_out < 1.0:
        raise DatasetError(f"the held-out fraction must be in [0, 1), got {held_out}")
    n_out = 0 if n < 3 or held_out == 0 else max(2, int(round(held_out * n)))
    drawn = [int(i) for i in np.random.default_rng(seed).permutation(n)[:n_out]]
    half = (len(drawn) + 1) // 2
    val, test = sorted(drawn[:half]), sorted(drawn[half:])
    return {"train": [i for i in range(n) if i not in set(drawn)], "val": val, "test": test}


def finalize(root: Path, episodes: list[dict[str, Any]], features: dict[str, Feature], *, source: str,
             sources: list[str], problems: Iterable[dict[str, Any]] = (), held_out: float = 0.3,
             seed: int = 0, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Number the rows, write meta/ (episodes, stats, problems, then info.json last); returns info."""
    pa, pq = _pa()
    episodes = sorted(episodes, key=lambda e: e["episode_index"])
    if [e["episode_index"] for e in episodes] != list(range(len(episodes))):
        raise DatasetError(f"{root}: episodes must be numbered 0..{len(episodes) - 1}")
    stat_cols = [n for n, f in features.items() if f.dtype in ("float32", "bool")]
    acc: dict[str, list[np.ndarray]] = {n: [] for n in stat_cols}
    img_mean: list[np.ndarray] = []
    start = 0
    for e in episodes:
        path = episode_path(root, e["episode_index"])
        table = pq.read_table(path)
        table = table.set_column(table.column_names.index("index"), "index",
                                 pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)))
        pq.write_table(table, path, compression="zstd")
        e["index_from"], start = start, start + table.num_rows
        arrays = read_episode(root, e["episode_index"], stat_cols + ["observation.image"], features)
        for n in stat_cols:
            acc[n].append(arrays[n])
        img_mean.append(arrays["observation.image"][::5].reshape(-1, 3, IMAGE_SIZE * IMAGE_SIZE).mean(2))
    meta = Path(root) / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    stats = {n: _stats(np.concatenate(v)) for n, v in acc.items() if v}
    if img_mean:
        stats["observation.image"] = {"mean_rgb": (np.concatenate(img_mean).mean(0) / 255.0).round(4).tolist(),
                                      "note": "per-channel mean in [0, 1] over every fifth frame"}
    (meta / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    (meta / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    problems = list(problems)
    (meta / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    info = {"format": FORMAT, "version": VERSION, "fps": FPS, "chunk_size": CHUNK_SIZE,
            "image": {"size": IMAGE_SIZE, "preprocess": PREPROCESS, "storage": "PNG bytes in the Parquet row"},
            "features": {**{k: {"dtype": v} for k, v in INDEX_COLUMNS.items()},
                         **{k: {**asdict(f), "shape": list(f.shape)} for k, f in features.items()}},
            "source": source, "sources": sources, "total_episodes": len(episodes), "total_frames": start,
            "splits": split_episodes(len(episodes), held_out, seed), "split_seed": seed,
            "problems": len(problems), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {})}
    (meta / "info.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def prepare_out(out: Path) -> Path:
    """A fresh output folder: an existing non-empty one is refused, never overwritten."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty: give a new --out (a dataset is never overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    return out


def discard(out: Path) -> None:
    """Remove an unfinished build's folder."""
    shutil.rmtree(out, ignore_errors=True)


@dataclass(frozen=True)
class Dataset:
    """An opened dataset: its root, info.json and features (with the privileged ones it has)."""

    root: Path
    info: dict[str, Any]
    features: dict[str, Feature]

    @property
    def episodes(self) -> int:
        return int(self.info["total_episodes"])

    def split(self, name: str) -> list[int]:
        """Episode indices of ``name``: "train", "val", "test" or "all"."""
        if name == "all":
            return list(range(self.episodes))
        if name not in self.info["splits"]:
            raise DatasetError(f"{self.root}: no split {name!r} (has {', '.join(self.info['splits'])}, all)")
        return list(self.info["splits"][name])

    def load(self, episodes: Sequence[int], columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Rows of ``episodes`` concatenated (order kept), with ``episode_index``, ``frame_index``."""
        cols = None if columns is None else list(dict.fromkeys([*columns, "episode_index", "frame_index"]))
        parts = [read_episode(self.root, i, cols, self.features) for i in episodes]
        if not parts:
            raise DatasetError(f"{self.root}: no episodes selected")
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def open_dataset(root: str | Path) -> Dataset:
    """Open ``root``, refusing what this code cannot read (and saying what to do)."""
    root = Path(root)
    path = root / "meta" / "info.json"
    if not path.is_file():
        hint = " (an unfinished build: build it again)" if (root / "data").is_dir() else ""
        raise DatasetError(f"{root}: no meta/info.json: not a dataset{hint}; make one with `hjepa-agent dataset build`")
    info = json.loads(path.read_text())
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise DatasetError(f"{path}: format {info.get('format')!r} version {info.get('version')!r}; this code reads "
                           f"{FORMAT} version {VERSION}: rebuild it with this version's `hjepa-agent dataset build`")
    if info["image"]["size"] != IMAGE_SIZE:
        raise DatasetError(f"{path}: images are {info['image']['size']} px, the encoder takes {IMAGE_SIZE}: rebuild")
    if info["fps"] != FPS:
        raise DatasetError(f"{path}: {info['fps']} rows a second, the models step at {FPS}: rebuild")
    features = {}
    for name, spec in info["features"].items():
        if name in INDEX_COLUMNS:
            continue
        features[name] = Feature(spec["dtype"], tuple(spec["shape"]), spec["unit"], spec["description"],
                                 spec.get("privileged", False))
    return Dataset(root, info, features)


def describe(ds: Dataset) -> str:
    """``hjepa-agent dataset info``: what the dataset holds, in lines for people."""
    info = ds.info
    eps = [json.loads(line) for line in (ds.root / "meta" / "episodes.jsonl").read_text().splitlines() if line]
    lengths = np.array([e["length"] for e in eps]) if eps else np.zeros(1)
    modes: dict[str, int] = {}
    for e in eps:
        for m, c in e.get("modes", {}).items():
            modes[m or "(none)"] = modes.get(m or "(none)", 0) + c
    hours = info["total_frames"] / info["fps"] / 3600.0
    lines = [f"{ds.root}: {FORMAT} v{info['version']}, built {info['created']} from {info['source']} "
             f"({len(info['sources'])} source{'s' if len(info['sources']) != 1 else ''})",
             f"  {info['total_episodes']} episodes, {info['total_frames']} frames at {info['fps']} Hz "
             f"({hours * 60:.1f} min); episode length p50 {np.median(lengths) / info['fps']:.1f} s, "
             f"min {lengths.min() / info['fps']:.1f} s, max {lengths.max() / info['fps']:.1f} s",
             "  splits: " + ", ".join(f"{k} {len(v)} episodes" for k, v in info["splits"].items()),
             "  modes: " + (", ".join(f"{m} {100 * c / max(info['total_frames'], 1):.1f} %"
                                      for m, c in sorted(modes.items())) or "-"),
             "  features:"]
    stats = json.loads((ds.root / "meta" / "stats.json").read_text())
    for name, f in ds.features.items():
        s = stats.get(name, {})
        rng = ""
        if "min" in s:
            rng = "  range " + ", ".join(f"[{lo:.3g}, {hi:.3g}]" for lo, hi in zip(s["min"], s["max"]))
            if len(rng) > 90:
                rng = rng[:87] + "..."
        lines.append(f"    {name:22s} {f.dtype:7s} {str(list(f.shape)):12s} {f.unit:12s}"
                     f"{' privileged' if f.privileged else ''}{rng}")
    if info.get("problems"):
        lines.append(f"  {info['problems']} problems cut around at build time: meta/problems.jsonl")
    if "robot" in info:
        lines.append(f"  robot: {info['robot']}")
    return "\n".join(lines)


def finite_or_none(x: float) -> float | None:
    """JSON-safe float."""
    return float(x) if math.isfinite(x) else None


__all__ = ["CHUNK_SIZE", "Dataset", "DatasetError", "FEATURES", "FORMAT", "FPS", "Feature", "PRIVILEGED", "VERSION",
           "decode_png", "describe", "discard", "encode_png", "episode_path", "finalize", "open_dataset",
           "prepare_out", "read_episode", "split_episodes", "write_episode"]
