"""Latent Kalman filter over the JEPA latent: exact on a known linear model, honest variance."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hjepa_agent.core.world_model import LatentCalibration, LatentFilter

D, M = 4, 5


def _cal(s=1.0, q=1e-4, r=0.01):
    return LatentCalibration(np.full(D, s), np.full(D, q), np.full(D, r))


def shift_predictor(spread=0.0):
    """Heads predict z + a[0] (the same for all dims), spread apart by ``spread``."""
    offsets = np.linspace(-spread, spread, M)

    def f(z, a):
        return (z[:, None, :] + a[:, :1, None] + offsets[None, :, None]).astype(np.float32)
    return f


def test_tracks_a_known_system_better_than_the_raw_measurement():
    rng = np.random.default_rng(0)
    filt = LatentFilter(shift_predictor(), _cal(r=0.04))
    z_true = np.zeros(D)
    err_f, err_m = [], []
    filt.step(z_true + rng.normal(0, 0.2, D), None)
    for _ in range(300):
        a = rng.uniform(-1, 1, 2)
        z_true = z_true + a[0]
        meas = z_true + rng.normal(0, 0.2, D)
        mean, var = filt.step(meas, a)
        err_f.append(np.mean((mean - z_true) ** 2))
        err_m.append(np.mean((meas - z_true) ** 2))
    assert np.mean(err_f[50:]) < 0.5 * np.mean(err_m[50:])
    # the variance it reports matches the error it makes (within a factor of 2)
    assert 0.5 < np.mean(err_f[50:]) / float(np.mean(var)) < 2.0


def test_disagreement_raises_variance_and_is_reported():
    calm, split = LatentFilter(shift_predictor(0.0), _cal()), LatentFilter(shift_predictor(1.0), _cal())
    for f in (calm, split):
        f.step(np.zeros(D), None)
        f.step(np.zeros(D), np.zeros(2))
    assert np.all(split.disagreement > 0.1) and np.all(calm.disagreement == 0)
    assert np.all(split.var > calm.var)


def test_bad_inputs_are_refused_and_leave_the_belief():
    f = LatentFilter(shift_predictor(), _cal())
    f.step(np.ones(D), None)
    before = f.mean.copy()
    with pytest.raises(ValueError):
        f.step(np.full(D, np.nan), np.zeros(2))
    with pytest.raises(ValueError):
        f.step(np.ones(D + 1), np.zeros(2))
    with pytest.raises(ValueError):
        f.step(np.ones(D), np.array([np.inf, 0.0]))
    assert np.array_equal(f.mean, before)
    with pytest.raises(ValueError, match="r"):
        LatentCalibration(np.ones(D), np.ones(D), np.zeros(D))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=D, max_size=D), st.floats(1e-3, 1.0))
def test_posterior_variance_never_exceeds_prior_or_measurement(z, r):
    f = LatentFilter(shift_predictor(0.5), _cal(r=r))
    f.step(np.zeros(D), None)
    _, var = f.step(np.asarray(z), np.array([0.1, 0.0]))
    assert np.all(var <= r + 1e-12) and np.all(var > 0)


def test_episode_windows_stay_inside_one_episode():
    from hjepa_agent.core.world_model import episode_windows
    ep = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    assert episode_windows(ep, 1).tolist() == [0, 1, 3, 4, 5]
    assert episode_windows(ep, 3).tolist() == [3]
    assert episode_windows(ep, 8).tolist() == []
