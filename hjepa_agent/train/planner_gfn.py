"""``hjepa-agent train planner``: the GFlowNet planner's forward policy and log Z, by trajectory
balance on the planner's own cost (torch; see hjepa_agent.core.planner.gflownet for the runtime).

1. **Conditions** (progress bar): the CEM planner drives the simulated robot alone over
   config/scenarios on training seeds (10_000+, never the benchmark's 0..); at every decision the
   world state, the raw-beam obstacles and the navfield's cost-to-go on a local patch around the
   robot are stored. These are the situations the planner must act in.
2. **Reward**: for condition c, log R(tau | c) = -BETA * min(cost, COST_CLIP) with the planners'
   shared PlanCost (navfield cost-to-go from the stored patch, clearance against the stored beams,
   effort) on the unicycle roll-out of tau. No cost network is learned: the GFlowNet amortises
   the search, the reward is the task's.
3. **Training**: PlanGFlowNet (hjepa_agent.train.gflownet) over HORIZON steps of the ACTIONS
   table, conditioned on condition_features(c); off-policy trajectory balance, epsilon-uniform
   exploration; batches of ``conds_per_batch`` conditions x ``plans_per_cond`` plans, of which a
   ``replay`` fraction are replayed from the best plans seen for that condition (trajectory
   balance holds for any sampling distribution, and the good plans are the rare ones).
4. **Export**: P_F (prefix + step one-hot + condition -> logits) as ``planner_policy.onnx`` and
   log Z (condition -> (1,)) as ``planner_logz.onnx``, parity vs torch checked, merged into the
   manifest with the training data and metrics.

``--quick`` (tests): few conditions, few steps, under a minute.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from hjepa_agent.bench_planners import run_episode
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.planner.base import PlanCost, UnicycleModel
from hjepa_agent.core.planner.gflownet import (ACTIONS, COND_DIM, DT_S, HORIZON, REPEAT, condition_features, expand,
                                               log_reward)
from hjepa_agent.paths import data_path
from hjepa_agent.train.collect import Limits
from hjepa_agent.train.export import export_onnx, setup_training_logging
from hjepa_agent.train.gflownet import PlanGFlowNet, PlanSpace, tb_optimizer, trajectory_balance
from hjepa_agent.train.manifest import ModelRecord, write_manifest

log = logging.getLogger(__name__)

TRAIN_SEED0 = 10_000
"""Condition episodes use seeds from here (the benchmark uses 0..)."""
REPLAY_KEEP = 8
"""Best plans kept per condition for replay."""
PATCH_HALF_M = 2.0
PATCH_N = 21
"""Local cost-to-go patch: PATCH_N x PATCH_N points spanning +-PATCH_HALF_M around the robot."""


def collect(episodes_per_scenario: int, ego, robot: Path, progress: bool = True) -> dict[str, np.ndarray]:
    """Conditions from CEM-driven episodes (module doc, step 1)."""
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.scenario import load_scenario
    from hjepa_agent.sim.world import SimWorld

    scen = [load_scenario(p) for p in sorted(data_path("config", "scenarios").glob("*.yaml"))]
    grid = np.linspace(-PATCH_HALF_M, PATCH_HALF_M, PATCH_N)
    rows: dict[str, list] = {"cond": [], "pose": [], "goal": [], "obstacles": [], "patch": []}

    def record(ws, planner, goal, obstacles) -> None:
        nav = planner.navfield
        to_go = lambda xy: nav.distance(xy, goal, ws.stamp_s)  # noqa: E731
        rows["cond"].append(condition_features(ws.pose, goal, ws.scan_bins, ws.twist, to_go,
                                               ego.operating.max_linear_mps, ego.operating.max_angular_rps))
        rows["pose"].append(np.asarray(ws.pose, np.float32))
        rows["goal"].append(goal.copy())
        pad = np.full((64, 2), np.nan, np.float32)
        pad[:min(64, len(obstacles))] = obstacles[:64]
        rows["obstacles"].append(pad)
        gx, gy = np.meshgrid(ws.pose[0] + grid, ws.pose[1] + grid)
        rows["patch"].append(np.asarray(to_go(np.stack([gx, gy], -1).reshape(-1, 2)), np.float32).reshape(PATCH_N, PATCH_N))

    jobs = [(sc, TRAIN_SEED0 + i) for sc in scen for i in range(episodes_per_scenario)]
    with SimWorld(load_robot_description(robot)) as world:
        for sc, seed in tqdm(jobs, desc="conditions (CEM drives)", disable=not progress, unit="ep"):
            run_episode(world, "cem", sc, seed, ego, on_decision=record)
    return {k: np.stack(v) for k, v in rows.items()}


def _patch_to_go(patch: np.ndarray, pose: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear cost-to-go at ``xy`` (..., 2) from a condition's patch (clamped at its edge)."""
    step = 2 * PATCH_HALF_M / (PATCH_N - 1)
    u = np.clip((xy[..., 0] - pose[0] + PATCH_HALF_M) / step, 0, PATCH_N - 1 - 1e-6)
    v = np.clip((xy[..., 1] - pose[1] + PATCH_HALF_M) / step, 0, PATCH_N - 1 - 1e-6)
    i0, j0 = np.floor(v).astype(int), np.floor(u).astype(int)
    fy, fx = v - i0, u - j0
    return ((1 - fy) * ((1 - fx) * patch[i0, j0] + fx * patch[i0, j0 + 1])
            + fy * ((1 - fx) * patch[i0 + 1, j0] + fx * patch[i0 + 1, j0 + 1]))


def plan_log_reward(data: dict[str, np.ndarray], k: int, idx: np.ndarray, cost: PlanCost, scale: np.ndarray,
                    model: UnicycleModel, repeat: int = REPEAT) -> np.ndarray:
    """log R (m,) of plans ``idx`` (m, horizon) action indices in condition ``k``."""
    acts = expand(idx, float(scale[0]), float(scale[1]), repeat)
    pose = data["pose"][k]
    states = model.rollout(pose, acts, DT_S)
    obs = data["obstacles"][k]
    obs = obs[~np.isnan(obs[:, 0])]
    c, _ = cost(states, acts, data["goal"][k], obs, None, tuple(scale),
                lambda xy: _patch_to_go(data["patch"][k], pose, xy))
    return log_reward(c)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Collect, train, export (module doc)."""
    t_start = time.monotonic()
    ego = load_ego_model(args.ego_model or data_path("config", "ego_model.yaml"))
    robot = Path(args.robot or data_path("config", "robots", "diffbot.yaml"))
    data = collect(args.episodes, ego, robot, progress=not args.quiet)
    n = len(data["cond"])
    log.info("conditions: %d decisions from %d episodes per scenario", n, args.episodes)
    scale = np.array([ego.operating.max_linear_mps, ego.operating.max_angular_rps], np.float32)
    cost = PlanCost(footprint_radius_m=ego.hard.footprint.radius_m, w_goal=0.3)
    model = UnicycleModel()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    space = PlanSpace(args.horizon, len(ACTIONS), COND_DIM)
    net = PlanGFlowNet(space, hidden=args.hidden)
    opt = tb_optimizer(net, args.lr, args.lr * 10)
    conds = torch.from_numpy(data["cond"])
    losses = []
    bar = tqdm(range(args.steps), desc="trajectory balance", disable=args.quiet, unit="step")
    best: dict[int, list[tuple[float, tuple[int, ...]]]] = {}   # per condition: its best plans so far
    m, n_rep = args.plans_per_cond, int(round(args.replay * args.plans_per_cond))
    for _ in bar:
        ks = rng.integers(0, n, args.conds_per_batch)
        c = conds[np.repeat(ks, m)]
        plans = net.sample(len(c), c, gen, args.epsilon)
        for j, k in enumerate(ks):   # replay: part of each condition's plans are its best seen so far
            pool = best.get(int(k), [])
            for r in range(min(n_rep, len(pool))):
                plans[j * m + m - 1 - r] = torch.tensor(pool[rng.integers(0, len(pool))][1])
        pl = plans.numpy()
        log_r = np.concatenate([plan_log_reward(data, k, pl[j * m:(j + 1) * m], cost, scale, model, args.repeat)
                                for j, k in enumerate(ks)])
        for j, k in enumerate(ks):
            pool = best.setdefault(int(k), [])
            seen = {p for _, p in pool}
            pool.extend((float(log_r[j * m + i]), tuple(pl[j * m + i])) for i in range(m)
                        if tuple(pl[j * m + i]) not in seen)
            pool.sort(key=lambda e: -e[0])
            del pool[REPLAY_KEEP:]
        loss = trajectory_balance(net.log_z(c, len(c)), net.log_pf(plans, c), torch.from_numpy(log_r).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    # held-out check: on unseen conditions, the best of 16 policy samples vs 16 uniform random plans
    net.eval()
    metrics = _evaluate(net, data, rng, cost, scale, model, gen, args.repeat)
    metrics["tb_loss_last_200"] = float(np.mean(losses[-200:]))
    metrics["train_s"] = round(time.monotonic() - t_start, 1)
    out = Path(args.out)
    pol = torch.nn.Sequential(net.pf)
    err_p = export_onnx(pol, torch.zeros(2, space.state_dim + COND_DIM), out / "planner_policy.onnx",
                        ["state_cond"], ["logits"])
    err_z = export_onnx(net.logz, torch.zeros(2, COND_DIM), out / "planner_logz.onnx", ["cond"], ["log_z"],
                        low=-1.0, high=1.0)
    desc = {"data": {"conditions": int(n), "episodes_per_scenario": args.episodes, "seeds_from": TRAIN_SEED0,
                     "driver": "cem planner (planner-driven, hjepa-agent bench planners loop)",
                     "actions": ACTIONS.tolist(), "horizon": args.horizon, "repeat": args.repeat, "dt_s": DT_S},
            "training": {"steps": args.steps, "conds_per_batch": args.conds_per_batch,
                         "plans_per_cond": args.plans_per_cond, "epsilon": args.epsilon, "lr": args.lr,
                         "replay": args.replay,
                         "hidden": args.hidden, "objective": "trajectory balance"},
            "metrics": {**metrics, "parity_max_abs_err": max(err_p, err_z)}}
    limits = Limits.from_ego(ego)
    write_manifest(out, ego.robot, [ModelRecord("planner_policy", "planner_policy.onnx", desc),
                                    ModelRecord("planner_logz", "planner_logz.onnx", desc)],
                   limits.speed_norm, limits.action_scale, merge=True)
    log.info("planner: %s", metrics)
    return metrics


@torch.no_grad()
def _evaluate(net: PlanGFlowNet, data, rng, cost, scale, model, gen, repeat: int,
              n_eval: int = 200) -> dict[str, float]:
    """Mean best log R over n_eval conditions: 16 policy samples vs 16 uniform random plans."""
    ks = rng.integers(0, len(data["cond"]), n_eval)
    pol, uni = [], []
    for k in ks:
        c = torch.from_numpy(data["cond"][k:k + 1]).expand(16, -1)
        p = net.sample(16, c, gen, 0.0).numpy()
        u = rng.integers(0, len(ACTIONS), (16, net.space.horizon))
        pol.append(plan_log_reward(data, k, p, cost, scale, model, repeat).max())
        uni.append(plan_log_reward(data, k, u, cost, scale, model, repeat).max())
    return {"best_of_16_log_r_policy": float(np.mean(pol)), "best_of_16_log_r_uniform": float(np.mean(uni))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="hjepa-agent train planner", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(data_path("models")), help="models dir to write into (manifest merged)")
    ap.add_argument("--episodes", type=int, default=8, help="condition episodes per scenario")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--horizon", type=int, default=HORIZON, help="policy steps per plan")
    ap.add_argument("--repeat", type=int, default=REPEAT, help=f"roll-out steps of {DT_S} s each action is held")
    ap.add_argument("--conds-per-batch", type=int, default=16)
    ap.add_argument("--plans-per-cond", type=int, default=16)
    ap.add_argument("--epsilon", type=float, default=0.05)
    ap.add_argument("--replay", type=float, default=0.25,
                    help="fraction of each condition's plans taken from its best seen so far (0: none)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--robot", default=None)
    ap.add_argument("--ego-model", default=None)
    ap.add_argument("--quick", action="store_true", help="1 episode per scenario, 60 steps (tests)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.steps = 1, 60
    return args


def train_main(argv: list[str] | None = None) -> int:
    setup_training_logging()
    train(parse_args(argv))
    return 0
