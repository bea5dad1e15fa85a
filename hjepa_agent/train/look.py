"""The look bank of the world model's ``appearance`` score (core/look.py), and the frames it is made of.

``hjepa-agent train world-model`` (also with ``--recalibrate``, which keeps the networks) writes
``world_look.npz`` into the models dir and lists it in the manifest as ``world_look``; the score's
nominal statistics (``score_ref``) and the ambiguity scale are then computed on calibration frames
that are not in the bank.

Frames (all :func:`hjepa_agent.train.world_data.collect` roll-outs, its seeds and looks):

* bank: the TRAIN split (episode seeds 0..) of the shipped scenarios (the frames the networks were
  trained on) and of procedural layouts of the layouts' ``train`` split (hjepa_agent/sim/layouts.py):
  close-ups, dense clutter, walls. ``layouts`` layouts (indices 0.. of each family) with
  ``layout_episodes`` episodes each (seeds 0..), and ``default_layouts`` more (the next indices) with
  one episode each in the sim's default look (seed DEFAULT_LOOK_EVERY - 1): the look
  `hjepa-agent sim` runs in, whose rarer obstacle colours (the palette's blue and purple, hues of
  the unseen looks' half of the colour wheel) need close-ups in the bank too;
* calibration: the CALIB split (episode seeds 50_000..) of the shipped scenarios and of
  ``calib_layouts`` layouts of the layouts' ``val`` split from index :data:`CALIB_LAYOUT_FIRST` on (so
  that `hjepa-agent sim --layouts procedural --split val` from --seed 0 runs other layouts).

Episode seeds and layout splits are disjoint between the two, so no calibration frame is in the bank.
With ``layout_episodes`` >= DEFAULT_LOOK_EVERY each of those layouts is also seen in the default look.

The bank: the frames' appearance_features, standardised per feature (mean, std floored at
:data:`MIN_SCALE`), thinned to ``bank_size`` rows by farthest-point sampling of half the rows (the
look's whole support, rare close-ups included) and a uniform random draw of the rest (its density).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.core.look import LOOK_FILE, LOOK_MODEL, LookModel
from hjepa_agent.core.perception import APPEARANCE_FEATURES, IMAGE_SIZE, appearance_features
from hjepa_agent.sim.layouts import FAMILIES, layout_scenarios
from hjepa_agent.train import world_data
from hjepa_agent.train.manifest import ModelRecord

log = logging.getLogger(__name__)

BANK_SIZE = 4000
"""Rows of the bank (the score costs O(BANK_SIZE) per frame)."""
K = 10
"""Neighbours averaged."""
LAYOUTS = 70
"""Procedural train layouts (ten of each of the seven families) in the bank's frames, LAYOUT_EPISODES each."""
LAYOUT_EPISODES = 5
"""Episodes per procedural layout (train and calib): seeds 0..4 include one in the sim's default look."""
DEFAULT_LAYOUTS = 140
"""More procedural train layouts (the next twenty of each family), one default-look episode each."""
CALIB_LAYOUTS = 35
"""Procedural val layouts (five of each family) in the calibration frames."""
CALIB_LAYOUT_FIRST = 500
"""First index (per family) of the calibration's val layouts."""
MIN_SCALE = 0.01
"""Floor of a feature's standardising std (features are in [0, 1]): a feature that hardly varies in
training (a rare hue's histogram bin) must not turn a small change into a huge distance."""
FPS_FRACTION = 0.5
"""Fraction of the bank chosen by farthest-point sampling; the rest is drawn uniformly."""


def concat(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """world_data arrays of several collections as one, episode ids kept unique."""
    out: dict[str, list] = {k: [] for k in world_data.KEYS}
    offset = 0
    for d in parts:
        if len(d["tick"]) == 0:
            continue
        for k in world_data.KEYS:
            out[k].append(d[k] + offset if k == "episode" else d[k])
        offset += int(d["episode"].max()) + 1
    return {k: np.concatenate(v) for k, v in out.items()}


def layout_data(cache: Path | None, robot: Any, ego: Any, split: str, layout_split: str, n_layouts: int,
                episodes: int, max_time_s: float, first_layout: int = 0, first: int = 0,
                workers: int = 0) -> dict[str, np.ndarray]:
    """Roll-outs of world_data split ``split`` (episode seeds from its base + ``first``) on ``n_layouts``
    procedural layouts of ``layout_split`` (from index ``first_layout`` of each family), ``episodes``
    each, through the dataset format (train/from_dataset.py sim_rollouts; ``workers`` Ray workers);
    reused from / written to ``cache`` (a folder of datasets)."""
    from hjepa_agent.train.collect import Limits
    from hjepa_agent.train.from_dataset import sim_rollouts
    name = f"{split}{first or ''}_layouts_{layout_split}{first_layout}+{n_layouts}_{episodes}x_{max_time_s:g}s"
    scenarios = layout_scenarios(layout_split, n_layouts, ego, first_layout)
    return sim_rollouts(cache, name, Limits.from_ego(ego), split=split, episodes_per_scenario=episodes,
                        scenarios=scenarios, robot=robot, ego_model=ego, max_time_s=max_time_s, first=first,
                        workers=workers, progress=True)


def farthest_points(x: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``m`` rows of ``x`` (N, F) chosen greedily, each the farthest from those chosen before."""
    chosen = np.empty(m, np.int64)
    chosen[0] = int(rng.integers(len(x)))
    d2 = ((x - x[chosen[0]]) ** 2).sum(1)
    for i in range(1, m):
        chosen[i] = int(d2.argmax())
        d2 = np.minimum(d2, ((x - x[chosen[i]]) ** 2).sum(1))
    return chosen


def fit_look(images: np.ndarray, bank_size: int = BANK_SIZE, k: int = K, seed: int = 0,
             fps_fraction: float = FPS_FRACTION, features: np.ndarray | None = None) -> LookModel:
    """The look model of frames ``images`` (N, 3, 64, 64) uint8 (or their precomputed ``features``)."""
    f = appearance_features(images) if features is None else np.asarray(features, np.float32)
    mean = f.mean(0)
    scale = np.maximum(f.std(0), MIN_SCALE)
    x = ((f - mean) / scale).astype(np.float32)
    x = np.unique(x, axis=0)   # a still robot repeats its frame: no duplicate rows in the bank
    rng = np.random.default_rng(seed)
    m = min(bank_size, len(x))
    n_fps = int(round(fps_fraction * m))
    picked = farthest_points(x, n_fps, rng) if n_fps else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(len(x)), picked)
    picked = np.concatenate([picked, rng.choice(rest, size=m - n_fps, replace=False)])
    return LookModel(mean, scale, x[np.sort(picked)], min(k, m))


def look_options(args: Any) -> dict[str, Any]:
    """make_look's options for ``hjepa-agent train world-model``'s arguments (--quick: one layout of each
    family, one episode, for the bank, its default look and the calibration)."""
    quick = bool(getattr(args, "quick", False))
    sizes = {"layouts": 7, "default_layouts": 7, "calib_layouts": 7, "layout_episodes": 1} if quick else {}
    return {**sizes, "max_time_s": args.max_episode_s, "seed": args.seed, "quick": quick,
            "workers": getattr(args, "workers", 0)}


def write_look(out: Path, model: LookModel, trained: dict[str, Any]) -> ModelRecord:
    """Save ``model`` as LOOK_FILE in ``out``; its manifest record (write_manifest lists it)."""
    model.save(Path(out) / LOOK_FILE)
    io = ([{"name": "image", "shape": ["batch", 3, IMAGE_SIZE, IMAGE_SIZE], "dtype": "uint8"}],
          [{"name": "appearance", "shape": ["batch"], "dtype": "float32"}])
    return ModelRecord(LOOK_MODEL, LOOK_FILE, {**trained, "numpy_version": np.__version__}, io)


def make_look(out: Path, cache: Path | None, robot: Any, ego: Any, train_d: dict[str, np.ndarray],
              calib_d: dict[str, np.ndarray], *, layouts: int = LAYOUTS, default_layouts: int = DEFAULT_LAYOUTS,
              calib_layouts: int = CALIB_LAYOUTS, layout_episodes: int = LAYOUT_EPISODES,
              max_time_s: float = world_data.MAX_EPISODE_S,
              seed: int = 0, quick: bool = False, workers: int = 0) -> tuple[ModelRecord, dict[str, np.ndarray]]:
    """Collect the procedural layouts' frames, fit the bank on them and on ``train_d`` (the shipped
    scenarios' train split) and write it into ``out``. Returns its manifest record and the
    calibration frames: ``calib_d`` (the shipped scenarios' calib split) with the val layouts' frames."""
    t0 = time.perf_counter()
    lay_tr = layout_data(cache, robot, ego, "train", "train", layouts, layout_episodes, max_time_s, workers=workers)
    per_family = -(-layouts // len(FAMILIES))
    lay_def = (layout_data(cache, robot, ego, "train", "train", default_layouts, 1, max_time_s, per_family,
                           world_data.DEFAULT_LOOK_EVERY - 1, workers=workers) if default_layouts else {"image": train_d["image"][:0],
                                                                                     "tick": train_d["tick"][:0]})
    lay_c = layout_data(cache, robot, ego, "calib", "val", calib_layouts, layout_episodes, max_time_s,
                        CALIB_LAYOUT_FIRST, workers=workers)
    data_s = time.perf_counter() - t0
    images = np.concatenate([train_d["image"], lay_tr["image"], lay_def["image"]])
    model = fit_look(images, seed=seed)
    trained = {"score": "log(mean Euclidean distance to the k nearest bank rows + 1e-3), appearance_features "
                        "standardised by mean/scale (core/look.py)",
               "k": model.k, "bank_rows": int(len(model.bank)), "features": list(APPEARANCE_FEATURES),
               "bank": f"{FPS_FRACTION:g} farthest-point + uniform draw of the distinct standardised looks of "
                       f"the frames, std floored at {MIN_SCALE:g}",
               "data": {"bank_frames": {"scenarios_train_split": int(len(train_d["tick"])),
                                        "layouts_train": int(len(lay_tr["tick"])),
                                        "layouts_train_default_look": int(len(lay_def["tick"]))},
                        "layouts_train": f"layout_ids('train', {layouts}), world_data split 'train', "
                                         f"{layout_episodes} episodes each (seeds 0..{layout_episodes - 1})",
                        "layouts_train_default_look": f"layout_ids('train', {default_layouts}, first={per_family}), "
                                                      f"world_data split 'train', seed "
                                                      f"{world_data.DEFAULT_LOOK_EVERY - 1} (the default look)",
                        "calibration_frames": {"scenarios_calib_split": int(len(calib_d["tick"])),
                                               "layouts_val": int(len(lay_c["tick"]))},
                        "layouts_calib": f"layout_ids('val', {calib_layouts}, first={CALIB_LAYOUT_FIRST}), "
                                         f"world_data split 'calib', {layout_episodes} episodes each",
                        "max_episode_s": max_time_s, "quick": quick},
               "fit_s": round(time.perf_counter() - t0 - data_s, 1), "data_time_s": round(data_s, 1)}
    record = write_look(out, model, trained)
    log.info("look bank: %d rows of %d frames, k %d -> %s", len(model.bank), len(images), model.k, out / LOOK_FILE)
    return record, concat(calib_d, lay_c)


__all__ = ["BANK_SIZE", "CALIB_LAYOUTS", "CALIB_LAYOUT_FIRST", "DEFAULT_LAYOUTS", "K", "LAYOUTS", "LAYOUT_EPISODES",
           "MIN_SCALE", "concat", "farthest_points", "fit_look", "layout_data", "look_options",
           "make_look", "write_look"]
