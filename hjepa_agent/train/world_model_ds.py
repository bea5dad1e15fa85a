"""``hjepa-agent train world-model --dataset DS``: the JEPA world model from a dataset only (no labels).

The objective, the phase-2 predictor fine-tune, the calibration and the exports are
train/world_model.py's (the simulator path's); what changes is where the frames come from:

* training frames: the dataset's ``train`` episodes (train/from_dataset.py world_arrays: camera,
  scan, executed command; no simulator state is read even when the dataset has it);
* calibration (predictive sigma, score statistics, ambiguity scale): the ``val`` episodes;
* the look bank (the ``appearance`` score's training looks, core/look.py): the train frames;
* the ``test`` episodes are left to ``hjepa-agent eval world-model --dataset DS``.

Checkpoints, ``--resume``, metrics (TensorBoard + CSV) and the saved config are train/runs.py's;
phase 1 runs data-parallel under ``torchrun --nproc_per_node N`` (train/jepa_loop.py), phase 2 and
the exports on rank 0. A run resumed after phase 1 redoes phase 2 (about a minute, deterministic).
Writes world_encoder.onnx, world_predictor.onnx, world_look.npz, world_model_calibration.yaml into
--out and merges their manifest entries, each recording the dataset and the resolved config.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hjepa_agent.dataset.format import open_dataset
from hjepa_agent.config.paths import data_path
from hjepa_agent.train import world_data
from hjepa_agent.train.from_dataset import world_arrays
from hjepa_agent.train.runs import Run, TrainConfig, config_from, to_plain

log = logging.getLogger(__name__)


@dataclass
class WorldModelConfig(TrainConfig):
    """``hjepa-agent train world-model`` (generated CLI: --help): the one config of the world-model trainer.
    With ``--dataset`` it trains on the dataset (this module); without, on simulator roll-outs it
    collects itself (train/world_model.py: --episodes, --layouts, --data-cache, --recalibrate, --quick).
    Checkpoints, --resume and metrics cover phase 1 either way."""

    steps: int = field(default=3000, metadata={"help": "phase-1 optimiser steps"})
    finetune_steps: int = field(default=4000, metadata={"help": "phase-2 predictor steps (encoder frozen)"})
    horizon: int = field(default=5, metadata={"help": "rollout steps in the loss"})
    batch: int = field(default=128, metadata={"help": "global batch (split over torchrun's processes)"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (warm-up 100 steps, cosine to 0.1x)"})
    time_budget_s: float = field(default=0.0, metadata={"help": "stop phase 1 after this long (0: no limit)"})
    threads: int = field(default=2, metadata={"help": "torch threads per process"})
    log_every: int = field(default=50, metadata={"help": "steps between recorded metrics"})
    episodes: int = field(default=40, metadata={"help": "simulator: train episodes per scenario"})
    calib_episodes: int = field(default=8, metadata={"help": "simulator: calibration episodes per scenario"})
    max_episode_s: float = field(default=20.0, metadata={"help": "simulator: episode length cap"})
    data_cache: Path = field(default=None, metadata={
        "help": "simulator: directory to reuse collected roll-outs from (written there when absent; not shipped)"})
    layouts: int = field(default=0, metadata={
        "help": "simulator: also train on this many procedural train-split layouts (sim/layouts.py; the families "
                "in turn); give it again with --recalibrate"})
    layout_episodes: int = field(default=5, metadata={"help": "simulator: episodes per procedural layout"})
    recalibrate: bool = field(default=False, metadata={
        "help": "simulator: keep the ONNX models in --out, redo only their calibration and score statistics"})
    quick: bool = field(default=False, metadata={"help": "simulator: tiny data and few steps (tests, < 60 s)"})
    workers: int = field(default=0, metadata={"help": "simulator: Ray workers for the roll-outs (dataset collect; "
                                                      "0: in this process)"})

    def check(self) -> None:
        for name in ("steps", "horizon", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.dataset is not None and (self.recalibrate or self.quick or self.layouts):
            raise ValueError("--recalibrate, --quick and --layouts are the simulator path's: not with --dataset")
        if self.quick:   # the simulator path's smoke size (tests)
            self.episodes, self.calib_episodes, self.steps, self.max_episode_s, self.batch = 2, 1, 120, 8.0, 64
            self.layouts, self.layout_episodes, self.finetune_steps = min(self.layouts, 7), 1, 1500


def _robot(cfg: TrainConfig, verb: str) -> tuple[Any, Any, Any]:
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.fingerprint import robot_fingerprint
    from hjepa_agent.sim.robot import load_robot_description
    robot_path = cfg.robot or data_path("config", "robots", "diffbot.yaml")
    ego_path = cfg.ego_model or data_path("config", "ego_model.yaml")
    robot, ego = load_robot_description(robot_path), load_ego_model(ego_path)
    return robot, ego, robot_fingerprint(robot, ego, str(robot_path), str(ego_path), verb)


def dataset_record(ds: Any, splits: tuple[str, ...]) -> dict[str, Any]:
    """What a manifest entry says about the dataset a model was trained on."""
    info = ds.info
    return {"dataset": str(Path(ds.root).resolve()), "created": info["created"], "source": info["source"],
            "sources": info["sources"][:20], "episodes": info["total_episodes"], "frames": info["total_frames"],
            "splits_used": {s: len(ds.split(s)) for s in splits}}


def train(cfg: WorldModelConfig) -> dict[str, Any] | None:
    """Train, calibrate, export (module doc); returns the metrics (None on ranks other than 0)."""
    from hjepa_agent.train import world_model as wm
    from hjepa_agent.train.collect import Limits
    from hjepa_agent.train.jepa_loop import init_distributed
    from hjepa_agent.train.look import fit_look, write_look

    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    rank, world = init_distributed()
    out = Path(cfg.out or data_path("models"))
    robot, ego, fingerprint = _robot(cfg, "hjepa-agent train world-model --dataset")
    limits = Limits.from_ego(ego)
    ds = open_dataset(cfg.dataset)
    train_d = world_arrays(ds, ds.split("train"), limits)
    run = Run(cfg, "world-model", out, rank=rank)
    enc, ens, hist = wm.train_model(train_d, steps=cfg.steps, horizon=cfg.horizon, batch=cfg.batch, lr=cfg.lr,
                                    seed=cfg.seed, time_budget_s=cfg.time_budget_s or None, run=run,
                                    progress=not cfg.quiet, log_every=cfg.log_every)
    run.close()
    if rank != 0:
        return None
    z_tr = wm.encode_all(enc, train_d)
    hist.update(wm.finetune_predictor(ens, z_tr, train_d, steps=cfg.finetune_steps, horizon=cfg.horizon,
                                      batch=256, lr=1e-3, seed=cfg.seed))
    calib_d = world_arrays(ds, ds.split("val"), limits)
    z_c = wm.encode_all(enc, calib_d)
    t1 = world_data.windows(calib_d, 1)
    with torch.no_grad():
        preds = ens(torch.from_numpy(z_c[t1]), torch.from_numpy(calib_d["action"][t1])).numpy()
    calib = wm.calibrate(z_tr, z_c, preds, t1)
    out.mkdir(parents=True, exist_ok=True)
    look_model = fit_look(train_d["image"], seed=cfg.seed)
    look = write_look(out, look_model, {"score": "core/look.py", "k": look_model.k, "bank_rows": int(len(look_model.bank)),
                                        "data": {**dataset_record(ds, ("train",)), "bank_frames": int(len(train_d["image"]))}})
    parity = wm.export_world_models(out, enc, ens, z_c, calib_d["action"])
    mse1 = float(((preds.mean(1) - z_c[t1 + 1]) ** 2).mean())
    copy1 = float(((z_c[t1] - z_c[t1 + 1]) ** 2).mean())
    metrics = {"train_time_s": hist.pop("train_s"), "history": hist, "calib_one_step_mse": round(mse1, 6),
               "calib_copy_baseline_mse": round(copy1, 6), "latent_std_train": z_tr.std(0).round(4).tolist(),
               "onnx_parity_max_abs_err": parity, "processes": world}
    common = {"data": {**dataset_record(ds, ("train", "val")), "frames_train": int(len(train_d["tick"])),
                       "frames_calib": int(len(calib_d["tick"]))},
              "config": to_plain(cfg), "run_dir": str(run.dir), "heads": wm.N_HEADS, "horizon": cfg.horizon,
              "steps": hist["steps_done"], "batch": cfg.batch, "lr": cfg.lr,
              "loss": "as train/world_model.py (25*pred + 25*vicreg_var + 1*vicreg_cov + 5*aux), from the dataset"}

    wm.write_world_entries(out, calib, common, metrics, parity, look, ego.robot, limits, fingerprint, calib_d)
    metrics["total_time_s"] = round(time.perf_counter() - t0, 1)
    log.info("world model from %s: %d steps; val 1-step mse %.4f (copy %.4f); total %.0f s", cfg.dataset,
             hist["steps_done"], mse1, copy1, metrics["total_time_s"])
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    """Entry point (train/world_model.py hands ``--dataset`` runs here)."""
    from hjepa_agent.train.export import setup_training_logging
    cfg = config_from(WorldModelConfig, argv, "hjepa-agent train world-model", __doc__.split("\n")[0])
    if cfg.dataset is None:
        raise ValueError("--dataset is required here (the simulator path: hjepa-agent train world-model)")
    setup_training_logging()
    train(cfg)
    return 0


__all__ = ["WorldModelConfig", "dataset_record", "train", "train_main"]


if __name__ == "__main__":   # torchrun --nproc_per_node 2 -m hjepa_agent.train.world_model_ds --dataset DS ...
    raise SystemExit(train_main())
