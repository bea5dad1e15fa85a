"""hjepa-agent bench planners: a planner drives the simulated robot alone; route diversity counts
sampled plans on both sides of the robot-goal line."""
import numpy as np

from hjepa_agent.harness.bench_planners import summarise
from hjepa_agent.sim.planner_episode import both_sides, run_episode
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.robot import load_robot_description
from hjepa_agent.sim.scenario import load_scenario
from hjepa_agent.sim.world import SimWorld


def _plans(ends):
    s = np.zeros((len(ends), 3, 3), np.float32)
    s[:, -1, :2] = ends
    return s


def test_both_sides_needs_an_endpoint_clearly_off_each_side():
    pose, goal = np.zeros(3), np.array([3.0, 0.0])
    assert both_sides(_plans([(1.0, 0.5), (1.0, -0.5)]), pose, goal)
    assert not both_sides(_plans([(1.0, 0.5), (1.0, 0.8)]), pose, goal)
    assert not both_sides(_plans([(1.0, 0.5), (1.0, -0.1)]), pose, goal)   # within the margin
    assert not both_sides(None, pose, goal) and not both_sides(_plans(np.zeros((0, 2))), pose, goal)


def test_a_planner_drives_the_open_scenario_to_the_goal():
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    with SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml"))) as world:
        ep = run_episode(world, "cem", load_scenario(data_path("config", "scenarios", "open.yaml")), 0, ego)
    assert ep.outcome == "goal", ep
    s = summarise([ep])
    assert s["successes"] == 1 and s["collisions"] == 0
    assert s["world_model_calls_per_decision"] == 64 * 15 * 3
    assert s["decisions"] == len(ep.latency_ms) > 20 and s["decision_latency_ms"]["p99"] > 0


def test_a_planner_teacher_labels_with_the_planners_first_action_within_the_limits():
    """Distillation's teacher: on the open scenario, the shipped GFlowNet acting on the sensed scan
    drives the robot closer to the goal, every command inside the operating limits."""
    from hjepa_agent.train.teacher import PlannerTeacher
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    with SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml"))) as world:
        world.reset(load_scenario(data_path("config", "scenarios", "open.yaml")), 0)
        teacher = PlannerTeacher(world, ego, "gflownet")
        goal = teacher.goal
        d0 = float(np.hypot(*(goal - np.asarray(world.pose())[:2])))
        for _ in range(50):
            v, w = teacher.act(world.pose(), world.twist())
            assert abs(v) <= ego.operating.max_linear_mps and abs(w) <= ego.operating.max_angular_rps
            world.set_cmd(v, w)
            world.step(0.1)
        d1 = float(np.hypot(*(goal - np.asarray(world.pose())[:2])))
        assert not world.in_collision()
    assert d1 < d0 - 1.0


def test_the_two_level_planner_drives_two_routes_and_reports_its_routes():
    """The shipped slow level over the shipped GFlowNet: planner-driven on two_routes it reaches the
    goal, and each route it makes is judged for both-sides coverage and for whether two ways exist."""
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    with SimWorld(load_robot_description(data_path("config", "robots", "diffbot.yaml"))) as world:
        ep = run_episode(world, "gflownet", load_scenario(data_path("config", "scenarios", "two_routes.yaml")), 0, ego,
                         hierarchy=True)
    assert ep.outcome == "goal", ep
    assert len(ep.route_both_sides) == len(ep.two_ways) > 5
    s = summarise([ep])
    assert s["routes_made"] == len(ep.two_ways) and 0.0 <= s["route_both_routes_fraction"] <= 1.0
