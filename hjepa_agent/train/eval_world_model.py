"""Evaluate the exported world model through ONNX Runtime only (:class:`OnnxModel`), on held-out seeds.

``python -m hjepa_agent.train.eval_world_model [--models DIR] [--episodes N] [--quick] [--out FILE]``

Data (see :mod:`hjepa_agent.train.world_data` for seeds): ``test`` (nominal appearance, seeds
60_000+), ``unseen`` (unseen appearance, 70_000+) and, for fitting linear probes and the
nominal score statistics only, ``train`` episodes (seeds 0+, the training split).

Figures:

a. open-loop latent prediction MSE (mean over dims) at 1, 5, 10 steps: roll the ensemble MEAN
   forward with the true actions from z_t = encoder(frame t); target = encoder(frame t+k);
   baseline "latent stays the same" (z_t);
b. ridge probes (alpha 1, with bias) fit on train latents, R^2 on test latents for nearest-obstacle
   distance, bearing cos/sin (to its closest surface point), heading cos/sin; and the same from the
   world state as published (latent + cos/sin of the odometry yaw: in the sim the odometry reports
   the true pose, so heading is read from odometry, not from the egocentric camera and scan);
c. calibration: fraction of (frame, dim) with |z_{t+1} - mean| <= 1 sigma and <= 2 sigma, sigma from
   ``world_model_calibration.yaml`` (sigma_d = sqrt(var_m * s_pred_d + r_d));
d. ambiguity AUROC (OOD frames vs all nominal test frames) for camera blackout, frozen camera
   (only frames where the robot moves), Gaussian noise (sigma 60 grey levels) and unseen appearance.
   Corruptions start at tick :data:`CORRUPT_FROM` and persist (the scan stays live). Six
   per-frame scores (core.world_model.frame_scores, the runtime's OnlineScores computes the same), each a log:
   ``disagreement`` = log mean_d var_m(next_latent) for the action in force (epistemic: heads disagree
   off the training data),
   ``density`` = log Mahalanobis distance of z under the train latents (a blackout or noise latent
   may land where heads happen to agree, but rarely where training latents lie),
   ``surprise`` = log mean_d ((z_t - mean_{t|t-1}) / sigma_{t|t-1})^2 (a frozen image while the robot
   moves is a latent that did not change when the predictor expected it to).
   ``image_stillness`` = log((command motion + eps) / (image change + eps)) over 1 s (10 frames):
   a camera whose picture does not change while the robot is driven.
   ``sensor_noise`` = log of the image's noise sigma (core.perception.image_noise_sigma): the sensor
   part of the uncertainty, which the latent does not show.
   ``appearance`` = log mean distance of the image's look statistics to their nearest training looks
   (core/look.py; the latent is trained to ignore looks, so this is what sees unseen lighting and colours).
   ``ambiguity`` = max over the six scores, each standardised by its nominal mean/std stored with
   the models (``score_ref``, calib split; the train split for older models): any one alarm
   suffices, and standardising makes them commensurable (core.world_model.SCORES).
e. the world-state ambiguity (combined / ``ambiguity_scale``) on nominal test frames: median, p99 and
   the fraction above 1.0 and above 1.5 (the watchdog's default ``ambiguity_stop``).
   ``latent_shift`` per corruption: mean |z_corrupted - z_clean|^2 over the corrupted frames, next to
   the nominal one-step |z_{t+1} - z_t|^2, says whether the encoder saw the corruption at all.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from hjepa_agent.core.world_model import SCORES, WorldModel, combine, frame_scores
from hjepa_agent.config.paths import data_path
from hjepa_agent.train import world_data

log = logging.getLogger(__name__)

CORRUPT_FROM = 10
"""Tick from which a corrupted camera stream differs from the true one."""
HORIZONS = (1, 5, 10)
def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Area under the ROC curve (P(score_pos > score_neg), ties half), via ranks."""
    pos, neg = pos[np.isfinite(pos)], neg[np.isfinite(neg)]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    ranks[order] = np.arange(1, len(allv) + 1)
    # average ranks over ties
    sv = allv[order]
    i = 0
    while i < len(sv):
        j = i
        while j + 1 < len(sv) and sv[j + 1] == sv[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2.0
        i = j + 1
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def ridge_r2(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Fit ridge (with bias, inputs standardised on train) and return R^2 per target column on test."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    a_tr = np.c_[(x_tr - mu) / sd, np.ones(len(x_tr))]
    a_te = np.c_[(x_te - mu) / sd, np.ones(len(x_te))]
    reg = alpha * np.eye(a_tr.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a_tr.T @ a_tr + reg, a_tr.T @ y_tr)
    res = ((a_te @ w - y_te) ** 2).sum(0)
    tot = ((y_te - y_te.mean(0)) ** 2).sum(0)
    return 1.0 - res / np.maximum(tot, 1e-12)


def scan_nearest(scan: np.ndarray) -> np.ndarray:
    """(N, 3): the nearest scan sector's range (m) and the cos, sin of its centre angle, from scan
    sectors / SCAN_RANGE_MAX_M (N, 16): the probe targets a robot's recordings have."""
    from hjepa_agent.core.types import SCAN_RANGE_MAX_M, sector_angles
    k = scan.argmin(1)
    ang = sector_angles()[k]
    return np.c_[scan.min(1) * SCAN_RANGE_MAX_M, np.cos(ang), np.sin(ang)]


def rollout_mse(wm: WorldModel, z: np.ndarray, data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Open-loop ensemble-mean rollout MSE at HORIZONS vs the copy baseline."""
    hmax = max(HORIZONS)
    starts = world_data.windows(data, hmax)
    cur = z[starts]
    out: dict[str, Any] = {"windows": int(len(starts))}
    for k in range(1, hmax + 1):
        cur = wm.heads(cur, data["action"][starts + k - 1]).mean(1)
        if k in HORIZONS:
            true = z[starts + k]
            out[f"model_{k}"] = float(((cur - true) ** 2).mean())
            out[f"copy_{k}"] = float(((z[starts] - true) ** 2).mean())
    return out


def corrupt(data: dict[str, np.ndarray], kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 64, 64) uint8 with ``kind`` applied from tick CORRUPT_FROM on, and the mask of corrupted frames."""
    img = data["image"].copy()
    mask = data["tick"] >= CORRUPT_FROM
    if kind == "blackout":
        img[mask] = rng.integers(0, 3, size=img[mask].shape, dtype=np.uint8)
    elif kind == "noise":
        noisy = img[mask].astype(np.float32) + rng.normal(0.0, 60.0, size=img[mask].shape)
        img[mask] = np.clip(noisy, 0, 255).astype(np.uint8)
    elif kind == "frozen":
        ep = data["episode"]
        for e in np.unique(ep[mask]):
            rows = np.nonzero((ep == e) & mask)[0]
            img[rows] = data["image"][rows[0]]
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    return img, mask


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Run every figure; returns the JSON-ready result."""
    t0 = time.perf_counter()
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.fingerprint import robot_fingerprint
    from hjepa_agent.sim.robot import load_robot_description
    models = Path(args.models or data_path("models"))
    robot_path = args.robot or data_path("config", "robots", "diffbot.yaml")
    ego_path = args.ego_model or data_path("config", "ego_model.yaml")
    robot, ego = load_robot_description(robot_path), load_ego_model(ego_path)
    wm = WorldModel(models, expected=robot_fingerprint(robot, ego, str(robot_path), str(ego_path),
                                                       "hjepa-agent eval world-model"))
    if args.dataset is not None:   # the dataset's held-out test episodes; probes fit on its train episodes
        from hjepa_agent.dataset.format import open_dataset
        from hjepa_agent.train.collect import Limits
        from hjepa_agent.train.from_dataset import world_arrays
        ds = open_dataset(args.dataset)
        limits = Limits.from_ego(ego)
        test, train = world_arrays(ds, ds.split("test"), limits), world_arrays(ds, ds.split("train"), limits)
        unseen = None
        source: dict[str, Any] = {"dataset": str(args.dataset), "test_episodes": len(ds.split("test")),
                                  "probe_train_episodes": len(ds.split("train"))}
    else:
        from hjepa_agent.train.collect import Limits
        from hjepa_agent.train.from_dataset import sim_rollouts   # the simulator's roll-outs, as a dataset
        kw = {"max_time_s": args.max_episode_s, "robot": robot, "ego_model": ego, "progress": False}
        lim = Limits.from_ego(ego)
        test = sim_rollouts(None, "test", lim, split="test", episodes_per_scenario=args.episodes, **kw)
        unseen = sim_rollouts(None, "unseen", lim, split="unseen", episodes_per_scenario=args.episodes, **kw)
        train = sim_rollouts(None, "train", lim, split="train", episodes_per_scenario=args.probe_episodes, **kw)
        source = {"episodes_per_scenario": args.episodes}
    z_te, z_tr = wm.encode(test["image"], test["scan"]), wm.encode(train["image"], train["scan"])
    res: dict[str, Any] = {"models": str(models), **source,
                           "frames": {"test": int(len(z_te)), "unseen": 0 if unseen is None else int(len(unseen["tick"])),
                                      "probe_train": int(len(z_tr))}}
    res["prediction_mse"] = rollout_mse(wm, z_te, test)
    res["latent_var_test"] = float(z_te.var(0).mean())
    # b. probes
    if "obst_dist" in test:   # the simulator's privileged probe targets
        targets = lambda d: np.c_[d["obst_dist"], d["obst_bearing"], d["heading"]]  # noqa: E731
        names: tuple[str, ...] = ("obst_dist", "bearing_cos", "bearing_sin", "heading_cos", "heading_sin")
    else:                     # a robot's recordings: what its own sensors say (scan: nearest surface; odometry)
        targets = lambda d: np.c_[scan_nearest(d["scan"]), d["heading"]]  # noqa: E731
        names = ("scan_nearest_m", "scan_bearing_cos", "scan_bearing_sin", "heading_cos", "heading_sin")
    res["probe_targets"] = list(names)
    r2 = ridge_r2(z_tr, targets(train), z_te, targets(test))
    res["probe_r2"] = dict(zip(names, (float(v) for v in r2)))
    # The world state the estimator publishes: the latent next to the odometry pose (here the sim's
    # pose, which is what the sim's odometry reports; on a robot, heading in the odom frame).
    ws = lambda z, d: np.c_[z, np.cos(d["pose"][:, 2]), np.sin(d["pose"][:, 2])]  # noqa: E731
    r2w = ridge_r2(ws(z_tr, train), targets(train), ws(z_te, test), targets(test))
    res["probe_r2_world_state"] = dict(zip(names, (float(v) for v in r2w)))
    # c. calibration (one step, nominal test)
    t1 = world_data.windows(test, 1)
    preds = wm.heads(z_te[t1], test["action"][t1])
    err = np.abs(z_te[t1 + 1] - preds.mean(1)) / wm.sigma(preds)
    res["calibration"] = {"within_1sigma": float((err <= 1).mean()), "within_2sigma": float((err <= 2).mean()),
                          "targets": [0.683, 0.954], "per_dim_1sigma": (err <= 1).mean(0).round(3).tolist()}
    # d. ambiguity
    if wm.ref:  # the runtime's nominal statistics, stored with the models (calib split)
        ref = wm.ref
    else:       # models from before they were stored: nominal train frames
        ref_s = frame_scores(wm, z_tr, train["action"], train["episode"], train["image"])
        ref = {k: (float(np.nanmean(v)), float(np.nanstd(v)) + 1e-6) for k, v in ref_s.items()}
    nom = frame_scores(wm, z_te, test["action"], test["episode"], test["image"])
    nom["ambiguity"] = combine(nom, ref)
    if np.isfinite(wm.ambiguity_scale):
        amb_ws = np.maximum(nom["ambiguity"], 0.0) / wm.ambiguity_scale
        res["nominal_ambiguity"] = {"p50": float(np.nanquantile(amb_ws, 0.5)), "p99": float(np.nanquantile(amb_ws, 0.99)),
                                    "above_1": float(np.nanmean(amb_ws > 1.0)), "above_1.5": float(np.nanmean(amb_ws > 1.5)),
                                    "note": "world-state ambiguity (combined / ambiguity_scale) on nominal test frames"}
    rng = np.random.default_rng(123)
    amb: dict[str, Any] = {}
    cases = {}
    shifts: dict[str, float] = {"nominal_one_step": float(((z_te[t1 + 1] - z_te[t1]) ** 2).sum(1).mean())}
    for kind in ("blackout", "frozen", "noise"):
        img, mask = corrupt(test, kind, rng)
        if kind == "frozen":
            moving = np.abs(test["action"]).max(1) > 0.1
            mask &= np.r_[False, moving[:-1]] & (test["tick"] > CORRUPT_FROM)
        cases[kind] = (wm.encode(img, test["scan"]), test, mask, img)
        shifts[kind] = float(((cases[kind][0] - z_te) ** 2).sum(1)[mask].mean())
    if unseen is not None:
        z_un = wm.encode(unseen["image"], unseen["scan"])
        cases["unseen"] = (z_un, unseen, np.ones(len(z_un), bool), unseen["image"])
    for kind, (z, d, mask, img) in cases.items():
        s = frame_scores(wm, z, d["action"], d["episode"], img)
        s["ambiguity"] = combine(s, ref)
        amb[kind] = {"frames": int(mask.sum()),
                     **{f"auroc_{k}": auroc(s[k][mask], nom[k]) for k in (*SCORES, "ambiguity")}}
    res["ambiguity"] = amb
    res["latent_shift"] = shifts
    res["nominal_score_ref"] = ref
    res["eval_time_s"] = round(time.perf_counter() - t0, 1)
    return res


def table(res: dict[str, Any]) -> str:
    """Human-readable summary of :func:`evaluate`'s result."""
    p, c = res["prediction_mse"], res["calibration"]
    lines = [f"world model eval ({res['models']}{'; dataset ' + res['dataset'] if 'dataset' in res else ''}; "
             f"test frames {res['frames']['test']}, "
             f"latent var {res['latent_var_test']:.3f})",
             "a. latent MSE        " + "  ".join(f"{k}-step {p[f'model_{k}']:.4f} (copy {p[f'copy_{k}']:.4f})"
                                                for k in HORIZONS),
             "b. probe R^2 latent  " + "  ".join(f"{k} {v:.3f}" for k, v in res["probe_r2"].items()),
             "   + odom heading    " + "  ".join(f"{k} {v:.3f}" for k, v in res["probe_r2_world_state"].items()),
             f"c. calibration       within 1 sigma {c['within_1sigma']:.3f} (target 0.683)  "
             f"within 2 sigma {c['within_2sigma']:.3f} (target 0.954)",
             "d. AUROC             kind      frames  disagree  density  surprise  img_still  sensor_noise  "
             "appearance  ambiguity"]
    for kind, a in res["ambiguity"].items():
        lines.append(f"                      {kind:9s} {a['frames']:6d}  {a['auroc_disagreement']:8.3f}  "
                     f"{a['auroc_density']:7.3f}  {a['auroc_surprise']:8.3f}  {a['auroc_image_stillness']:9.3f}  "
                     f"{a['auroc_sensor_noise']:12.3f}  {a['auroc_appearance']:10.3f}  {a['auroc_ambiguity']:9.3f}")
    if "nominal_ambiguity" in res:
        n = res["nominal_ambiguity"]
        lines.append(f"e. nominal ambiguity p50 {n['p50']:.3f}  p99 {n['p99']:.3f}  frames > 1.0: {100 * n['above_1']:.2f} %  "
                     f"> 1.5: {100 * n['above_1.5']:.2f} %")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Options of the evaluation."""
    ap = argparse.ArgumentParser(prog="python -m hjepa_agent.train.eval_world_model", description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=None, help="models dir (default: the package's models/)")
    ap.add_argument("--robot", type=Path, default=None,
                    help="robot description YAML (default: the package's config/robots/diffbot.yaml)")
    ap.add_argument("--ego-model", type=Path, default=None,
                    help="ego model YAML (default: the package's config/ego_model.yaml)")
    ap.add_argument("--episodes", type=int, default=6, help="test and unseen episodes per scenario")
    ap.add_argument("--probe-episodes", type=int, default=10, help="train-split episodes per scenario for probes")
    ap.add_argument("--max-episode-s", type=float, default=world_data.MAX_EPISODE_S)
    ap.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    ap.add_argument("--dataset", type=Path, default=None,
                    help="evaluate on this dataset's held-out test episodes (probes fit on its train episodes; no "
                         "unseen-look split) instead of simulator roll-outs")
    ap.add_argument("--quick", action="store_true", help="1 episode per scenario and split, 8 s episodes")
    args = ap.parse_args(argv)
    if args.quick:
        args.episodes, args.probe_episodes, args.max_episode_s = 1, 2, 8.0
    return args


def eval_main(argv: list[str] | None = None) -> int:
    """Entry point; prints the table, writes JSON with --out; returns the exit code."""
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    res = evaluate(args)
    print(table(res))  # the results table is this tool's output
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(eval_main())
