"""harness/lockstep.Tiered: a message to a reflex node is handled before anything queued for the slow tier."""
from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.timeout(60)


def _order(ctx, reflex: tuple[str, ...]) -> list[str]:
    """Two messages queued for the slow node (topics a, b); handling a sends one to the reflex node
    "bridge", which is then behind b in arrival order. Returns the order the callbacks ran in."""
    from rclpy.node import Node
    from std_msgs.msg import Float32

    from hjepa_agent.harness.lockstep import Tiered
    from hjepa_agent.nodes.guard import RELIABLE_QOS
    from hjepa_agent.nodes.traffic import CountingPublisher, counted_subscription, pending_messages

    src, slow, fast = Node("source", context=ctx), Node("slowpoke", context=ctx), Node("bridge", context=ctx)
    order: list[str] = []
    pub = {t: CountingPublisher(n.create_publisher(Float32, t, RELIABLE_QOS), ctx)
           for t, n in (("a", src), ("b", src), ("f", slow))}

    def on_a(_msg) -> None:
        order.append("a")
        pub["f"].publish(Float32(data=0.0))
        time.sleep(0.01)

    counted_subscription(slow, Float32, "a", on_a, RELIABLE_QOS)
    counted_subscription(slow, Float32, "b", lambda _m: order.append("b"), RELIABLE_QOS)
    counted_subscription(fast, Float32, "f", lambda _m: order.append("f"), RELIABLE_QOS)
    ex = Tiered(ctx, reflex)
    for n in (src, slow, fast):
        ex.add_node(n)
    try:
        deadline = time.monotonic() + 10.0
        while any(p.get_subscription_count() == 0 for p in pub.values()) and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.01)
        for _ in range(10):
            order.append("|")
            pub["a"].publish(Float32(data=1.0))
            pub["b"].publish(Float32(data=1.0))
            while pending_messages(ctx) and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.01)
        assert not ex.reflex_busy()
        return order
    finally:
        ex.shutdown()
        for n in (src, slow, fast):
            n.destroy_node()


def _rounds(order: list[str]) -> list[str]:
    return "".join(order).split("|")[1:]


def test_the_reflex_tier_goes_first_whatever_was_queued_before(ros_context) -> None:
    # whichever of a and b the slow tier takes first (EventsExecutor's choice), f runs as soon as a sent
    # it: never after b when a ran before b. One tier (first come, first served) runs a, b, f instead.
    rounds = _rounds(_order(ros_context, ("bridge",)))
    assert len(rounds) == 10 and all(r in ("afb", "baf") for r in rounds), rounds


def test_a_reflex_message_that_never_comes_does_not_starve_the_slow_tier(ros_context) -> None:
    # a message counted for a reflex node but never delivered (a publisher not matched yet: the lockstep
    # gives it up after LOST_AFTER_S) must not keep the slow tier from being spun meanwhile
    from rclpy.node import Node
    from std_msgs.msg import Float32

    from hjepa_agent.harness.lockstep import Tiered
    from hjepa_agent.nodes.guard import RELIABLE_QOS
    from hjepa_agent.nodes.traffic import CountingPublisher, Reader, counted_subscription, join, leave

    ctx = ros_context
    src, slow = Node("source", context=ctx), Node("slowpoke", context=ctx)
    got: list[float] = []
    pub = CountingPublisher(src.create_publisher(Float32, "s", RELIABLE_QOS), ctx)
    counted_subscription(slow, Float32, "s", lambda m: got.append(m.data), RELIABLE_QOS)
    ghost = Reader(topic="/never", owner="bridge", expected=1)   # in flight to a reflex node, forever
    ex = Tiered(ctx, ("bridge",))
    for n in (src, slow):
        ex.add_node(n)
    try:
        deadline = time.monotonic() + 10.0
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.01)
        join(ctx, ghost)
        assert ex.reflex_busy()
        pub.publish(Float32(data=7.0))
        for _ in range(20):
            ex.spin_once(timeout_sec=0.002)
            if got:
                break
        assert got == [7.0]
    finally:
        leave(ctx, ghost)
        ex.shutdown()
        for n in (src, slow):
            n.destroy_node()


def test_later_work_runs_after_the_reflex_tier_and_before_the_slow_one(ros_context) -> None:
    # perception's image statistics (GuardedNode.later) must wait until the frame's way to the bridge is
    # done, and come before the slow tier's work (the watchdog and planner read what they publish)
    from rclpy.node import Node
    from std_msgs.msg import Float32

    from hjepa_agent.harness.lockstep import Tiered
    from hjepa_agent.nodes.guard import RELIABLE_QOS, GuardedNode
    from hjepa_agent.nodes.traffic import CountingPublisher, counted_subscription, pending_messages

    ctx = ros_context
    src, slow, bridge = Node("source", context=ctx), Node("slowpoke", context=ctx), Node("bridge", context=ctx)
    perception = GuardedNode("perception", context=ctx)
    order: list[str] = []
    pub = {t: CountingPublisher(n.create_publisher(Float32, t, RELIABLE_QOS), ctx)
           for t, n in (("c", src), ("b", src), ("f", perception))}

    def on_camera(_msg) -> None:
        order.append("c")
        pub["f"].publish(Float32(data=0.0))
        perception.later(lambda: order.append("L"), "statistics")

    counted_subscription(perception, Float32, "c", on_camera, RELIABLE_QOS)
    counted_subscription(slow, Float32, "b", lambda _m: order.append("b"), RELIABLE_QOS)
    counted_subscription(bridge, Float32, "f", lambda _m: order.append("f"), RELIABLE_QOS)
    ex = Tiered(ctx, ("perception", "bridge"))
    nodes = (src, slow, bridge, perception)
    for n in nodes:
        ex.add_node(n)
    try:
        deadline = time.monotonic() + 10.0
        while any(p.get_subscription_count() == 0 for p in pub.values()) and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.01)
        for _ in range(10):
            order.append("|")
            pub["b"].publish(Float32(data=1.0))   # the slow tier has work before the frame comes
            pub["c"].publish(Float32(data=1.0))
            while pending_messages(ctx) and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.01)
        rounds = _rounds(order)
        assert rounds == ["cfLb"] * 10, rounds
        assert perception.failure is None
    finally:
        ex.shutdown()
        for n in nodes:
            n.destroy_node()


def test_later_work_alone_in_its_process_runs_right_after_the_callback_and_counts_as_in_flight(ros_context) -> None:
    # a node on a robot (rclpy.spin, one executor of its own): the later work runs as soon as the callback
    # that queued it has returned; until then the lockstep accounting counts it
    from rclpy.executors import SingleThreadedExecutor

    from hjepa_agent.nodes.guard import GuardedNode
    from hjepa_agent.nodes.traffic import pending_messages

    node = GuardedNode("perception", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    done: list[int] = []
    try:
        for k in range(3):
            node.later(lambda k=k: done.append(k), "statistics")
            assert pending_messages(ros_context) == 1
            deadline = time.monotonic() + 5.0
            while len(done) <= k and time.monotonic() < deadline:
                ex.spin_once(timeout_sec=0.05)
            assert done == list(range(k + 1)) and pending_messages(ros_context) == 0
        node.later(lambda: 1 / 0, "statistics")   # a failing job fails the node stop, as a callback would
        deadline = time.monotonic() + 5.0
        while node.failure is None and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.05)
        assert node.failure is not None and node.failure.where == "statistics"
    finally:
        ex.shutdown()
        node.destroy_node()


def test_a_reflex_message_that_never_comes_does_not_starve_the_later_work(ros_context) -> None:
    # the same ghost as above: the later work a reflex node left must still run meanwhile
    from hjepa_agent.harness.lockstep import Tiered
    from hjepa_agent.nodes.guard import GuardedNode
    from hjepa_agent.nodes.traffic import Reader, join, leave

    node = GuardedNode("perception", context=ros_context)
    ghost = Reader(topic="/never", owner="bridge", expected=1)
    ex = Tiered(ros_context, ("perception", "bridge"))
    ex.add_node(node)
    done: list[int] = []
    try:
        join(ros_context, ghost)
        assert ex.reflex_busy()
        node.later(lambda: done.append(1), "statistics")
        for _ in range(10):
            ex.spin_once(timeout_sec=0.002)
            if done:
                break
        assert done == [1]
    finally:
        leave(ros_context, ghost)
        ex.shutdown()
        node.destroy_node()
