"""``hjepa-agent train subgoals``: the slow level of the two-level planner, a GFlowNet over routes
of subgoals built by insertion, with a learned backward policy (torch; the runtime is
hjepa_agent.core.planner.subgoals).

1. **Conditions** (progress bar): the shipped GFlowNet planner drives the simulated robot alone
   over config/scenarios on seeds 20_000+ (never the benchmark's); every ``--every``-th decision
   at least subgoals.MIN_DISTANCE_M from the goal, the navfield's traversal costs are sampled
   into the route raster (what the slow level sees at run time). Each raster is also stored
   mirrored (left <-> right), so neither way round is favoured by the data.
2. **Reward**: SubgoalSpace.log_reward on the raster: the route's factor-weighted length beyond
   the straight line, clipped. Computed exactly; nothing is learned about it.
3. **Training**: trajectory balance with a learned P_B,

       (log Z(c) + sum log P_F(a_t | s_t, c) - log R(x | c) - sum log P_B(s_t | s_t+1, c))^2,

   on routes drawn from P_F with ``epsilon`` uniform over the valid actions, ``conds_per_batch``
   conditions x ``routes_per_cond`` routes per step. One network (trunk, P_F head, P_B head) and
   one for log Z.
4. **Held-out check**: the route space is small (14^4), so on held-out conditions the sampler's
   *exact* distribution over routes (summed over insertion orders) is compared with R/Z: total
   variation, |log Z error|, and how often the best-of-32 sample is the exact best route.
5. **Export**: ``subgoal_policy.onnx`` (state + condition -> P_F logits, then P_B logits) and
   ``subgoal_logz.onnx``, parity checked, merged into the manifest with the space's definition.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hjepa_agent.core.planner.subgoals import (MIN_DISTANCE_M, SubgoalPlanner, SubgoalSpace,
                                               exact_terminal_distribution, route_side, two_ways_exist)
from hjepa_agent.core.planner.hierarchy import route_condition
from hjepa_agent.paths import data_path

log = logging.getLogger(__name__)

TRAIN_SEED0 = 20_000


class SubgoalNet(nn.Module):
    """P_F and P_B over routes (one trunk, two heads, one output) and log Z(c)."""

    def __init__(self, space: SubgoalSpace, hidden: int = 256) -> None:
        super().__init__()
        self.space = space
        self.policy = nn.Sequential(nn.Linear(space.state_dim + space.cond_dim, hidden), nn.ReLU(),
                                    nn.Linear(hidden, hidden), nn.ReLU(),
                                    nn.Linear(hidden, space.n_actions + space.n_cols))
        self.logz = nn.Sequential(nn.Linear(space.cond_dim, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1))


def _masked_log_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.masked_fill(~mask, -1e9), dim=1)


def tb_loss(net: SubgoalNet, conds: np.ndarray, rasters: np.ndarray, ds: np.ndarray, per_cond: int,
            epsilon: float, gen: np.random.Generator) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Trajectory-balance loss of ``per_cond`` routes for each condition (module doc, step 3);
    also the routes (N, n_cols) and their log R."""
    sp = net.space
    b = len(conds)
    n = b * per_cond
    cond = torch.from_numpy(np.repeat(conds, per_cond, axis=0))
    cols = np.full((n, sp.n_cols), -1, np.int64)
    live = np.ones(n, bool)
    sum_pf = torch.zeros(n)
    sum_pb = torch.zeros(n)
    last_col = np.full(n, -1)
    for _ in range(sp.n_cols + 1):
        x = torch.cat([torch.from_numpy(sp.encode(cols)), cond], dim=1)
        out = net.policy(x)
        # P_B of the insertion that led here (at the state it led to)
        came = last_col >= 0
        if came.any():
            pb = _masked_log_softmax(out[:, sp.n_actions:], torch.from_numpy(sp.backward_mask(cols)))
            pick = pb.gather(1, torch.from_numpy(np.maximum(last_col, 0))[:, None]).squeeze(1)
            sum_pb = sum_pb + torch.where(torch.tensor(came), pick, torch.zeros(n))
        last_col[:] = -1
        if not live.any():
            break
        fmask = sp.forward_mask(cols)
        lp = _masked_log_softmax(out[:, :sp.n_actions], torch.from_numpy(fmask))
        with torch.no_grad():
            probs = (1 - epsilon) * lp.exp().numpy() + epsilon * fmask / fmask.sum(axis=1, keepdims=True)
        u = gen.random((n, 1))
        a = np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), sp.n_actions - 1)
        a = np.where(fmask[np.arange(n), a], a, sp.stop)
        pick = lp.gather(1, torch.from_numpy(a)[:, None]).squeeze(1)
        sum_pf = sum_pf + torch.where(torch.tensor(live), pick, torch.zeros(n))   # a copy: live changes below
        ins = live & (a != sp.stop)
        last_col[ins] = a[ins] // sp.n_lat
        cols[ins] = sp.apply(cols[ins], a[ins])
        live &= a != sp.stop
    log_r = np.concatenate([sp.log_reward(cols[i * per_cond:(i + 1) * per_cond], rasters[i], float(ds[i]))
                            for i in range(b)])
    log_z = net.logz(cond).squeeze(1)
    resid = log_z + sum_pf - torch.from_numpy(log_r).float() - sum_pb
    return (resid ** 2).mean(), cols, log_r


def fit(net: SubgoalNet, conds: np.ndarray, rasters: np.ndarray, ds: np.ndarray, steps: int,
        conds_per_batch: int = 32, routes_per_cond: int = 16, epsilon: float = 0.1, lr: float = 1e-3,
        seed: int = 0, progress: bool = True) -> list[float]:
    """Train ``net`` by trajectory balance on the given conditions; returns the losses."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    opt = torch.optim.Adam([{"params": net.policy.parameters(), "lr": lr},
                            {"params": net.logz.parameters(), "lr": lr * 10}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses: list[float] = []
    bar = tqdm(range(steps), desc="subgoals (trajectory balance)", disable=not progress, unit="step")
    for _ in bar:
        k = gen.integers(0, len(conds), min(conds_per_batch, len(conds)))
        loss, _, _ = tb_loss(net, conds[k], rasters[k], ds[k], routes_per_cond, epsilon, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
    return losses


def torch_policy(net: SubgoalNet):
    """net.policy / net.logz as numpy callables (the runtime's interface)."""
    from hjepa_agent.train.export import as_numpy
    return as_numpy(net.policy), as_numpy(net.logz)


def exact_check(space: SubgoalSpace, policy, log_z, raster: np.ndarray, d: float) -> dict[str, float]:
    """Exact sampler distribution vs R/Z for one condition: TV, |log Z error|, the exact log Z,
    the probability of drawing a route within 1 nat of the best, whether two ways round exist
    (subgoals.two_ways_exist) and the probability that 32 samples include both sides."""
    cond = space.features(raster, d)
    states = space.all_states()
    lr = space.log_reward(states, raster, d)
    true_logz = float(np.logaddexp.reduce(lr))
    p = exact_terminal_distribution(space, policy, cond)
    target = np.exp(lr - true_logz)
    learned = float(np.asarray(log_z(cond[None])).reshape(-1)[0])
    side = route_side(space, states)
    pl, pr = float(p[side > 0].sum()), float(p[side < 0].sum())
    return {"tv": float(0.5 * np.abs(p - target).sum()), "log_z_error": abs(learned - true_logz),
            "log_z": true_logz, "p_near_best": float(p[lr >= lr.max() - 1.0].sum()),
            "target_near_best": float(target[lr >= lr.max() - 1.0].sum()),
            "two_ways": two_ways_exist(space, raster, d),
            "both_sides_in_32": 1.0 - (1.0 - pl) ** 32 - (1.0 - pr) ** 32 + max(0.0, 1.0 - pl - pr) ** 32}


def collect(episodes_per_scenario: int, space: SubgoalSpace, robot: Path, ego, every: int = 2,
            progress: bool = True, seed0: int = TRAIN_SEED0, layouts: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Route rasters and distances from planner-driven episodes (module doc, step 1) on the shipped
    scenarios and ``layouts`` procedural train-split layouts (sim/layouts.py training_jobs)."""
    from hjepa_agent.bench_planners import run_episode
    from hjepa_agent.sim.layouts import training_jobs
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.world import SimWorld

    rasters, ds = [], []
    count = {"n": 0}

    def record(ws, planner, goal, obstacles) -> None:
        count["n"] += 1
        nav = planner.navfield
        if count["n"] % every or nav is None or nav.origin is None:
            return
        raster, d = route_condition(space, nav, ws.pose[:2], goal)
        if d >= MIN_DISTANCE_M:
            rasters.append(raster.astype(np.float32))
            ds.append(d)

    jobs = training_jobs(ego, episodes_per_scenario, seed0, layouts)
    with SimWorld(load_robot_description(robot)) as world:
        for sc, seed in tqdm(jobs, desc="conditions (the GFlowNet planner drives)", disable=not progress, unit="ep"):
            run_episode(world, "gflownet", sc, seed, ego, on_decision=record)
    return np.stack(rasters), np.asarray(ds, np.float32)


def train(args: argparse.Namespace) -> dict[str, Any]:
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.fingerprint import load_robot_fingerprint
    from hjepa_agent.train.collect import Limits
    from hjepa_agent.train.export import export_onnx
    from hjepa_agent.train.manifest import ModelRecord, write_manifest

    t_start = time.monotonic()
    robot = Path(args.robot) if args.robot else data_path("config", "robots", "diffbot.yaml")
    ego_path = Path(args.ego_model) if args.ego_model else data_path("config", "ego_model.yaml")
    ego = load_ego_model(ego_path)
    fingerprint = load_robot_fingerprint(robot, ego_path, "hjepa-agent train subgoals")
    space = SubgoalSpace(beta=args.beta, cost_clip=args.cost_clip)
    rasters, ds = collect(args.episodes, space, robot, ego, every=args.every, progress=not args.quiet,
                          layouts=args.layouts)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(rasters))
    n_held = max(1, min(args.held_out, len(rasters) // 5))
    held, tr = order[:n_held], order[n_held:]
    r_tr = np.concatenate([rasters[tr], np.stack([space.mirror(r) for r in rasters[tr]])])
    d_tr = np.concatenate([ds[tr], ds[tr]])
    conds = np.stack([space.features(r, float(d)) for r, d in zip(r_tr, d_tr)])
    log.info("subgoals: %d conditions (%d driven + mirrored), %d held out", len(conds), len(tr), n_held)
    net = SubgoalNet(space, args.hidden)
    losses = fit(net, conds, r_tr, d_tr, args.steps, args.conds_per_batch, args.routes_per_cond, args.epsilon,
                 args.lr, args.seed, progress=not args.quiet)
    net.eval()
    pol, lz = torch_policy(net)
    checks = [exact_check(space, pol, lz, rasters[k], float(ds[k])) for k in
              tqdm(held, desc="exact check (held out)", disable=args.quiet)]
    planner = SubgoalPlanner(pol, lz, space, seed=args.seed)
    best_hit = []
    for k in held:
        cond = space.features(rasters[k], float(ds[k]))
        cols, _ = planner.sample(cond, 32)
        all_lr = space.log_reward(space.all_states(), rasters[k], float(ds[k]))
        best_hit.append(float(space.log_reward(cols, rasters[k], float(ds[k])).max() >= all_lr.max() - 1e-6))
    metrics = {"held_out_conditions": int(n_held),
               "exact_tv_mean": float(np.mean([c["tv"] for c in checks])),
               "exact_tv_p90": float(np.percentile([c["tv"] for c in checks], 90)),
               "log_z_error_mean": float(np.mean([c["log_z_error"] for c in checks])),
               "p_near_best_mean": float(np.mean([c["p_near_best"] for c in checks])),
               "target_near_best_mean": float(np.mean([c["target_near_best"] for c in checks])),
               "best_of_32_is_exact_best": float(np.mean(best_hit)),
               "held_out_with_two_ways": int(sum(c["two_ways"] for c in checks)),
               "both_sides_in_32_where_two_ways": (float(np.mean([c["both_sides_in_32"] for c in checks if c["two_ways"]]))
                                                   if any(c["two_ways"] for c in checks) else None),
               "tb_loss_last_200": float(np.mean(losses[-200:])),
               "train_s": round(time.monotonic() - t_start, 1)}
    out = Path(args.out)
    err_p = export_onnx(net.policy, torch.zeros(2, space.state_dim + space.cond_dim), out / "subgoal_policy.onnx",
                        ["state_cond"], ["logits"])
    err_z = export_onnx(net.logz, torch.zeros(2, space.cond_dim), out / "subgoal_logz.onnx", ["cond"], ["log_z"])
    desc = {"data": {"conditions": int(len(conds)), "driven": int(len(tr)), "mirrored": True,
                     "episodes_per_scenario": args.episodes, "every": args.every, "seeds_from": TRAIN_SEED0,
                     "procedural_layouts": {"split": "train", "count": args.layouts},
                     "driver": "the shipped GFlowNet planner (hjepa-agent bench planners loop)",
                     "fractions": list(space.fractions), "laterals": list(space.laterals),
                     "raster_along": list(space.raster_along), "raster_lateral": list(space.raster_lateral),
                     "beta": space.beta, "cost_clip": space.cost_clip, "w_subgoal_m": space.w_subgoal_m,
                     "w_at_m": space.w_at_m},
            "training": {"steps": args.steps, "conds_per_batch": args.conds_per_batch,
                         "routes_per_cond": args.routes_per_cond, "epsilon": args.epsilon, "lr": args.lr,
                         "hidden": args.hidden, "objective": "trajectory balance with a learned backward policy"},
            "metrics": {**metrics, "parity_max_abs_err": max(err_p, err_z)}}
    limits = Limits.from_ego(ego)
    write_manifest(out, ego.robot, [ModelRecord("subgoal_policy", "subgoal_policy.onnx", desc),
                                    ModelRecord("subgoal_logz", "subgoal_logz.onnx", desc)],
                   limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)
    log.info("subgoals: %s", metrics)
    return metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from hjepa_agent.core.planner.subgoals import BETA, COST_CLIP
    ap = argparse.ArgumentParser(prog="hjepa-agent train subgoals", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(data_path("models")), help="models dir to write into (manifest merged)")
    ap.add_argument("--episodes", type=int, default=8, help="condition episodes per scenario")
    ap.add_argument("--layouts", type=int, default=0,
                    help="also this many procedural train-split layouts (sim/layouts.py), one episode each")
    ap.add_argument("--every", type=int, default=2, help="keep every n-th decision's raster")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--conds-per-batch", type=int, default=32)
    ap.add_argument("--routes-per-cond", type=int, default=16)
    ap.add_argument("--epsilon", type=float, default=0.1)
    ap.add_argument("--beta", type=float, default=BETA, help="log R = -beta * min(cost, cost_clip)")
    ap.add_argument("--cost-clip", type=float, default=COST_CLIP)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--held-out", type=int, default=40, help="conditions kept out for the exact check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--robot", default=None,
                    help="robot description YAML (default: the package's config/robots/diffbot.yaml)")
    ap.add_argument("--ego-model", default=None, help="ego model YAML (default: the package's config/ego_model.yaml)")
    ap.add_argument("--quick", action="store_true", help="1 episode per scenario, 100 steps (tests)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.steps, args.held_out, args.every = 1, 100, 5, 4
    return args


def train_main(argv: list[str] | None = None) -> int:
    from hjepa_agent.train.export import setup_training_logging
    setup_training_logging()
    train(parse_args(argv))
    return 0
