"""The planner reads agent/events through the guard (nodes/topics.py check_event): a mode event is decoded
typed and its display text ("A->B" first, then the reasons) says why it plans; a malformed event is
rejected and counted like any input (bad_layout), never raised and never silently dropped."""
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from conftest import spin_until
from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.nodes.guard import qos_for
from hjepa_agent.nodes.planner import PlannerNode
from hjepa_agent.nodes.topics import event_to_json


@pytest.fixture
def rig(ros_context):
    ex = SingleThreadedExecutor(context=ros_context)
    planner = PlannerNode(context=ros_context)
    harness = Node("harness", context=ros_context)
    pub = harness.create_publisher(String, "agent/events", qos_for("events", subscriber=False))
    for n in (planner, harness):
        ex.add_node(n)
    assert spin_until(ex, lambda: pub.get_subscription_count() > 0)
    yield ex, planner, pub
    ex.shutdown()
    for n in (planner, harness):
        n.destroy_node()


def test_mode_events_are_read_typed_and_malformed_ones_rejected_and_counted(rig):
    ex, planner, pub = rig
    pub.publish(String(data='{"kind": "mode", "reasons": "HABITUAL->PLANNING"}'))   # the old, untyped shape
    pub.publish(String(data="not json"))
    ev = Event(3.0, "mode", ("habitual clearance 0.10 m < 0.15 m",), (Cause.HABITUAL_CLEARANCE,),
               Transition("HABITUAL", "PLANNING"))
    pub.publish(String(data=event_to_json(ev)))
    assert spin_until(ex, lambda: planner.mode_why != "" and
                      planner.input_counts()["events"].get("rejected_bad_layout", 0) >= 2)
    assert planner.mode_why == "HABITUAL->PLANNING; habitual clearance 0.10 m < 0.15 m"
    counts = planner.input_counts()["events"]
    assert counts["rejected_bad_layout"] == 2 and counts["accepted"] >= 1
    assert planner.guard_values()["in_events_rejected"] == "bad_layout=2"
    assert planner.failure is None
