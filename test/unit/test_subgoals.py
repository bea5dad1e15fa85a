"""The slow (subgoal) level: route geometry and reward, trajectory balance with a learned backward
policy on an enumerable route space, back-and-forth moves through P_B, and the runtime route."""
import numpy as np
import pytest

from hjepa_agent.core.planner import gfn
from hjepa_agent.core.planner.gfn.routes import SubgoalSpace
from hjepa_agent.core.planner.gfn.space import backward_log_probs, forward_log_probs, initial, policy_logits
from hjepa_agent.core.planner.subgoals import SubgoalPlanner, exact_terminal_distribution, route_frame, route_raster

pytestmark = pytest.mark.training

SMALL = SubgoalSpace(fractions=(0.33, 0.67), laterals=(-1.0, 0.0, 1.0),
                     raster_along=tuple(np.linspace(-0.1, 1.1, 13)), raster_lateral=tuple(np.linspace(-1.5, 1.5, 13)))


def _block_raster(space: SubgoalSpace, d: float, half_width: float = 0.6, lateral_shift: float = 0.0) -> np.ndarray:
    """Factor 10 on a block across the middle of the line (|lateral - shift| < half_width), else 1."""
    a = np.asarray(space.raster_along)[:, None] * d
    lat = np.asarray(space.raster_lateral)[None, :]
    return np.where((np.abs(a - 0.5 * d) < 0.3) & (np.abs(lat - lateral_shift) < half_width), 10.0, 1.0)


def test_route_cost_is_zero_for_a_free_straight_line_and_detours_beat_a_block():
    sp = SubgoalSpace()
    d = 4.0
    free = np.ones((len(sp.raster_along), len(sp.raster_lateral)))
    straight = np.full((1, sp.n_cols), -1)
    assert sp.cost(straight, free, d)[0] == pytest.approx(0.0, abs=1e-9)
    left = np.array([[-1, 8, 9, 8]])    # none behind, then laterals 0.8, 1.2, 0.8 m to the left
    assert sp.cost(left, free, d)[0] > 0.3 * sp.w_subgoal_m
    blocked = _block_raster(sp, d)
    assert sp.cost(straight, blocked, d)[0] > sp.cost(left, blocked, d)[0] + 3.0
    # the mirror image of the condition and the route has the same cost
    m_raster, m_cols = sp.mirror(blocked, left)
    assert sp.cost(m_cols, m_raster, d)[0] == pytest.approx(sp.cost(left, blocked, d)[0], rel=1e-9)


def test_state_bookkeeping_is_consistent():
    sp = SMALL
    states = sp.all_states()
    assert len(states) == (sp.n_lat + 1) ** sp.n_cols
    assert np.array_equal(sp.index(states), np.arange(len(states)))
    enc = sp.encode(states)
    assert enc.shape == (len(states), sp.state_dim) and np.all(enc.sum(axis=1) == sp.n_cols)
    nxt = sp.apply(np.array([[-1, -1], [0, -1]]), np.array([1 * sp.n_lat + 2, sp.stop]))
    assert nxt.tolist() == [[-1, 2], [0, -1]]
    assert sp.forward_mask(np.array([[0, -1]])).tolist() == [[False] * 3 + [True] * 3 + [True]]


def _linear_policy(seed: int, sp: SubgoalSpace, scale: float = 0.8):
    w = np.random.default_rng(seed).normal(0.0, scale, (sp.state_dim + sp.cond_dim, sp.n_actions + sp.n_cols))
    return lambda x: (np.asarray(x, np.float64) @ w).astype(np.float32)


def test_exact_distribution_sums_to_one_and_matches_sampling():
    sp = SMALL
    pol = _linear_policy(0, sp)
    cond = sp.features(_block_raster(sp, 3.0), 3.0)
    p = exact_terminal_distribution(sp, pol, cond)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    planner = SubgoalPlanner(pol, lambda c: np.zeros((len(c), 1)), sp, seed=4)
    cols, _ = planner.sample(cond, 40000)
    emp = np.bincount(sp.index(cols), minlength=len(p)) / len(cols)
    assert 0.5 * np.abs(emp - p).sum() < 0.02


def test_trajectory_balance_with_a_learned_backward_policy_matches_reward_and_log_z():
    """Routes have several parents (insertion orders), so P_B is learned with P_F and log Z; after
    training, the sampler's exact distribution over the 16 routes is R/Z (TV <= 0.05) and the
    learned log Z is the exact one (within 0.1), for each of two conditions."""
    torch = pytest.importorskip("torch")
    from hjepa_agent.train.subgoal_gfn import SubgoalNet, exact_check, fit, torch_policy
    sp = SMALL
    d = 3.0
    rasters = np.stack([_block_raster(sp, d, 0.6, 0.0), _block_raster(sp, d, 0.8, 0.5)])
    conds = np.stack([sp.features(r, d) for r in rasters])
    torch.manual_seed(0)
    net = SubgoalNet(sp, hidden=64)
    fit(net, conds, rasters, np.full(2, d), steps=1500, conds_per_batch=2, routes_per_cond=64, epsilon=0.2,
        lr=3e-3, seed=0, progress=False)
    pol, lz = torch_policy(net)
    for r in rasters:
        check = exact_check(sp, pol, lz, r, d)
        assert check["tv"] <= 0.05, check
        assert check["log_z_error"] <= 0.1, check


def test_back_and_forth_moves_through_the_backward_policy_keep_r_invariant():
    """Chains started from one 2-subgoal route, moved by K-subgoal back-and-forth moves (P_B back,
    P_F forth, K = 2, 1, ...), end distributed as R restricted to 2-subgoal routes, although P_B
    and P_F are random and unrelated to R; accepting every proposal instead does not."""
    sp = SMALL
    d = 3.0
    raster = _block_raster(sp, d, 0.6, 0.3)
    cond = sp.features(raster, d)
    pol = _linear_policy(5, sp, 1.2)
    score = lambda c: sp.log_reward(c, raster, d)  # noqa: E731
    two = sp.all_states()[(sp.all_states() >= 0).all(axis=1)]
    target = np.exp(score(two))
    target /= target.sum()

    def run(always: bool) -> float:
        rng = np.random.default_rng(7)
        m = 10000
        cols = np.tile(np.array([[0, 0]]), (m, 1))
        lr = score(cols)
        for i in range(60):
            sc = (lambda c, i=i: np.full(len(c), 1e6 * (i + 1))) if always else score
            cols, lr, _, _ = gfn.mh_round(sp, pol, cond, cols, lr, 2 if i % 2 == 0 else 1,
                                          lambda c, k, extra, sc=sc: (sc(c), None), rng, explore=0.2)
        assert np.all((cols >= 0).all(axis=1))      # the moves keep the number of subgoals
        emp = np.bincount(sp.index(cols), minlength=len(sp.all_states()))[sp.index(two)] / m
        return 0.5 * np.abs(emp - target).sum()

    assert run(False) < 0.05
    assert run(True) > 0.2


def test_sampled_routes_carry_the_log_pf_and_log_pb_of_each_step_and_log_z():
    """The one sampler's bookkeeping on routes: replaying each trajectory's insertions gives its
    per-step log P_F, and log P_B of undoing each insertion at the route it led to (0 for the stop)."""
    sp = SMALL
    pol = _linear_policy(2, sp)
    cond = sp.features(_block_raster(sp, 3.0), 3.0)
    traj = gfn.sample(sp, pol, cond, 200, np.random.default_rng(3), lambda c: np.full((len(c), 1), -0.5))
    assert traj.log_z == -0.5 and traj.actions.shape == (200, sp.max_steps)
    for i in range(200):
        st = initial(sp, 1)
        for t, a in enumerate(traj.actions[i]):
            if a < 0:
                assert traj.log_pf[i, t] == 0.0 and traj.log_pb[i, t] == 0.0
                continue
            logits = policy_logits(sp, pol, st, cond)
            assert traj.log_pf[i, t] == pytest.approx(forward_log_probs(sp, logits, st)[0, a], abs=1e-12)
            if a == sp.stop:
                assert traj.log_pb[i, t] == 0.0
                continue
            st = sp.apply(st, np.array([a]))
            after = backward_log_probs(sp, policy_logits(sp, pol, st, cond), st)[0, a // sp.n_lat]
            assert traj.log_pb[i, t] == pytest.approx(after, abs=1e-12)
        assert np.array_equal(st[0], traj.states[i])
    assert (traj.actions == sp.stop).sum() == 200 and np.any(traj.log_pb < 0.0)


def test_route_raster_samples_the_navfield_in_the_route_frame():
    sp = SubgoalSpace()
    n, res = 40, 0.2
    trav = np.ones((n, n))
    origin = np.array([-4.0, -4.0])
    # a hit cell at odom (1.0, 1.0); robot at (0, 0), goal at (0, 4): the line runs along +y
    trav[int((1.0 + 4.0) / res), int((1.0 + 4.0) / res)] = 10.0
    raster, d = route_raster(sp, trav, origin, res, np.zeros(2), np.array([0.0, 4.0]))
    assert d == pytest.approx(4.0)
    i, j = np.unravel_index(np.argmax(raster), raster.shape)
    # 1 m along the line (fraction 0.25), 1 m to its *right* (odom +x is right of +y)
    assert sp.raster_along[i] * d == pytest.approx(1.0, abs=0.15)
    assert sp.raster_lateral[j] == pytest.approx(-1.0, abs=0.15)
    origin_f, rot, _ = route_frame(np.zeros(2), np.array([0.0, 4.0]))
    assert np.allclose(origin_f + np.array([1.0, -1.0]) @ rot.T, [1.0, 1.0])


def test_the_route_goes_round_a_block_and_keeps_a_previous_route_that_is_as_good():
    sp = SubgoalSpace()
    d = 4.0
    raster = _block_raster(sp, d, 1.0)
    pol = _linear_policy(1, sp, 0.1)          # near-uniform sampler: the reward does the choosing
    planner = SubgoalPlanner(pol, lambda c: np.zeros((len(c), 1)), sp, samples=256, seed=0)
    origin, rot, _ = route_frame(np.zeros(2), np.array([d, 0.0]))
    route = planner.route(raster, d, origin, rot, np.array([d, 0.0]), 0.0)
    assert route.source in ("policy", "previous") and len(route.subgoals) >= 1
    assert np.all(np.abs(route.subgoals[:, 1]) >= 1.0 - 1e-6) or route.cost_m < 3.0
    assert route.cost_m < sp.cost(np.full((1, sp.n_cols), -1), raster, d)[0] - 3.0
    again = planner.route(raster, d, origin, rot, np.array([d, 0.0]), 0.5, previous=route.subgoals)
    assert again.log_reward >= route.log_reward - 1e-9


def test_no_subgoals_when_every_route_is_at_the_cost_clip():
    sp = SubgoalSpace()
    d = 4.0
    walled = np.full((len(sp.raster_along), len(sp.raster_lateral)), 10.0)   # every way is blocked
    planner = SubgoalPlanner(_linear_policy(1, sp, 0.1), lambda c: np.zeros((len(c), 1)), sp, samples=64)
    origin, rot, _ = route_frame(np.zeros(2), np.array([d, 0.0]))
    route = planner.route(walled, d, origin, rot, np.array([d, 0.0]), 0.0, previous=np.array([[2.0, 1.0]]))
    assert len(route.subgoals) == 0 and route.source == "none under the clip"
    assert route.log_reward == pytest.approx(-sp.beta * sp.cost_clip)


def test_all_costs_equal_scoring_every_route_one_by_one():
    rng = np.random.default_rng(3)
    for sp in (SMALL, SubgoalSpace()):
        raster = 1.0 + rng.exponential(1.0, (len(sp.raster_along), len(sp.raster_lateral)))
        for d in (2.0, 4.5):
            assert np.allclose(sp.all_costs(raster, d), sp.cost(sp.all_states(), raster, d), atol=1e-9)
