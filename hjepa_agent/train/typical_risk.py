"""``hjepa-agent train typical-risk``: the watchdog's learned typical risk (core/risk.py) from nominal runs.

Reads runs recorded by ``hjepa-agent sim`` (run.mcap with the watchdog's journal), re-runs the
watchdog's core along each journal (as ``hjepa-agent tune replay`` does) and, at every tick after
the start-up wait, takes the context (core.risk.risk_features of the world state) and the two risks
the watchdog scores: the habitual proposal's (always) and the fresh plan's (while there is one).
A small MLP fits a Gaussian to each risk's logit in its context (heteroscedastic: mean and log
spread, the plan head only on ticks with a plan), trained on 80 % of the episodes; the rest are held
out for the metrics: negative log likelihood, the fraction of held-out ticks more than 3 spreads
above the mean, and the quantiles of each held-out episode's largest deviation (what the
watchdog's risk_limit_z and risk_slow_z are compared with). Exported to models/typical_risk.onnx,
manifest merged. Every episode of the runs must be nominal (no injected faults): the network
learns what is typical.

Reproduce the shipped model (about 10 min for the runs, 1 min here):

    hjepa-agent sim --scenario config/scenarios --episodes 40 --seed 1000 --out runs/nominal --quiet
    hjepa-agent train typical-risk --runs runs/nominal

``--robot`` and ``--ego-model`` (default: the sample diffbot) name the robot the runs were recorded on
(give the same files as to ``hjepa-agent sim``); their fingerprint goes into the manifest.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hjepa_agent.train.runs import TrainConfig
from hjepa_agent.core.risk import MIN_LOG_SPREAD, N_RISK_FEATURES, N_RISK_STATS, risk_features, risk_logit
from hjepa_agent.config.paths import data_path

log = logging.getLogger(__name__)


def collect(bags: list[Path], thresholds: Path, ego_model: Path, progress: bool = True,
            remaps: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Per tick after the start-up wait: features (N, 21), targets (N, 2) risk logits (NaN where a risk
    is missing: no plan), episode index (N,). Refuses runs whose episodes had injected faults. ``remaps``:
    watchdog inputs recorded under other names (nodes/journal.ReplayContext)."""
    from hjepa_agent.nodes.journal import ReplayContext, started_ticks

    # the targets are raw risks: no deviation needed (nor a typical-risk model yet)
    ctx = ReplayContext.load(thresholds, ego_model, typical_risk=False, remaps=remaps)
    feats, targets, episodes = [], [], []
    keys: dict[str, int] = {}
    for bag in tqdm(bags, desc="typical risk: replaying runs", disable=not progress):
        episodes_file = Path(bag).parent / "episodes.jsonl"   # hjepa-agent sim writes it beside run.mcap
        if episodes_file.is_file():
            for line in episodes_file.read_text().splitlines():
                if line.strip() and json.loads(line).get("faults"):
                    raise ValueError(f"{bag}: has episodes with injected faults ({episodes_file}); the typical "
                                     f"risk is learned from nominal runs only")
        for key, entry, core, _ in started_ticks([bag], ctx):
            ws = core.world_state
            if ws is None:
                continue
            hab, plan = core.clearances(entry["tick"])
            r = core.risks(hab, plan)
            if r["habitual_risk"] is None:
                continue
            feats.append(risk_features(ws, *core.speed_norm))
            targets.append([risk_logit(r["habitual_risk"]),
                            math.nan if r["plan_risk"] is None else risk_logit(r["plan_risk"])])
            episodes.append(keys.setdefault(key, len(keys)))
    if not feats:
        raise ValueError("typical risk: no tick past the start-up wait in the runs")
    return {"features": np.asarray(feats, np.float32), "targets": np.asarray(targets, np.float32),
            "episode": np.asarray(episodes, np.int64)}


class TypicalRiskNet(nn.Module):
    """context (N, 21) -> (N, 4): [mean, log spread] of the habitual risk logit, then of the plan's."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(N_RISK_FEATURES, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, N_RISK_STATS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def gaussian_nll(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean negative log likelihood (nats, without the constant) over the targets that are present."""
    mean = out[:, [0, 2]]
    log_s = torch.clamp(out[:, [1, 3]], min=MIN_LOG_SPREAD)
    have = torch.isfinite(y)
    yy = torch.where(have, y, mean.detach())
    nll = 0.5 * ((yy - mean) / torch.exp(log_s)) ** 2 + log_s
    return (nll * have).sum() / have.sum().clamp(min=1)


def deviations(net: nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """z = (y - mean) / spread per tick and head (NaN where the target is missing)."""
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy().astype(np.float64)
    spread = np.exp(np.maximum(out[:, [1, 3]], MIN_LOG_SPREAD))
    return (y - out[:, [0, 2]]) / spread


def fit(data: dict[str, np.ndarray], hidden: int, epochs: int, lr: float, weight_decay: float, val_frac: float, seed: int,
        progress: bool = True, run: Any = None) -> tuple[nn.Module, dict[str, Any]]:
    """Train on (1 - val_frac) of the episodes; metrics on the rest (module doc). ``run`` (train/runs.py):
    a checkpoint every ``checkpoint_every`` epochs and at the end, --resume, metrics per epoch."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    eps = np.unique(data["episode"])
    n_val = max(1, int(round(val_frac * len(eps)))) if len(eps) > 1 else 0
    val_eps = set(rng.permutation(eps)[:n_val].tolist())
    is_val = np.array([e in val_eps for e in data["episode"]])
    x, y = data["features"], data["targets"]
    xt, yt = torch.from_numpy(x[~is_val]), torch.from_numpy(y[~is_val])
    net = TypicalRiskNet(hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    batch = 512
    losses: list[float] = []
    first = 0
    parts = {"net": net, "optimizer": opt}   # the batches come from torch's global generator (randperm)
    state = run.load() if run is not None else None
    if state is not None:
        from hjepa_agent.train.runs import restore
        first, losses = restore(state, parts), list(state["losses"])
    for epoch in tqdm(range(first, epochs), desc="typical risk: fitting", disable=not progress, initial=first,
                      total=epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            loss = gaussian_nll(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if run is not None:
            from hjepa_agent.train.runs import snapshot
            run.log(epoch, {"train_nll": float(np.mean(losses[-max(1, -(-len(xt) // batch)):]))})
            if run.due(epoch, epochs):
                run.save(epoch + 1, snapshot(parts, losses=losses))
    net.eval()
    metrics: dict[str, Any] = {"train_ticks": int((~is_val).sum()), "val_ticks": int(is_val.sum()),
                               "train_episodes": int(len(eps) - n_val), "val_episodes": int(n_val),
                               "train_nll_last_epoch": float(np.mean(losses[-max(1, len(xt) // batch):]))}
    if n_val:
        with torch.no_grad():
            metrics["val_nll"] = float(gaussian_nll(net(torch.from_numpy(x[is_val])), torch.from_numpy(y[is_val])))
        z = deviations(net, x[is_val], y[is_val])
        ep = data["episode"][is_val]
        for i, head in enumerate(("habitual", "plan")):
            zi = z[:, i]
            have = np.isfinite(zi)
            if not have.any():
                continue
            per_ep = [float(np.nanmax(zi[ep == e])) for e in np.unique(ep[have])]
            metrics[head] = {"ticks": int(have.sum()), "frac_ticks_z_above_3": float(np.mean(zi[have] > 3.0)),
                             "episode_max_z": {"p50": float(np.percentile(per_ep, 50)),
                                               "p95": float(np.percentile(per_ep, 95)), "max": float(max(per_ep))}}
    return net, metrics


@dataclass
class TypicalRiskConfig(TrainConfig):
    """``hjepa-agent train typical-risk`` (generated CLI: --help): from recorded runs (--runs) or from a
    dataset's risk table (--dataset; hjepa-agent dataset build writes it from recordings with the
    watchdog's journal). --checkpoint-every counts epochs here."""

    runs: list = field(default=None, metadata={"nargs": "+", "help": "nominal runs recorded by hjepa-agent sim: "
                                                                      "run dirs (every run.mcap in them) or rosbag2 folders"})
    thresholds: Path = field(default=None, metadata={"help": "watchdog thresholds the risks are computed with "
                                                             "(default: the package's config/watchdog.yaml)"})
    epochs: int = field(default=30, metadata={"help": "passes over the train ticks"})
    lr: float = field(default=2e-3, metadata={"help": "Adam learning rate"})
    hidden: int = field(default=64, metadata={"help": "hidden units per layer"})
    weight_decay: float = field(default=1e-3, metadata={"help": "Adam weight decay"})
    val_frac: float = field(default=0.2, metadata={"help": "fraction of the episodes held out for the metrics"})

    def check(self) -> None:
        if (self.runs is None) == (self.dataset is None):
            raise ValueError("give --runs RUN... or --dataset DS (one of them)")


def train(cfg: TypicalRiskConfig) -> dict[str, Any]:
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.fingerprint import load_robot_fingerprint
    from hjepa_agent.train.collect import Limits
    from hjepa_agent.train.export import export_onnx
    from hjepa_agent.train.manifest import ModelRecord, write_manifest
    from hjepa_agent.train.runs import Run, to_plain

    t0 = time.monotonic()
    robot = str(cfg.robot or data_path("config", "robots", "diffbot.yaml"))
    ego_model = str(cfg.ego_model or data_path("config", "ego_model.yaml"))
    thresholds = str(cfg.thresholds or data_path("config", "watchdog.yaml"))
    fingerprint = load_robot_fingerprint(robot, ego_model, "hjepa-agent train typical-risk")
    out = Path(cfg.out or data_path("models"))
    if cfg.dataset is not None:
        from hjepa_agent.dataset.build import read_risk
        data, source = read_risk(cfg.dataset), {"dataset": str(Path(cfg.dataset).resolve())}
    else:
        from hjepa_agent.dataset.bags import find_bags
        bags = find_bags([Path(r) for r in cfg.runs])
        data, source = collect(bags, Path(thresholds), Path(ego_model), progress=not cfg.quiet), {"runs": [str(b) for b in bags]}
    log.info("typical risk: %d ticks from %d episodes (%d with a plan)", len(data["features"]),
             len(np.unique(data["episode"])), int(np.isfinite(data["targets"][:, 1]).sum()))
    run = Run(cfg, "typical-risk", out)
    net, metrics = fit(data, cfg.hidden, cfg.epochs, cfg.lr, cfg.weight_decay, cfg.val_frac, cfg.seed,
                       progress=not cfg.quiet, run=run)
    run.close()
    err = export_onnx(net, torch.zeros(2, N_RISK_FEATURES), out / "typical_risk.onnx", ["context"], ["risk_stats"],
                      low=-1.0, high=2.0)
    metrics.update(parity_max_abs_err=err, train_s=round(time.monotonic() - t0, 1))
    ego = load_ego_model(Path(ego_model))
    desc = {"data": {**source, "ticks": int(len(data["features"])),
                     "episodes": int(len(np.unique(data["episode"]))), "thresholds": thresholds,
                     "context": "core.risk.risk_features (goal, speeds, scan; no camera latent)",
                     "targets": "logit of the habitual risk (clearance over risk_horizon_s, safe at 2 clearance_plan_m) "
                                "and of the fresh plan's own risk, clipped to [core.risk.RISK_EPS, 1 - RISK_EPS]"},
            "training": {"epochs": cfg.epochs, "lr": cfg.lr, "weight_decay": cfg.weight_decay, "hidden": cfg.hidden,
                         "val_frac": cfg.val_frac, "seed": cfg.seed, "objective": "heteroscedastic Gaussian NLL per head"},
            "config": to_plain(cfg), "run_dir": str(run.dir), "metrics": metrics}
    limits = Limits.from_ego(ego)
    write_manifest(out, ego.robot, [ModelRecord("typical_risk", "typical_risk.onnx", desc)],
                   limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)
    log.info("typical risk: %s", json.dumps(metrics))
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    from hjepa_agent.train.export import setup_training_logging
    from hjepa_agent.train.runs import config_from
    cfg = config_from(TypicalRiskConfig, argv, "hjepa-agent train typical-risk", __doc__.split("\n\n")[0])
    setup_training_logging()
    train(cfg)
    return 0
