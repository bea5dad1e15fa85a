"""The planner node with ``planner: gflownet`` on the full stack (the shipped planner networks):
on the corridor the watchdog hands over to Mode 2 and the GFlowNet plans, within its call budget,
with its log Z and risk in every explanation, and the robot keeps clear."""
import yaml

from hjepa_agent.core.planner.gflownet import HORIZON, N_FALLBACKS, REPEAT


def test_the_gflownet_planner_node_plans_on_the_full_stack(ros_context, tmp_path):
    from hjepa_agent.paths import data_path
    from hjepa_agent.runner import EmbeddedStack

    params = yaml.safe_load(data_path("config", "agent.yaml").read_text())
    params["planner"]["ros__parameters"]["planner"] = "gflownet"
    path = tmp_path / "agent_gflownet.yaml"
    path.write_text(yaml.safe_dump(params))
    stack = EmbeddedStack(ros_context, data_path("config", "scenarios", "corridor.yaml"), seed=0, params_file=path)
    try:
        stack.run(10.0)
        planner = stack.node("planner")
        assert planner.core.name == "gflownet"
        assert planner.plans > 0, "the watchdog never asked for a plan on the corridor"
        text = planner.last_explanation
        assert "gflownet plan" in text and "log Z" in text and "risk" in text
        assert not stack.world.in_collision()
        # a planning pass spends policy samples, fallbacks, warm start and the habitual seed at most;
        # the optimisation mode refines up to its budget, never beyond
        per_pass = (planner.core.samples + N_FALLBACKS + 2) * HORIZON * REPEAT
        assert 0 < planner.last_calls <= max(per_pass, planner.last_budget)
    finally:
        stack.close()
