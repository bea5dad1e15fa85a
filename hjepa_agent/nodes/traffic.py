"""Lockstep accounting: what the counting publishers of one process (one rclpy Context) sent to its
counted subscriptions, and what those took, so that the lockstep (hjepa_agent/harness/lockstep.py) can wait
until everything in flight between the process's nodes has been handled instead of for a fixed
wall-clock time. Every guarded input (nodes/guard.py) is a counted subscription; every publisher a
GuardedNode makes is a counting one.
"""
from __future__ import annotations

import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from rclpy.node import Node
from rclpy.qos import QoSProfile


@dataclass(eq=False)   # identity: two nodes' subscriptions on one topic are different readers
class Reader:
    """One counted subscription: ``owner`` the subscribing node's name, ``sub`` the rclpy
    subscription; ``expected`` what counting publishers sent it, ``taken`` what it took (accepted
    or not), ``pending_since`` the wall time its oldest message still in flight was sent."""

    topic: str = ""
    owner: str = ""
    sub: Any = None
    pending_since: float | None = None
    expected: int = 0
    taken: int = 0

    def take(self) -> None:
        """A message arrived (before anything judges it)."""
        self.taken += 1
        if self.taken >= self.expected:
            self.pending_since = None


class Later:
    """Work a node finishes after the callback that queued it has returned, once what it published has
    gone on (GuardedNode.later): perception's image statistics, after the frame's latent is out.

    Alone in its process (rclpy.spin: a node on a robot) a guard condition runs it as soon as the callback
    returns, while the next node, in its own process, is already at work. In a process whose nodes share
    one thread (the embedded runner), the runner claims the context's later work (:func:`claim_later`) and
    runs it when no reflex message is in flight (harness/lockstep.Tiered); either way it counts as in
    flight for the lockstep (:func:`pending_messages`) until it has run."""

    def __init__(self, owner: str, traffic: "_Traffic", trigger: Callable[[], None]) -> None:
        self.owner = owner
        self._traffic = traffic
        self._trigger = trigger
        self.jobs: deque[Callable[[], None]] = deque()

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job`` (it must not raise: GuardedNode.later wraps it fail-safe)."""
        self.jobs.append(job)
        if not self._traffic.later_claimed:
            self._trigger()

    def run_one(self) -> bool:
        """Run the oldest queued job; False when none was queued."""
        if not self.jobs:
            return False
        self.jobs.popleft()()
        return True

    def run_all(self) -> None:
        """Run every queued job, oldest first (the guard condition's callback)."""
        while self.run_one():
            pass


class _Traffic:
    """Counting publishers and guarded subscriptions of one rclpy Context, by resolved topic name."""

    def __init__(self) -> None:
        self.subs: dict[str, list[Reader]] = {}
        self.pubs: dict[str, list[CountingPublisher]] = {}
        self.later: list[Later] = []
        self.later_claimed = False
        """True once a runner runs the later work itself (:func:`claim_later`): no guard condition runs it."""
        self.probe: dict[str, dict[int, int]] | None = None
        """While timing (:func:`time_publications`): topic -> header stamp ns -> perf_counter_ns of the first
        publication with that stamp."""

    def sent(self, topic: str) -> None:
        now = time.monotonic()
        for inp in self.subs.get(topic, ()):
            if inp.expected <= inp.taken:
                inp.pending_since = now
            inp.expected += 1

    def pending(self) -> int:
        return (sum(max(0, i.expected - i.taken) for subs in self.subs.values() for i in subs)
                + sum(len(w.jobs) for w in self.later))


_TRAFFIC: "weakref.WeakKeyDictionary[Any, _Traffic]" = weakref.WeakKeyDictionary()


def _traffic(context: Any) -> _Traffic:
    t = _TRAFFIC.get(context)
    if t is None:
        t = _TRAFFIC[context] = _Traffic()
    return t


def settle_traffic(context: Any) -> None:
    """Forget what is in flight (between episodes: a message from a node destroyed before it was
    delivered never will be, nor its later work done)."""
    t = _traffic(context)
    for subs in t.subs.values():
        for inp in subs:
            inp.expected, inp.pending_since = inp.taken, None
    for work in t.later:
        work.jobs.clear()


def unmatched(context: Any) -> list[str]:
    """Guarded subscriptions of ``context`` not yet matched with every counting publisher of their
    topic in it (reader side: a message sent before the match is lost to them), as 'topic (node)'."""
    traffic = _traffic(context)
    return [f"{topic} ({inp.owner})" for topic, subs in traffic.subs.items() for inp in subs
            if inp.sub is not None and inp.sub.get_publisher_count() < len(traffic.pubs.get(topic, ()))]


def drop_lost(context: Any, older_than_s: float) -> dict[tuple[str, str], int]:
    """Give up on messages in flight for more than ``older_than_s`` of wall time while the lockstep
    spun (lost by the middleware): (topic, subscriber) -> how many; they are no longer waited for."""
    now, lost = time.monotonic(), {}
    for subs in _traffic(context).subs.values():
        for inp in subs:
            if inp.expected > inp.taken and inp.pending_since is not None and now - inp.pending_since > older_than_s:
                lost[(inp.topic, inp.owner)] = inp.expected - inp.taken
                inp.expected, inp.pending_since = inp.taken, None
    return lost


def in_flight(context: Any) -> dict[tuple[str, str], int]:
    """(topic, subscriber) -> messages sent to it and not taken yet, for the lockstep's log."""
    return {(inp.topic, inp.owner): inp.expected - inp.taken for subs in _traffic(context).subs.values()
            for inp in subs if inp.expected > inp.taken}


def later_work(node: Node, trigger: Callable[[], None]) -> Later:
    """A :class:`Later` queue for ``node``, counted in its context's accounting; ``trigger`` runs its jobs
    soon when no runner has claimed them (a guard condition's trigger)."""
    traffic = _traffic(node.context)
    work = Later(node.get_name(), traffic, trigger)
    traffic.later.append(work)
    return work


def drop_later(context: Any, work: Later) -> None:
    """Stop counting ``work`` (its node is being destroyed); what it still held is dropped."""
    t = _traffic(context)
    work.jobs.clear()
    t.later[:] = [w for w in t.later if w is not work]   # in place: a runner holds the list (claim_later)


def claim_later(context: Any) -> list[Later]:
    """Say that the caller runs the later work of ``context``'s nodes itself (one thread for every node:
    harness/lockstep.Tiered); returns the live list of their queues."""
    t = _traffic(context)
    t.later_claimed = True
    return t.later


def time_publications(context: Any, topics: Iterable[str] | None) -> dict[str, dict[int, int]] | None:
    """Start timing the counting publishers of ``context`` on ``topics`` (resolved names): each stamped
    message's first publication is kept as (header stamp ns -> time.perf_counter_ns()), so a frame's way
    through the nodes can be followed by its stamp (every node stamps its output with its input's). None
    stops it. Returns the live table (filled in as the nodes publish)."""
    t = _traffic(context)
    t.probe = None if topics is None else {topic: {} for topic in topics}
    return t.probe


def pending_messages(context: Any) -> int:
    """Messages published by counting publishers of ``context`` that a guarded subscription of the
    same context has not taken yet (0: nothing in flight between the nodes of this process)."""
    return _traffic(context).pending()


class CountingPublisher:
    """A publisher that tells the lockstep accounting what it sent (same interface as rclpy's)."""

    def __init__(self, pub: Any, context: Any) -> None:
        self._pub = pub
        self._traffic = _traffic(context)
        self.topic_name = pub.topic_name
        self.sent = 0
        self._traffic.pubs.setdefault(self.topic_name, []).append(self)

    def leave(self) -> None:
        """Leave the accounting (the node is being destroyed)."""
        pubs = self._traffic.pubs.get(self.topic_name, [])
        if any(p is self for p in pubs):
            pubs.remove(self)

    def publish(self, msg: Any) -> None:
        """Publish and count (and time it, while :func:`time_publications` asks for this topic)."""
        probe = self._traffic.probe
        if probe is not None and self.topic_name in probe:
            stamp = getattr(getattr(msg, "header", None), "stamp", None)
            if stamp is not None:
                probe[self.topic_name].setdefault(stamp.sec * 1_000_000_000 + stamp.nanosec, time.perf_counter_ns())
        self._pub.publish(msg)
        self.sent += 1
        self._traffic.sent(self.topic_name)

    def get_subscription_count(self) -> int:
        """Matched subscriptions."""
        return self._pub.get_subscription_count()

    @property
    def handle(self) -> Any:
        return self._pub.handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pub, name)


def counted_subscription(node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                         qos: QoSProfile) -> Any:
    """A plain subscription (for the runner's own taps) that takes part in the lockstep accounting."""
    reader = Reader(owner=node.get_name())

    def on_msg(msg: Any) -> None:
        reader.take()
        callback(msg)

    sub = node.create_subscription(msg_type, topic, on_msg, qos)
    reader.topic, reader.sub = sub.topic_name, sub
    join(node.context, reader)
    return sub


def join(context: Any, reader: Reader) -> None:
    """Count ``reader`` (its topic set) in ``context``'s accounting."""
    _traffic(context).subs.setdefault(reader.topic, []).append(reader)


def leave(context: Any, reader: Reader) -> None:
    """Stop counting ``reader`` (its node is being destroyed)."""
    subs = _traffic(context).subs.get(reader.topic, [])
    if any(r is reader for r in subs):
        subs.remove(reader)


__all__ = ["CountingPublisher", "Later", "Reader", "claim_later", "counted_subscription", "drop_later", "drop_lost",
           "in_flight", "join", "later_work", "leave",
           "pending_messages", "settle_traffic", "time_publications", "unmatched"]
