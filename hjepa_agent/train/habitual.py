"""Train the perception encoder and the habitual policy: behaviour cloning + DAgger, ONNX export.

``hjepa-agent train habitual [--episodes N] [--dagger-rounds K] [--out DIR] [--quick]``
(also ``python -m hjepa_agent.train.habitual``):

1. Round 0: the scripted expert drives N episodes per scenario; every tick is recorded.
2. Encoder, policy and the auxiliary scan head are trained jointly end to end:
   loss = wMSE(policy(concat(head, encoder(image))), expert action / action_scale)
          + SCAN_LOSS_WEIGHT * MSE(scan_head(latent), scan sectors / range max),
   the BC error of states near an obstacle weighted NEAR_WEIGHT times.
3. DAgger, rounds 1..K: the policy of round k-1 drives fresh seeds, mixed with the
   expert (beta = 0.5^k), then alone (beta = 0; its success rate is reported per
   round); every visited state is labelled by the expert; the data are aggregated
   and training goes on (learning rate decays 0.6x per round, floor 0.2x).
4. The final policy is evaluated through the exported ONNX models on fresh seeds,
   exactly as the runtime computes its features; encoder.onnx, habitual.onnx and
   manifest.yaml are written to --out.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.models import OnnxModel, load_manifest
from hjepa_agent.core.types import N_LATENT, SCAN_RANGE_MAX_M
from hjepa_agent.paths import data_path, share_dir
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import load_scenarios
from hjepa_agent.sim.world import SimWorld
from hjepa_agent.train.collect import Limits, PolicyFn, Samples, run_many, success_table
from hjepa_agent.train.export import setup_training_logging, export_onnx
from hjepa_agent.train.manifest import ModelRecord, write_manifest
from hjepa_agent.train.nets import N_HEAD_FEATURES, AgentNet

log = logging.getLogger(__name__)

SCAN_LOSS_WEIGHT = 0.5
TRAIN_THREADS = 2
NEAR_M = 0.45
"""A state whose closest scan sector is nearer than this (m) is 'near an obstacle'..."""
NEAR_WEIGHT = 4.0
"""... and its behaviour-cloning error weighs this much more."""
EVAL_SEED_BASE = 100_000
"""Seeds of DAgger round k are EVAL_SEED_BASE * k + i; round-0 expert seeds are 0..N-1."""
FINAL_SEED_BASE = 900_000
"""Seeds of the final ONNX evaluation, never trained on."""


def _batches(n: int, batch: int, rng: np.random.Generator, shuffle: bool) -> list[np.ndarray]:
    idx = rng.permutation(n) if shuffle else np.arange(n)
    return [idx[i:i + batch] for i in range(0, n, batch)]


def _loss(net: AgentNet, arr: dict[str, np.ndarray], sel: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.from_numpy(arr["images"][sel]).float().mul_(1.0 / 255.0)
    action, scan = net(torch.from_numpy(arr["head"][sel]), image)
    scan_t = torch.from_numpy(arr["scan"][sel])
    # States close to an obstacle weigh more: that is where a wrong action ends the episode.
    near = (scan_t.min(dim=1).values * SCAN_RANGE_MAX_M < NEAR_M).float()
    weight = 1.0 + (NEAR_WEIGHT - 1.0) * near
    err = (action - torch.from_numpy(arr["action"][sel])).pow(2).mean(dim=1)
    bc = (weight * err).sum() / weight.sum()
    aux = torch.nn.functional.mse_loss(scan, scan_t)
    return bc, aux


def train_epochs(net: AgentNet, opt: torch.optim.Optimizer, data: Samples, epochs: int, seed: int,
                 batch: int = 128, val_frac: float = 0.1) -> dict[str, float]:
    """Train jointly for ``epochs`` on ``data`` (split by episode into train/val).

    Returns {"train_bc", "train_scan", "val_bc", "val_scan", "val_loss", "samples"} (losses: MSE
    of normalised quantities, last epoch)."""
    from tqdm import tqdm

    torch.set_num_threads(TRAIN_THREADS)
    arr = data.arrays()
    rng = np.random.default_rng(seed)
    episodes = np.unique(arr["episode"])
    n_val = max(1, int(round(val_frac * len(episodes)))) if len(episodes) > 1 else 0
    val_eps = rng.choice(episodes, size=n_val, replace=False) if n_val else np.array([], int)
    is_val = np.isin(arr["episode"], val_eps)
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    out: dict[str, float] = {"samples": int(len(arr["head"])), "train_samples": int(len(train_idx))}
    for epoch in tqdm(range(epochs), desc="epochs", unit="ep", leave=False):
        net.train()
        sums = np.zeros(2)
        for b in _batches(len(train_idx), batch, rng, shuffle=True):
            bc, aux = _loss(net, arr, train_idx[b])
            opt.zero_grad()
            (bc + SCAN_LOSS_WEIGHT * aux).backward()
            opt.step()
            sums += [bc.item() * len(b), aux.item() * len(b)]
        out["train_bc"], out["train_scan"] = (float(s / max(len(train_idx), 1)) for s in sums)
    net.eval()
    sums = np.zeros(2)
    with torch.no_grad():
        for b in _batches(len(val_idx), 512, rng, shuffle=False):
            bc, aux = _loss(net, arr, val_idx[b])
            sums += [bc.item() * len(b), aux.item() * len(b)]
    n = max(len(val_idx), 1)
    out["val_bc"], out["val_scan"] = float(sums[0] / n), float(sums[1] / n)
    out["val_loss"] = out["val_bc"] + SCAN_LOSS_WEIGHT * out["val_scan"]
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def torch_policy(net: AgentNet) -> PolicyFn:
    """Policy function for rollouts: (head (21,), image (1, 3, 64, 64)) -> normalised action (2,).

    Single-sample calls run with one torch thread (two threads are ~20x slower per call
    on a busy 2-core machine); training uses TRAIN_THREADS.
    """
    def act(head: np.ndarray, image: np.ndarray) -> np.ndarray:
        torch.set_num_threads(1)
        with torch.inference_mode():
            a, _ = net(torch.from_numpy(head[None]), torch.from_numpy(image))
        return a[0].numpy()
    return act


def onnx_policy(encoder: OnnxModel, habitual: OnnxModel) -> PolicyFn:
    """The runtime's path: latent = encoder(image); features = concat(head, latent) as in habitual_features."""
    def act(head: np.ndarray, image: np.ndarray) -> np.ndarray:
        z = encoder(image)[0]
        return habitual(np.concatenate([head, z])[None])[0]
    return act


def _time_per_call_us(model: OnnxModel, shape: tuple[int, ...], n: int = 500) -> float:
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1e6, 1)


def _rel(path: str | Path) -> str:
    """``path`` relative to the package data dir when inside it (manifests travel between machines)."""
    try:
        return str(Path(path).resolve().relative_to(share_dir()))
    except ValueError:
        return str(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options of ``hjepa-agent train habitual``."""
    ap = argparse.ArgumentParser(prog="hjepa-agent train habitual", description=__doc__.split("\n")[0])
    ap.add_argument("--episodes", type=int, default=20, help="expert episodes per scenario (round 0)")
    ap.add_argument("--dagger-rounds", type=int, default=5, help="DAgger rounds after behaviour cloning")
    ap.add_argument("--dagger-episodes", type=int, default=10,
                    help="per scenario and round: episodes with the beta-mix, and as many with the policy alone")
    ap.add_argument("--final-episodes", type=int, default=15, help="ONNX evaluation episodes per scenario")
    ap.add_argument("--epochs", type=int, default=12, help="epochs per round")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="output models dir (default: the package's models/)")
    ap.add_argument("--robot", type=Path, default=None, help="robot description YAML")
    ap.add_argument("--ego", type=Path, default=None, help="ego model YAML")
    ap.add_argument("--scenarios", type=Path, default=None, help="scenario YAML or directory")
    ap.add_argument("--max-episode-s", type=float, default=None, help="cut episodes short (default: scenario limit)")
    ap.add_argument("--quick", action="store_true", help="tiny data, 1 epoch, 1 round, 5 s episodes (tests)")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.dagger_rounds, args.dagger_episodes, args.final_episodes, args.epochs = 1, 1, 1, 1, 1
        args.max_episode_s = 5.0
    for name in ("episodes", "dagger_episodes", "final_episodes", "epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.dagger_rounds < 0:
        ap.error(f"--dagger-rounds must be >= 0, got {args.dagger_rounds}")
    return args


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run collection, training, DAgger, export and the final evaluation; returns the metrics."""
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    robot_path = args.robot or data_path("config", "robots", "diffbot.yaml")
    ego_path = args.ego or data_path("config", "ego_model.yaml")
    scen_path = args.scenarios or data_path("config", "scenarios")
    out = Path(args.out or data_path("models"))
    out.mkdir(parents=True, exist_ok=True)
    robot, ego, scenarios = load_robot_description(robot_path), load_ego_model(ego_path), load_scenarios(scen_path)
    limits = Limits.from_ego(ego)
    net = AgentNet()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rounds: list[dict[str, Any]] = []
    with SimWorld(robot) as world:
        seeds = list(range(args.episodes))
        results, data = run_many(world, ego, scenarios, seeds, limits, desc="expert",
                                 max_time_s=args.max_episode_s)
        expert_table = success_table(results)
        log.info("round 0: expert %d episodes, %d samples, success %.2f", len(results), len(data),
                 expert_table["all"]["success_rate"])
        n_eps = len(results)
        for k in range(args.dagger_rounds + 1):
            for group in opt.param_groups:
                group["lr"] = args.lr * max(0.2, 0.6 ** k)
            t = time.perf_counter()
            fit = train_epochs(net, opt, data, args.epochs, seed=args.seed + k)
            record: dict[str, Any] = {"round": k, "train_s": round(time.perf_counter() - t, 1),
                                      "lr": round(opt.param_groups[0]["lr"], 6), **fit}
            if k < args.dagger_rounds:
                # The policy of round k drives: a beta-mix with the expert (DAgger data), then alone
                # (its success rate; these episodes are expert-labelled and aggregated too).
                net.eval()
                beta = 0.5 ** (k + 1)
                base = EVAL_SEED_BASE * (k + 1)
                mixed_res, mixed = run_many(world, ego, scenarios, [base + i for i in range(args.dagger_episodes)], limits,
                                    torch_policy(net), beta=beta, desc=f"dagger {k + 1} (beta {beta:.2f})",
                                    max_time_s=args.max_episode_s)
                res, alone = run_many(world, ego, scenarios,
                                      [base + 500 + i for i in range(args.dagger_episodes)], limits,
                                      torch_policy(net), beta=0.0, desc=f"policy {k}",
                                      max_time_s=args.max_episode_s)
                for batch, n_batch in ((mixed, len(mixed_res)), (alone, len(res))):
                    data.extend(batch, episode_offset=n_eps)
                    n_eps += n_batch
                record["beta_next"] = beta
                record["policy_success"] = success_table(res)
                log.info("round %d: val_bc %.4f val_scan %.4f; policy success %.2f (collisions %d) on %d episodes",
                         k, fit["val_bc"], fit["val_scan"], record["policy_success"]["all"]["success_rate"],
                         record["policy_success"]["all"]["collisions"], len(res))
            rounds.append(record)
    train_s = time.perf_counter() - t0

    net.eval()
    parity = {"encoder": export_onnx(net.encoder, torch.rand(1, 3, 64, 64), out / "encoder.onnx",
                                     ["image"], ["latent"]),
              "habitual": export_onnx(net.policy, torch.rand(1, N_HEAD_FEATURES + N_LATENT), out / "habitual.onnx",
                                      ["features"], ["action"], low=-1.0, high=1.0)}
    data_desc = {"scenarios": [s.name for s in scenarios], "robot_description": _rel(robot_path),
                 "ego_model": _rel(ego_path), "expert_episodes_per_scenario": args.episodes,
                 "expert_seeds": f"0..{args.episodes - 1}", "dagger_rounds": args.dagger_rounds,
                 "dagger_episodes_per_scenario": args.dagger_episodes,
                 "dagger_seeds": f"{EVAL_SEED_BASE}*round + 0..{args.dagger_episodes - 1} (beta-mix, "
                                 f"beta = 0.5^round), + 500.. (policy alone)",
                 "samples": len(data), "control_hz": 10, "quick": bool(args.quick)}
    metrics: dict[str, Any] = {"train_time_s": round(train_s, 1), "expert_success": expert_table,
                               "rounds": rounds, "onnx_parity_max_abs_err": parity, "epochs_per_round": args.epochs}
    enc_metrics = {"trained_jointly_with": "habitual (its metrics hold the full record)",
                   "val_scan_mse": rounds[-1]["val_scan"], "onnx_parity_max_abs_err": parity["encoder"]}
    records = [ModelRecord("encoder", "encoder.onnx", {"data": data_desc, "metrics": enc_metrics}),
               ModelRecord("habitual", "habitual.onnx", {"data": data_desc, "metrics": metrics})]
    write_manifest(out, ego.robot, records, limits.speed_norm, limits.action_scale)

    # Final evaluation through the exported models, as the runtime runs them.
    manifest = load_manifest(out)
    enc = OnnxModel(out, "encoder", manifest, ["CPUExecutionProvider"], expected_robot=ego.robot)
    hab = OnnxModel(out, "habitual", manifest, ["CPUExecutionProvider"], expected_robot=ego.robot)
    with SimWorld(robot) as world:
        seeds = [FINAL_SEED_BASE + i for i in range(args.final_episodes)]
        res, _ = run_many(world, ego, scenarios, seeds, limits, onnx_policy(enc, hab), beta=0.0,
                          desc="final (onnx)", record=False, max_time_s=args.max_episode_s)
    metrics["final_onnx_success"] = success_table(res)
    metrics["final_seeds"] = f"{FINAL_SEED_BASE} + 0..{args.final_episodes - 1}"
    metrics["onnx_us_per_call"] = {"encoder": _time_per_call_us(enc, (1, 3, 64, 64)),
                                   "habitual": _time_per_call_us(hab, (1, N_HEAD_FEATURES + N_LATENT))}
    enc_metrics["onnx_us_per_call"] = metrics["onnx_us_per_call"]["encoder"]
    metrics["total_time_s"] = round(time.perf_counter() - t0, 1)
    write_manifest(out, ego.robot, records, limits.speed_norm, limits.action_scale)  # sha256 unchanged
    log.info("final ONNX policy: success %.2f, collisions %d over %d episodes; total %.0f s",
             metrics["final_onnx_success"]["all"]["success_rate"], metrics["final_onnx_success"]["all"]["collisions"],
             len(res), metrics["total_time_s"])
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hjepa-agent train habitual``; returns the process exit code."""
    args = parse_args(argv)
    setup_training_logging()
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
