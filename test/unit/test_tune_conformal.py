"""Split-conformal thresholds for tune calibrate: the right order statistic, refusal with too few
episodes, and the false-alarm guarantee on exchangeable scores."""
import math

import numpy as np
import pytest

from hjepa_agent.tune.scoring import conformal_upper


def test_the_order_statistic_and_too_few_episodes():
    s = np.arange(1.0, 20.0)                    # 19 scores 1..19
    assert conformal_upper(s, 0.05) == 19.0     # ceil(20 * 0.95) = 19th smallest
    assert conformal_upper(s, 0.2) == 16.0      # ceil(20 * 0.8) = 16th
    assert math.isinf(conformal_upper(s[:18], 0.05))   # ceil(19 * 0.95) = 19 > 18: too few to promise 5 %
    assert conformal_upper(np.array([3.0]), 0.5) == 3.0


def test_a_new_nominal_score_exceeds_the_threshold_at_most_alpha_of_the_time():
    rng = np.random.default_rng(0)
    for n, alpha in ((19, 0.05), (39, 0.05), (50, 0.1)):
        trials = 4000
        cal = rng.gamma(2.0, 1.0, (trials, n))
        new = rng.gamma(2.0, 1.0, trials)
        tau = np.array([conformal_upper(c, alpha) for c in cal])
        rate = float(np.mean(new > tau))
        assert rate <= alpha + 0.01, (n, alpha, rate)
        assert rate >= alpha - 0.035, (n, alpha, rate)   # and not needlessly conservative



def test_interventions_no_threshold_decides_are_set_aside_from_alpha():
    from hjepa_agent.tune.scoring import calibrated_intervention, split_alpha
    each, rest = split_alpha(0.05, 0, 39)
    assert rest == pytest.approx(1 / 40) and each == pytest.approx((0.05 - 1 / 40) / 2)
    each, rest = split_alpha(0.05, 4, 160)
    assert rest == pytest.approx(5 / 161) and 0 < each < 0.01
    assert split_alpha(0.05, 3, 40)[0] < 0                                  # the others alone use up alpha
    from hjepa_agent.core.events import Cause, Event, Transition

    def mode(before, after, *causes):   # decided on the transition and the causes; the text says nothing
        return Event(1.0, "mode", ("whatever the text says",), causes, Transition(before, after))

    assert calibrated_intervention(mode("PLANNING", "SAFE_STOP", Cause.AMBIGUITY))
    assert not calibrated_intervention(mode("PLANNING", "SAFE_STOP", Cause.AMBIGUITY, Cause.STALE_INPUT))
    assert not calibrated_intervention(mode("PLANNING", "SAFE_STOP"))                   # no cause: not a score's
    assert calibrated_intervention(mode("PLANNING", "OPTIMISING", Cause.PLAN_CLEARANCE))
    assert not calibrated_intervention(mode("PLANNING", "OPTIMISING", Cause.STALL))
    assert not calibrated_intervention(mode("HABITUAL", "SAFE_STOP", Cause.STALE_INPUT))
    assert not calibrated_intervention(mode("HABITUAL", "PLANNING", Cause.HABITUAL_CLEARANCE))   # not one at all
    assert not calibrated_intervention(Event(1.0, "stop", ("ambiguity",), (Cause.AMBIGUITY,)))   # no transition


def test_the_stop_can_take_less_of_alpha_than_the_replan(tmp_path, monkeypatch):
    """--stop-alpha: the ambiguity stop's share of alpha (a false stop costs more than a re-plan); the rest
    of what is not set aside goes to the clearance. Scores stand in for replayed episodes."""
    import hjepa_agent.tune.calibrate as tune
    from hjepa_agent.config.paths import data_path
    rng = np.random.default_rng(3)
    amb, clear = rng.gamma(4.0, 0.15, 199), 0.02 + rng.gamma(3.0, 0.03, 199)

    class Core:
        def __init__(self, a, c):
            self.ambiguity, self.charge, self._c = a, 0.1, c

        def clearances(self, tick):
            return None, self._c

    def ticks(bags, ctx):   # per episode: a PLANNING tick, then one scored with its plan clearance
        for i, (a, c) in enumerate(zip(amb, clear)):
            out = type("Out", (), {"events": [], "readings": {"risk_z": None, "tracking_error_mps": None}})
            yield f"b:{i}", {"tick": 0.0, "mode": "PLANNING"}, Core(a, 1.0), out
            yield f"b:{i}", {"tick": 0.1, "mode": "PLANNING"}, Core(a, c), out

    from hjepa_agent.nodes.journal import ReplayContext
    monkeypatch.setattr(tune, "started_ticks", ticks)
    args = ([tmp_path], ReplayContext.load(data_path("config", "watchdog.yaml"), data_path("config", "ego_model.yaml"),
                                           typical_risk=False), 0.05)
    even, rep = tune.calibrate(*args)
    lopsided, rep2 = tune.calibrate(*args, stop_alpha=0.01)
    assert rep["alpha_ambiguity_stop"] == pytest.approx(rep["alpha_clearance_optimise"])
    assert rep2["alpha_ambiguity_stop"] == 0.01
    assert rep2["alpha_clearance_optimise"] == pytest.approx(0.05 - 1 / 200 - 0.01)
    srt = np.sort(amb)
    assert lopsided["ambiguity_stop"] == pytest.approx(srt[math.ceil(200 * 0.99) - 1] + 1e-3, abs=6e-4)   # 198th
    assert even["ambiguity_stop"] == pytest.approx(srt[math.ceil(200 * (1 - 0.0225)) - 1] + 1e-3, abs=6e-4)
    assert lopsided["ambiguity_stop"] > even["ambiguity_stop"]
    low = np.sort(clear)   # the clearance's larger share: a less extreme quantile from below
    assert lopsided["clearance_optimise_m"] == pytest.approx(low[199 - math.ceil(200 * (1 - 0.035))] - 1e-3, abs=6e-4)
    assert lopsided["clearance_optimise_m"] > even["clearance_optimise_m"]
    with pytest.raises(ValueError, match="stop-alpha"):
        tune.calibrate(*args, stop_alpha=0.05)
