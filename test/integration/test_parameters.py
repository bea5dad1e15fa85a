"""Parameters as an attack surface: over the parameter service (what any node on the domain can call),
every agent node refuses a change to anything but its few live parameters, and every refusal names
the parameter and says why."""
import time

import pytest
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter

from hjepa_agent.core.watchdog import TIGHTER
from hjepa_agent.node_table import NODES

LIVE = {"bridge": {"max_linear_mps", "max_angular_rps"}, "watchdog": set(TIGHTER)}
"""The only parameters an operator may change at run time (each change checked: tighten only)."""
RCLPY_OWN = {"use_sim_time", "start_type_description_service"}
"""Declared by rclpy itself: use_sim_time is refused by the guard, the other is read-only."""


def _call(ex, client, params):
    fut = client.call_async(SetParameters.Request(parameters=[p.to_parameter_msg() for p in params]))
    deadline = time.monotonic() + 10.0
    while not fut.done() and time.monotonic() < deadline:
        ex.spin_once(timeout_sec=0.02)
    assert fut.done(), "parameter service did not answer"
    return fut.result().results


@pytest.mark.parametrize("spec", NODES, ids=lambda s: s.name)
def test_only_live_parameters_can_be_set_and_refusals_name_the_parameter(ros_context, spec):
    node = spec.load_class()(context=ros_context, parameter_overrides=[Parameter("use_sim_time", value=True)])
    probe = Node("probe", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    for n in (node, probe):
        ex.add_node(n)
    try:
        writable = {name for name, p in node._parameters.items()
                    if not node.describe_parameter(name).read_only} - RCLPY_OWN
        assert writable == LIVE.get(spec.name, set()), f"{spec.name}: parameters settable at run time"
        client = probe.create_client(SetParameters, f"/{spec.name}/set_parameters")
        assert client.wait_for_service(timeout_sec=10.0)
        read_only = sorted(set(node._parameters) - writable - RCLPY_OWN)
        results = _call(ex, client, [Parameter("use_sim_time", value=False), Parameter("no_such_knob", value=1.0),
                                     Parameter(read_only[0], value=node.get_parameter(read_only[0]).value)])
        sim_time, undeclared, ro = results
        assert not sim_time.successful and "use_sim_time" in sim_time.reason and "read-only" in sim_time.reason
        assert node.get_parameter("use_sim_time").value is True and node.sim_time
        assert not undeclared.successful and "no_such_knob" in undeclared.reason
        assert not ro.successful and read_only[0] in ro.reason
        assert node.failure is None
    finally:
        ex.shutdown()
        node.destroy_node()
        probe.destroy_node()
