"""Lockstep: the simulator and the agent's nodes in one process advance together, one 10-ms tick at a
time (used by :mod:`hjepa_agent.harness.runner` and the fuzz battery).

After each tick (physics, then /clock) and after each sensor frame, :func:`lockstep_barrier` spins
until every node's clock shows the new time, every timer that was due has run and every message
between the process's nodes has been handled (nodes/traffic.py counts them), down to the bridge's
command reaching the simulator. A busy computer only makes a run slower. A wait is bounded by
LOCKSTEP_WAIT_S of wall time (a lockstep miss); a message still in flight after LOST_AFTER_S of
spinning is taken as lost by the middleware, logged, counted and no longer waited for.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import time
from typing import Collection, Iterator

log = logging.getLogger("hjepa_agent.harness.lockstep")

LOCKSTEP_WAIT_S = 10.0
"""Wall-clock bound on one lockstep wait: only a hung node reaches it (a miss)."""
LOST_AFTER_S = 2.0
"""A message between the process's nodes still in flight after this much wall time of spinning is
taken as lost by the middleware: logged and counted (lost_messages), no longer waited for."""

def collect_garbage_if_due() -> int | None:
    """Run the collection CPython would have run by now (the oldest generation whose count passed its
    threshold), or none: called by :meth:`Lockstep.tick` between ticks while :func:`garbage_between_ticks`
    holds automatic collection off, so no collection lands on a frame's way to cmd_vel (a gen-1
    collection took 2-10 ms and a full one 20-150 ms in the main job). Returns the generation collected."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    for gen in (2, 1, 0):
        if thresholds[gen] and counts[gen] > thresholds[gen]:
            gc.collect(gen)
            return gen
    return None


@contextlib.contextmanager
def garbage_between_ticks() -> Iterator[None]:
    """Automatic garbage collection off for the block (the lockstep collects between ticks instead); what
    was enabled before is restored."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


IDLE_SPINS_BEFORE_YIELD = 4
"""Reflex spins in a row that must find nothing, a reflex message counted in flight, before Tiered gives a spin
to the later work or the slow tier (with the lockstep's 0.5-ms spins: 2 ms; in-process delivery takes ~0.1)."""


class Tiered:
    """Two rclpy EventsExecutors spun from one thread, the reflex tier first: while a message is in flight
    to a reflex node (nodes/node_table.py ``reflex``: perception, estimator, habitual, bridge and the
    simulated base) or one of their timers is due, only the reflex tier is spun (:meth:`spin_once`). So a camera frame's way to cmd_vel never queues behind the planner, the
    watchdog's roll-outs or the recorder (one EventsExecutor ran callbacks first come first served, and the
    frame waited behind them). Same interface as an executor for the lockstep: add_node, remove_node,
    spin_once, shutdown. Work a reflex node left for later (GuardedNode.later) runs when the reflex tier has
    none, before the slow tier's."""

    def __init__(self, context, reflex: Collection[str]) -> None:
        from rclpy.experimental import EventsExecutor
        self.context = context
        self.reflex_names = frozenset(reflex)
        self.fast, self.slow = EventsExecutor(context=context), EventsExecutor(context=context)
        from hjepa_agent.nodes.traffic import claim_later
        self.later = claim_later(context)   # the nodes' later work (GuardedNode.later): run here, after the reflex tier
        self._turn = False
        self._fast_idle = 0
        """Reflex spins in a row that found nothing although a reflex message was counted in flight."""

    def add_node(self, node) -> None:
        (self.fast if node.get_name() in self.reflex_names else self.slow).add_node(node)

    def remove_node(self, node) -> None:
        (self.fast if any(n is node for n in self.fast.get_nodes()) else self.slow).remove_node(node)

    def reflex_busy(self) -> bool:
        """A message in flight to a reflex node, or a reflex node's timer due."""
        return self._busy()[0]

    def _busy(self) -> tuple[bool, bool]:
        """(reflex tier, slow tier): a message in flight to one of its nodes, or one of their timers due."""
        from hjepa_agent.nodes.traffic import in_flight
        owners = {who for _, who in in_flight(self.context)}
        fast = bool(owners & self.reflex_names) or any(_timer_due(tm) for n in self.fast.get_nodes()
                                                       for tm in n.timers)
        slow = bool(owners - self.reflex_names) or any(_timer_due(tm) for n in self.slow.get_nodes()
                                                       for tm in n.timers)
        return fast, slow

    def spin_once(self, timeout_sec: float | None = None, lagging: Collection = ()) -> None:
        """Handle one thing: for the reflex tier if it has work, else for the slow tier if it has, else for
        a tier with a node in ``lagging`` (whose clock has not taken the last /clock yet: the lockstep's
        barrier says which), else each tier in turn. An idle EventsExecutor's spin_once costs ~75 us even
        with no timeout, so the tier that has work is picked rather than polled. A reflex message counted but
        not delivered (a new publisher not matched yet: lost, given up after lockstep.LOST_AFTER_S) must not
        starve the slow tier: after IDLE_SPINS_BEFORE_YIELD reflex spins in a row that found nothing, the later
        work or the slow tier gets the next one. Not after one: a message merely slow to arrive (a VM's hiccup)
        then had a frame's image statistics run in the middle of its reflex path (6 episodes: 212 frames)."""
        fast, slow = self._busy()
        yielded = fast and self._fast_idle >= IDLE_SPINS_BEFORE_YIELD   # a reflex message that does not come
        if yielded or not fast:
            fast, self._fast_idle = False, 0
        if not fast and self._run_later():
            return
        if not (fast or slow or yielded):
            if lagging:
                fast = any(n.get_name() in self.reflex_names for n in lagging)
            else:
                self._turn = not self._turn
                fast = self._turn
        if fast:
            t0 = time.perf_counter()
            self.fast.spin_once(timeout_sec=timeout_sec)
            idle = timeout_sec is not None and time.perf_counter() - t0 >= timeout_sec
            self._fast_idle = self._fast_idle + 1 if idle else 0
        else:
            self.slow.spin_once(timeout_sec=timeout_sec)

    def _run_later(self) -> bool:
        """Run one job of the nodes' later work (oldest queue first), if any is queued: what a reflex node
        left for after the reflex path (perception's image statistics), before anything of the slow tier."""
        for work in self.later:
            if work.run_one():
                return True
        return False

    def shutdown(self) -> None:
        self.fast.shutdown()
        self.slow.shutdown()


def reflex_node_names() -> tuple[str, ...]:
    """The nodes on the reflex path (nodes/node_table.py: the agent's reflex nodes and the simulator)."""
    from hjepa_agent.nodes.node_table import NODES, SIM_NODE
    return tuple(spec.name for spec in NODES + (SIM_NODE,) if spec.reflex)


def spin_until_idle(executor, quiet_s: float = 0.002, quiet_spins: int = 2, max_s: float = 0.5) -> None:
    """Spin until ``quiet_spins`` consecutive spins found nothing to do within ``quiet_s`` each.

    Used in lockstep so that everything the last clock step triggered is handled
    before the clock moves again (bounded by ``max_s`` of wall time)."""
    quiet = 0
    deadline = time.perf_counter() + max_s
    while quiet < quiet_spins and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        executor.spin_once(timeout_sec=quiet_s)
        quiet = quiet + 1 if time.perf_counter() - t0 >= quiet_s else 0


def _timer_due(timer) -> bool:
    """True when ``timer`` should have fired and has not run yet (0 ns left counts: a timer due exactly
    at this tick must run before the clock moves on)."""
    if timer.is_canceled():
        return False
    left = timer.time_until_next_call()
    return left is not None and left <= 0


def _clock_at(node, t_ns: int) -> bool:
    """True when ``node``'s clock shows ``t_ns``: exactly, for a node on sim time (its clock is the last
    /clock it took, and a clock stepped back must be seen to have stepped), at least, for one on the
    system clock."""
    clock = node.get_clock()
    now = clock.now().nanoseconds
    return now == t_ns if getattr(clock, "ros_time_is_active", False) else now >= t_ns


def _waiting_for(nodes: list, t_ns: int, context) -> str:
    """What a lockstep wait is still waiting for, for the log: messages in flight per topic and the
    subscriber that has not taken them, nodes whose clock is elsewhere, timers due."""
    from hjepa_agent.nodes.traffic import in_flight
    parts = [f"{n} message(s) on {topic} not taken by {who}" for (topic, who), n in in_flight(context).items()]
    parts += [f"{n.get_name()} clock at {n.get_clock().now().nanoseconds * 1e-9:.3f} s" for n in nodes
              if not _clock_at(n, t_ns)]
    parts += [f"{n.get_name()} timer due" for n in nodes for tm in n.timers if _timer_due(tm)]
    return "; ".join(parts) or "nothing (it cleared as the wait ran out)"


def lockstep_barrier(executor, nodes: list, t_ns: int, context, max_s: float = None,
                     lost: dict | None = None) -> bool:
    """Spin until every node's clock shows ``t_ns`` (:func:`_clock_at`), none of their timers is overdue
    and no message between the process's guarded nodes is in flight (nodes/traffic.py: every counting
    publisher's messages taken by every guarded subscription of the context).

    This makes the wire deterministic: what a clock step triggers is handled, end to end, before
    physics moves on, however busy the computer is. Returns False only if ``max_s`` of wall time
    passed first (a lockstep miss: something was lost or a node hung). Raises KeyboardInterrupt
    when the context was shut down (Ctrl-C)."""
    from hjepa_agent.nodes.traffic import drop_lost, pending_messages

    deadline = time.perf_counter() + (LOCKSTEP_WAIT_S if max_s is None else max_s)
    while True:
        if not context.ok():
            raise KeyboardInterrupt("the ROS context was shut down")
        gone = drop_lost(context, LOST_AFTER_S)
        if gone:
            log.warning("lockstep at %.3f s: lost in the middleware: %s", t_ns * 1e-9,
                        "; ".join(f"{n} on {t} for {who}" for (t, who), n in gone.items()))
            if lost is not None:
                for key, n in gone.items():
                    lost[key] = lost.get(key, 0) + n
        ok = pending_messages(context) == 0 and all(_clock_at(n, t_ns) for n in nodes) and not any(
            _timer_due(tm) for n in nodes for tm in n.timers)
        if ok:
            return True
        if time.perf_counter() > deadline:
            log.warning("lockstep miss at %.3f s: %s", t_ns * 1e-9, _waiting_for(nodes, t_ns, context))
            return False
        if isinstance(executor, Tiered):
            executor.spin_once(timeout_sec=0.0005, lagging=[n for n in nodes if not _clock_at(n, t_ns)])
        else:
            executor.spin_once(timeout_sec=0.0005)

class Lockstep:
    """Advances the simulator one tick at a time and waits for the agent to answer (see module doc).
    A node that failed stop (nodes/guard.py) is removed from the run; its failure is kept in ``failures``."""

    def __init__(self, sim, nodes: list, executor) -> None:
        self.sim, self.nodes, self.executor = sim, list(nodes), executor
        self.log_start = len(sim.log.sim_t)
        self.misses = 0
        self.lost: dict[tuple[str, str], int] = {}   # (topic, subscriber) -> messages lost by the middleware
        self.failures: list[dict[str, str]] = []
        from hjepa_agent.nodes.traffic import settle_traffic
        settle_traffic(sim.context)   # what the last episode's nodes sent and never delivered, never will be
        _wait_for_discovery(sim, self.nodes, executor)

    def remove(self, name: str) -> None:
        """Kill a node mid-run (fault injection, or a node that failed stop): it stops being spun and is destroyed."""
        node = next(n for n in self.nodes if n.get_name() == name)
        self.nodes.remove(node)
        self.executor.remove_node(node)
        node.destroy_node()

    def _reap(self) -> None:
        """Remove nodes that failed stop, keeping their failure (name, where, error, traceback)."""
        for node in [n for n in self.nodes if getattr(n, "failure", None) is not None]:
            f = node.failure
            self.failures.append({"node": node.get_name(), "where": f.where, "error": f.error,
                                  "traceback": f.traceback})
            log.error("%s failed stop in %s: %s: removed from the run", node.get_name(), f.where, f.error)
            self.remove(node.get_name())

    def tick(self) -> int | None:
        """One sim tick; returns the camera stamp (ns) if a frame went out this tick.

        Order: physics and /clock; wait until every node's clock shows the new time (as a real robot's
        wall clock always would) and what that triggered (timers) is handled; sensors; wait until
        everything they triggered is handled, down to the bridge's command reaching the simulator."""
        sim, executor = self.sim, self.executor
        if not gc.isenabled():   # between ticks: nothing is in flight (garbage_between_ticks)
            collect_garbage_if_due()
        sim.step_clock()
        t_ns = int(round(sim.clock_s * 1e9))   # the last valid /clock: where every sim-time node's clock is
        ctx = sim.context
        if not lockstep_barrier(executor, self.nodes + [sim], t_ns, ctx, lost=self.lost):
            self.misses += 1
        self._reap()
        stamp_ns = sim.publish_due()
        if not lockstep_barrier(executor, self.nodes + [sim], t_ns, ctx, lost=self.lost):
            self.misses += 1
        self._reap()
        return stamp_ns

    def close(self) -> None:
        """Destroy the agent nodes, after handling what is still in flight: a message queued for a
        node the executor has dropped would otherwise run its callback on the destroyed node (an
        episode that ended seconds into a SAFE_STOP crashed the next one that way)."""
        spin_until_idle(self.executor)
        for node in self.nodes:
            self.executor.remove_node(node)
            node.destroy_node()
        self.nodes = []
        settle_graph(self.sim, self.executor)


def settle_graph(node, executor, max_s: float = 3.0) -> bool:
    """Spin until ``node`` sees no publisher left on the agent's own topics (nodes/topics.py guarded_topics:
    every one of them belongs to an agent node, all destroyed now). Nodes rebuilt under the same names
    before the graph has let go of their predecessors' writers lose their names in it (rmw's graph
    cache: the old writers' removal takes the new ones' association with it; they then read
    _NODE_NAME_UNKNOWN_ for the whole episode), and the watchdog's graph check is blind to who publishes
    on them. Returns False if ``max_s`` of wall time passed first."""
    from hjepa_agent.nodes.topics import guarded_topics

    topics = guarded_topics()
    deadline = time.perf_counter() + max_s
    while any(node.count_publishers(t) for t in topics):
        if time.perf_counter() > deadline:
            log.warning("the ROS graph still lists publishers of destroyed nodes after %.1f s", max_s)
            return False
        executor.spin_once(timeout_sec=0.01)
    return True

def _wait_for_discovery(sim, nodes, executor, timeout_s: float = 10.0) -> None:
    """Spin until every publisher of the sim and the agent has its subscribers matched (not the topics
    only viewers and the recorder read: paths, route, events, explanations, the watchdog's journal)."""
    pubs = [sim.pub_image, sim.pub_scan, sim.pub_odom, sim.pub_goal]
    for node in nodes:
        pubs += [p for p in node.publishers if p.topic_name.startswith(("/agent", "/cmd_vel"))
                 and not p.topic_name.endswith(("/path", "/route", "/events", "/explanation", "/journal"))]
    from hjepa_agent.nodes.traffic import unmatched

    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        # writer side (each publisher has a reader) and reader side (each guarded subscription has matched
        # every counting publisher of its topic: a message sent before that is lost to it)
        if all(p.get_subscription_count() > 0 for p in pubs) and not unmatched(sim.context):
            return
        executor.spin_once(timeout_sec=0.01)
    missing = [p.topic_name for p in pubs if p.get_subscription_count() == 0] + unmatched(sim.context)
    raise RuntimeError(f"DDS discovery did not complete in {timeout_s} s; unmatched: {missing}")
