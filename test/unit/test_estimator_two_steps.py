"""The estimator's two steps per frame (core/estimator.py: on_early, then on_percept): the habitual policy's
world state comes before the frame's image statistics, and splitting a frame must not change anything.

The order the embedded runner and a robot give them: the frame's early percept, the bridge's command for that
frame (cmd_vel, after the habitual policy answered the early world state), then the frame's whole percept.
Fed its percepts whole instead (a recording), with the command after each, the estimator must produce the
same world states, ambiguity included: the command that arrived between the two steps is the next frame's
previous action, not this one's."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.core.estimator import Estimator, LearnedLatent, OutOfOrder
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, EarlyPercept, Percept


def _learned() -> LearnedLatent:
    """A small learned world model whose scores depend on the previous action (the scorer's prior)."""
    from hjepa_agent.core.world_model import SCORES, LatentCalibration, LatentFilter, OnlineScores, combine

    def predictor(z, a):  # heads: z + a[0], fixed spread
        return (z[:, None, :] + a[:, :1, None] + np.linspace(-0.1, 0.1, 5)[None, :, None]).astype(np.float32)

    cal = LatentCalibration(np.ones(N_LATENT), np.full(N_LATENT, 1e-3), np.full(N_LATENT, 1e-2))
    scorer = OnlineScores(predictor, lambda p: np.sqrt(p.var(1) + 1e-2), lambda z: (z ** 2).sum(1), True)
    ref = {k: (0.0, 1.0) for k in SCORES}
    return LearnedLatent(LatentFilter(predictor, cal), scorer, lambda s: max(float(combine(s, ref)), 0.0) / 4.0)


def _same(a, b) -> None:
    assert a.stamp_s == b.stamp_s and a.has_goal == b.has_goal
    for field in ("pose", "twist", "goal", "scan_bins", "latent", "variance"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


frames = st.lists(st.tuples(
    st.lists(st.floats(-2.0, 2.0, width=32), min_size=N_LATENT, max_size=N_LATENT),   # latent
    st.floats(0.0, 1.0), st.floats(-3.0, 3.0), st.floats(0.0, 3.0), st.floats(-1.0, 30.0),   # quality noise look change
    st.tuples(st.floats(-1.0, 1.0), st.floats(-1.0, 1.0)),                                    # command after the frame
    st.sampled_from((0.1, 0.1, 0.033, 0.6)),                                                  # time to the next frame
    st.booleans()), min_size=1, max_size=25)                                                  # odometry before it


@pytest.mark.parametrize("learned", [False, True], ids=["foundation", "learned"])
@settings(max_examples=60, deadline=None)
@given(seq=frames)
def test_two_steps_give_the_world_states_the_whole_percept_gives(learned: bool, seq) -> None:
    whole = Estimator(learned=_learned() if learned else None)
    split = Estimator(learned=_learned() if learned else None)
    t = 0.0
    for latent, quality, noise, look, change, cmd, dt, odom in seq:
        if odom:
            for e in (whole, split):
                e.on_odom(t - 0.01, np.array([t, 0.5 * t, 0.1]), np.array([0.3, -0.2]))
        p = Percept(t, np.asarray(latent, np.float32), np.full(N_SCAN_BINS, 1.0 + t % 1.0, np.float32),
                    quality, noise, look, change)
        a = whole.on_percept(p)
        whole.on_action(np.asarray(cmd))
        e = split.on_early(p.early)
        assert math.isnan(e.ambiguity)
        split.on_action(np.asarray(cmd))   # the bridge answered the early world state
        b = split.on_percept(p)
        _same(a, e)
        _same(a, b)
        assert b.ambiguity == a.ambiguity and math.isfinite(b.ambiguity)
        assert split.scores.keys() == whole.scores.keys()
        t += dt


def test_a_percept_whose_early_part_never_came_is_folded_in_whole_and_a_late_early_part_changes_nothing() -> None:
    est = Estimator(learned=_learned())
    p0 = Percept(0.1, np.zeros(N_LATENT, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32), 1.0)
    est.on_early(p0.early)
    p1 = Percept(0.2, np.full(N_LATENT, 0.1, np.float32), np.full(N_SCAN_BINS, 1.5, np.float32), 0.5)
    ws = est.on_percept(p1)            # p0's statistics never came; p1 came whole
    assert ws.stamp_s == 0.2 and np.allclose(ws.scan_bins, 1.5) and math.isfinite(ws.ambiguity)
    assert est.folded_t_s == 0.2
    assert est.on_early(p1.early) is None          # its early part, after it: already folded in
    assert len([k for k in est.scores]) > 0


def test_the_percept_of_a_superseded_frame_is_refused_and_a_clock_jump_drops_a_waiting_frame() -> None:
    est = Estimator()
    z, scan = np.zeros(N_LATENT, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32)
    est.on_early(EarlyPercept(1.0, z, scan))
    est.on_early(EarlyPercept(1.1, z, scan))       # the frame at 1.0 never got its statistics
    with pytest.raises(OutOfOrder, match="came after"):
        est.on_percept(Percept(1.0, z, scan, 1.0))
    assert est.on_percept(Percept(1.1, z, scan, 1.0)).stamp_s == 1.1
    est.on_early(EarlyPercept(1.2, z, scan))
    est.restart_clock()                             # the clock stepped: the frame at 1.2 is dropped
    assert est.folded_t_s is None
    ws = est.on_percept(Percept(1.2, z, scan, 0.0))   # so its percept is folded in afresh, as a new frame
    assert ws.stamp_s == 1.2 and math.isfinite(ws.ambiguity)


def test_odometry_between_the_two_steps_leaves_the_frames_world_state_as_the_early_step_made_it() -> None:
    """On a robot odometry may come between a frame's two steps: the frame's world state stays the one its
    early step published (pose, variance, and the position spread in its ambiguity), so the watchdog and
    the habitual policy read the same state; the odometry counts from the next frame on."""
    z, scan = np.zeros(N_LATENT, np.float32), np.full(N_SCAN_BINS, 2.0, np.float32)
    plain, busy = Estimator(), Estimator()
    for e in (plain, busy):
        e.on_odom(0.0, np.zeros(3), np.zeros(2))
    p = Percept(0.5, z, scan, 0.8)
    early = busy.on_early(p.early)
    busy.on_odom(0.55, np.array([3.0, 1.0, 0.5]), np.array([0.4, 0.1]))
    ws = busy.on_percept(p)
    _same(early, ws)
    assert ws.ambiguity == plain.on_percept(p).ambiguity
