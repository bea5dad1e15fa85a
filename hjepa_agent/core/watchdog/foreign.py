"""Foreign publishers: who else commands the base, or speaks on the agent's own topics.

Two ways to see one, both pure (the node feeds what it reads off the ROS graph and the wire):

* **The graph** (:meth:`ForeignPublishers.on_graph`): for each topic with a fixed set of
  publishers (nodes/topics.py ``TOPICS[...].publishers``), the nodes that publish it now. A node
  not in the set, or more endpoints than the set's nodes have (someone took a known node's name),
  is foreign once the graph has shown it for ``confirm_s`` (the graph is a cache that lags: a
  publisher destroyed a moment ago can still be listed, under an unknown name).
* **The wire** (:meth:`ForeignPublishers.on_command`): every message on cmd_vel is matched with the
  bridge's own record of what it sent (agent/bridge/output: the same stamp and values) or with the
  watchdog's own stop ramp; a command nobody declared within ``match_window_s`` is foreign. This
  sees a publisher the graph cannot name (a node impersonating the bridge, a process outside ROS).
  An unstamped command (cmd_vel as a geometry_msgs/Twist) says neither when nor whose it is: it is
  matched by its values alone, with the bridge's recent records and the watchdog's own recent stop
  commands, so on the wire a foreign publisher is seen only when it sends values neither sent lately.

A finding stays until the graph shows the publisher gone and no undeclared command was seen for
``clear_after_s``. Times are seconds on the caller's receipt clock.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ForeignFinding:
    """One foreign publisher: the ``topic``, ``who`` (a node name, or "undeclared commands" for the
    wire check) and ``count`` (endpoints, or undeclared commands so far)."""

    topic: str
    who: str
    count: int

    def text(self) -> str:
        """For people."""
        if self.who == UNDECLARED:
            return f"{self.topic}: {self.count} command(s) no agent node sent (a foreign publisher)"
        return f"{self.topic}: published by {self.who} ({self.count} endpoint(s)), not an agent node"


NO_RECORD_WINDOWS = 4
"""With no bridge record received since a command came, it is undeclared after this many match windows."""
UNDECLARED = "undeclared commands"
"""``ForeignFinding.who`` of the wire check."""


class ForeignPublishers:
    """Tracks foreign publishers (module doc). ``match_window_s``: how long a cmd_vel message may wait
    for the bridge's record of it; ``clear_after_s``: how long the wire must stay clean before its
    finding is dropped."""

    def __init__(self, match_window_s: float = 0.25, clear_after_s: float = 2.0, confirm_s: float = 0.4,
                 keep: int = 200) -> None:
        if not (match_window_s > 0.0 and clear_after_s > 0.0 and confirm_s >= 0.0
                and math.isfinite(match_window_s + clear_after_s + confirm_s)):
            raise ValueError(f"match_window_s and clear_after_s must be finite and > 0, confirm_s >= 0, got "
                             f"{match_window_s}, {clear_after_s}, {confirm_s}")
        self.match_window_s = match_window_s
        self.clear_after_s = clear_after_s
        self.confirm_s = confirm_s
        self._candidates: dict[str, tuple[float, tuple[str, ...]]] = {}   # topic -> (first seen, the extra names)
        self._declared: deque[tuple[int, float, float]] = deque(maxlen=keep)   # (stamp ns, v, w) the bridge sent
        self._own: deque[tuple[float, float]] = deque(maxlen=keep)   # (v, w) of the watchdog's own stop commands
        self._waiting: deque[tuple[float, int | None, float, float]] = deque(maxlen=keep)   # (received s, stamp, v, w)
        self._undeclared = 0
        self._last_undeclared_s = -math.inf
        self._last_record_s = -math.inf

    def on_declared(self, stamp_ns: int, v: float, w: float, now_s: float | None = None) -> None:
        """The bridge's record of a cmd_vel it published (stamp ns, m/s, rad/s), received at ``now_s``."""
        self._declared.append((int(stamp_ns), float(v), float(w)))
        if now_s is not None:
            self._last_record_s = float(now_s)
        self._match()

    def _overdue(self, received_s: float, now_s: float) -> bool:
        """Whether a command received at ``received_s`` has waited for its record long enough to be
        undeclared: ``match_window_s``, once a record the bridge sent later has come (records flow and none
        declared it); without one, NO_RECORD_WINDOWS times that (the watchdog's own process may have been
        starved with the record still in its queue: seven processes on two cores did, at start-up)."""
        waited = now_s - received_s
        if waited > NO_RECORD_WINDOWS * self.match_window_s:
            return True
        return waited > self.match_window_s and self._last_record_s > received_s

    def on_own(self, v: float, w: float) -> None:
        """A stop command (m/s, rad/s) the watchdog sends itself: what an unstamped one of its own on
        cmd_vel is matched with (a stamped one says it is the watchdog's: ``own`` of on_command)."""
        self._own.append((float(v), float(w)))
        self._match()

    def on_command(self, now_s: float, stamp_ns: int | None, v: float, w: float, own: bool = False) -> None:
        """A cmd_vel message received at ``now_s``; ``own``: the watchdog's own stop command; ``stamp_ns``
        None: an unstamped one (geometry_msgs/Twist), matched by its values (module doc)."""
        if own:
            return
        self._waiting.append((float(now_s), None if stamp_ns is None else int(stamp_ns), float(v), float(w)))
        self._match()

    def _match(self) -> None:
        declared = {(s, v, w) for s, v, w in self._declared}
        values = {(v, w) for _, v, w in self._declared} | set(self._own)
        self._waiting = deque(((t, s, v, w) for t, s, v, w in self._waiting
                               if ((v, w) not in values if s is None else (s, v, w) not in declared)),
                              maxlen=self._waiting.maxlen)

    def on_graph(self, topic: str, publishers: list[str], allowed: tuple[str, ...], now_s: float) -> None:
        """The node names publishing ``topic`` from ``now_s`` on (one entry per endpoint), and those
        allowed; call it when the graph changed (what it says holds until the next call)."""
        extra = [p for p in publishers if p not in allowed]
        per_name = {p: publishers.count(p) for p in set(publishers) if p in allowed}
        twice = [p for p, n in per_name.items() if n > 1]   # each agent node has one endpoint per topic
        found = tuple(sorted(set(extra + [f"{p} (a second node of that name)" for p in twice])))
        if not found:
            self._candidates.pop(topic, None)
            return
        first, names = self._candidates.get(topic, (now_s, found))
        self._candidates[topic] = (first if names == found else now_s, found)

    def check(self, now_s: float) -> list[ForeignFinding]:
        """The foreign publishers at ``now_s``: graph findings (shown for ``confirm_s``) and undeclared
        cmd_vel commands."""
        while self._waiting and self._overdue(self._waiting[0][0], now_s):
            self._waiting.popleft()
            self._undeclared += 1
            self._last_undeclared_s = now_s
        out = [ForeignFinding(topic, ", ".join(names), len(names))
               for topic, (first, names) in sorted(self._candidates.items())
               if now_s - first >= self.confirm_s - 1e-9]
        if self._undeclared and now_s - self._last_undeclared_s <= self.clear_after_s:
            out.append(ForeignFinding("cmd_vel", UNDECLARED, self._undeclared))
        return out

    @property
    def undeclared(self) -> int:
        """Undeclared cmd_vel commands seen so far."""
        return self._undeclared


__all__ = ["ForeignFinding", "ForeignPublishers", "NO_RECORD_WINDOWS", "UNDECLARED"]
