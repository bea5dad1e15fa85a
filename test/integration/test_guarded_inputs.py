"""One guarded input path: every subscription of every agent node (and of the simulator) is a row of
nodes/topics.py INPUTS and goes through GuardedNode.subscribe; no node subscribes around the guard."""
import re
from pathlib import Path

import pytest
from rclpy.parameter import Parameter

from hjepa_agent.nodes.node_table import NODES, SIM_NODE
from hjepa_agent.nodes.guard import GuardedNode
from hjepa_agent.nodes.topics import TOPICS, all_inputs

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = {"estimator": {"command"}}
"""Inputs a node takes only in some configurations (the estimator reads cmd_vel with world_model: true)."""


@pytest.mark.parametrize("spec", NODES + (SIM_NODE,), ids=lambda s: s.name)
def test_no_node_subscribes_around_the_guard(spec):
    src = (ROOT / (spec.cls.split(":")[0].replace(".", "/") + ".py")).read_text()
    assert not re.search(r"\.create_subscription\(", src), f"{spec.name} subscribes without the guard"
    assert issubclass(spec.load_class(), GuardedNode)


def test_every_input_is_a_known_topic_with_a_validator():
    for node, inputs in all_inputs().items():
        for key, spec in inputs.items():
            assert spec.topic in TOPICS, (node, key)
            assert callable(spec.validate), (node, key)
            assert spec.frame in (None, "odom"), (node, key)


@pytest.mark.parametrize("spec", NODES, ids=lambda s: s.name)
def test_a_built_node_subscribes_to_exactly_its_table_rows(ros_context, spec):
    node = spec.load_class()(context=ros_context, parameter_overrides=[Parameter("use_sim_time", value=True)])
    try:
        want = set(all_inputs()[spec.name])
        got = set(node.input_counts())
        assert want - OPTIONAL.get(spec.name, set()) <= got <= want
        subscribed = {s.topic_name for s in node.subscriptions} - {"/clock"}
        assert subscribed == {node.resolve_topic_name(all_inputs()[spec.name][k].topic) for k in got}
    finally:
        node.destroy_node()
