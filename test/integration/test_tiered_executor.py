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
