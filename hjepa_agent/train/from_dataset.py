"""A dataset's rows as the arrays the trainers take: one conversion, so that a robot's recordings and
the simulator's roll-outs train the same way.

* :func:`world_arrays` gives train/world_data's arrays: ``image`` (N, 3, 64, 64) uint8, ``scan``
  sectors / SCAN_RANGE_MAX_M, ``action`` the executed command / the ego model's HARD velocity limits,
  ``episode`` and ``tick``; ``pose`` and ``heading`` from odometry; the simulator's probe targets
  (``obst_dist``, ``obst_bearing``) only when the dataset has the privileged columns.
* :func:`habitual_samples` gives the habitual trainer's Samples: the head features of
  core.types.habitual_features from the recorded odometry, goal and scan (the latent is added by the
  trainer from the frozen world encoder), and the label ``action.command`` / the ego model's
  OPERATING limits, clipped to [-1, 1], for the rows whose mode is in ``modes``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hjepa_agent.core.types import N_LATENT, SCAN_RANGE_MAX_M, WORLD_STATE_LABELS, WorldState, habitual_features
from hjepa_agent.dataset.format import Dataset, DatasetError
from hjepa_agent.train.collect import Limits, Samples

WORLD_COLUMNS = ("observation.image", "observation.scan", "action", "observation.pose")
PROBE_COLUMNS = ("sim.obst_dist", "sim.obst_bearing")


def world_arrays(ds: Dataset, episodes: Sequence[int], limits: Limits) -> dict[str, np.ndarray]:
    """train/world_data's arrays of ``episodes`` (module doc); episode ids are the dataset's."""
    probes = all(c in ds.features for c in PROBE_COLUMNS)
    rows = ds.load(episodes, [*WORLD_COLUMNS, *(PROBE_COLUMNS if probes else ())])
    hard = np.asarray(limits.speed_norm, np.float32)
    out = {"image": rows["observation.image"],
           "scan": (np.minimum(rows["observation.scan"], SCAN_RANGE_MAX_M) / SCAN_RANGE_MAX_M).astype(np.float32),
           "action": (rows["action"] / hard).astype(np.float32),
           "pose": rows["observation.pose"].astype(np.float32),
           "heading": np.c_[np.cos(rows["observation.pose"][:, 2]), np.sin(rows["observation.pose"][:, 2])].astype(np.float32),
           "episode": rows["episode_index"].astype(np.int64), "tick": rows["frame_index"].astype(np.int64)}
    if probes:
        out["obst_dist"] = rows["sim.obst_dist"].astype(np.float32)
        out["obst_bearing"] = rows["sim.obst_bearing"].astype(np.float32)
    return out


def sim_rollouts(cache: Path | None, name: str, limits: Limits, **collect_kw: Any) -> dict[str, np.ndarray]:
    """The simulator trainers' roll-outs through the dataset format: dataset/collect.py's collect_dataset
    (its keyword arguments: split, episodes_per_scenario, scenarios, layouts, workers, ...) into
    ``cache/name`` (reused when it holds a finished dataset) or a temporary folder, read back with
    :func:`world_arrays` (every episode, in job order: world_data.collect's arrays and episode ids)."""
    import tempfile

    from hjepa_agent.dataset.collect import collect_dataset
    from hjepa_agent.dataset.format import open_dataset
    if cache is not None:
        path = Path(cache) / name
        if not (path / "meta" / "info.json").is_file():
            collect_dataset(path, **{"workers": 0, **collect_kw})
        ds = open_dataset(path)
        return world_arrays(ds, ds.split("all"), limits)
    with tempfile.TemporaryDirectory(prefix="hjepa_rollouts_") as tmp:
        collect_dataset(Path(tmp) / name, **{"workers": 0, **collect_kw})
        ds = open_dataset(Path(tmp) / name)
        return world_arrays(ds, ds.split("all"), limits)


def habitual_samples(ds: Dataset, episodes: Sequence[int], limits: Limits,
                     modes: Sequence[str]) -> tuple[Samples, dict[str, int]]:
    """The behaviour-cloning samples of ``episodes`` whose mode is in ``modes`` ("" = no mode recorded),
    and how many rows each mode gave (module doc)."""
    rows = ds.load(episodes, ["observation.image", "observation.scan", "observation.pose", "observation.twist",
                              "observation.goal", "observation.has_goal", "action.command", "mode"])
    keep = np.isin(rows["mode"].astype(str), list(modes)) & rows["observation.has_goal"]
    if not keep.any():
        raise DatasetError(f"{ds.root}: no row with a goal in modes {', '.join(m or '(none)' for m in modes)}: "
                           f"nothing to clone (record runs with a goal, or widen --modes)")
    used = {str(m): int(((rows["mode"] == m) & keep).sum()) for m in np.unique(rows["mode"].astype(str))}
    scale = np.asarray(limits.action_scale, np.float32)
    zeros_v = np.zeros(len(WORLD_STATE_LABELS), np.float32)
    out = Samples()
    for i in np.flatnonzero(keep):
        ws = WorldState(0.0, rows["observation.pose"][i], rows["observation.twist"][i], rows["observation.goal"][i],
                        True, rows["observation.scan"][i], np.zeros(N_LATENT, np.float32), zeros_v, 0.0)
        feats = habitual_features(ws, *limits.speed_norm)
        out.images.append(rows["observation.image"][i])
        out.head.append(feats[:-N_LATENT])
        out.action.append(np.clip(rows["action.command"][i] / scale, -1.0, 1.0).astype(np.float32))
        out.scan.append((np.minimum(rows["observation.scan"][i], SCAN_RANGE_MAX_M) / SCAN_RANGE_MAX_M).astype(np.float32))
        out.episode.append(int(rows["episode_index"][i]))
    return out, used


__all__ = ["habitual_samples", "sim_rollouts", "world_arrays"]
