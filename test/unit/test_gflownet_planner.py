"""GFlowNet planner runtime: the plan space's prefix encoding (the one training uses), the condition
in the robot frame, with any policy a plan that never touches when the robot stands clear (fallbacks),
and the optimisation mode's back-and-forth moves (core/planner/gfn) on append-only plans."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import world_state
from hjepa_agent.core.planner import Budget, PlanCost
from hjepa_agent.core.planner import gfn
from hjepa_agent.core.planner.gfn.plans import PlanSpace
from hjepa_agent.core.planner.gfn.space import forward_log_probs, initial, policy_logits
from hjepa_agent.core.planner.gflownet import (ACTIONS, COND_DIM, HORIZON, REPEAT, GFlowNetPlanner,
                                               condition_features)
from hjepa_agent.core.types import N_SCAN_BINS, SCAN_RANGE_MAX_M
from hjepa_agent.train.gflownet import PlanGFlowNet

pytestmark = pytest.mark.training


def _ws(scan, pose=(0.0, 0.0, 0.0), goal=(3.0, 0.0), stamp_s=0.0):
    return world_state(stamp_s=stamp_s, pose=pose, goal=goal, scan=scan, ambiguity=0.1)


def test_prefix_encoding_is_the_prefix_one_hot_then_the_step_and_training_uses_it():
    space = PlanSpace(HORIZON, len(ACTIONS), COND_DIM)
    acts = np.random.default_rng(0).integers(0, len(ACTIONS), (5, HORIZON))
    net = PlanGFlowNet(space, hidden=8)
    for step in (0, 1, HORIZON - 1, HORIZON):
        want = np.zeros((5, HORIZON * len(ACTIONS) + HORIZON + 1), np.float32)
        for i in range(5):
            for t in range(step):
                want[i, t * len(ACTIONS) + acts[i, t]] = 1.0
            want[i, HORIZON * len(ACTIONS) + step] = 1.0
        enc = space.encode(space.prefixes(acts, step))
        assert enc.dtype == np.float32 and np.array_equal(enc, want)
        assert np.array_equal(net._encode(torch.from_numpy(acts), step).numpy(), want)
    # appending, and the one parent (the last action) of each prefix
    pre = space.prefixes(acts, 2)
    nxt = space.apply(pre, acts[:, 2])
    assert np.array_equal(nxt, space.prefixes(acts, 3))
    assert np.array_equal(np.nonzero(space.backward_mask(nxt))[1], np.full(5, 2))


def test_condition_is_in_the_robot_frame():
    scan = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, np.float32)
    straight = lambda xy: np.linalg.norm(np.asarray(xy) - np.array([3.0, 3.0]), axis=-1)  # noqa: E731
    c = condition_features(np.array([0.0, 0.0, math.pi / 4]), np.array([3.0, 3.0]), scan, np.array([0.3, 0.9]),
                           straight, 0.6, 1.8)
    assert c.shape == (COND_DIM,)
    assert c[0] == 1.0 and abs(c[1] - 1.0) < 1e-6 and abs(c[2]) < 1e-6   # goal far, straight ahead
    assert np.allclose(c[3:3 + N_SCAN_BINS], 1.0) and np.allclose(c[19:21], [0.5, 0.5])
    assert c[21] < -0.9 and c[25] > 0.9     # cost-to-go falls 1 m ahead, rises 1 m behind


@settings(max_examples=40, deadline=None)
@given(ranges=st.lists(st.floats(0.2, SCAN_RANGE_MAX_M), min_size=N_SCAN_BINS, max_size=N_SCAN_BINS),
       seed=st.integers(0, 1000))
def test_never_returns_a_touching_plan_when_standing_clear(ranges, seed):
    """Whatever the policy (here: random logits), standing still and turning on the spot are always
    candidates, so a robot whose footprint is clear never gets a plan predicted to touch."""
    rng = np.random.default_rng(seed)
    policy = lambda x: rng.normal(size=(x.shape[0], len(ACTIONS))).astype(np.float32)  # noqa: E731
    planner = GFlowNetPlanner(policy, lambda c: np.zeros((c.shape[0], 1), np.float32), PlanCost(0.2), 0.6, 1.8,
                              samples=8, seed=seed)
    plan = planner.plan(_ws(ranges), np.array([3.0, 0.0], np.float32), Budget(10**6))
    assert plan.extras["min_clearance_m"] >= 0.0
    assert plan.world_model_calls == (8 + 3) * HORIZON * REPEAT
    assert plan.log_probs.shape == (HORIZON * REPEAT,) and np.all(plan.log_probs <= 0.0)


def test_a_models_dir_without_the_planner_networks_is_refused_with_what_to_do(tmp_path):
    import shutil

    import pytest

    from hjepa_agent.core.models import ModelMismatchError
    from hjepa_agent.core.planner import build_planner
    from hjepa_agent.config.paths import data_path
    models = tmp_path / "models"
    shutil.copytree(data_path("models"), models)
    text = (models / "manifest.yaml").read_text()
    if "planner_policy:" in text:   # shipped models have it: remove it from this copy
        import yaml
        doc = yaml.safe_load(text)
        doc["models"].pop("planner_policy")
        (models / "manifest.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ModelMismatchError, match="hjepa-agent train planner"):
        build_planner("gflownet", footprint_radius_m=0.2, max_linear_mps=0.6, max_angular_rps=1.8,
                      models_dir=models, prefer_cuda=False)


def _linear_policy(seed: int, in_dim: int):
    """A fixed, prefix-dependent, far-from-uniform P_F (logits = W x), to test the MH correction."""
    w = np.random.default_rng(seed).normal(0.0, 0.6, (in_dim, len(ACTIONS)))
    return lambda x: (np.asarray(x, np.float64) @ w).astype(np.float32)


def test_back_and_forth_moves_leave_the_reward_distribution_invariant():
    """Metropolis-Hastings with the P_F ratio: started from one plan, many chains of K-step moves
    (K = 2, 1, 2, ...) end distributed as R / Z over all 225 two-step plans, although the
    proposals come from a P_F that has nothing to do with R."""
    from hjepa_agent.core.planner.gflownet import log_reward
    h, n_act = 2, len(ACTIONS)
    space = PlanSpace(h, n_act, COND_DIM)
    cond = np.zeros(COND_DIM, np.float32)
    table = np.random.default_rng(1).uniform(0.0, 1.0, (n_act, n_act))   # cost of each plan: log R in [-5, 0] at beta 5
    score = lambda ix, k, extra: (log_reward(table[ix[:, 0], ix[:, 1]], 5.0), None)  # noqa: E731
    policy = _linear_policy(2, space.state_dim + COND_DIM)
    rng = np.random.default_rng(3)
    m = 20000
    idx = np.zeros((m, h), np.int64)
    lr = log_reward(table[idx[:, 0], idx[:, 1]], 5.0)
    for i in range(60):
        idx, lr, _, _ = gfn.mh_round(space, policy, cond, idx, lr, 2 if i % 2 == 0 else 1, score, rng, explore=0.3)
    target = np.exp(log_reward(table.reshape(-1), 5.0))
    target /= target.sum()
    emp = np.bincount(idx[:, 0] * n_act + idx[:, 1], minlength=n_act * n_act) / m
    assert 0.5 * np.abs(emp - target).sum() < 0.06
    # without the proposal ratio the chains would follow R * (something of P_F), not R: P_F is far off
    empty = initial(space, 1)
    pf = np.exp(forward_log_probs(space, policy_logits(space, policy, empty, cond), empty)[0])
    assert 0.5 * np.abs(pf - target.reshape(n_act, n_act).sum(1)).sum() > 0.2


def test_sampled_plans_carry_their_log_pf_and_log_z_and_a_plan_of_one_parent_has_log_pb_zero():
    space = PlanSpace(3, len(ACTIONS), COND_DIM)
    policy = _linear_policy(4, space.state_dim + COND_DIM)
    cond = np.random.default_rng(0).normal(size=COND_DIM).astype(np.float32)
    traj = gfn.sample(space, policy, cond, 50, np.random.default_rng(1), lambda c: np.full((len(c), 1), 1.5))
    assert traj.states.shape == (50, 3) and np.all(traj.states >= 0) and np.array_equal(traj.actions, traj.states)
    assert np.allclose(traj.log_pf, gfn.path_log_pf(space, policy, cond, traj.actions), atol=1e-12)
    assert np.all(traj.log_pb == 0.0) and traj.log_z == 1.5


def test_refine_keeps_to_the_call_budget_and_returns_the_best_plan_seen():
    rng = np.random.default_rng(0)
    policy = lambda x: rng.normal(size=(x.shape[0], len(ACTIONS))).astype(np.float32)  # noqa: E731
    planner = GFlowNetPlanner(policy, lambda c: np.zeros((c.shape[0], 1), np.float32), PlanCost(0.2), 0.6, 1.8,
                              samples=8, chains=4, seed=0)
    ws = _ws(np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M))
    plain = planner.plan(ws, np.array([3.0, 0.0], np.float32), Budget(10**6))
    for cap in (plain.world_model_calls, plain.world_model_calls + 4 * (5 + 3 + 2) * 3 + 5):   # 4 chains x K x 3
        planner.reset()
        plan = planner.plan(ws, np.array([3.0, 0.0], np.float32), Budget(cap, refine=True))
        assert plan.world_model_calls <= cap
        assert plan.extras["refine"]["rounds"] == (0 if cap == plain.world_model_calls else 3)   # K = 5, 3, 2
        assert plan.extras["refine"]["k"] == [5, 3, 2][:plan.extras["refine"]["rounds"]]
    # an expired deadline: no rounds at all
    planner.reset()
    plan = planner.plan(ws, np.array([3.0, 0.0], np.float32), Budget(10**6, deadline_s=0.0, refine=True))
    assert plan.extras["refine"]["rounds"] == 0


def test_plan_risk_reads_log_r_against_the_mean_reward():
    from hjepa_agent.core.planner.gflownet import plan_risk
    log_x = HORIZON * math.log(len(ACTIONS))
    assert abs(plan_risk(-3.0, -3.0 + log_x, HORIZON) - 0.5) < 1e-9       # as good as the average plan
    vals = [plan_risk(lr, 2.0, HORIZON) for lr in np.linspace(-100, 0, 50)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))                      # better plan, lower risk
    assert plan_risk(0.0, -50.0, HORIZON) < 1e-6 and plan_risk(-100.0, 0.0, HORIZON) > 1 - 1e-6


def test_a_small_call_budget_takes_fewer_policy_samples():
    rng = np.random.default_rng(0)
    policy = lambda x: rng.normal(size=(x.shape[0], len(ACTIONS))).astype(np.float32)  # noqa: E731
    planner = GFlowNetPlanner(policy, lambda c: np.zeros((c.shape[0], 1), np.float32), PlanCost(0.2), 0.6, 1.8,
                              samples=15, seed=0)
    ws = _ws(np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M))
    plan = planner.plan(ws, np.array([3.0, 0.0], np.float32), Budget(10 * HORIZON * REPEAT))
    assert plan.world_model_calls <= 10 * HORIZON * REPEAT
    assert plan.world_model_calls == (5 + 3) * HORIZON * REPEAT     # 10 - 3 fallbacks - 2 (warm start, seed) = 5


def test_a_seed_takes_a_policy_samples_place_so_a_pass_never_costs_more():
    rng = np.random.default_rng(0)
    policy = lambda x: rng.normal(size=(x.shape[0], len(ACTIONS))).astype(np.float32)  # noqa: E731
    planner = GFlowNetPlanner(policy, lambda c: np.zeros((c.shape[0], 1), np.float32), PlanCost(0.2), 0.6, 1.8,
                              samples=15, seed=0)
    goal = np.array([3.0, 0.0], np.float32)
    planner.plan(_ws(np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M)), goal, Budget(10**6))
    ws = _ws(np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M), stamp_s=0.1)
    plan = planner.plan(ws, goal, Budget(10**6), seed=np.array([0.3, 0.0], np.float32))   # warm start and seed
    assert plan.world_model_calls == planner.calls_per_iteration == (15 + 3 + 1) * HORIZON * REPEAT
