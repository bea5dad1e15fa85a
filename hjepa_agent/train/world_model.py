"""JEPA world model: encoder (image + scan -> z), EMA target encoder, action-conditioned ensemble.

``hjepa-agent train world-model [--quick] [--robot ROBOT.yaml] [--ego-model EGO.yaml] [--out DIR]``
(``python -m hjepa_agent.train.world_model``) collects roll-outs of that robot (default: the sample
diffbot; :mod:`hjepa_agent.train.world_data`), trains, calibrates on a separate split,
exports ``world_encoder.onnx`` and ``world_predictor.onnx`` and merges their entries into
``<out>/manifest.yaml`` (existing entries are kept byte-identical), and writes
``<out>/world_model_calibration.yaml`` (the numbers the runtime needs; also copied into the
predictor entry's ``trained.calibration``).

Objective, per sampled window (z_t .. z_{t+K}, actions a_t .. a_{t+K-1}), K = ``--horizon``:

* context latent ``z_t = enc(image_t, scan_t)`` (N, 16); target latents
  ``zbar_{t+k} = enc_ema(image_{t+k}, scan_{t+k})`` with no gradient;
* each head m rolls out ``zhat_{k+1} = zhat_k + f_m(zhat_k, a_{t+k})`` from ``zhat_0 = z_t``;
  loss ``mean_k |zhat_k - zbar_{t+k}|^2`` weighted per sample by the head's Poisson(1) bootstrap
  weight (each head sees its own resampled minibatch), heads initialised with different seeds;
* anti-collapse (VICReg variance + covariance on the context latents z_t of the batch): the
  prediction loss alone is minimised by a constant encoder (z = c predicts z = c perfectly); the
  EMA target slows but does not rule that out. The variance hinge ``mean_d relu(1 - std_d)`` keeps
  every latent dimension spread across the batch (std >= 1), and the covariance term
  ``sum_{i!=j} C_ij^2 / D`` decorrelates dimensions so the 16 numbers carry 16 different things
  instead of one copied direction. No pixel reconstruction: the latent only has to be predictable
  and informative, not to explain every pixel.

Calibration (on the ``calib`` split, with the exported-equivalent torch modules): for the one-step
prediction, per latent dimension d, ``sigma_d = sqrt(var_m(zhat^m_d) * s_pred_d + r_d)`` where
var_m is the variance across the M heads' predictions and (s_pred_d, r_d) >= 0 maximise the
Gaussian likelihood of the residual ``z_{t+1,d} - mean_m zhat^m_d``. Stored with the latent mean and
precision (Mahalanobis density), the ambiguity scores' nominal statistics; the look bank: train/look.py.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.fingerprint import RobotFingerprint, robot_fingerprint
from hjepa_agent.core.models import WORLD_CALIBRATION_FILE
from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.world_model import AMBIGUITY_QUANTILE, WorldModel, combine, encode_frames, frame_scores
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS
from hjepa_agent.config.paths import data_path
from hjepa_agent.train import world_data
from hjepa_agent.train.look import look_options, make_look
from hjepa_agent.train.collect import Limits
from hjepa_agent.train.export import setup_training_logging, PARITY_TOL, ExportError, _session
from hjepa_agent.train.manifest import ModelRecord, write_manifest
from hjepa_agent.train.runs import to_plain

log = logging.getLogger(__name__)

N_HEADS = 5
"""Ensemble size M."""
CALIBRATION_FILE = WORLD_CALIBRATION_FILE  # one name, shared with the runtime loader


class ScanBranch(nn.Module):
    """Range sectors (N, 16) in [0, 1] -> (N, 64 + 6) features.

    The sectors are a ring, so the branch is a circular 1-D convolution over them (the same
    detector at every bearing) on [range, exp(-range/0.3 m), exp(-range/1 m)] per sector, plus
    fixed soft-min pooling at two temperatures: softmin-weighted range and the softmin-weighted
    unit vector of the sector centres. Nearest-surface range and bearing are min/argmin of the ring,
    which a small MLP learns poorly; the pooling makes them one linear map away for the head.
    """

    def __init__(self) -> None:
        super().__init__()
        from hjepa_agent.core.types import SCAN_RANGE_MAX_M, sector_angles
        ang = torch.from_numpy(sector_angles())
        self.register_buffer("dirs", torch.stack([torch.cos(ang), torch.sin(ang)], dim=1))  # (16, 2)
        self.scale = float(SCAN_RANGE_MAX_M)
        self.conv1 = nn.Conv1d(3, 16, 3)
        self.conv2 = nn.Conv1d(16, 16, 3)
        self.out = nn.Sequential(nn.Linear(16 * N_SCAN_BINS, 64), nn.ReLU())

    @staticmethod
    def _ring(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., -1:], x, x[..., :1]], dim=-1)  # circular pad by one sector

    def forward(self, scan: torch.Tensor) -> torch.Tensor:
        r = scan * self.scale                                                   # metres
        x = torch.stack([scan, torch.exp(-r / 0.3), torch.exp(-r / 1.0)], dim=1)  # (N, 3, 16)
        h = torch.relu(self.conv1(self._ring(x)))
        h = torch.relu(self.conv2(self._ring(h)))
        pooled = []
        for tau in (0.05, 0.2):                                                 # metres
            w = torch.softmax(-r / tau, dim=1)                                  # (N, 16)
            pooled += [(w * scan).sum(1, keepdim=True), w @ self.dirs]
        return torch.cat([self.out(h.flatten(1))] + pooled, dim=1)


class WorldEncoder(nn.Module):
    """image (N, 3, 64, 64) float32 in [0, 1], scan (N, 16) float32 in [0, 1] -> latent (N, 16)."""

    def __init__(self, latent: int = N_LATENT) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 16, 4, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(16, 32, 4, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU())
        self.scan = ScanBranch()
        self.head = nn.Sequential(nn.Linear(32 * 4 * 4 + 64 + 6, 128), nn.ReLU(), nn.Linear(128, latent))

    def forward(self, image: torch.Tensor, scan: torch.Tensor) -> torch.Tensor:
        h = self.conv(image).flatten(1)
        return self.head(torch.cat([h, self.scan(scan)], dim=1))


class Ensemble(nn.Module):
    """M residual heads: (latent (N, 16), action (N, 2)) -> next_latent (N, M, 16), z + f_m(z, a)."""

    def __init__(self, n_heads: int = N_HEADS, latent: int = N_LATENT, hidden: int = 128, seed: int = 0) -> None:
        super().__init__()
        heads = []
        for m in range(n_heads):
            torch.manual_seed(seed * 1000 + m)  # different init per head
            heads.append(nn.Sequential(nn.Linear(latent + 2, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                       nn.SiLU(), nn.Linear(hidden, latent)))
        self.heads = nn.ModuleList(heads)

    def forward(self, latent: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x = torch.cat([latent, action], dim=1)
        return torch.stack([latent + h(x) for h in self.heads], dim=1)

    def step_each(self, zs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Per-head step: zs (N, M, 16) (head m's own state), action (N, 2) -> (N, M, 16)."""
        return torch.stack([zs[:, m] + h(torch.cat([zs[:, m], action], dim=1))
                            for m, h in enumerate(self.heads)], dim=1)


def vicreg_terms(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(variance hinge mean_d relu(1 - std_d), covariance sum_{i!=j} C_ij^2 / D) of z (N, D)."""
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + 1e-4)
    cov = (z.T @ z) / (z.shape[0] - 1)
    off = cov - torch.diag(torch.diag(cov))
    return torch.relu(1.0 - std).mean(), (off ** 2).sum() / z.shape[1]


def augment_looks(img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random per-sample change of look, (N, 3, H, W) in [0, 1] -> same shape.

    Channel permutation (p = 0.5: moves hues around the whole colour wheel), per-channel gain
    U(0.6, 1.4), brightness U(0.6, 1.4), gamma U(0.7, 1.4) and a grey blend (p = 0.2). Context
    and target views get independent draws, so the appearance of a frame is not predictable from
    the context latent: the latent spends its variance on geometry, which is, instead of on
    lighting and colours, which are not (the unseen-look detector is ``appearance``, a separate
    image-statistics score in core.world_model). The draws and their use are train/jepa_loop.py's
    augment_params and apply_augment (the training loop draws them for the whole batch).
    """
    from hjepa_agent.train.jepa_loop import apply_augment, augment_params
    return apply_augment(img, augment_params(img.shape[0], gen))


def range_summary(scan: torch.Tensor) -> torch.Tensor:
    """What the range sensor says about the nearest surface, from the robot's own scan (N, 16) in
    [0, 1]: (N, 3) = [nearest range / 0.5 m, cos, sin of its sector's centre angle].

    The auxiliary target of the encoder (see ``train_model``): label-free (no simulator state), so
    the same objective could be trained on a real robot's logs.
    """
    from hjepa_agent.core.types import SCAN_RANGE_MAX_M, sector_angles
    ang = torch.from_numpy(sector_angles())
    rmin, k = scan.min(1)
    return torch.stack([rmin * SCAN_RANGE_MAX_M / 0.5, torch.cos(ang[k]), torch.sin(ang[k])], dim=1)


def _tensors(data: dict[str, np.ndarray], idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(data["image"][idx]).float().div_(255.0)
    return img, torch.from_numpy(data["scan"][idx])


@torch.no_grad()
def encode_all(enc: nn.Module, data: dict[str, np.ndarray], batch: int = 1024) -> np.ndarray:
    """Latents (N, 16) float32 of every frame of ``data``."""
    enc.eval()
    out = [enc(*_tensors(data, np.arange(i, min(i + batch, len(data["scan"])))))
           for i in range(0, len(data["scan"]), batch)]
    return torch.cat(out).numpy().astype(np.float32)


def train_model(data: dict[str, np.ndarray], *, steps: int, horizon: int, batch: int, lr: float, seed: int,
                ema: float = 0.99, time_budget_s: float | None = None, aux_weight: float = 5.0,
                augment: bool = True, run: Any = None, progress: bool = True,
                log_every: int | None = None) -> tuple[WorldEncoder, Ensemble, dict]:
    """Train encoder + ensemble on ``data`` (world_data arrays); returns (encoder, ensemble, history).
    The loop (checkpoints with ``run``, DDP under torchrun) is train/jepa_loop.py's train_jepa."""
    from hjepa_agent.train.jepa_loop import train_jepa
    return train_jepa(data, steps=steps, horizon=horizon, batch=batch, lr=lr, seed=seed, ema=ema,
                      time_budget_s=time_budget_s, aux_weight=aux_weight, augment=augment, run=run, progress=progress,
                      log_every=log_every)


def finetune_predictor(ens: Ensemble, z: np.ndarray, data: dict[str, np.ndarray], *, steps: int, horizon: int,
                       batch: int, lr: float, seed: int) -> dict[str, Any]:
    """Phase 2: encoder frozen, heads trained on its own latents z (N, 16) of ``data``.

    The runtime feeds the predictor and judges its output with ONE encoder (the exported context
    encoder), not the EMA target; this phase removes the context/target mismatch. Same rollout
    loss (up to ``horizon`` steps) and per-head Poisson bootstrap weights as phase 1.
    """
    rng = np.random.default_rng(seed + 1)
    zt = torch.from_numpy(z)
    act_all = torch.from_numpy(data["action"])
    starts = world_data.windows(data, horizon)
    opt = torch.optim.AdamW(ens.parameters(), lr=lr, weight_decay=1e-4)
    ens.train()
    t0 = time.perf_counter()
    loss_v = float("nan")
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / max(steps - 1, 1))))
        t = torch.from_numpy(rng.choice(starts, size=min(batch, len(starts)), replace=False))
        w = torch.from_numpy(rng.poisson(1.0, size=(len(t), N_HEADS)).astype(np.float32))
        zs = zt[t][:, None].expand(-1, N_HEADS, -1)
        loss = 0.0
        for k in range(horizon):
            zs = ens.step_each(zs, act_all[t + k])
            err = ((zs - zt[t + k + 1][:, None]) ** 2).mean(-1)
            loss = loss + (err * w).sum() / w.sum().clamp_min(1.0) / horizon
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_v = float(loss.detach())
    ens.eval()
    return {"finetune_steps": steps, "finetune_loss": round(loss_v, 6), "finetune_s": round(time.perf_counter() - t0, 1)}


def fit_calibration(z: np.ndarray, preds: np.ndarray, z_next: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension (s_pred, r), each (16,) > 0, for sigma^2 = var_m(preds) * s_pred + r. preds (N, M, 16).

    Stage 1 maximises the Gaussian likelihood of the residual z_next - mean_m preds. Latent
    residuals are heavier-tailed than Gaussian, so the likelihood fit over-covers at 1 sigma; stage 2
    then matches the coverage directly: per dimension, the (smoothed) fractions of residuals within
    1 and 2 sigma are pulled to 68.3 % and 95.4 % (two equations, two unknowns), with a small
    likelihood term as a tie-breaker.
    """
    mu, var = preds.mean(1), preds.var(1)
    res2 = torch.from_numpy((z_next - mu) ** 2).double()
    v = torch.from_numpy(var).double()
    log_s = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    log_r = torch.full((z.shape[1],), float(np.log(max(float(res2.mean()), 1e-6))), dtype=torch.float64,
                       requires_grad=True)
    opt = torch.optim.Adam([log_s, log_r], lr=0.05)
    for it in range(1200):
        s2 = v * log_s.exp() + log_r.exp()
        nll = (torch.log(s2) + res2 / s2).mean()
        loss = nll
        if it >= 600:  # stage 2: coverage
            e = torch.sqrt(res2 / s2 + 1e-12)  # a zero residual would give an infinite gradient (NaN)
            c1 = torch.sigmoid((1.0 - e) / 0.03).mean(0)
            c2 = torch.sigmoid((2.0 - e) / 0.03).mean(0)
            loss = 1e-3 * nll + ((c1 - 0.683) ** 2 + (c2 - 0.954) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return log_s.exp().detach().numpy().astype(np.float32), log_r.exp().detach().numpy().astype(np.float32)


def _export(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, inputs: list[str], output: str,
            sample: tuple[np.ndarray, ...]) -> float:
    """Export a multi-input module with a dynamic batch axis; parity vs torch on ``sample``."""
    batch = torch.export.Dim("batch", min=1, max=4096)
    prog = torch.onnx.export(module, example, dynamo=True, external_data=False, input_names=inputs,
                             output_names=[output], dynamic_shapes=tuple({0: batch} for _ in example), verbose=False)
    if prog is None:
        raise ExportError(f"torch.onnx.export returned no program for {path}")
    prog.save(str(path), external_data=False)
    sess = _session(path)
    with torch.no_grad():
        ref = module(*(torch.from_numpy(s) for s in sample)).numpy()
    got = sess.run(None, dict(zip(inputs, sample)))[0]
    one = sess.run(None, {n: s[:1] for n, s in zip(inputs, sample)})[0]
    err = float(max(np.abs(got - ref).max(), np.abs(one - ref[:1]).max()))
    if not err <= PARITY_TOL:
        raise ExportError(f"{path}: ONNX vs torch max abs error {err:.3g} > {PARITY_TOL:.1g}")
    log.info("exported %s (%d bytes), parity %.2e", path, path.stat().st_size, err)
    return err


def parse_args(argv: list[str] | None) -> Any:
    """Options of ``hjepa-agent train world-model``: train/world_model_ds.py's WorldModelConfig, whose
    fields make the command line."""
    from hjepa_agent.train.runs import config_from
    from hjepa_agent.train.world_model_ds import WorldModelConfig
    return config_from(WorldModelConfig, argv, "hjepa-agent train world-model", __doc__.split("\n")[0])


def calibrate(z_tr: np.ndarray, z_c: np.ndarray, preds: np.ndarray, t1: np.ndarray) -> dict[str, Any]:
    """The calibration file's numbers (without score statistics): predictive sigma fitted on the calib
    split's one-step predictions ``preds`` (len(t1), M, 16) of latents z_c[t1] -> z_c[t1 + 1], and the
    latent density of the train split (latents z_tr)."""
    s_pred, r = fit_calibration(z_c[t1], preds, z_c[t1 + 1])
    if not (np.all(np.isfinite(s_pred)) and np.all(np.isfinite(r))):
        raise RuntimeError(f"calibration is not finite: s_pred {s_pred}, r {r}")
    mean = z_tr.mean(0)
    prec = np.linalg.inv(np.cov(z_tr.T) + 1e-4 * np.eye(N_LATENT))
    return {"formula": "sigma_d = sqrt(var_m(next_latent[:, m, d]) * s_pred_d + r_d), one step ahead",
            "s_pred": s_pred.round(6).tolist(), "r": r.round(8).tolist(),
            "latent_mean": mean.round(6).tolist(), "latent_precision": prec.round(6).tolist(),
            "note": "Mahalanobis score = (z - latent_mean)^T latent_precision (z - latent_mean), latent statistics "
                    "from the train split; appearance: world_look.npz (core/look.py); score_ref = nominal (mean, "
                    "std) of each ambiguity score (core.world_model.frame_scores) on the calib split of the "
                    "scenarios and procedural val layouts (train/look.py), frames not in the look bank"}


def score_statistics(models_dir: Path, calib_d: dict[str, np.ndarray]) -> dict[str, Any]:
    """score_ref (nominal mean, std of each score) and ambiguity_scale (the combined score's
    AMBIGUITY_QUANTILE) on the calib split, through the exported models in ``models_dir``."""
    wm = WorldModel(models_dir)
    scores = frame_scores(wm, wm.encode(calib_d["image"], calib_d["scan"]), calib_d["action"], calib_d["episode"],
                          calib_d["image"])
    ref = {k: [round(float(np.nanmean(v)), 6), round(float(np.nanstd(v)) + 1e-6, 6)] for k, v in scores.items()}
    scale = float(np.nanquantile(combine(scores, {k: tuple(v) for k, v in ref.items()}), AMBIGUITY_QUANTILE))
    return {"score_ref": ref, "ambiguity_quantile": AMBIGUITY_QUANTILE, "ambiguity_scale": round(scale, 6)}


def write_calibration(out: Path, calib: dict[str, Any]) -> None:
    """Write CALIBRATION_FILE in ``out``."""
    (out / CALIBRATION_FILE).write_text("# Written by hjepa_agent.train.world_model: predictive sigma, latent "
                                        "density and nominal score statistics of world_predictor.onnx / "
                                        "world_encoder.onnx (the look bank: world_look.npz).\n"
                                        + yaml.safe_dump(calib, sort_keys=False, width=110))


def export_world_models(out: Path, enc: nn.Module, ens: nn.Module, z_c: np.ndarray,
                        actions: np.ndarray) -> dict[str, float]:
    """Export world_encoder.onnx and world_predictor.onnx into ``out`` (dynamic batch), each checked
    against torch (random images and scans; the first 64 calib latents and actions); returns the parity
    errors by model name."""
    n = 64
    g = np.random.default_rng(1)
    return {"world_encoder": _export(enc, (torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE), torch.rand(2, N_SCAN_BINS)),
                                     out / "world_encoder.onnx", ["image", "scan"], "latent",
                                     (g.random((n, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32),
                                      g.random((n, N_SCAN_BINS), dtype=np.float32))),
            "world_predictor": _export(ens, (torch.randn(2, N_LATENT), torch.rand(2, 2)),
                                       out / "world_predictor.onnx", ["latent", "action"], "next_latent",
                                       (z_c[:n].copy(), actions[:n].copy()))}


def write_world_entries(out: Path, calib: dict[str, Any], common: dict[str, Any], metrics: dict[str, Any],
                        parity: dict[str, float], look: ModelRecord, robot: str, limits: Limits,
                        fingerprint: RobotFingerprint, calib_frames: dict[str, np.ndarray]) -> None:
    """The calibration file and the manifest entries (world_encoder, world_predictor, world_look), written
    twice: the score statistics are computed through the exported models, as the runtime computes them, so
    they need the first write; ``calib`` gains them."""
    def write_all() -> None:
        write_calibration(out, calib)
        records = [ModelRecord("world_encoder", "world_encoder.onnx",
                               {**common, "metrics": {"onnx_parity_max_abs_err": parity["world_encoder"]}}),
                   ModelRecord("world_predictor", "world_predictor.onnx",
                               {**common, "metrics": metrics, "calibration": {**calib, "file": CALIBRATION_FILE}}),
                   look]
        write_manifest(out, robot, records, limits.speed_norm, limits.action_scale, merge=True, fingerprint=fingerprint)

    write_all()
    calib.update(score_statistics(out, calib_frames))
    write_all()


def recalibrate(args: Any) -> dict[str, Any]:
    """``--recalibrate``: keep the exported ONNX models in --out and redo only the calibration (sigma,
    densities, the look bank, score statistics) through ONNX Runtime on the train/calib splits, e.g.
    after a change of the scoring or a calibration bug; the predictor's manifest entry records it."""
    from hjepa_agent.core.models import OnnxModel, load_manifest
    out = Path(args.out or data_path("models"))
    manifest = load_manifest(out)
    cpu = ["CPUExecutionProvider"]
    robot, ego, fingerprint = _robot(args)
    enc = OnnxModel(out, "world_encoder", manifest, cpu, expected=fingerprint)
    pred = OnnxModel(out, "world_predictor", manifest, cpu, expected=fingerprint)
    train_d, shipped_d = _train_data(args, robot, ego)
    calib_d = _data(args, robot, ego, "calib", args.calib_episodes)

    z_tr, z_c = (encode_frames(enc, d["image"], d["scan"]) for d in (train_d, calib_d))
    t1 = world_data.windows(calib_d, 1)
    calib = calibrate(z_tr, z_c, pred(z_c[t1], calib_d["action"][t1]), t1)
    look, calib_all = make_look(out, args.data_cache, robot, ego, shipped_d, calib_d, **look_options(args))
    write_calibration(out, calib)
    norms = tuple(manifest.observation["speed_norm"]), tuple(manifest.action_scale)
    write_manifest(out, manifest.robot, [look], *norms, merge=True, fingerprint=fingerprint)
    calib.update(score_statistics(out, calib_all))
    write_calibration(out, calib)
    entry = manifest.models["world_predictor"]
    trained = {**entry.trained, "calibration": {**calib, "file": CALIBRATION_FILE},
               "recalibrated": {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "how": "hjepa-agent train world-model --recalibrate (ONNX Runtime latents)"}}
    write_manifest(out, manifest.robot, [ModelRecord("world_predictor", "world_predictor.onnx", trained), look],
                   *norms, merge=True, fingerprint=fingerprint)
    log.info("recalibrated %s: ambiguity_scale %.3f", out, calib["ambiguity_scale"])
    return calib


def _robot(args: Any) -> tuple[Any, Any, RobotFingerprint]:
    """(robot description, ego model, their fingerprint) of --robot and --ego-model (defaults: the package's)."""
    from hjepa_agent.sim.robot import load_robot_description
    robot_path = args.robot or data_path("config", "robots", "diffbot.yaml")
    ego_path = args.ego_model or data_path("config", "ego_model.yaml")
    robot, ego = load_robot_description(robot_path), load_ego_model(ego_path)
    return robot, ego, robot_fingerprint(robot, ego, str(robot_path), str(ego_path), "hjepa-agent train world-model")


def _data(args: Any, robot: Any, ego: Any, split: str, n: int) -> dict[str, np.ndarray]:
    """Roll-outs of ``split`` (n episodes per scenario) through the dataset format (from_dataset.sim_rollouts:
    dataset collect on --workers Ray workers), reused from / written to --data-cache as a dataset (a cache of
    one robot: keep one per robot)."""
    from hjepa_agent.train.from_dataset import sim_rollouts
    return sim_rollouts(args.data_cache, f"{split}_{n}x_{args.max_episode_s:g}s", Limits.from_ego(ego), split=split,
                        episodes_per_scenario=n, robot=robot, ego_model=ego, max_time_s=args.max_episode_s,
                        workers=args.workers, progress=not args.quiet)


def _train_data(args: Any, robot: Any, ego: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the training roll-outs: the shipped scenarios' train split with ``--layouts`` procedural train
    layouts of ``--layout-episodes`` each, the shipped scenarios' alone: the look bank's own share)."""
    shipped = _data(args, robot, ego, "train", args.episodes)
    if not args.layouts:
        return shipped, shipped
    from hjepa_agent.train.look import concat, layout_data
    lay = layout_data(args.data_cache, robot, ego, "train", "train", args.layouts, args.layout_episodes,
                      args.max_episode_s)
    return concat(shipped, lay), shipped


def train(args: Any) -> dict[str, Any]:
    """Collect, train, calibrate, export, write manifest entries; returns the metrics."""
    t0 = time.perf_counter()
    out = Path(args.out or data_path("models"))
    out.mkdir(parents=True, exist_ok=True)
    robot, ego, fingerprint = _robot(args)
    limits = Limits.from_ego(ego)
    train_d, shipped_d = _train_data(args, robot, ego)
    calib_d = _data(args, robot, ego, "calib", args.calib_episodes)
    data_s = time.perf_counter() - t0
    from hjepa_agent.train.runs import Run
    run = Run(args, "world-model", out)
    torch.set_num_threads(args.threads)
    enc, ens, hist = train_model(train_d, steps=args.steps, horizon=args.horizon, batch=args.batch, lr=args.lr,
                                 seed=args.seed, time_budget_s=args.time_budget_s or None, run=run,
                                 progress=not args.quiet, log_every=args.log_every)
    run.close()
    z_tr = encode_all(enc, train_d)
    hist.update(finetune_predictor(ens, z_tr, train_d, steps=args.finetune_steps, horizon=args.horizon,
                                   batch=256, lr=1e-3, seed=args.seed))
    # Calibration on held-out calib episodes, one step ahead, with the modules that get exported.
    z_c = encode_all(enc, calib_d)
    t1 = world_data.windows(calib_d, 1)
    with torch.no_grad():
        preds = ens(torch.from_numpy(z_c[t1]), torch.from_numpy(calib_d["action"][t1])).numpy()
    calib = calibrate(z_tr, z_c, preds, t1)
    look, calib_all = make_look(out, args.data_cache, robot, ego, shipped_d, calib_d, **look_options(args))
    parity = export_world_models(out, enc, ens, z_c, calib_d["action"])
    # Training-fit figures on the calib split (the held-out eval is eval_world_model.py).
    mu = preds.mean(1)
    mse1 = float(((mu - z_c[t1 + 1]) ** 2).mean())
    copy1 = float(((z_c[t1] - z_c[t1 + 1]) ** 2).mean())
    metrics = {"train_time_s": hist.pop("train_s"), "data_time_s": round(data_s, 1), "history": hist,
               "calib_one_step_mse": round(mse1, 6), "calib_copy_baseline_mse": round(copy1, 6),
               "latent_std_train": z_tr.std(0).round(4).tolist(), "onnx_parity_max_abs_err": parity}
    desc = world_data.describe({"train": args.episodes, "calib": args.calib_episodes}, args.max_episode_s)
    if args.layouts:
        desc["layouts"] = (f"layout_ids('train', {args.layouts}) (hjepa_agent/sim/layouts.py), {args.layout_episodes} "
                           f"episodes each (world_data split 'train' seeds), in the training roll-outs")
    desc.update({"frames": {"train": int(len(train_d["tick"])), "calib": int(len(calib_d["tick"]))},
                 "quick": bool(args.quick)})
    common = {"data": desc, "heads": N_HEADS, "horizon": args.horizon, "steps": hist["steps_done"],
              "batch": args.batch, "lr": args.lr, "config": to_plain(args), "run_dir": str(run.dir),
              "loss": "25*pred + 25*vicreg_var + 1*vicreg_cov + 5*aux(linear range_summary of own scan), look "
                      "augmentation on context and target views, EMA 0.99->1; then heads fine-tuned on the frozen encoder"}
    write_world_entries(out, calib, common, metrics, parity, look, ego.robot, limits, fingerprint, calib_all)
    metrics["total_time_s"] = round(time.perf_counter() - t0, 1)
    log.info("world model: %d steps in %.0f s; calib 1-step mse %.4f (copy %.4f); total %.0f s",
             hist["steps_done"], metrics["train_time_s"], mse1, copy1, metrics["total_time_s"])
    return metrics


def train_main(argv: list[str] | None = None) -> int:
    """Entry point of ``hjepa-agent train world-model``; returns the exit code. With ``--dataset`` the
    dataset path (train/world_model_ds.py) trains; otherwise this module's simulator path."""
    args = parse_args(argv)
    setup_training_logging()
    if args.dataset is not None:
        from hjepa_agent.train.world_model_ds import train as from_dataset
        from_dataset(args)
    elif args.recalibrate:
        recalibrate(args)
    else:
        train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
