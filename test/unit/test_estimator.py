"""Estimator: the filter tracks odometry, rejects NaN, and its variance/ambiguity respond to noise."""
import math

import numpy as np
import pytest

from hjepa_agent.core.estimator import Estimator, LearnedLatent
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, WORLD_STATE_LABELS, Percept, WorldState


def _percept(t, z, quality=1.0):
    return Percept(t, np.asarray(z, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32), quality)


def test_tracks_straight_motion_and_variance_grows_without_odom():
    est = Estimator()
    for k in range(50):
        t = 0.02 * k
        est.on_odom(t, np.array([0.5 * t, 0.0, 0.0]), np.array([0.5, 0.0]))
    ws = est.on_percept(_percept(1.0, np.zeros(N_LATENT)))
    assert ws.pose[0] == pytest.approx(0.5, abs=0.02)
    assert ws.twist[0] == pytest.approx(0.5, abs=0.02)
    var_now = ws.variance[0]
    ws_later = est.on_percept(_percept(3.0, np.zeros(N_LATENT)))
    assert ws_later.pose[0] == pytest.approx(1.5, abs=0.05)  # predicted forward
    assert ws_later.variance[0] > var_now  # no odometry: less certain


def test_nan_odometry_rejected():
    est = Estimator()
    with pytest.raises(ValueError):
        est.on_odom(0.0, np.array([math.nan, 0.0, 0.0]), np.array([0.0, 0.0]))
    assert est.odom_count == 0


def test_noisy_latent_raises_ambiguity():
    rng = np.random.default_rng(0)
    calm, noisy = Estimator(), Estimator()
    for k in range(30):
        for e in (calm, noisy):
            e.on_odom(0.1 * k, np.zeros(3), np.zeros(2))
        a = calm.on_percept(_percept(0.1 * k, 0.01 * rng.standard_normal(N_LATENT)))
        b = noisy.on_percept(_percept(0.1 * k, 3.0 * rng.standard_normal(N_LATENT)))
    assert b.ambiguity > 3 * a.ambiguity
    assert np.mean(b.variance[-N_LATENT:]) > 100 * np.mean(a.variance[-N_LATENT:])


def test_world_state_vector_roundtrip():
    est = Estimator()
    est.on_goal(np.array([1.0, 2.0]))
    ws = est.on_percept(_percept(0.5, np.arange(N_LATENT)))
    v = ws.vector()
    assert v.shape == (len(WORLD_STATE_LABELS),)
    back = WorldState.from_vector(ws.stamp_s, v, ws.variance, ws.ambiguity)
    assert back.has_goal and np.allclose(back.goal, [1.0, 2.0]) and np.allclose(back.latent, ws.latent)
    with pytest.raises(ValueError):
        WorldState.from_vector(0.0, v[:-1], ws.variance[:-1], 0.0)


def test_learned_latent_filter_path_uses_the_commanded_action_and_reports_disagreement():
    from hjepa_agent.core.world_model import LatentCalibration, LatentFilter

    calls = []

    def predictor(z, a):  # heads: z + a[0], spread +-0.5 when the action is large
        calls.append(a.copy())
        spread = 0.5 * abs(float(a[0, 0]))
        return (z[:, None, :] + a[:, :1, None] + np.linspace(-spread, spread, 5)[None, :, None]).astype(np.float32)

    cal = LatentCalibration(np.ones(N_LATENT), np.full(N_LATENT, 1e-3), np.full(N_LATENT, 1e-2))
    est = Estimator(learned=LearnedLatent(LatentFilter(predictor, cal)))
    ws0 = est.on_percept(_percept(0.1, np.zeros(N_LATENT)))
    assert not calls and np.allclose(ws0.variance[-N_LATENT:], 1e-2)  # first frame: measurement only
    est.on_action(np.array([1.0, 0.0]))
    ws1 = est.on_percept(_percept(0.2, np.ones(N_LATENT)))
    assert np.allclose(calls[-1], [[1.0, 0.0]])
    assert np.allclose(ws1.latent, 1.0, atol=0.05)  # prediction and measurement agree
    calm = est.latent_ambiguity
    est.on_action(np.array([0.0, 0.0]))
    est.on_percept(_percept(0.3, np.full(N_LATENT, 5.0)))  # a jump the model did not predict
    assert est.latent_ambiguity > calm + 1.0
    with pytest.raises(ValueError):
        est.on_action(np.array([np.nan, 0.0]))


def test_learned_mode_reads_its_ambiguity_off_the_world_model_scores_and_refuses_a_non_finite_one():
    from hjepa_agent.core.world_model import SCORES, LatentCalibration, LatentFilter, OnlineScores, combine

    def predictor(z, a):  # heads: z + a[0], fixed spread
        return (z[:, None, :] + a[:, :1, None] + np.linspace(-0.1, 0.1, 5)[None, :, None]).astype(np.float32)

    cal = LatentCalibration(np.ones(N_LATENT), np.full(N_LATENT, 1e-3), np.full(N_LATENT, 1e-2))
    scorer = OnlineScores(predictor, lambda p: np.sqrt(p.var(1) + 1e-2), lambda z: (z ** 2).sum(1), True)
    ref = {k: (0.0, 1.0) for k in SCORES}
    est = Estimator(learned=LearnedLatent(LatentFilter(predictor, cal), scorer,
                                          lambda s: max(float(combine(s, ref)), 0.0) / 4.0))
    p = Percept(0.1, np.zeros(N_LATENT, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32), 1.0, 0.5, 1.0)
    ws = est.on_percept(p)
    # first frame: disagreement, density, noise and appearance are defined; the max is the appearance 1.0
    assert set(est.scores) == set(SCORES) and math.isnan(est.scores["surprise"])
    assert est.latent_ambiguity == pytest.approx(max(est.scores["appearance"], est.scores["sensor_noise"]) / 4.0)
    assert ws.ambiguity >= est.latent_ambiguity
    est.on_action(np.array([0.5, 0.0]))
    looks_odd = Percept(0.2, np.full(N_LATENT, 0.5, np.float32), p.scan_bins, 1.0, 0.5, 20.0)
    assert est.on_percept(looks_odd).ambiguity >= 20.0 / 4.0  # an unfamiliar look alone raises it
    est.ambiguity_fn = lambda s: float("nan")
    with pytest.raises(ValueError, match="not finite"):
        est.on_percept(Percept(0.3, np.zeros(N_LATENT, np.float32), p.scan_bins, 1.0))


class _CountingFilter:
    """Stands in for the world model's latent filter: records the stamps it was stepped at."""

    def __init__(self):
        from types import SimpleNamespace
        self.mean, self.steps = None, []
        self.cal, self.disagreement, self.nis = SimpleNamespace(r=np.ones(16)), np.ones(16), 1.0

    def reset(self):
        self.mean = None

    def step(self, z, a):
        self.steps.append(a is None)
        self.mean = np.asarray(z, np.float64)
        return self.mean, np.ones(16)




def test_the_latent_filter_steps_at_the_world_models_rate_whatever_the_cameras():
    """A 30 Hz camera steps the latent filter (trained on 0.1 s steps) every third frame, as a 10 Hz one
    does every frame; the frames between still update the scan and the world state's stamp."""
    from hjepa_agent.core.estimator import Estimator
    counts = {}
    for hz in (10.0, 30.0):
        est = Estimator(learned=LearnedLatent(_CountingFilter()))
        for k in range(int(3 * hz)):
            ws = est.on_percept(_percept(k / hz, np.full(N_LATENT, k / hz)))
            assert ws.stamp_s == k / hz
        counts[hz] = len(est.latent_filter.steps)
    assert counts[10.0] == 30 and abs(counts[30.0] - 30) <= 1


def test_a_gap_in_the_frames_restarts_the_latent_filter_instead_of_stepping_across_it():
    """The predictor steps 0.1 s: after 0.5 s without frames (a camera stall, six nodes starting on two
    cores) the filter starts afresh, as at an episode's start, rather than reading the gap as surprise."""
    from hjepa_agent.core.estimator import LATENT_GAP_STEPS, Estimator
    est = Estimator(learned=LearnedLatent(_CountingFilter()))
    late = 0.2 + 0.1 * LATENT_GAP_STEPS + 0.05
    for t in (0.0, 0.1, 0.2, late, late + 0.1):
        est.on_percept(_percept(t, np.zeros(N_LATENT)))
    assert est.latent_filter.steps == [True, False, False, True, False]   # True: stepped as a first frame


def test_the_constructor_takes_the_noise_model_and_the_learned_parts_and_odometry_variance_is_checked():
    """Everything the estimator uses comes through its constructor (the node assigns nothing after it);
    an odometry covariance with a zero, negative or non-finite variance falls back to the configured one."""
    from hjepa_agent.core.estimator import EstimatorConfig
    cfg = EstimatorConfig(latent_alpha=0.25)
    learned = LearnedLatent(_CountingFilter(), None, None)
    est = Estimator(cfg, learned)
    assert est.cfg is cfg and est.latent_filter is learned.latent_filter and est.scorer is None
    plain, odd = Estimator(), Estimator()
    for bad in (np.array([0.0, 1e-4, 1e-3, 4e-4, 4e-3]), np.array([np.nan, 1e-4, 1e-3, 4e-4, 4e-3]), None):
        plain.on_odom(0.0, np.zeros(3), np.zeros(2), None)
        odd.on_odom(0.0, np.zeros(3), np.zeros(2), bad)
        assert np.allclose(plain.P, odd.P)
    tight = Estimator()
    tight.on_odom(0.0, np.zeros(3), np.zeros(2), np.full(5, 1e-8))
    assert tight.P[0, 0] < plain.P[0, 0]
    tight.restart_clock()
    assert tight.t_s is None
