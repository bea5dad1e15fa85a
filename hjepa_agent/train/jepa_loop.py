"""The world model's phase-1 optimisation loop (objective: train/world_model.py's docstring), with
checkpoints, ``--resume`` and metrics (train/runs.py) and data-parallel training with torch
DistributedDataParallel when started by torchrun.

Data parallelism, made to follow the 1-process loss curve: every rank draws the same GLOBAL batch
(window starts, bootstrap weights and look augmentations from the same seeded generators) and
computes its own contiguous slice of it (rows ``rank * B / W ..``); DDP averages the gradients. The
prediction and auxiliary terms are written as each rank's share of the global mean (scaled by W, so
the average over ranks is the global mean), and the VICReg terms, which are statistics of the whole
batch, are computed on the latents all-gathered from every rank (torch.distributed.nn's all_gather
carries the gradient back to each rank's slice). The update is then the 1-process update, up to
floating-point summation order; ``hjepa-agent train world-model --dataset`` with ``torchrun
--nproc_per_node 2`` is compared with one process in docs/training.md. Backend: gloo on CPU, NCCL
when CUDA is available (torchrun sets the rendezvous; :func:`init_distributed` picks the backend).
"""
from __future__ import annotations

import copy
import logging
import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from hjepa_agent.core.perception import IMAGE_SIZE
from hjepa_agent.core.types import N_LATENT
from hjepa_agent.train import world_data

log = logging.getLogger(__name__)

LOG_EVERY = 50
"""Default steps between recorded metrics (history, CSV, TensorBoard)."""


def init_distributed() -> tuple[int, int]:
    """(rank, world size): from torchrun's environment, initialising the process group once (gloo on
    CPU, NCCL with CUDA); (0, 1) when not started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def augment_params(n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The random draws of train/world_model.augment_looks for ``n`` images, in its order."""
    pick = torch.where(torch.rand(n, generator=gen) < 0.5, torch.randint(1, 6, (n,), generator=gen), 0)
    return {"pick": pick, "gain": 0.6 + 0.8 * torch.rand(n, 3, 1, 1, generator=gen),
            "bright": 0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen),
            "gamma": 0.7 + 0.7 * torch.rand(n, 1, 1, 1, generator=gen),
            "grey": (torch.rand(n, 1, 1, 1, generator=gen) < 0.2).float()}


def apply_augment(img: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """Apply :func:`augment_params`' draws (rows matching ``img``'s) to images (N, 3, H, W) in [0, 1]."""
    perms = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    out = img[torch.arange(img.shape[0])[:, None], perms[p["pick"]]]
    out = (out * p["gain"] * p["bright"]).clamp(0.0, 1.0).clamp_min(1e-4) ** p["gamma"]
    return p["grey"] * out.mean(1, keepdim=True).expand_as(out) + (1 - p["grey"]) * out


class Objective(nn.Module):
    """The trained modules (encoder, ensemble, auxiliary read-out) and the loss on one rank's slice."""

    def __init__(self, enc: nn.Module, ens: nn.Module, aux: nn.Module, aux_weight: float) -> None:
        super().__init__()
        self.enc, self.ens, self.aux = enc, ens, aux
        self.aux_weight = aux_weight

    def forward(self, ctx_img: torch.Tensor, scan0: torch.Tensor, zbar: torch.Tensor, act: torch.Tensor,
                w: torch.Tensor, w_total: torch.Tensor, batch_total: int, world: int) -> tuple[torch.Tensor, dict]:
        from hjepa_agent.train.world_model import N_HEADS, range_summary, vicreg_terms
        horizon = act.shape[1]
        z0 = self.enc(ctx_img, scan0)
        zs = z0[:, None].expand(-1, N_HEADS, -1)
        pred = 0.0
        for k in range(horizon):
            zs = self.ens.step_each(zs, act[:, k])
            err = ((zs - zbar[:, k, None]) ** 2).mean(-1)                     # (b, M)
            pred = pred + (err * w).sum() / w_total / horizon                  # this slice's share
        z_all = z0
        if world > 1:
            from torch.distributed.nn.functional import all_gather
            z_all = torch.cat(all_gather(z0), 0)
        var, cov = vicreg_terms(z_all)
        aux_share = ((self.aux(z0) - range_summary(scan0)) ** 2).mean(1).sum() / batch_total
        loss = world * (25.0 * pred + self.aux_weight * aux_share) + 25.0 * var + 1.0 * cov
        return loss, {"pred": pred.detach(), "aux": aux_share.detach(), "var": var.detach(), "cov": cov.detach()}


def _tensors(data: dict[str, np.ndarray], idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(data["image"][idx]).float().div_(255.0), torch.from_numpy(data["scan"][idx])


def train_jepa(data: dict[str, np.ndarray], *, steps: int, horizon: int, batch: int, lr: float, seed: int,
               ema: float = 0.99, time_budget_s: float | None = None, aux_weight: float = 5.0, augment: bool = True,
               run: Any = None, progress: bool = True, log_every: int | None = None) -> tuple[nn.Module, nn.Module, dict]:
    """Phase 1 on ``data`` (world_data arrays: image, scan, action, episode); returns (encoder, ensemble,
    history). ``run`` (train/runs.py Run): checkpoints, resume and metrics; None: none of them."""
    from hjepa_agent.train.world_model import N_HEADS, Ensemble, WorldEncoder
    from hjepa_agent.train.runs import restore, snapshot

    rank, world = init_distributed()
    log_every = log_every or LOG_EVERY
    if batch % world:
        raise ValueError(f"batch {batch} must divide among {world} processes")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    enc, ens = WorldEncoder(), Ensemble(seed=seed)
    aux = nn.Linear(N_LATENT, 3)   # linear read-out of range_summary; trained, not exported
    target = copy.deepcopy(enc).requires_grad_(False)
    objective = Objective(enc, ens, aux, aux_weight)
    params = list(objective.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    hist: dict[str, list] = {"step": [], "loss": [], "pred": [], "var": [], "cov": [], "aux": []}
    start = 0
    held = {"objective": objective, "target": target, "optimizer": opt}   # what a checkpoint holds
    state = run.load() if run is not None else None
    if state is not None:
        start, hist = restore(state, held, rng, gen), state["history"]
    model: nn.Module = objective
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(objective)   # broadcasts rank 0's parameters
    starts = world_data.windows(data, horizon)
    if len(starts) < batch:
        raise ValueError(f"only {len(starts)} windows of {horizon + 1} frames; collect more data")
    lo, hi = rank * batch // world, (rank + 1) * batch // world
    t0 = time.perf_counter()
    from tqdm import tqdm
    bar = tqdm(range(start, steps), desc="world model", unit="step", leave=False, disable=not progress or rank != 0,
               initial=start, total=steps)
    step = start - 1
    for step in bar:
        frac = step / max(steps - 1, 1)
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * frac)))
        objective.train()
        t = rng.choice(starts, size=batch, replace=False)                # the global batch, same on every rank
        ctx_p = augment_params(batch, gen) if augment else None
        tgt_p = augment_params(batch * horizon, gen) if augment else None
        w_all = torch.from_numpy(rng.poisson(1.0, size=(batch, N_HEADS)).astype(np.float32))
        idx = t[lo:hi, None] + np.arange(horizon + 1)[None]              # this rank's slice (b, K+1)
        b = hi - lo
        img, scan = _tensors(data, idx.reshape(-1))
        img = img.view(b, horizon + 1, 3, IMAGE_SIZE, IMAGE_SIZE)
        scan = scan.view(b, horizon + 1, -1)
        act = torch.from_numpy(data["action"][idx[:, :horizon]])
        ctx_img, tgt_img = img[:, 0], img[:, 1:].reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)
        if augment:
            ctx_img = apply_augment(ctx_img, {k: v[lo:hi] for k, v in ctx_p.items()})
            tgt_img = apply_augment(tgt_img, {k: v[lo * horizon:hi * horizon] for k, v in tgt_p.items()})
        with torch.no_grad():
            zbar = target(tgt_img, scan[:, 1:].reshape(b * horizon, -1)).view(b, horizon, -1)
        loss, parts = model(ctx_img, scan[:, 0], zbar, act, w_all[lo:hi], w_all.sum().clamp_min(1.0), batch, world)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        tau = 1.0 - (1.0 - ema) * 0.5 * (1 + np.cos(np.pi * frac))       # ema -> 1 (BYOL schedule)
        with torch.no_grad():
            for p_t, p in zip(target.parameters(), enc.parameters()):
                p_t.mul_(tau).add_(p.detach(), alpha=1.0 - tau)
        if step % log_every == 0 or step == steps - 1:
            shares = torch.stack([parts["pred"], parts["aux"]])
            if world > 1:
                import torch.distributed as dist
                dist.all_reduce(shares)
            pred, aux_l = (float(v) for v in shares)
            var, cov = float(parts["var"]), float(parts["cov"])
            total = 25.0 * pred + 25.0 * var + cov + aux_weight * aux_l
            for k, v in (("step", step), ("loss", total), ("pred", pred), ("var", var), ("cov", cov), ("aux", aux_l)):
                hist[k].append(v if k == "step" else round(v, 6))
            if run is not None:
                run.log(step, {"loss": total, "pred": pred, "var": var, "cov": cov, "aux": aux_l,
                               "lr": opt.param_groups[0]["lr"]})
            bar.set_postfix(pred=f"{pred:.4f}", var=f"{var:.3f}", cov=f"{cov:.3f}", aux=f"{aux_l:.3f}")
        over = time_budget_s is not None and time.perf_counter() - t0 > time_budget_s
        if run is not None and (run.due(step, steps) or over):
            run.save(step + 1, snapshot(held, rng, gen, history=hist))
        if over:
            log.warning("time budget %.0f s reached after %d of %d steps", time_budget_s, step + 1, steps)
            break
    hist = {**hist, "steps_done": step + 1, "train_s": round(time.perf_counter() - t0, 1)}
    return enc.eval(), ens.eval(), hist


__all__ = ["LOG_EVERY", "Objective", "apply_augment", "augment_params", "init_distributed", "train_jepa"]
