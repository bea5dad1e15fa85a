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
from hjepa_agent.nodes.node_table import NODES

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


@pytest.mark.parametrize("params_file", ["agent.yaml", "agent_foundation.yaml"])
def test_a_namespaced_bring_up_has_every_parameter_of_the_params_file_in_force(params_file):
    """As robot.launch.py namespace:=robot1 starts them: each node of the table in /robot1, the shipped
    params file given to rcl (--params-file, rcl's own matching of its keys against the nodes' fully
    qualified names). Read back over each node's get_parameters service, as any node on the domain
    could, every parameter of the file has the file's value."""
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    from hjepa_agent.nodes.node_table import load_params
    from hjepa_agent.config.paths import data_path
    from hjepa_agent.harness.runner import isolate_dds

    isolate_dds()
    path = data_path("config", params_file)
    expected = load_params(path, "robot1")
    ctx = rclpy.Context()
    rclpy.init(context=ctx, args=["--ros-args", "--params-file", str(path)])
    ex = SingleThreadedExecutor(context=ctx)
    nodes = [spec.load_class()(context=ctx, namespace="robot1", enable_rosout=False) for spec in NODES]
    probe = Node("probe", context=ctx)
    try:
        for n in nodes + [probe]:
            ex.add_node(n)
        checked = 0
        for spec, node in zip(NODES, nodes):
            assert node.get_fully_qualified_name() == f"/robot1/{spec.name}"
            names = sorted(expected[spec.name])
            client = probe.create_client(GetParameters, f"/robot1/{spec.name}/get_parameters")
            assert client.wait_for_service(timeout_sec=10.0), f"/robot1/{spec.name}/get_parameters"
            fut = client.call_async(GetParameters.Request(names=names))
            deadline = time.monotonic() + 10.0
            while not fut.done() and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.02)
            assert fut.done(), f"{spec.name}: parameter service did not answer"
            got = {k: parameter_value_to_python(v) for k, v in zip(names, fut.result().values)}
            assert got == expected[spec.name], f"/robot1/{spec.name}: parameters not in force"
            checked += len(names)
        assert checked >= 20, "the params file sets almost nothing: the test checks nothing"
    finally:
        ex.shutdown()
        for n in nodes + [probe]:
            n.destroy_node()
        rclpy.shutdown(context=ctx)
