"""Nodes that are not the agent's, in the simulator's process (sim/faults.py Intruder): a teleop on
cmd_vel, a babbling node sending NaN-filled copies of an agent topic's messages (:func:`garbage`), an
e-stop storm. nodes/sim.py creates them at their onset and destroys them at the episode's end."""
from __future__ import annotations

import math

from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32, String

from hjepa_agent.core.types import WORLD_STATE_LABELS
from hjepa_agent.nodes.codec import (BRIDGE_OUTPUT_LABELS, EARLY_PERCEPT_LABELS, GOAL_STATUS_LABELS, PERCEPT_LABELS,
                                     plan_labels)
from hjepa_agent.nodes.guard import qos_for
from hjepa_agent.nodes.topics import TOPICS
from hjepa_agent.nodes.traffic import CountingPublisher
from hjepa_agent.sim.faults import Intruder

_BAD = (math.nan, math.inf, -math.inf)


def garbage(topic: str, k: int, stamp: Time) -> object:
    """The ``k``-th message a babbling node sends on ``topic``: the topic's type and layout (nodes/codec.py:
    labels, sizes, frame), stamped ``stamp``, its numbers NaN, +inf or -inf in turn (a String topic gets
    the text "nan"), so that only the receivers' validators can tell it from the real thing."""
    bad = _BAD[k % 3]
    spec = TOPICS[topic]
    if spec.type is TwistStamped:
        msg = TwistStamped()
        msg.header.stamp, msg.header.frame_id = stamp, "base_link"
        msg.twist.linear.x = msg.twist.angular.z = bad
        return msg
    if spec.type is String:
        return String(data="nan")
    if spec.type is Float32:
        return Float32(data=bad)
    labels, frame = {"agent/percept": (PERCEPT_LABELS, ""),
                     "agent/percept/early": (EARLY_PERCEPT_LABELS, ""),
                     "agent/world_state": (WORLD_STATE_LABELS + ("ambiguity",), "odom"),
                     "agent/world_state/early": (WORLD_STATE_LABELS, "odom"),
                     "agent/plan": (plan_labels(15), "odom"),
                     "agent/bridge/output": (BRIDGE_OUTPUT_LABELS, "DRIVING"),
                     "agent/goal_status": (GOAL_STATUS_LABELS, "odom")}[topic]
    msg = JointState()
    msg.header.stamp, msg.header.frame_id = stamp, frame
    msg.name = list(labels)
    msg.position = [bad] * len(labels)
    msg.velocity = [0.0] * len(labels) if topic.startswith("agent/world_state") else []
    return msg


class IntruderNode(Node):
    """A node that is not the agent's (sim/faults.Intruder), in the simulator's process: named as the
    fault says (or as the topic's owner), publishing with the topic's QoS, counted for the lockstep."""

    def __init__(self, spec: Intruder, **kwargs) -> None:
        name = spec.node or (TOPICS[spec.topic].publishers or ("intruder",))[0]
        super().__init__(name, enable_rosout=False, start_parameter_services=False,
                         parameter_overrides=[Parameter("start_type_description_service", value=False)], **kwargs)
        self.spec = spec
        topic = TOPICS[spec.topic]
        self.pub = CountingPublisher(self.create_publisher(topic.type, topic.name, qos_for(topic.qos, False)),
                                     self.context)
        self.sent = 0

    def publish_due(self, t_s: float, stamp: Time) -> None:
        """Publish what is due by ``t_s`` (s into the episode; several in one tick above 100 Hz)."""
        while self.sent < self.spec.due(t_s):
            self.pub.publish(self._message(self.sent, stamp))
            self.sent += 1

    def _message(self, k: int, stamp: Time) -> object:
        if self.spec.payload == "forward":
            msg = TwistStamped()
            msg.header.stamp, msg.header.frame_id = stamp, "base_link"
            msg.twist.linear.x = float(self.spec.value)
            return msg
        if self.spec.payload == "toggle":
            return Bool(data=k % 2 == 0)
        return garbage(self.spec.topic, k, stamp)

    def destroy_node(self) -> None:
        """Leave the lockstep accounting (else the next episode's discovery waits for a reader to match
        a publisher that is gone), then destroy."""
        self.pub.leave()
        super().destroy_node()


__all__ = ["IntruderNode", "garbage"]
