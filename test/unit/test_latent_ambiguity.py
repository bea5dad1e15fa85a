"""Predicted-state ambiguity from the learned world model: the score is the estimator's
disagreement score rolled along a plan, the planners pay for it, and the shipped model loads."""
import numpy as np
import pytest

from builders import world_state
from hjepa_agent.core.planner import Budget, CEMConfig, CEMPlanner, planner_cost
from hjepa_agent.core.planner.latent import LatentAmbiguity, load_latent_ambiguity
from hjepa_agent.core.types import N_LATENT

OFFSETS = np.random.default_rng(0).normal(size=(5, N_LATENT))
OFFSETS -= OFFSETS.mean(axis=0)


def _heads_spreading_with_speed(z, a):
    """Five heads that agree when standing and disagree more the faster the base drives forward."""
    spread = 0.01 + 0.5 * np.clip(a[:, 0], 0.0, None)
    return z[:, None, :] + spread[:, None, None] * OFFSETS[None]


def test_the_score_is_the_standardised_disagreement_over_the_plans_first_second():
    ref, scale = (-6.0, 0.5), 4.0
    amb = LatentAmbiguity(_heads_spreading_with_speed, ref, scale, (0.6, 1.8), weight=2.0)
    acts = np.zeros((2, 15, 2), np.float32)
    acts[1, :, 0] = 0.3                                    # half speed: a = 0.5 after normalising
    got = amb(np.zeros(N_LATENT), acts, 0.2)
    var = OFFSETS.var(axis=0).mean()
    expect = [max((np.log(s * s * var + 1e-9) - ref[0]) / ref[1], 0.0) / scale for s in (0.01, 0.01 + 0.5 * 0.5)]
    assert np.allclose(got, expect, rtol=1e-5)
    assert amb.evaluations == 2 * 10                        # 1 s of 0.1-s predictor steps, two plans
    assert np.allclose(amb.penalty(np.zeros(N_LATENT), 0.2)(acts), 2.0 * got, rtol=1e-5)
    with pytest.raises(ValueError):
        LatentAmbiguity(_heads_spreading_with_speed, (0.0, 0.0), scale, (0.6, 1.8))


def test_a_planner_that_pays_for_ambiguity_keeps_out_of_the_blind_spot():
    """With the goal straight ahead and nothing in the way, CEM drives to it; when the world model
    says that driving forward leads where its heads disagree, and that costs, it drives less far."""
    ws = world_state(goal=(3.0, 0.0), ambiguity=0.1)
    plain = CEMPlanner(CEMConfig(iterations=4), planner_cost(0.2))
    wary = CEMPlanner(CEMConfig(iterations=4), planner_cost(0.2),
                      ambiguity=LatentAmbiguity(_heads_spreading_with_speed, (-8.0, 1.0), 1.0, (0.6, 1.8), weight=5.0))
    p_plain = plain.plan(ws, ws.goal, Budget(10**6))
    p_wary = wary.plan(ws, ws.goal, Budget(10**6))
    first_second = lambda p: float(np.sum(p.actions[:5, 0]) * p.dt_s)  # noqa: E731
    assert first_second(p_plain) > 0.4
    assert first_second(p_wary) < first_second(p_plain) - 0.2
    assert "predicted_ambiguity" in p_wary.extras and "predicted_ambiguity" not in p_plain.extras


def test_the_shipped_world_model_gives_nominal_plans_a_low_ambiguity():
    from hjepa_agent.core.world_model import WorldModel
    from hjepa_agent.config.paths import data_path
    amb = load_latent_ambiguity(data_path("models"))
    z0 = WorldModel(data_path("models"), with_encoder=False).mean     # the training latents' mean
    acts = np.stack([np.full((8, 15), 0.3), np.linspace(-1.0, 1.0, 8)[:, None].repeat(15, 1)], -1).astype(np.float32)
    got = amb(z0, acts, 0.2)
    assert np.all(np.isfinite(got)) and np.all(got >= 0.0) and np.all(got < 1.0)
