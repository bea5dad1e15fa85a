"""``hjepa-agent train habitual --dataset DS``: the habitual (Mode-1) policy by behaviour cloning on a
dataset's recorded commands, on the latent of a frozen world encoder.

Input and label: core.types.habitual_features from the recorded odometry, goal and scan, with the
latent of ``world_encoder.onnx`` (--world-models, default --out) run through ONNX Runtime as
perception runs it (encoder_model: world_encoder); label ``action.command`` (the latest command the
frame led to) / the ego model's operating limits. Exported as habitual_world.onnx (latent_source
world_encoder), its manifest entry naming the encoder's sha256, the dataset and the resolved config.

Which rows teach (``--modes``, default HABITUAL,PLANNING,OPTIMISING and rows without a recorded mode):
* HABITUAL rows are the runtime's own habitual policy where the watchdog let it drive: cloning them
  keeps its behaviour where it was trusted;
* PLANNING and OPTIMISING rows are the planner's commands through the bridge, in the states where the
  habitual policy was not trusted: cloning them is Mode-2 -> Mode-1 distillation, what the habitual
  policy most needs to learn; they weigh ``--plan-weight`` times as much;
* rows without a mode are teleoperation (nothing else drives without the watchdog): demonstrations;
* SAFE_STOP rows are left out: a stop ramp is the watchdog's reaction, not a way to drive.
States near an obstacle weigh train/habitual.py's NEAR_WEIGHT times more, as in the simulator path.
No DAgger: a recording cannot be asked what the demonstrator would have done elsewhere (the
simulator path's ``hjepa-agent train habitual`` does it with the expert). Training is step-based
(one permutation of the train rows per epoch, drawn from (seed, epoch)), so checkpoints land anywhere
and ``--resume`` continues exactly; the ``val`` episodes give the held-out loss.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hjepa_agent.core.types import N_LATENT, SCAN_RANGE_MAX_M
from hjepa_agent.dataset.format import open_dataset
from hjepa_agent.config.paths import data_path
from hjepa_agent.train.runs import Run, TrainConfig, config_from, to_plain

log = logging.getLogger(__name__)


@dataclass
class HabitualConfig(TrainConfig):
    """``hjepa-agent train habitual`` (generated CLI: --help): the one config of the habitual trainer. With
    ``--dataset``, behaviour cloning on the dataset (this module); without, the simulator path
    (train/habitual.py: expert or planner teacher, DAgger rounds, a final ONNX evaluation)."""

    world_models: Path = field(default=None, metadata={"help": "models dir with the frozen world_encoder.onnx "
                                                               "(default: --out)"})
    epochs: int = field(default=None, metadata={"help": "passes over the data (default: 40 with --dataset; 12 per "
                                                        "round in the simulator)"})
    batch: int = field(default=128, metadata={"help": "rows per step"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    modes: str = field(default="HABITUAL,PLANNING,OPTIMISING,", metadata={
        "help": "dataset: comma-separated modes whose rows teach; an empty item = rows without a recorded mode"})
    plan_weight: float = field(default=2.0, metadata={"help": "dataset: weight of PLANNING and OPTIMISING rows"})
    threads: int = field(default=2, metadata={"help": "torch threads"})
    latent: str = field(default="encoder", metadata={
        "choices": ["encoder", "world"], "help": "simulator: encoder trains an image encoder jointly (encoder.onnx); "
                                                 "world uses the frozen JEPA world_encoder.onnx of --world-models "
                                                 "(a dataset always uses world)"})
    episodes: int = field(default=20, metadata={"help": "simulator: expert episodes per scenario (round 0)"})
    dagger_rounds: int = field(default=5, metadata={"help": "simulator: DAgger rounds after behaviour cloning"})
    dagger_episodes: int = field(default=10, metadata={
        "help": "simulator: per scenario and round, episodes with the beta-mix, and as many with the policy alone"})
    final_episodes: int = field(default=15, metadata={"help": "simulator: ONNX evaluation episodes per scenario"})
    scenarios: Path = field(default=None, metadata={"help": "simulator: scenario YAML or directory"})
    layouts: int = field(default=0, metadata={
        "help": "simulator: also this many procedural train-split layouts (sim/layouts.py, the families in turn), "
                "each run with the first --layout-episodes seeds of every round"})
    layout_episodes: int = field(default=1, metadata={"help": "simulator: episodes per procedural layout and round"})
    max_episode_s: float = field(default=None, metadata={"help": "simulator: cut episodes short (default: the "
                                                                 "scenario's limit)"})
    teacher: str = field(default="expert", metadata={
        "choices": ["expert", "cem", "mppi", "gflownet"],
        "help": "simulator: who drives round 0 and labels every state: the scripted expert (privileged A* + pure "
                "pursuit) or a planner on the sensed scan (Mode-2 -> Mode-1 distillation)"})
    planner_models: Path = field(default=None, metadata={"help": "simulator, --teacher gflownet: the planner's "
                                                                 "models dir (default: the package's)"})
    quick: bool = field(default=False, metadata={"help": "simulator: tiny data, 1 epoch, 1 round, 5 s episodes (tests)"})
    # the simulator path checkpoints after every DAgger round (the net, the optimiser, the data so far):
    # --resume continues with the next round; --checkpoint-every applies to the dataset path's steps

    def check(self) -> None:
        if self.dataset is not None:
            self.epochs = 40 if self.epochs is None else self.epochs
            if self.quick or self.teacher != "expert" or self.layouts:
                raise ValueError("--quick, --teacher and --layouts are the simulator path's: not with --dataset")
        else:
            self.epochs = 12 if self.epochs is None else self.epochs
            if self.quick:
                self.episodes, self.dagger_rounds, self.dagger_episodes, self.final_episodes, self.epochs = 1, 1, 1, 1, 1
                self.max_episode_s = 5.0
            if self.world_models is not None and self.latent != "world":
                raise ValueError("--world-models needs --latent world")
            if self.dagger_rounds < 0:
                raise ValueError(f"--dagger-rounds must be >= 0, got {self.dagger_rounds}")
            for name in ("episodes", "dagger_episodes", "final_episodes"):
                if getattr(self, name) < 1:
                    raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.epochs < 1 or self.batch < 1:
            raise ValueError("--epochs and --batch must be >= 1")


def _arrays(samples: Any, latent: np.ndarray, weight: np.ndarray) -> dict[str, torch.Tensor]:
    arr = samples.arrays()
    return {"features": torch.from_numpy(np.concatenate([arr["head"], latent], 1).astype(np.float32)),
            "action": torch.from_numpy(arr["action"]), "scan": torch.from_numpy(arr["scan"]),
            "weight": torch.from_numpy(weight.astype(np.float32))}


def _loss(net: torch.nn.Module, a: dict[str, torch.Tensor], sel: Any) -> torch.Tensor:
    from hjepa_agent.train.habitual import NEAR_M, NEAR_WEIGHT
    near = (a["scan"][sel].min(1).values * SCAN_RANGE_MAX_M < NEAR_M).float()
    w = (1.0 + (NEAR_WEIGHT - 1.0) * near) * a["weight"][sel]
    err = (net(a["features"][sel]) - a["action"][sel]).pow(2).mean(1)
    return (w * err).sum() / w.sum()


def _samples(ds: Any, split: str, limits: Any, modes: list[str], enc: Any, plan_weight: float) -> tuple[dict, dict]:
    from hjepa_agent.train.from_dataset import habitual_samples
    from hjepa_agent.train.habitual import LatentCache
    samples, used = habitual_samples(ds, ds.split(split), limits, modes)
    latent = LatentCache(enc).latents(samples)
    rows = ds.load(ds.split(split), ["mode", "observation.has_goal"])
    kept = rows["mode"][np.isin(rows["mode"].astype(str), modes) & rows["observation.has_goal"]].astype(str)
    weight = np.where(np.isin(kept, ["PLANNING", "OPTIMISING"]), plan_weight, 1.0)
    return _arrays(samples, latent, weight), used


def train(cfg: HabitualConfig) -> dict[str, Any]:
    """Clone, export, write the manifest entry (module doc); returns the metrics."""
    from hjepa_agent.core.models import HABITUAL_MODELS, OnnxModel, load_manifest
    from hjepa_agent.train.collect import Limits
    from hjepa_agent.train.export import export_onnx
    from hjepa_agent.train.habitual import LATENT_SOURCES
    from hjepa_agent.train.manifest import ModelRecord, write_manifest
    from hjepa_agent.train.nets import N_HEAD_FEATURES, HabitualPolicy
    from hjepa_agent.train.runs import restore, snapshot
    from hjepa_agent.train.world_model_ds import _robot, dataset_record
    from tqdm import tqdm

    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out or data_path("models"))
    _, ego, fingerprint = _robot(cfg, "hjepa-agent train habitual --dataset")
    limits = Limits.from_ego(ego)
    world_dir = Path(cfg.world_models or out)
    enc = OnnxModel(world_dir, "world_encoder", load_manifest(world_dir), ["CPUExecutionProvider"], expected=fingerprint)
    ds = open_dataset(cfg.dataset)
    modes = cfg.modes.split(",")
    tr, used = _samples(ds, "train", limits, modes, enc, cfg.plan_weight)
    va, _ = _samples(ds, "val", limits, modes, enc, cfg.plan_weight)
    n = len(tr["action"])
    per_epoch = -(-n // cfg.batch)
    steps = cfg.epochs * per_epoch
    torch.manual_seed(cfg.seed)
    net = HabitualPolicy()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    run = Run(cfg, "habitual", out)
    start, hist = 0, {"step": [], "train_bc": [], "val_bc": []}
    parts = {"net": net, "optimizer": opt}   # the batches come from (seed, epoch): no generator to keep
    state = run.load()
    if state is not None:
        start, hist = restore(state, parts), state["history"]
    running = list(state["running"]) if state is not None else []
    bar = tqdm(range(start, steps), desc="habitual (BC)", unit="step", leave=False, disable=cfg.quiet,
               initial=start, total=steps)
    for step in bar:
        epoch, i = divmod(step, per_epoch)
        perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
        sel = torch.from_numpy(perm[i * cfg.batch:(i + 1) * cfg.batch])
        for g in opt.param_groups:
            g["lr"] = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * step / max(steps - 1, 1))))
        net.train()
        loss = _loss(net, tr, sel)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running.append(float(loss.detach()))
        if i == per_epoch - 1:   # end of an epoch: held-out loss
            net.eval()
            with torch.no_grad():
                val = float(_loss(net, va, slice(None)))
            hist["step"].append(step)
            hist["train_bc"].append(round(float(np.mean(running)), 6))
            hist["val_bc"].append(round(val, 6))
            run.log(step, {"train_bc": hist["train_bc"][-1], "val_bc": val, "lr": opt.param_groups[0]["lr"]})
            bar.set_postfix(train=f"{hist['train_bc'][-1]:.4f}", val=f"{val:.4f}")
            running = []
        if run.due(step, steps):
            run.save(step + 1, snapshot(parts, history=hist, running=running))
    run.close()
    net.eval()
    name = HABITUAL_MODELS[LATENT_SOURCES["world"]]
    parity = export_onnx(net, torch.rand(1, N_HEAD_FEATURES + N_LATENT), out / f"{name}.onnx", ["features"],
                         ["action"], low=-1.0, high=1.0)
    metrics = {"train_bc": hist["train_bc"][-1], "val_bc": hist["val_bc"][-1], "history": hist,
               "rows": {"train": n, "val": int(len(va["action"]))}, "rows_by_mode": used,
               "onnx_parity_max_abs_err": parity, "train_time_s": round(time.perf_counter() - t0, 1)}
    data = {**dataset_record(ds, ("train", "val")), "modes": modes, "plan_weight": cfg.plan_weight,
            "label": "action.command / operating limits", "latent_source": LATENT_SOURCES["world"],
            "latent_encoder_sha256": enc.entry.sha256, "world_models": str(world_dir)}
    write_manifest(out, ego.robot, [ModelRecord(name, f"{name}.onnx", {"data": data, "config": to_plain(cfg),
                                                                       "run_dir": str(run.dir), "metrics": metrics})],
                   limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)
    log.info("habitual from %s: %d steps, train_bc %.4f, val_bc %.4f; %.0f s", cfg.dataset, steps,
             metrics["train_bc"], metrics["val_bc"], metrics["train_time_s"])
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    """Entry point (train/habitual.py hands ``--dataset`` runs here)."""
    from hjepa_agent.train.export import setup_training_logging
    cfg = config_from(HabitualConfig, argv, "hjepa-agent train habitual", __doc__.split("\n")[0])
    if cfg.dataset is None:
        raise ValueError("--dataset is required here (the simulator path: hjepa-agent train habitual)")
    setup_training_logging()
    train(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
