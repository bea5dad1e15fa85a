"""Trajectory balance on an enumerable plan space: after training, the GFlowNet samples plans in
proportion to their reward (total variation <= 0.05 against R/Z) and its learned log Z is within
0.1 of the exact log sum R (issue 4, acceptance)."""
import math

import pytest
import torch

from hjepa_agent.core.planner.gfn.plans import PlanSpace
from hjepa_agent.train.gflownet import PlanGFlowNet, TBConfig, balance_loss, exact_log_z, total_variation, train_tb

pytestmark = pytest.mark.training


def _table(space: PlanSpace, seed: int, spread: float = 3.0) -> torch.Tensor:
    """A random log-reward table over every plan, log R in [-spread, 0]."""
    g = torch.Generator().manual_seed(seed)
    return -spread * torch.rand(space.n_actions ** space.horizon, generator=g)


def _index(plans: torch.Tensor, n_actions: int) -> torch.Tensor:
    """Row of each plan in space.all_plans() (lexicographic = base-n_actions digits)."""
    weights = n_actions ** torch.arange(plans.shape[1] - 1, -1, -1)
    return (plans * weights).sum(1)


def test_unconditioned_sampler_matches_reward_and_log_z():
    space = PlanSpace(horizon=3, n_actions=4)            # 64 plans
    log_r_table = _table(space, seed=1)
    net = PlanGFlowNet(space, hidden=64)
    train_tb(net, lambda plans, cond: log_r_table[_index(plans, space.n_actions)],
             TBConfig(steps=1500, batch=64, seed=0), progress=False)
    target = torch.softmax(log_r_table, dim=0)
    p = net.terminal_distribution()
    assert abs(float(p.sum()) - 1.0) < 1e-5
    tv = total_variation(p, target)
    log_z_err = abs(float(net.log_z(None, 1)[0]) - exact_log_z(log_r_table))
    print(f"TV {tv:.2e}, |log Z error| {log_z_err:.2e}")
    assert tv <= 0.05
    assert log_z_err <= 0.1


def test_conditioned_sampler_matches_each_conditions_reward():
    """Two goals (conditions) with different reward tables: one network serves both."""
    space = PlanSpace(horizon=3, n_actions=3, cond_dim=2)   # 27 plans per condition
    tables = torch.stack([_table(space, seed=2), _table(space, seed=3)])
    conds = torch.eye(2)

    def log_reward(plans, cond):
        which = cond.argmax(1)
        return tables[which, _index(plans, space.n_actions)]

    def cond_sampler(n, gen):
        return conds[torch.randint(0, 2, (n,), generator=gen)]

    net = PlanGFlowNet(space, hidden=64)
    train_tb(net, log_reward, TBConfig(steps=2000, batch=64, seed=0), cond_sampler=cond_sampler, progress=False)
    for k in range(2):
        p = net.terminal_distribution(conds[k:k + 1])
        tv = total_variation(p, torch.softmax(tables[k], dim=0))
        log_z_err = abs(float(net.log_z(conds[k:k + 1], 1)[0]) - exact_log_z(tables[k]))
        print(f"condition {k}: TV {tv:.2e}, |log Z error| {log_z_err:.2e}")
        assert tv <= 0.05 and log_z_err <= 0.1


def test_trajectory_balance_is_zero_exactly_at_balance():
    log_r = torch.tensor([-1.0, -2.0])
    log_z = torch.tensor([math.log(3.0), math.log(3.0)])
    log_pf = (log_r - log_z)[:, None] * torch.tensor([[0.25, 0.75]])   # P_F(x) = R(x) / Z over two steps
    assert float(balance_loss(log_z, log_pf, log_r)) == pytest.approx(0.0, abs=1e-12)
    assert float(balance_loss(log_z + 0.5, log_pf, log_r)) == pytest.approx(0.25)


def test_trajectory_balance_with_a_backward_policy_counts_its_log_probs():
    """Where a state has several parents, balance is log Z + log P_F(tau) = log R(x) + log P_B(tau)."""
    log_r, log_z = torch.tensor([-1.0]), torch.tensor([0.0])
    log_pb = torch.tensor([[0.0, -0.7, 0.0]])                       # one step undone at 1 of 2 parents (~0.5)
    log_pf = torch.tensor([[-0.5, -0.4, -0.8]])                     # sum -1.7 = log R + log P_B
    assert float(balance_loss(log_z, log_pf, log_r, log_pb)) == pytest.approx(0.0, abs=1e-12)
    assert float(balance_loss(log_z, log_pf, log_r)) == pytest.approx(0.7 ** 2, rel=1e-6)
    with pytest.raises(ValueError, match="log_pb"):
        balance_loss(log_z, log_pf, log_r, log_pb[:, :2])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        PlanSpace(horizon=0, n_actions=3)
    net = PlanGFlowNet(PlanSpace(horizon=2, n_actions=2, cond_dim=3))
    with pytest.raises(ValueError, match="cond"):
        net.log_pf(torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="cond_sampler"):
        train_tb(net, lambda p, c: torch.zeros(len(p)), TBConfig(steps=1), progress=False)
    plain = PlanGFlowNet(PlanSpace(horizon=2, n_actions=2))
    with pytest.raises(ValueError, match="non-finite"):
        train_tb(plain, lambda p, c: torch.full((len(p),), float("nan")), TBConfig(steps=1), progress=False)


def test_subtrajectory_balance_also_matches_reward_and_log_z():
    """The sub-trajectory balance option reaches the same exactness on the same space."""
    space = PlanSpace(horizon=3, n_actions=4)
    log_r_table = _table(space, seed=1)
    net = PlanGFlowNet(space, hidden=64)
    train_tb(net, lambda plans, cond: log_r_table[_index(plans, space.n_actions)],
             TBConfig(steps=1500, batch=64, seed=0, objective="subtb"), progress=False)
    tv = total_variation(net.terminal_distribution(), torch.softmax(log_r_table, dim=0))
    log_z_err = abs(float(net.log_z(None, 1)[0]) - exact_log_z(log_r_table))
    print(f"SubTB: TV {tv:.2e}, |log Z error| {log_z_err:.2e}")
    assert tv <= 0.05 and log_z_err <= 0.1


def test_subtrajectory_balance_is_zero_exactly_at_balance_and_counts_every_sub_trajectory():
    log_z = torch.tensor([0.0])
    steps = torch.tensor([[-1.0, -0.5]])                    # P_F of the two steps
    flows = torch.tensor([[-1.0]])                          # F(s_1) = Z * P_F(step 1): balanced
    log_r = torch.tensor([-1.5])                            # R = Z * P_F(plan): balanced
    assert float(balance_loss(log_z, steps, log_r, objective="subtb", log_flows=flows)) == pytest.approx(0.0, abs=1e-12)
    # F(s_1) off by 1: the two length-1 sub-trajectories through it are off by 1, the whole one is not
    loss = float(balance_loss(log_z, steps, log_r, objective="subtb", log_flows=flows + 1.0, lam=0.5))
    assert loss == pytest.approx((0.5 * 1 + 0.5 * 1 + 0.25 * 0) / (0.5 + 0.5 + 0.25))
    with pytest.raises(ValueError, match="objective"):
        PlanGFlowNet(PlanSpace(2, 2)).loss(torch.zeros(1, 2, dtype=torch.long), None, log_r, "db")
    with pytest.raises(ValueError, match="log_flows"):
        balance_loss(log_z, steps, log_r, objective="subtb")
