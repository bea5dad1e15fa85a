"""``hjepa-agent train subgoals``: the slow level of the two-level planner, a GFlowNet over routes
of subgoals built by insertion, with a learned backward policy (torch; the runtime is
hjepa_agent.core.planner.subgoals; the route space is core/planner/gfn/routes.py).

1. **Conditions** (progress bar): the shipped GFlowNet planner drives the simulated robot alone
   over config/scenarios on seeds 20_000+ (never the benchmark's); every ``--every``-th decision
   at least subgoals.MIN_DISTANCE_M from the goal, the navfield's traversal costs are sampled
   into the route raster (what the slow level sees at run time). Each raster is also stored
   mirrored (left <-> right), so neither way round is favoured by the data.
2. **Reward**: SubgoalSpace.log_reward on the raster: the route's factor-weighted length beyond
   the straight line, clipped. Computed exactly; nothing is learned about it.
3. **Training**: trajectory balance with a learned P_B (train.gflownet.balance_loss, the fast
   level's too),

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

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hjepa_agent.train.runs import TrainConfig, config_from
from hjepa_agent.core.planner.gfn.routes import BETA, COST_CLIP, SubgoalSpace
from hjepa_agent.core.planner.subgoals import (MIN_DISTANCE_M, SubgoalPlanner, exact_terminal_distribution, route_side,
                                               two_ways_exist)
from hjepa_agent.train.gflownet import balance_loss
from hjepa_agent.core.planner.hierarchy import route_condition
from hjepa_agent.config.paths import data_path

log = logging.getLogger(__name__)

TRAIN_SEED0 = 20_000
QUICK = {"episodes": 1, "steps": 100, "held_out": 5, "every": 4}
"""``--quick`` (tests): 1 episode per scenario, 100 steps."""


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
    pf_steps, pb_steps = [], []          # per step (n,): log P_F of the action, log P_B of undoing it
    last_col = np.full(n, -1)
    for _ in range(sp.n_cols + 1):
        x = torch.cat([torch.from_numpy(sp.encode(cols)), cond], dim=1)
        out = net.policy(x)
        # P_B of the insertion that led here (at the state it led to)
        came = last_col >= 0
        if came.any():
            pb = _masked_log_softmax(out[:, sp.n_actions:], torch.from_numpy(sp.backward_mask(cols)))
            pick = pb.gather(1, torch.from_numpy(np.maximum(last_col, 0))[:, None]).squeeze(1)
            pb_steps.append(torch.where(torch.tensor(came), pick, torch.zeros(n)))
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
        pf_steps.append(torch.where(torch.tensor(live), pick, torch.zeros(n)))   # a copy: live changes below
        ins = live & (a != sp.stop)
        last_col[ins] = a[ins] // sp.n_lat
        cols[ins] = sp.apply(cols[ins], a[ins])
        live &= a != sp.stop
    log_r = np.concatenate([sp.log_reward(cols[i * per_cond:(i + 1) * per_cond], rasters[i], float(ds[i]))
                            for i in range(b)])
    # every step but the last has had its P_B taken at the state it led to; the last is a stop (P_B = 1)
    log_pb = torch.stack(pb_steps + [torch.zeros(n)], dim=1)
    loss = balance_loss(net.logz(cond).squeeze(1), torch.stack(pf_steps, dim=1), torch.from_numpy(log_r).float(),
                        log_pb)
    return loss, cols, log_r


def fit(net: SubgoalNet, conds: np.ndarray, rasters: np.ndarray, ds: np.ndarray, steps: int,
        conds_per_batch: int = 32, routes_per_cond: int = 16, epsilon: float = 0.1, lr: float = 1e-3,
        seed: int = 0, progress: bool = True, run: Any = None) -> list[float]:
    """Train ``net`` by trajectory balance on the given conditions; returns the losses. ``run``
    (train/runs.py): checkpoints, --resume, metrics."""
    from hjepa_agent.train.runs import restore, snapshot
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    opt = torch.optim.Adam([{"params": net.policy.parameters(), "lr": lr},
                            {"params": net.logz.parameters(), "lr": lr * 10}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses: list[float] = []
    start = 0
    parts = {"net": net, "optimizer": opt, "scheduler": sched}
    state = run.load() if run is not None else None
    if state is not None:
        start, losses = restore(state, parts, gen), list(state["losses"])
    bar = tqdm(range(start, steps), desc="subgoals (trajectory balance)", disable=not progress, unit="step",
               initial=start, total=steps)
    for step in bar:
        k = gen.integers(0, len(conds), min(conds_per_batch, len(conds)))
        loss, _, _ = tb_loss(net, conds[k], rasters[k], ds[k], routes_per_cond, epsilon, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if run is not None:
                run.log(step, {"tb_loss": float(np.mean(losses[-50:])), "lr": opt.param_groups[0]["lr"]})
        if run is not None and run.due(step, steps):
            run.save(step + 1, snapshot(parts, gen, losses=losses))
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
    from hjepa_agent.sim.planner_episode import run_episode
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


def train(args: Any) -> dict[str, Any]:
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.train.runs import Run, to_plain
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
    out = Path(args.out or data_path("models"))
    run = Run(args, "subgoals", out)
    losses = fit(net, conds, r_tr, d_tr, args.steps, args.conds_per_batch, args.routes_per_cond, args.epsilon,
                 args.lr, args.seed, progress=not args.quiet, run=run)
    run.close()
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
            "config": to_plain(args), "run_dir": str(run.dir),
            "metrics": {**metrics, "parity_max_abs_err": max(err_p, err_z)}}
    limits = Limits.from_ego(ego)
    write_manifest(out, ego.robot, [ModelRecord("subgoal_policy", "subgoal_policy.onnx", desc),
                                    ModelRecord("subgoal_logz", "subgoal_logz.onnx", desc)],
                   limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)
    log.info("subgoals: %s", metrics)
    return metrics


@dataclass
class SubgoalsConfig(TrainConfig):
    """``hjepa-agent train subgoals`` (generated CLI: --help): the planner's slow level from routes the
    shipped GFlowNet planner drives in the simulator."""

    episodes: int = field(default=8, metadata={"help": "condition episodes per scenario"})
    layouts: int = field(default=0, metadata={"help": "also this many procedural train-split layouts "
                                                      "(sim/layouts.py), one episode each"})
    every: int = field(default=2, metadata={"help": "keep every n-th decision's raster"})
    steps: int = field(default=6000, metadata={"help": "trajectory-balance steps"})
    conds_per_batch: int = field(default=32, metadata={"help": "conditions per step"})
    routes_per_cond: int = field(default=16, metadata={"help": "routes sampled per condition"})
    epsilon: float = field(default=0.1, metadata={"help": "exploration: uniform mixing of the policy"})
    beta: float = field(default=BETA, metadata={"help": "log R = -beta * min(cost, cost_clip)"})
    cost_clip: float = field(default=COST_CLIP, metadata={"help": "cost at which log R stops falling"})
    lr: float = field(default=1e-3, metadata={"help": "policy learning rate (log Z: 10x)"})
    hidden: int = field(default=256, metadata={"help": "hidden units"})
    held_out: int = field(default=40, metadata={"help": "conditions kept out for the exact check"})
    quick: bool = field(default=False, metadata={"help": "the tests' preset: " + ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + " (flags given with it win)"})


def parse_args(argv: list[str] | None) -> SubgoalsConfig:
    """The options of ``hjepa-agent train subgoals``, generated from SubgoalsConfig (``--quick``: QUICK)."""
    return config_from(SubgoalsConfig, argv, "hjepa-agent train subgoals", __doc__.split("\n\n")[0],
                       presets={"quick": QUICK})


def train_main(argv: list[str] | None = None) -> int:
    from hjepa_agent.train.export import setup_training_logging
    setup_training_logging()
    train(parse_args(argv))
    return 0
