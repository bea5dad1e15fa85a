"""The planner node with ``planner: gflownet`` on the full stack (the shipped planner networks):
on the corridor the watchdog hands over to Mode 2 and the GFlowNet plans, within its call budget,
with its log Z and risk in every explanation, and the robot keeps clear."""
import yaml

from hjepa_agent.core.planner.gflownet import HORIZON, N_FALLBACKS, REPEAT


def _planner_params(tmp_path, **planner):
    """config/agent.yaml with these planner parameters, written to a file in tmp_path."""
    from hjepa_agent.config.paths import data_path
    params = yaml.safe_load(data_path("config", "agent.yaml").read_text())
    params["/**/planner"]["ros__parameters"].update(planner)
    path = tmp_path / "agent_planner.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_the_gflownet_planner_node_plans_on_the_full_stack(ros_context, tmp_path):
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import EmbeddedStack

    path = _planner_params(tmp_path, planner="gflownet", hierarchy=False)   # the one-level GFlowNet
    stack = EmbeddedStack(ros_context, data_path("config", "scenarios", "corridor.yaml"), seed=0, params_file=path)
    try:
        stack.run(10.0)
        planner = stack.node("planner")
        assert planner.core.name == "gflownet"
        assert planner.plans > 0, "the watchdog never asked for a plan on the corridor"
        text = planner.last_explanation
        assert "gflownet plan" in text and "log Z" in text and "risk" in text
        assert not stack.world.in_collision()
        # a planning pass spends policy samples, fallbacks and warm start at most (a seed takes a sample's place);
        # the optimisation mode refines up to its budget, never beyond
        per_pass = (planner.core.samples + N_FALLBACKS + 1) * HORIZON * REPEAT
        assert 0 < planner.last_calls <= max(per_pass, planner.last_budget)
    finally:
        stack.close()


def test_the_two_level_planner_node_routes_on_the_full_stack(ros_context, tmp_path):
    """``hierarchy: true`` over the GFlowNet with the shipped slow level, and the learned world
    model's predicted-state ambiguity in the cost: on two_routes the planner plans with a route of
    subgoals, says so (and the plan's predicted ambiguity) in its explanation; the robot keeps clear."""
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import EmbeddedStack

    path = _planner_params(tmp_path, planner="gflownet", hierarchy=True, always_plan=True, ambiguity_weight=0.5)
    stack = EmbeddedStack(ros_context, data_path("config", "scenarios", "two_routes.yaml"), seed=0, params_file=path)
    try:
        stack.run(6.0)
        planner = stack.node("planner")
        assert planner.core.name == "gflownet+subgoals" and planner.plans > 0
        assert "route via" in planner.last_explanation, planner.last_explanation
        assert "predicted along the plan" in planner.last_explanation
        assert planner.core.route is not None and not stack.world.in_collision()
    finally:
        stack.close()
