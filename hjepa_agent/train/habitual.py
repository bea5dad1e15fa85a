"""Train the habitual (Mode-1) policy by behaviour cloning + DAgger and export it to ONNX.

``hjepa-agent train habitual [--latent encoder|world] [--world-models DIR] [--episodes N]
[--dagger-rounds K] [--robot ROBOT.yaml] [--ego-model EGO.yaml] [--out DIR] [--quick]`` (also
``python -m hjepa_agent.train.habitual``). Every robot number (speeds, accelerations, sensors) comes
from --robot and --ego-model (default: the sample diffbot), whose fingerprint goes into the manifest.

The policy's input is :func:`hjepa_agent.core.types.habitual_features`: concat(head (21:
goal, speeds, scan sectors / range max), latent (16)). ``--latent`` picks where the latent
comes from; it must match what perception computes at run time (its ``encoder_model``):

* ``encoder`` (default): a small image encoder (encoder.onnx) is trained jointly with
  the policy, end to end, with an auxiliary scan head:
  loss = wBC + SCAN_LOSS_WEIGHT * MSE(scan_head(latent), scan sectors / range max).
  encoder.onnx and habitual.onnx are exported and manifest.yaml is rewritten.
* ``world``: the latent is the learned JEPA world encoder's (world_encoder.onnx of
  ``--world-models``, default: ``--out``), FROZEN and run through ONNX Runtime exactly as
  perception runs it with encoder_model=world_encoder: inputs the image and the scan
  sectors / SCAN_RANGE_MAX_M (equal to the head's scan features). Each sample is encoded
  once (batched; cached) and only the policy is trained, loss = wBC. Only habitual.onnx
  is exported; manifest.yaml is merged: every other entry is kept as it is.

Either way the habitual entry of the manifest records ``data.latent_source`` (``encoder``
or ``world_encoder``) and the sha256 of that encoder (``data.latent_encoder_sha256``);
:func:`hjepa_agent.core.models.load_habitual` refuses a policy whose latent source differs
from the habitual node's ``latent_source`` parameter.

1. Round 0: the scripted expert drives N episodes per scenario; every tick is recorded.
   With ``--teacher cem|mppi|gflownet`` a planner on the sensed scan takes the expert's place
   everywhere below (drives round 0, labels every state): Mode-2 -> Mode-1 distillation
   (hjepa_agent.train.teacher).
2. Training: wBC = MSE(policy(features), expert action / action_scale), the error of
   states near an obstacle weighted NEAR_WEIGHT times (plus the scan loss, see above).
3. DAgger, rounds 1..K: the policy of round k-1 drives fresh seeds, mixed with the
   expert (beta = 0.5^k), then alone (beta = 0; its success rate is reported per
   round); every visited state is labelled by the expert; the data are aggregated
   and training goes on (learning rate decays 0.6x per round, floor 0.2x).
4. The final policy is evaluated through the exported ONNX models on fresh seeds,
   exactly as the runtime computes its features; the models and manifest.yaml are
   written to --out.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.fingerprint import RobotFingerprint, robot_fingerprint
from hjepa_agent.core.models import HABITUAL_MODELS, OnnxModel, load_manifest, sha256_file
from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M
from hjepa_agent.config.paths import data_path, share_dir
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import load_scenarios
from hjepa_agent.sim.world import SimWorld
from hjepa_agent.train.collect import CONTROL_DT_S, Limits, PolicyFn, Samples, success_table
from hjepa_agent.train.collect import run_many as collect_many
from hjepa_agent.train.export import setup_training_logging, export_onnx
from hjepa_agent.train.manifest import ModelRecord, write_manifest
from hjepa_agent.train.runs import to_plain
from hjepa_agent.train.nets import N_HEAD_FEATURES, AgentNet, HabitualPolicy

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
HEAD_SCAN = slice(N_HEAD_FEATURES - N_SCAN_BINS, N_HEAD_FEATURES)
"""The scan sectors / SCAN_RANGE_MAX_M inside the head features (habitual_features): the very
array perception gives the world encoder as its ``scan`` input (scan_to_bins already clips
to SCAN_RANGE_MAX_M, so clip(bins, 0, max) / max == bins / max)."""
LATENT_SOURCES = {"encoder": "encoder", "world": "world_encoder"}
"""--latent value -> the model (manifest entry, perception's encoder_model) giving the latent."""
ENCODE_BATCH = 256


def _batches(n: int, batch: int, rng: np.random.Generator, shuffle: bool) -> list[np.ndarray]:
    idx = rng.permutation(n) if shuffle else np.arange(n)
    return [idx[i:i + batch] for i in range(0, n, batch)]


def _weighted_bc(action: torch.Tensor, target: torch.Tensor, scan_t: torch.Tensor) -> torch.Tensor:
    # States close to an obstacle weigh more: that is where a wrong action ends the episode.
    near = (scan_t.min(dim=1).values * SCAN_RANGE_MAX_M < NEAR_M).float()
    weight = 1.0 + (NEAR_WEIGHT - 1.0) * near
    err = (action - target).pow(2).mean(dim=1)
    return (weight * err).sum() / weight.sum()


def _loss(net: AgentNet, arr: dict[str, np.ndarray], sel: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.from_numpy(arr["images"][sel]).float().mul_(1.0 / 255.0)
    action, scan = net(torch.from_numpy(arr["head"][sel]), image)
    scan_t = torch.from_numpy(arr["scan"][sel])
    bc = _weighted_bc(action, torch.from_numpy(arr["action"][sel]), scan_t)
    aux = torch.nn.functional.mse_loss(scan, scan_t)
    return bc, aux


def _policy_loss(net: HabitualPolicy, arr: dict[str, np.ndarray], sel: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Policy alone on concat(head, cached latent); no auxiliary loss (returned as 0)."""
    features = torch.from_numpy(np.concatenate([arr["head"][sel], arr["latent"][sel]], axis=1))
    action = net(features)
    bc = _weighted_bc(action, torch.from_numpy(arr["action"][sel]), torch.from_numpy(arr["scan"][sel]))
    return bc, torch.zeros(())


def train_epochs(net: AgentNet | HabitualPolicy, opt: torch.optim.Optimizer, data: Samples, epochs: int,
                 seed: int, batch: int = 128, val_frac: float = 0.1,
                 latent: np.ndarray | None = None) -> dict[str, float]:
    """Train for ``epochs`` on ``data`` (split by episode into train/val).

    latent None: ``net`` is an AgentNet, trained jointly (BC + scan loss). Otherwise
    ``latent`` (len(data), N_LATENT) holds each sample's frozen latent and ``net`` is a
    HabitualPolicy trained on concat(head, latent) (BC only; no scan keys are returned).

    Returns {"train_bc", "train_scan", "val_bc", "val_scan", "val_loss", "samples"} (losses: MSE
    of normalised quantities, last epoch)."""
    from tqdm import tqdm

    torch.set_num_threads(TRAIN_THREADS)
    arr = data.arrays()
    loss_fn = _loss
    if latent is not None:
        if latent.shape != (len(data), N_LATENT):
            raise ValueError(f"latent has shape {latent.shape}, expected ({len(data)}, {N_LATENT})")
        arr["latent"], loss_fn = latent.astype(np.float32, copy=False), _policy_loss
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
            bc, aux = loss_fn(net, arr, train_idx[b])
            opt.zero_grad()
            (bc + SCAN_LOSS_WEIGHT * aux).backward()
            opt.step()
            sums += [bc.item() * len(b), aux.item() * len(b)]
        out["train_bc"], out["train_scan"] = (float(s / max(len(train_idx), 1)) for s in sums)
    net.eval()
    sums = np.zeros(2)
    with torch.no_grad():
        for b in _batches(len(val_idx), 512, rng, shuffle=False):
            bc, aux = loss_fn(net, arr, val_idx[b])
            sums += [bc.item() * len(b), aux.item() * len(b)]
    n = max(len(val_idx), 1)
    out["val_bc"], out["val_scan"] = float(sums[0] / n), float(sums[1] / n)
    out["val_loss"] = out["val_bc"] + SCAN_LOSS_WEIGHT * out["val_scan"]
    if latent is not None:
        for key in ("train_scan", "val_scan"):
            del out[key]
        out["val_loss"] = out["val_bc"]
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


def world_latent(world_encoder: OnnxModel, head: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The latent perception computes with encoder_model=world_encoder: (N, N_LATENT) from
    image (N, 3, 64, 64) float32 in [0, 1] and head (N, 21) (its scan part is the ``scan`` input)."""
    return world_encoder(image, np.ascontiguousarray(head[:, HEAD_SCAN]))


class LatentCache:
    """Frozen world-encoder latents of a growing Samples set: each sample is encoded once, batched."""

    def __init__(self, world_encoder: OnnxModel, batch: int = ENCODE_BATCH) -> None:
        self.world_encoder = world_encoder
        self.batch = batch
        self.parts: list[np.ndarray] = []
        self.n = 0

    def latents(self, data: Samples) -> np.ndarray:
        """(len(data), N_LATENT) float32; encodes only the samples added since the last call."""
        for i in range(self.n, len(data), self.batch):
            j = min(i + self.batch, len(data))
            image = np.stack(data.images[i:j]).astype(np.float32) * (1.0 / 255.0)  # as preprocess_image
            self.parts.append(world_latent(self.world_encoder, np.stack(data.head[i:j]), image))
            self.n = j
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0] if self.parts else np.zeros((0, N_LATENT), np.float32)


def world_torch_policy(policy: HabitualPolicy, world_encoder: OnnxModel) -> PolicyFn:
    """Rollout policy in --latent world: latent by the ONNX world encoder, action by the torch policy."""
    def act(head: np.ndarray, image: np.ndarray) -> np.ndarray:
        z = world_latent(world_encoder, head[None], image)[0]
        torch.set_num_threads(1)
        with torch.inference_mode():
            a = policy(torch.from_numpy(np.concatenate([head, z])[None]))
        return a[0].numpy()
    return act


def onnx_world_policy(world_encoder: OnnxModel, habitual: OnnxModel) -> PolicyFn:
    """The runtime's path with encoder_model=world_encoder: features = concat(head, world latent)."""
    def act(head: np.ndarray, image: np.ndarray) -> np.ndarray:
        z = world_latent(world_encoder, head[None], image)[0]
        return habitual(np.concatenate([head, z])[None])[0]
    return act


def _time_per_call_us(model: OnnxModel, shape: tuple[int, ...] | list[tuple[int, ...]], n: int = 500) -> float:
    rng = np.random.default_rng(0)
    xs = [rng.random(sh, dtype=np.float32) for sh in (shape if isinstance(shape, list) else [shape])]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        model(*xs)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1e6, 1)


def _rel(path: str | Path) -> str:
    """``path`` relative to the package data dir when inside it (manifests travel between machines)."""
    try:
        return str(Path(path).resolve().relative_to(share_dir()))
    except ValueError:
        return str(path)


def parse_args(argv: list[str] | None) -> Any:
    """Options of ``hjepa-agent train habitual``: train/habitual_ds.py's HabitualConfig, whose fields make
    the command line."""
    from hjepa_agent.train.habitual_ds import HabitualConfig
    from hjepa_agent.train.runs import config_from
    return config_from(HabitualConfig, argv, "hjepa-agent train habitual", __doc__.split("\n")[0])


def _load_world_encoder(args: Any, out: Path, robot: RobotFingerprint) -> tuple[OnnxModel, Path]:
    """--latent world: the checked world encoder (CPU) of --world-models (default --out), trained for
    ``robot``, and its dir."""
    world_dir = Path(args.world_models or out)
    enc = OnnxModel(world_dir, "world_encoder", load_manifest(world_dir), ["CPUExecutionProvider"], expected=robot)
    if world_dir.resolve() != out.resolve():
        out_entry = load_manifest(out).models.get("world_encoder") if (out / "manifest.yaml").is_file() else None
        if out_entry is None or out_entry.sha256 != enc.entry.sha256:
            log.warning("%s has no world_encoder identical to %s's: the runtime will need that world encoder "
                        "next to this habitual.onnx (copy it with its manifest entry)", out, world_dir)
    return enc, world_dir


def train(args: Any) -> dict[str, Any]:
    """Run collection, training, DAgger, export and the final evaluation; returns the metrics."""
    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    world_mode = getattr(args, "latent", "encoder") == "world"
    robot_path = args.robot or data_path("config", "robots", "diffbot.yaml")
    ego_path = args.ego_model or data_path("config", "ego_model.yaml")
    scen_path = args.scenarios or data_path("config", "scenarios")
    out = Path(args.out or data_path("models"))
    out.mkdir(parents=True, exist_ok=True)
    robot, ego, scenarios = load_robot_description(robot_path), load_ego_model(ego_path), load_scenarios(scen_path)
    fingerprint = robot_fingerprint(robot, ego, str(robot_path), str(ego_path), "hjepa-agent train habitual")
    limits = Limits.from_ego(ego)
    if world_mode:
        world_enc, world_dir = _load_world_encoder(args, out, fingerprint)
        cache = LatentCache(world_enc)
        net: AgentNet | HabitualPolicy = HabitualPolicy()
        log.info("latent: frozen world encoder %s (sha256 %s...)", world_enc.path, world_enc.entry.sha256[:12])
    else:
        net = AgentNet()
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)

    def rollout_policy() -> PolicyFn:
        return world_torch_policy(net, world_enc) if world_mode else torch_policy(net)

    teacher = None
    if args.teacher != "expert":
        from hjepa_agent.train.teacher import PlannerTeacher
        teacher = lambda w, e: PlannerTeacher(w, e, args.teacher, args.planner_models,  # noqa: E731
                                              expected=fingerprint)
        log.info("teacher: the %s planner (Mode-2 -> Mode-1 distillation)", args.teacher)
    layouts = []
    if args.layouts:
        from hjepa_agent.sim.layouts import layout_scenarios
        layouts = layout_scenarios("train", args.layouts, ego)

    def run_many(world: Any, ego: Any, scenarios: list, seeds: list[int], *a: Any, **kw: Any) -> tuple[list, Any]:
        """collect.run_many over the scenarios with ``seeds``, then over the procedural train layouts
        (--layouts) with the first --layout-episodes of them; one episode numbering."""
        results, data = collect_many(world, ego, scenarios, seeds, *a, **kw)
        if layouts and args.layout_episodes:
            more, extra = collect_many(world, ego, layouts, seeds[:args.layout_episodes], *a, **kw)
            data.extend(extra, episode_offset=len(results))
            results = results + more
        return results, data

    rounds: list[dict[str, Any]] = []
    encode_s = 0.0
    from hjepa_agent.train.runs import Run, restore, snapshot
    run = Run(args, "habitual", out)   # a checkpoint after every round: the net, the optimiser, the data so far
    parts = {"net": net, "optimizer": opt}
    state = run.load()
    with SimWorld(robot) as world:
        if state is None:
            seeds = list(range(args.episodes))
            results, data = run_many(world, ego, scenarios, seeds, limits, desc=args.teacher,
                                     max_time_s=args.max_episode_s, teacher=teacher)
            expert_table = success_table(results)
            log.info("round 0: expert %d episodes, %d samples, success %.2f", len(results), len(data),
                     expert_table["all"]["success_rate"])
            n_eps, first = len(results), 0
        else:
            first = restore(state, parts)
            data = Samples(**{k: list(v) for k, v in state["data"].items()})   # rows of the stacked arrays
            rounds, expert_table, n_eps = state["rounds"], state["expert_table"], state["n_eps"]
        for k in range(first, args.dagger_rounds + 1):
            for group in opt.param_groups:
                group["lr"] = args.lr * max(0.2, 0.6 ** k)
            latent = None
            if world_mode:
                t = time.perf_counter()
                latent = cache.latents(data)
                encode_s += time.perf_counter() - t
            t = time.perf_counter()
            fit = train_epochs(net, opt, data, args.epochs, seed=args.seed + k, latent=latent)
            record: dict[str, Any] = {"round": k, "train_s": round(time.perf_counter() - t, 1),
                                      "lr": round(opt.param_groups[0]["lr"], 6), **fit}
            if k < args.dagger_rounds:
                # The policy of round k drives: a beta-mix with the expert (DAgger data), then alone
                # (its success rate; these episodes are expert-labelled and aggregated too).
                net.eval()
                beta = 0.5 ** (k + 1)
                base = EVAL_SEED_BASE * (k + 1)
                mixed_res, mixed = run_many(world, ego, scenarios, [base + i for i in range(args.dagger_episodes)], limits,
                                    rollout_policy(), beta=beta, desc=f"dagger {k + 1} (beta {beta:.2f})",
                                    max_time_s=args.max_episode_s, teacher=teacher)
                res, alone = run_many(world, ego, scenarios,
                                      [base + 500 + i for i in range(args.dagger_episodes)], limits,
                                      rollout_policy(), beta=0.0, desc=f"policy {k}",
                                      max_time_s=args.max_episode_s, teacher=teacher)
                for batch, n_batch in ((mixed, len(mixed_res)), (alone, len(res))):
                    data.extend(batch, episode_offset=n_eps)
                    n_eps += n_batch
                record["beta_next"] = beta
                record["policy_success"] = success_table(res)
                log.info("round %d: val_bc %.4f val_scan %s; policy success %.2f (collisions %d) on %d episodes",
                         k, fit["val_bc"], f"{fit['val_scan']:.4f}" if "val_scan" in fit else "-",
                         record["policy_success"]["all"]["success_rate"],
                         record["policy_success"]["all"]["collisions"], len(res))
            rounds.append(record)
            run.log(k, {key: v for key, v in record.items() if isinstance(v, (int, float))})
            run.save(k + 1, snapshot(parts, rounds=rounds, expert_table=expert_table, n_eps=n_eps,
                                     data=data.arrays()))
    run.close()
    train_s = time.perf_counter() - t0

    net.eval()
    name = HABITUAL_MODELS[LATENT_SOURCES["world" if world_mode else "encoder"]]
    if world_mode:
        parity = {"habitual": export_onnx(net, torch.rand(1, N_HEAD_FEATURES + N_LATENT), out / f"{name}.onnx",
                                          ["features"], ["action"], low=-1.0, high=1.0)}
        latent_desc = {"latent_source": LATENT_SOURCES["world"], "latent_encoder_sha256": world_enc.entry.sha256,
                       "world_models": _rel(world_dir)}
    else:
        parity = {"encoder": export_onnx(net.encoder, torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE), out / "encoder.onnx",
                                         ["image"], ["latent"]),
                  "habitual": export_onnx(net.policy, torch.rand(1, N_HEAD_FEATURES + N_LATENT), out / "habitual.onnx",
                                          ["features"], ["action"], low=-1.0, high=1.0)}
        latent_desc = {"latent_source": LATENT_SOURCES["encoder"],
                       "latent_encoder_sha256": sha256_file(out / "encoder.onnx")}
    data_desc = {"scenarios": [s.name for s in scenarios],
                 **({"procedural_layouts": {"split": "train", "count": args.layouts,
                                            "episodes_per_round": args.layout_episodes}} if layouts else {}), "robot_description": _rel(robot_path),
                 "ego_model": _rel(ego_path), "expert_episodes_per_scenario": args.episodes,
                 "teacher": args.teacher if args.teacher == "expert" else
                 f"{args.teacher} planner ({_rel(args.planner_models) if args.planner_models else 'models/'})",
                 "expert_seeds": f"0..{args.episodes - 1}", "dagger_rounds": args.dagger_rounds,
                 "dagger_episodes_per_scenario": args.dagger_episodes,
                 "dagger_seeds": f"{EVAL_SEED_BASE}*round + 0..{args.dagger_episodes - 1} (beta-mix, "
                                 f"beta = 0.5^round), + 500.. (policy alone)",
                 "samples": len(data), "control_hz": round(1.0 / CONTROL_DT_S), "quick": bool(args.quick)}
    hab_data = {**data_desc, **latent_desc}
    metrics: dict[str, Any] = {"train_time_s": round(train_s, 1), "expert_success": expert_table,
                               "rounds": rounds, "onnx_parity_max_abs_err": parity, "epochs_per_round": args.epochs}
    if world_mode:
        metrics["world_encode_s"] = round(encode_s, 1)
        records = [ModelRecord(name, f"{name}.onnx", {"data": hab_data, "metrics": metrics, "config": to_plain(args)})]
        enc_metrics: dict[str, Any] = {}
    else:
        enc_metrics = {"trained_jointly_with": "habitual (its metrics hold the full record)",
                       "val_scan_mse": rounds[-1]["val_scan"], "onnx_parity_max_abs_err": parity["encoder"]}
        records = [ModelRecord("encoder", "encoder.onnx", {"data": data_desc, "metrics": enc_metrics}),
                   ModelRecord("habitual", "habitual.onnx", {"data": hab_data, "metrics": metrics,
                                                             "config": to_plain(args)})]
    write_manifest(out, ego.robot, records, limits.speed_norm, limits.action_scale, merge=True,
                   fingerprint=fingerprint)

    # Final evaluation through the exported models, as the runtime runs them.
    manifest = load_manifest(out)
    hab = OnnxModel(out, name, manifest, ["CPUExecutionProvider"], expected=fingerprint)
    if world_mode:
        final_policy = onnx_world_policy(world_enc, hab)
    else:
        enc = OnnxModel(out, "encoder", manifest, ["CPUExecutionProvider"], expected=fingerprint)
        final_policy = onnx_policy(enc, hab)
    with SimWorld(robot) as world:
        seeds = [FINAL_SEED_BASE + i for i in range(args.final_episodes)]
        res, _ = run_many(world, ego, scenarios, seeds, limits, final_policy, beta=0.0,
                          desc="final (onnx)", record=False, max_time_s=args.max_episode_s)
    metrics["final_onnx_success"] = success_table(res)
    metrics["final_seeds"] = f"{FINAL_SEED_BASE} + 0..{args.final_episodes - 1}"
    if world_mode:
        metrics["onnx_us_per_call"] = {
            "world_encoder": _time_per_call_us(world_enc, [(1, 3, IMAGE_SIZE, IMAGE_SIZE), (1, N_SCAN_BINS)]),
            "habitual": _time_per_call_us(hab, (1, N_HEAD_FEATURES + N_LATENT))}
    else:
        metrics["onnx_us_per_call"] = {"encoder": _time_per_call_us(enc, (1, 3, IMAGE_SIZE, IMAGE_SIZE)),
                                       "habitual": _time_per_call_us(hab, (1, N_HEAD_FEATURES + N_LATENT))}
        enc_metrics["onnx_us_per_call"] = metrics["onnx_us_per_call"]["encoder"]
    metrics["total_time_s"] = round(time.perf_counter() - t0, 1)
    write_manifest(out, ego.robot, records, limits.speed_norm, limits.action_scale, merge=True,
                   fingerprint=fingerprint)  # sha256 unchanged
    log.info("final ONNX policy (latent: %s): success %.2f, collisions %d over %d episodes; total %.0f s",
             hab_data["latent_source"], metrics["final_onnx_success"]["all"]["success_rate"],
             metrics["final_onnx_success"]["all"]["collisions"], len(res), metrics["total_time_s"])
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hjepa-agent train habitual``; returns the process exit code. With ``--dataset`` the
    dataset path (train/habitual_ds.py) trains; otherwise this module's simulator path."""
    args = parse_args(argv)
    setup_training_logging()
    if args.dataset is not None:
        from hjepa_agent.train.habitual_ds import train as from_dataset
        from_dataset(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
