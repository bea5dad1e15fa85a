"""GFlowNet training (torch; the runtime never imports this): the one balance loss both planner
levels train with (:func:`balance_loss`), and the fast level's network over plans.

**Balance.** For a trajectory tau = (s_0 -> ... -> s_T = x) with forward actions drawn by P_F and
backward steps scored by P_B, trajectory balance (Malkin et al., 2022) is

    L(tau) = (log Z(cond) + sum_t log P_F(s_t -> s_t+1) - log R(x | cond) - sum_t log P_B(s_t+1 -> s_t))^2.

At its minimum the sampler draws x with probability R(x) / Z and the learned log Z equals
log sum_x R(x): the plan's log R - log Z is its log-probability under the reward, which is what
the planner's risk is read from. Sub-trajectory balance (Madan et al., 2023) adds learned flows
F(s_1..s_T-1) and asks every sub-trajectory s_i -> s_j to balance,
log F(s_i) + sum_{t=i}^{j-1} (log P_F - log P_B) = log F(s_j), weighted lam^(j-i): denser credit,
every prefix gets a target. The slow level (train/subgoal_gfn.py: routes by insertion, a learned
P_B) trains with trajectory balance; the fast one (train/planner_gfn.py) with either.

**Plans.** A plan is a sequence of ``horizon`` actions out of ``n_actions``, built by appending
one action at a time (core/planner/gfn/plans.py PlanSpace: its state encoding is the runtime's),
conditioned on a vector ``cond``. Every state has one parent, so P_B = 1 and a trajectory *is*
its terminal plan. Training is off-policy: trajectories are drawn from P_F mixed with ``epsilon``
of uniform actions, the loss uses P_F itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from hjepa_agent.core.planner.gfn.plans import PlanSpace


def balance_loss(log_z: torch.Tensor, log_pf: torch.Tensor, log_r: torch.Tensor, log_pb: torch.Tensor | None = None,
                 *, objective: str = "tb", log_flows: torch.Tensor | None = None, lam: float = 0.9) -> torch.Tensor:
    """The balance loss of the module doc, mean over the batch.

    ``log_z`` (N,), ``log_pf`` (N, T) per forward step (0 after a trajectory's end), ``log_r`` (N,),
    ``log_pb`` (N, T) per backward step (None: P_B = 1). ``objective``: "tb" (trajectory balance)
    or "subtb" (sub-trajectory balance over trajectories of T steps each, with ``log_flows``
    (N, T-1) the learned log F of the intermediate states and weights lam^length)."""
    if log_pb is not None and log_pb.shape != log_pf.shape:
        raise ValueError(f"balance_loss: log_pb {tuple(log_pb.shape)} must match log_pf {tuple(log_pf.shape)}")
    if objective == "tb":
        resid = log_z + log_pf.sum(1) - log_r
        return ((resid if log_pb is None else resid - log_pb.sum(1)) ** 2).mean()
    if objective == "subtb":
        steps = log_pf if log_pb is None else log_pf - log_pb
        if log_flows is None:
            raise ValueError("balance_loss: objective 'subtb' needs log_flows")
        n, h = steps.shape
        flows = torch.cat([log_z[:, None], log_flows, log_r[:, None]], dim=1)            # (N, T+1)
        cum = torch.cat([torch.zeros(n, 1), torch.cumsum(steps, dim=1)], dim=1)         # (N, T+1)
        i, j = torch.triu_indices(h + 1, h + 1, offset=1)
        resid = flows[:, i] + (cum[:, j] - cum[:, i]) - flows[:, j]
        w = lam ** (j - i).float()
        return ((resid ** 2) * w[None]).sum(1).mean() / w.sum()
    raise ValueError(f"objective must be 'tb' or 'subtb', got {objective!r}")


class PlanGFlowNet(nn.Module):
    """Forward policy P_F(a_t | prefix, cond) and log Z(cond), two small MLPs."""

    def __init__(self, space: PlanSpace, hidden: int = 128) -> None:
        super().__init__()
        self.space = space
        self.pf = nn.Sequential(nn.Linear(space.state_dim + space.cond_dim, hidden), nn.ReLU(),
                                nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, space.n_actions))
        self.logz = nn.Sequential(nn.Linear(max(space.cond_dim, 1), hidden // 2), nn.ReLU(),
                                  nn.Linear(hidden // 2, 1))
        # log F(s) of the intermediate states, for sub-trajectory balance only (not exported)
        self.logflow = nn.Sequential(nn.Linear(space.state_dim + space.cond_dim, hidden // 2), nn.ReLU(),
                                     nn.Linear(hidden // 2, 1))

    def _cond(self, cond: torch.Tensor | None, n: int) -> torch.Tensor:
        if self.space.cond_dim == 0:
            return torch.zeros(n, 0)
        if cond is None or cond.shape != (n, self.space.cond_dim):
            raise ValueError(f"cond must be ({n}, {self.space.cond_dim}), got {None if cond is None else cond.shape}")
        return cond

    def _encode(self, actions: torch.Tensor, step: int) -> torch.Tensor:
        """(N, state_dim) the runtime's encoding of the prefixes ``actions[:, :step]``."""
        return torch.from_numpy(self.space.encode(self.space.prefixes(actions.numpy(), step)))

    def logits(self, actions: torch.Tensor, step: int, cond: torch.Tensor | None) -> torch.Tensor:
        """(N, n_actions) logits of P_F at ``step`` after the prefix ``actions[:, :step]``."""
        n = actions.shape[0]
        return self.pf(torch.cat([self._encode(actions, step), self._cond(cond, n)], dim=1))

    def log_z(self, cond: torch.Tensor | None, n: int) -> torch.Tensor:
        """(N,) learned log partition function for each condition."""
        c = self._cond(cond, n)
        return self.logz(c if self.space.cond_dim else torch.zeros(n, 1)).squeeze(1)

    def log_pf_steps(self, actions: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(N, horizon) log P_F of each step of the plans ``actions`` (N, horizon)."""
        steps = [torch.log_softmax(self.logits(actions, t, cond), dim=1).gather(1, actions[:, t:t + 1])
                 for t in range(self.space.horizon)]
        return torch.cat(steps, dim=1)

    def log_pf(self, actions: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(N,) sum over steps of log P_F of the plans ``actions`` (N, horizon)."""
        return self.log_pf_steps(actions, cond).sum(1)

    def log_flows(self, actions: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """(N, horizon - 1) learned log F of the intermediate prefixes actions[:, :t], t = 1..horizon-1."""
        n = actions.shape[0]
        c = self._cond(cond, n)
        return torch.cat([self.logflow(torch.cat([self._encode(actions, t), c], dim=1))
                          for t in range(1, self.space.horizon)], dim=1) if self.space.horizon > 1 \
            else torch.zeros(n, 0)

    def loss(self, plans: torch.Tensor, cond: torch.Tensor | None, log_r: torch.Tensor, objective: str = "tb",
             lam: float = 0.9) -> torch.Tensor:
        """:func:`balance_loss` of ``objective`` ("tb" or "subtb") on a batch of plans (N, horizon)."""
        n = plans.shape[0]
        return balance_loss(self.log_z(cond, n), self.log_pf_steps(plans, cond), log_r, objective=objective,
                            log_flows=self.log_flows(plans, cond) if objective == "subtb" else None, lam=lam)

    @torch.no_grad()
    def sample(self, n: int, cond: torch.Tensor | None, generator: torch.Generator,
               epsilon: float = 0.0) -> torch.Tensor:
        """(n, horizon) plans from P_F, each step mixed with ``epsilon`` of uniform actions."""
        actions = torch.zeros(n, self.space.horizon, dtype=torch.long)
        for t in range(self.space.horizon):
            probs = torch.softmax(self.logits(actions, t, cond), dim=1)
            probs = (1.0 - epsilon) * probs + epsilon / self.space.n_actions
            actions[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return actions

    @torch.no_grad()
    def terminal_distribution(self, cond: torch.Tensor | None = None) -> torch.Tensor:
        """P_F's probability of every plan of ``space.all_plans()`` for one condition (1, cond_dim)."""
        plans = torch.from_numpy(self.space.all_plans())
        c = None if cond is None else cond.expand(len(plans), -1)
        return torch.exp(self.log_pf(plans, c))


@dataclass(frozen=True)
class TBConfig:
    """Trajectory-balance training: steps, batch, Adam learning rates (P_F, log Z), exploration."""

    steps: int = 2000
    batch: int = 64
    lr: float = 1e-3
    lr_logz: float = 1e-1
    epsilon: float = 0.1
    seed: int = 0
    objective: str = "tb"
    """"tb" (trajectory balance) or "subtb" (sub-trajectory balance, weights lam^length)."""
    lam: float = 0.9


def tb_optimizer(net: PlanGFlowNet, lr: float, lr_logz: float) -> torch.optim.Optimizer:
    """Adam with its own (larger) learning rate for log Z, as trajectory balance wants (the
    intermediate flows of sub-trajectory balance learn at the policy's rate)."""
    return torch.optim.Adam([{"params": [*net.pf.parameters(), *net.logflow.parameters()], "lr": lr},
                             {"params": net.logz.parameters(), "lr": lr_logz}])


def train_tb(net: PlanGFlowNet, log_reward: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
             cfg: TBConfig, cond_sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None,
             progress: bool = True) -> list[float]:
    """Train ``net`` with trajectory balance; returns the loss per step.

    ``log_reward(plans (N, horizon), cond (N, cond_dim) or None) -> (N,)``; ``cond_sampler(n, gen)``
    draws the conditions of a batch (required when the space has cond_dim > 0)."""
    if net.space.cond_dim and cond_sampler is None:
        raise ValueError("train_tb: a conditioned space needs cond_sampler")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = tb_optimizer(net, cfg.lr, cfg.lr_logz)
    losses = []
    bar = tqdm(range(cfg.steps), desc="trajectory balance", disable=not progress, unit="step")
    for _ in bar:
        cond = cond_sampler(cfg.batch, gen) if cond_sampler is not None else None
        plans = net.sample(cfg.batch, cond, gen, cfg.epsilon)
        with torch.no_grad():
            log_r = log_reward(plans, cond)
        if not torch.all(torch.isfinite(log_r)):
            raise ValueError("train_tb: log_reward returned non-finite values")
        loss = net.loss(plans, cond, log_r, cfg.objective, cfg.lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if len(losses) % 100 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-100:]):.4f}")
    return losses


def exact_log_z(log_r: torch.Tensor) -> float:
    """log sum exp of the log rewards of every plan."""
    return float(torch.logsumexp(log_r, dim=0))


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """0.5 * sum |p - q| of two distributions over the same plans."""
    return 0.5 * float(torch.abs(p - q).sum())


__all__ = ["PlanGFlowNet", "TBConfig", "balance_loss", "exact_log_z", "tb_optimizer", "total_variation", "train_tb"]
