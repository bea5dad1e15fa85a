"""``hjepa-agent train planner``: the GFlowNet planner's forward policy and log Z, by trajectory
balance on the planner's own cost (torch; see hjepa_agent.core.planner.gflownet for the runtime).

1. **Conditions** (progress bar): the CEM planner drives the simulated robot alone over
   config/scenarios on training seeds (10_000+, never the benchmark's 0..); at every decision the
   world state, the raw-beam obstacles and the navfield's cost-to-go on a local patch around the
   robot are stored. These are the situations the planner must act in. Each is also stored
   ``--yaw-copies`` times turned on the spot by a random number of scan sectors (the drivers
   mostly face where they go; a robot turned the wrong way must still find the way), and halfway
   through training the GFlowNet itself (the runtime planner over the networks being trained:
   warm start, fallbacks) drives ``--onpolicy-episodes`` per scenario on seeds 15_000+, whose
   conditions join the set (DAgger: the states its own driving leads to, e.g. a stop facing
   away from the way out, which CEM never visits).
2. **Reward**: for condition c, log R(tau | c) = -beta * min(cost, cost_clip) with the planners'
   shared PlanCost (navfield cost-to-go from the stored patch, clearance against the stored beams,
   effort) on the unicycle roll-out of tau. No cost network is learned: the GFlowNet amortises
   the search, the reward is the task's.
3. **Training**: PlanGFlowNet (hjepa_agent.train.gflownet) over HORIZON steps of the ACTIONS
   table, conditioned on condition_features(c); off-policy sub-trajectory balance (or trajectory
   balance with ``--objective tb``: train.gflownet.balance_loss, the slow level's too), epsilon-uniform
   exploration; batches of ``conds_per_batch`` conditions x ``plans_per_cond`` plans, of which a
   ``replay`` fraction are replayed from the best plans seen for that condition (trajectory
   balance holds for any sampling distribution, and the good plans are the rare ones). Each
   condition's replay pool starts with its demonstration: the plan CEM makes there, quantised to
   the action table (the plans that thread a narrow passage are too rare for the policy to
   find by itself).
4. **Export**: P_F (prefix + step one-hot + condition -> logits) as ``planner_policy.onnx`` and
   log Z (condition -> (1,)) as ``planner_logz.onnx``, parity vs torch checked, merged into the
   manifest with the training data and metrics.

``--robot`` / ``--ego-model`` (default: the sample diffbot): the robot driven and the limits planned
within; their fingerprint goes into the manifest. ``--quick`` (tests) is a preset of smaller
defaults (QUICK: few conditions, few steps, under a minute); flags given with it still win.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from hjepa_agent.train.runs import TrainConfig, config_from
from hjepa_agent.sim.planner_episode import run_episode
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.fingerprint import load_robot_fingerprint
from hjepa_agent.core.planner import Budget, NavField, build_planner, planner_cost
from hjepa_agent.core.planner.base import PlanCost, UnicycleModel
from hjepa_agent.core.planner.gflownet import (ACTIONS, BETA, COND_DIM, COST_CLIP, DT_S, HORIZON, REPEAT, GFlowNetPlanner,
                                               condition_features, expand,
                                               log_reward)
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M
from hjepa_agent.config.paths import data_path
from hjepa_agent.train.collect import Limits
from hjepa_agent.train.export import as_numpy, export_onnx, setup_training_logging
from hjepa_agent.core.planner.gfn.plans import PlanSpace
from hjepa_agent.train.gflownet import PlanGFlowNet, tb_optimizer
from hjepa_agent.train.manifest import ModelRecord, write_manifest

log = logging.getLogger(__name__)

TRAIN_SEED0 = 10_000
"""Condition episodes use seeds from here (the benchmark uses 0..)."""
QUICK = {"episodes": 1, "steps": 60, "onpolicy_episodes": 1, "yaw_copies": 1}
"""``--quick`` (tests): 1 episode per scenario, 60 steps, under a minute."""
REPLAY_KEEP = 8
"""Best plans kept per condition for replay."""
PATCH_HALF_M = 2.0
PATCH_N = 21
"""Local cost-to-go patch: PATCH_N x PATCH_N points spanning +-PATCH_HALF_M around the robot."""


def quantise(actions: np.ndarray, horizon: int, repeat: int, max_linear_mps: float,
             max_angular_rps: float) -> np.ndarray:
    """(horizon,) action indices nearest (in fractions of the limits) to the mean command of each
    block of ``repeat`` steps of a continuous plan (padded with its last command)."""
    a = np.asarray(actions, np.float64) / np.array([max_linear_mps, max_angular_rps])
    need = horizon * repeat
    a = np.concatenate([a, np.repeat(a[-1:], max(0, need - len(a)), axis=0)])[:need]
    blocks = a.reshape(horizon, repeat, 2).mean(axis=1)
    return np.argmin(((blocks[:, None, :] - ACTIONS[None].astype(np.float64)) ** 2).sum(-1), axis=1).astype(np.int64)


def collect(episodes_per_scenario: int, ego, robot: Path, progress: bool = True, driver=None,
            seed0: int = TRAIN_SEED0, horizon: int = HORIZON, repeat: int = REPEAT,
            layouts: int = 0) -> dict[str, np.ndarray]:
    """Conditions from CEM-driven episodes (module doc, step 1), or driven by the planners that
    ``driver()`` builds (one per episode), on seeds from ``seed0``: the shipped scenarios and ``layouts``
    procedural train-split layouts (sim/layouts.py training_jobs). Each condition also gets a
    demonstration: the plan a CEM planner (fresh per episode, over the driver's navfield) makes
    there, quantised to the action table (:func:`quantise`)."""
    from hjepa_agent.sim.layouts import training_jobs
    from hjepa_agent.sim.robot import load_robot_description
    from hjepa_agent.sim.world import SimWorld

    grid = np.linspace(-PATCH_HALF_M, PATCH_HALF_M, PATCH_N)
    description = load_robot_description(robot)
    n_obs = description.scan.n_beams   # obstacles are the raw beams' returns: at most one a beam
    rows: dict[str, list] = {"cond": [], "pose": [], "goal": [], "obstacles": [], "patch": [], "demo": []}
    scale = (ego.operating.max_linear_mps, ego.operating.max_angular_rps)
    demo = {"driver": None, "cem": None}

    def record(ws, planner, goal, obstacles) -> None:
        nav = planner.navfield
        if demo["driver"] is not planner:   # a new episode: a fresh CEM over the driver's navfield
            demo["driver"] = planner
            demo["cem"] = build_planner("cem", footprint_radius_m=ego.hard.footprint.radius_m,
                                        max_linear_mps=scale[0], max_angular_rps=scale[1])
            demo["cem"].navfield = nav
        cem_plan = demo["cem"].plan(ws, goal, Budget(20000), obstacles=obstacles)
        rows["demo"].append(quantise(cem_plan.actions, horizon, repeat, *scale))
        to_go = lambda xy: nav.distance(xy, goal, ws.stamp_s)  # noqa: E731
        rows["cond"].append(condition_features(ws.pose, goal, ws.scan_bins, ws.twist, to_go,
                                               ego.operating.max_linear_mps, ego.operating.max_angular_rps))
        rows["pose"].append(np.asarray(ws.pose, np.float32))
        rows["goal"].append(goal.copy())
        pad = np.full((n_obs, 2), np.nan, np.float32)
        pad[:min(n_obs, len(obstacles))] = obstacles[:n_obs]
        rows["obstacles"].append(pad)
        gx, gy = np.meshgrid(ws.pose[0] + grid, ws.pose[1] + grid)
        rows["patch"].append(np.asarray(to_go(np.stack([gx, gy], -1).reshape(-1, 2)), np.float32).reshape(PATCH_N, PATCH_N))

    jobs = training_jobs(ego, episodes_per_scenario, seed0, layouts)
    desc = "conditions (CEM drives)" if driver is None else "conditions (the GFlowNet drives)"
    with SimWorld(description) as world:
        for sc, seed in tqdm(jobs, desc=desc, disable=not progress, unit="ep"):
            run_episode(world, "cem", sc, seed, ego, on_decision=record,
                        planner=None if driver is None else driver())
    return {k: np.stack(v) for k, v in rows.items()}


def augment_yaw(data: dict[str, np.ndarray], copies: int, rng: np.random.Generator, max_linear_mps: float,
                max_angular_rps: float) -> dict[str, np.ndarray]:
    """``copies`` extra conditions per stored one, at the same place but turned by a random whole
    number of scan sectors (the sectors rotate with it, the speeds are zero, the navfield probes
    come from the stored cost-to-go patch). The drivers mostly face the way they go; a robot
    turned the wrong way (after a stop, or by a fallback turn) must still find its way."""
    rows: dict[str, list] = {k: [] for k in data}
    width = 2.0 * np.pi / N_SCAN_BINS
    for i in range(len(data["cond"])):
        bins = data["cond"][i, 3:3 + N_SCAN_BINS] * SCAN_RANGE_MAX_M
        for k in rng.choice(np.arange(1, N_SCAN_BINS), copies, replace=False):
            pose = data["pose"][i].copy()
            pose[2] = (pose[2] + k * width + np.pi) % (2 * np.pi) - np.pi
            to_go = lambda xy, i=i, p=pose: _patch_to_go(data["patch"][i], p, np.asarray(xy))  # noqa: E731
            rows["cond"].append(condition_features(pose, data["goal"][i], np.roll(bins, -k), np.zeros(2), to_go,
                                                   max_linear_mps, max_angular_rps))
            rows["pose"].append(pose)
            for key in ("goal", "obstacles", "patch"):
                rows[key].append(data[key][i])
            rows["demo"].append(np.full(data["demo"].shape[1], -1, np.int64))   # no demonstration turned
    return {k: np.stack(v).astype(data[k].dtype) for k, v in rows.items()}


def _concat(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


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
                    model: UnicycleModel, repeat: int = REPEAT, beta: float = BETA,
                    cost_clip: float = COST_CLIP) -> np.ndarray:
    """log R (m,) of plans ``idx`` (m, horizon) action indices in condition ``k``."""
    acts = expand(idx, float(scale[0]), float(scale[1]), repeat)
    pose = data["pose"][k]
    states = model.rollout(pose, acts, DT_S)
    obs = data["obstacles"][k]
    obs = obs[~np.isnan(obs[:, 0])]
    c, _ = cost(states, acts, data["goal"][k], obs, None, tuple(scale),
                lambda xy: _patch_to_go(data["patch"][k], pose, xy))
    return log_reward(c, beta, cost_clip)


def train(args: Any) -> dict[str, Any]:
    """Collect, train, export (module doc). Checkpoints hold the conditions too (the on-policy half
    added halfway), so a resumed run continues exactly."""
    from hjepa_agent.train.runs import Run, restore, snapshot
    t_start = time.monotonic()
    ego_path = Path(args.ego_model or data_path("config", "ego_model.yaml"))
    ego = load_ego_model(ego_path)
    robot = Path(args.robot or data_path("config", "robots", "diffbot.yaml"))
    fingerprint = load_robot_fingerprint(robot, ego_path, "hjepa-agent train planner")
    scale = np.array([ego.operating.max_linear_mps, ego.operating.max_angular_rps], np.float32)
    rng = np.random.default_rng(args.seed)
    data = collect(args.episodes, ego, robot, progress=not args.quiet, horizon=args.horizon, repeat=args.repeat,
                   layouts=args.layouts)
    n_driven = len(data["cond"])
    if args.yaw_copies:
        data = _concat(data, augment_yaw(data, args.yaw_copies, rng, *scale))
    n = len(data["cond"])
    log.info("conditions: %d decisions from %d episodes per scenario (%d with the turned copies)", n_driven,
             args.episodes, n)
    cost = planner_cost(ego.hard.footprint.radius_m)
    model = UnicycleModel()
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    space = PlanSpace(args.horizon, len(ACTIONS), COND_DIM)
    net = PlanGFlowNet(space, hidden=args.hidden)
    opt = tb_optimizer(net, args.lr, args.lr * 10)
    losses: list[float] = []
    best: dict[int, list[tuple[float, tuple[int, ...]]]] = {}   # per condition: its best plans so far
    m, n_rep = args.plans_per_cond, int(round(args.replay * args.plans_per_cond))
    onpolicy_step = int(args.steps * 0.5) if args.onpolicy_episodes else -1
    n_onpolicy, start = 0, 0
    out = Path(args.out or data_path("models"))
    run = Run(args, "planner", out)
    parts = {"net": net, "optimizer": opt}
    state = run.load()
    if state is not None:
        start = restore(state, parts, rng, gen)
        data, best, losses = state["data"], state["best"], list(state["losses"])
        n_onpolicy, n = int(state["n_onpolicy"]), len(state["data"]["cond"])
    conds = torch.from_numpy(data["cond"])
    bar = tqdm(range(start, args.steps), desc="trajectory balance", disable=args.quiet, unit="step", initial=start,
               total=args.steps)
    for step in bar:
        if step == onpolicy_step:   # DAgger for the planner: the states its own driving leads to
            net.eval()
            new = collect(args.onpolicy_episodes, ego, robot, progress=not args.quiet,
                          driver=lambda: _torch_planner(net, ego, args), seed0=TRAIN_SEED0 + 5000,
                          horizon=args.horizon, repeat=args.repeat, layouts=args.layouts // 2)
            net.train()
            n_onpolicy = len(new["cond"])
            if args.yaw_copies:
                new = _concat(new, augment_yaw(new, args.yaw_copies, rng, *scale))
            data = _concat(data, new)
            n = len(data["cond"])
            conds = torch.from_numpy(data["cond"])
            log.info("on-policy conditions: %d decisions (%d in all now)", n_onpolicy, n)
        ks = rng.integers(0, n, args.conds_per_batch)
        c = conds[np.repeat(ks, m)]
        plans = net.sample(len(c), c, gen, args.epsilon)
        for k in ks:   # a condition's pool starts with its demonstration (CEM's plan, quantised)
            if int(k) not in best and data["demo"][k, 0] >= 0:
                d = data["demo"][k][None]
                best[int(k)] = [(float(plan_log_reward(data, k, d, cost, scale, model, args.repeat, args.beta,
                                                       args.cost_clip)[0]), tuple(int(a) for a in d[0]))]
        for j, k in enumerate(ks):   # replay: part of each condition's plans are its best seen so far
            pool = best.get(int(k), [])
            for r in range(min(n_rep, len(pool))):
                plans[j * m + m - 1 - r] = torch.tensor(pool[rng.integers(0, len(pool))][1])
        pl = plans.numpy()
        log_r = np.concatenate([plan_log_reward(data, k, pl[j * m:(j + 1) * m], cost, scale, model, args.repeat,
                                                args.beta, args.cost_clip)
                                for j, k in enumerate(ks)])
        for j, k in enumerate(ks):
            pool = best.setdefault(int(k), [])
            seen = {p for _, p in pool}
            pool.extend((float(log_r[j * m + i]), tuple(pl[j * m + i])) for i in range(m)
                        if tuple(pl[j * m + i]) not in seen)
            pool.sort(key=lambda e: -e[0])
            del pool[REPLAY_KEEP:]
        loss = net.loss(plans, c, torch.from_numpy(log_r).float(), args.objective, args.lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            run.log(step, {"balance_loss": float(np.mean(losses[-50:]))})
        if run.due(step, args.steps):
            run.save(step + 1, snapshot(parts, rng, gen, data=data, best=best, losses=losses, n_onpolicy=n_onpolicy))
    run.close()
    # held-out check: on unseen conditions, the best of 16 policy samples vs 16 uniform random plans
    net.eval()
    metrics = _evaluate(net, data, rng, cost, scale, model, gen, args)
    metrics["tb_loss_last_200"] = float(np.mean(losses[-200:]))
    metrics["train_s"] = round(time.monotonic() - t_start, 1)
    pol = torch.nn.Sequential(net.pf)
    err_p = export_onnx(pol, torch.zeros(2, space.state_dim + COND_DIM), out / "planner_policy.onnx",
                        ["state_cond"], ["logits"])
    err_z = export_onnx(net.logz, torch.zeros(2, COND_DIM), out / "planner_logz.onnx", ["cond"], ["log_z"],
                        low=-1.0, high=1.0)
    desc = {"data": {"conditions": int(n), "cem_driven": int(n_driven), "gflownet_driven": int(n_onpolicy),
                     "turned_copies_per_condition": args.yaw_copies,
                     "episodes_per_scenario": args.episodes, "onpolicy_episodes_per_scenario": args.onpolicy_episodes,
                     "procedural_layouts": {"split": "train", "count": args.layouts,
                                            "onpolicy_count": args.layouts // 2},
                     "seeds_from": TRAIN_SEED0,
                     "driver": "cem planner, then the GFlowNet being trained halfway (hjepa-agent bench planners loop)",
                     "actions": ACTIONS.tolist(), "horizon": args.horizon, "repeat": args.repeat, "dt_s": DT_S,
                     "beta": args.beta, "cost_clip": args.cost_clip},
            "training": {"steps": args.steps, "conds_per_batch": args.conds_per_batch,
                         "plans_per_cond": args.plans_per_cond, "epsilon": args.epsilon, "lr": args.lr,
                         "replay": args.replay,
                         "hidden": args.hidden,
                         "objective": "trajectory balance" if args.objective == "tb"
                         else f"sub-trajectory balance (lambda {args.lam})"},
            "metrics": {**metrics, "parity_max_abs_err": max(err_p, err_z)}}
    limits = Limits.from_ego(ego)
    write_manifest(out, ego.robot, [ModelRecord("planner_policy", "planner_policy.onnx", desc),
                                    ModelRecord("planner_logz", "planner_logz.onnx", desc)],
                   limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)
    log.info("planner: %s", metrics)
    return metrics


def _torch_planner(net: PlanGFlowNet, ego, args: Any) -> GFlowNetPlanner:
    """The runtime planner over the torch networks being trained (for on-policy conditions)."""
    pf, log_z = as_numpy(net.pf), as_numpy(net.logz)
    cost = planner_cost(ego.hard.footprint.radius_m)
    nav = NavField(resolution_m=0.2, size_m=16.0, inflate_m=ego.hard.footprint.radius_m,
                   safe_clearance_m=cost.safe_clearance_m)
    return GFlowNetPlanner(pf, log_z, cost, ego.operating.max_linear_mps, ego.operating.max_angular_rps,
                           horizon=net.space.horizon, repeat=args.repeat, beta=args.beta, cost_clip=args.cost_clip,
                           navfield=nav)


@torch.no_grad()
def _evaluate(net: PlanGFlowNet, data, rng, cost, scale, model, gen, args,
              n_eval: int = 200) -> dict[str, float]:
    """Mean best log R over n_eval conditions: 16 policy samples vs 16 uniform random plans (and,
    where the condition has one, vs its demonstration)."""
    ks = rng.integers(0, len(data["cond"]), n_eval)
    pol, uni, dem = [], [], []
    for k in ks:
        c = torch.from_numpy(data["cond"][k:k + 1]).expand(16, -1)
        p = net.sample(16, c, gen, 0.0).numpy()
        u = rng.integers(0, len(ACTIONS), (16, net.space.horizon))
        pol.append(plan_log_reward(data, k, p, cost, scale, model, args.repeat, args.beta, args.cost_clip).max())
        uni.append(plan_log_reward(data, k, u, cost, scale, model, args.repeat, args.beta, args.cost_clip).max())
        if data["demo"][k, 0] >= 0:
            dem.append((pol[-1], float(plan_log_reward(data, k, data["demo"][k][None], cost, scale, model, args.repeat,
                                                       args.beta, args.cost_clip)[0])))
    out = {"best_of_16_log_r_policy": float(np.mean(pol)), "best_of_16_log_r_uniform": float(np.mean(uni))}
    if dem:   # where a demonstration exists: the policy's best of 16 against the quantised CEM plan
        d = np.asarray(dem)
        out.update(demo_log_r=float(d[:, 1].mean()), best_of_16_at_least_demo=float((d[:, 0] >= d[:, 1] - 1e-6).mean()))
    return out


@dataclass
class PlannerConfig(TrainConfig):
    """``hjepa-agent train planner`` (generated CLI: --help): the GFlowNet planner by (sub-)trajectory
    balance on conditions CEM drives in the simulator, and halfway on its own."""

    episodes: int = field(default=12, metadata={"help": "condition episodes per scenario"})
    layouts: int = field(default=0, metadata={
        "help": "also this many procedural train-split layouts (sim/layouts.py), one episode each (half as many "
                "again driven by the GFlowNet halfway)"})
    steps: int = field(default=10000, metadata={"help": "balance steps"})
    horizon: int = field(default=HORIZON, metadata={"help": "policy steps per plan"})
    repeat: int = field(default=REPEAT, metadata={"help": f"roll-out steps of {DT_S} s each action is held"})
    conds_per_batch: int = field(default=16, metadata={"help": "conditions per step"})
    plans_per_cond: int = field(default=16, metadata={"help": "plans sampled per condition"})
    epsilon: float = field(default=0.05, metadata={"help": "exploration: uniform mixing of the policy"})
    replay: float = field(default=0.25, metadata={
        "help": "fraction of each condition's plans taken from its best seen so far (0: none)"})
    yaw_copies: int = field(default=2, metadata={
        "help": "extra conditions per driven one, turned by a random number of scan sectors"})
    onpolicy_episodes: int = field(default=4, metadata={
        "help": "halfway, episodes per scenario driven by the GFlowNet itself add their conditions (0: none)"})
    objective: str = field(default="subtb", metadata={
        "choices": ["tb", "subtb"], "help": "trajectory balance, or sub-trajectory balance (learned intermediate flows)"})
    lam: float = field(default=0.9, metadata={"help": "--objective subtb: weight lam^length per sub-trajectory"})
    beta: float = field(default=BETA, metadata={"help": "log R = -beta * min(cost, cost_clip)"})
    cost_clip: float = field(default=COST_CLIP, metadata={"help": "cost at which log R stops falling"})
    lr: float = field(default=1e-3, metadata={"help": "policy learning rate (log Z: 10x)"})
    hidden: int = field(default=256, metadata={"help": "hidden units"})
    quick: bool = field(default=False, metadata={"help": "the tests' preset: " + ", ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items()) + " (flags given with it win)"})
    seed: int = field(default=1, metadata={"help": "seed of every draw (the shipped planner's: 1)"})


def parse_args(argv: list[str] | None) -> PlannerConfig:
    """The options of ``hjepa-agent train planner``, generated from PlannerConfig (``--quick``: QUICK)."""
    return config_from(PlannerConfig, argv, "hjepa-agent train planner", __doc__.split("\n\n")[0],
                       presets={"quick": QUICK})


def train_main(argv: list[str] | None = None) -> int:
    setup_training_logging()
    train(parse_args(argv))
    return 0
