"""Managed (lifecycle) agent nodes: the input guard of nodes/guard.py on a ``rclpy.lifecycle.LifecycleNode``.

The bridge and the watchdog are :class:`GuardedLifecycleNode`: what ``configure`` makes (inputs,
publishers, timers, services) goes through the guard's paths, and cleanup releases it, leaving the
lockstep accounting (nodes/traffic.py) as a destroyed node does. :func:`bring_up` configures and
activates one through its own transitions.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from hjepa_agent.nodes.guard import GuardedNode
from hjepa_agent.nodes.traffic import leave

log = logging.getLogger("hjepa_agent.guard")


class GuardedLifecycleNode(GuardedNode, LifecycleNode):
    """A :class:`GuardedNode` that is a managed (lifecycle) node, as Nav2's servers and ros2_control's
    controllers are. The guard behaves as in any GuardedNode; the node's life is split the ROS 2 way:

    - ``__init__`` declares the parameters that need no file read (paths, rates, switches: read-only),
      and ``autostart``; it loads nothing and makes no input or output.
    - configure (:meth:`configure`, the subclass's): loads and checks the files and models, declares the
      live parameters whose ranges come from them, and makes the core, the inputs (guarded, counted for
      the lockstep), the publishers (counted), the services and the timers. A refusal (any of
      ``nodes/common.py START_ERRORS``: a bad file, key or value, a model trained for another robot) is
      logged with its reason and kept in ``configure_error``; the transition FAILS and the node stays
      unconfigured, holding nothing configure made.
    - activate / deactivate (:meth:`activate`, :meth:`deactivate`): ``active`` on and off; each node
      gates its own outputs on it (what an inactive node still sends, if anything, its module says).
    - cleanup, shutdown and error processing release everything configure made: inputs and publishers
      leave the lockstep accounting and are destroyed, so are its timers and services; the live
      parameters are undeclared (the next configure declares them again from the overrides).

    ``autostart`` (read-only, default true): the node configures and activates itself at the end of its
    ``__init__`` (:meth:`start_if_autostart`), so a plain launch or ``ros2 run`` starts it as an
    unmanaged node was started; a refusal then destroys it and raises the reason out of the constructor
    (``run_node``: exit 2). False: it waits unconfigured for a lifecycle manager's calls of
    ``<node>/change_state`` (lifecycle_msgs/srv/ChangeState), or for :func:`bring_up`.

    A transition that raises anything else is a bug: the node fails stop, as for any callback, and a
    failed node refuses to be configured or activated again."""

    def __init__(self, kind: str, *, events: bool = True, **kwargs: Any) -> None:
        self.active = False
        self.configure_error: BaseException | None = None
        self._before: dict[str, set] | None = None   # what existed before configure (what release keeps)
        super().__init__(kind, events=events, **kwargs)
        from hjepa_agent.nodes.common import declare
        self._autostart = declare(self, "autostart", True, "configure and activate at start; false: stay "
                                  "unconfigured until a lifecycle manager calls change_state")

    @property
    def lifecycle_state(self) -> str:
        """The lifecycle state's label: unconfigured, inactive, active, finalized (or a transition's)."""
        return self._state_machine.current_state[1]

    # ---- the subclass's part ---------------------------------------------------------------------
    def configure(self) -> None:
        """Load and check, make the core, inputs, outputs, services and timers; raise a START_ERROR to refuse."""

    def activate(self) -> None:
        """Turn the outputs on (``active`` is set once this returns)."""

    def deactivate(self) -> None:
        """Turn the outputs off safely (``active`` is already false)."""

    def start_if_autostart(self) -> None:
        """The last line of a managed node's ``__init__``: with ``autostart``, :func:`bring_up`; a refusal
        destroys the node and raises its reason."""
        if not self._autostart:
            return
        try:
            bring_up(self)
        except BaseException:
            self.destroy_node()
            raise

    # ---- transitions --------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`configure`; a START_ERROR fails the transition with its reason logged, releasing what it made."""
        from hjepa_agent.nodes.common import START_ERRORS
        if self.failure is not None:
            self.get_logger().error(f"configure refused: the node failed stop in {self.failure.where}")
            return TransitionCallbackReturn.FAILURE
        self.configure_error = None
        self._before = self._existing()
        try:
            self.configure()
        except START_ERRORS as exc:
            self.configure_error = exc
            self.get_logger().error(f"configure failed, the node stays unconfigured: {exc}")
            return self._transition("configure", self._release, TransitionCallbackReturn.FAILURE)
        except Exception as exc:   # noqa: BLE001 - a bug: fail stop, never propagate
            self.configure_error = exc
            if not self.context.ok():   # shut down as it configured (Ctrl-C at start): a stop, not a bug
                log.info("%s: configure stopped by shutdown: %s", self.get_name(), exc)
                return self._transition("configure", self._release, TransitionCallbackReturn.FAILURE)
            self._fail("configure", exc)
            self._transition("configure", self._release)
            return TransitionCallbackReturn.ERROR
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Run :meth:`activate`, then ``active``; refused for a node that failed stop."""
        if self.failure is not None:
            self.get_logger().error(f"activate refused: the node failed stop in {self.failure.where}")
            return TransitionCallbackReturn.FAILURE

        def on() -> None:
            self.activate()
            self.active = True
        return self._transition("activate", on)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """``active`` off, then :meth:`deactivate` (not for a node that failed stop: it publishes nothing more)."""
        self.active = False
        if self.failure is not None:
            return TransitionCallbackReturn.SUCCESS
        return self._transition("deactivate", self.deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything configure made."""
        return self._transition("cleanup", self._release)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Deactivate if active, then release everything configure made."""
        was_active, self.active = self.active, False

        def down() -> None:
            if was_active and self.failure is None:
                self.deactivate()
            self._release()
        return self._transition("shutdown", down)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After a transition raised: release everything configure made; the node goes back to unconfigured."""
        self.active = False
        return self._transition("error processing", self._release)

    def _transition(self, where: str, fn: Callable[[], None],
                    done: TransitionCallbackReturn = TransitionCallbackReturn.SUCCESS) -> TransitionCallbackReturn:
        """``done`` once ``fn`` ran; ERROR if it raised (a bug: the node fails stop)."""
        try:
            fn()
        except Exception as exc:   # noqa: BLE001 - a bug: fail stop, never propagate
            if self.failure is None:
                self._fail(f"{where} transition", exc)
            else:
                self.get_logger().error(f"{where} transition failed too: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.ERROR
        return done

    # ---- what configure made ------------------------------------------------------------------------
    def _existing(self) -> dict[str, set]:
        return {"entities": {id(e) for group in (self.subscriptions, self.publishers, self.timers, self.services,
                                                 self.clients) for e in group},
                "parameters": set(self._parameters),
                "on_set": {id(c) for c in self._on_set_parameters_callbacks},
                "timer_instants": {id(t) for t in self._timer_instants}}

    def _release(self) -> None:
        """Destroy everything made since configure began (nothing if it never ran or was released)."""
        before, self._before = self._before, None
        if before is None:
            return
        old = before["entities"]
        for key, inp in [(k, i) for k, i in self._inputs.items() if id(i.sub) not in old]:
            leave(self.context, inp)
            del self._inputs[key]
            del self._ledger.records[key]
        for pub in [p for p in self._own_publishers if id(p._pub) not in old]:
            self.drop_publisher(pub)
        for sub in [s for s in self.subscriptions if id(s) not in old]:
            self.destroy_subscription(sub)
        for pub in [p for p in self.publishers if id(p) not in old]:
            self.destroy_publisher(pub)
        for timer in [t for t in self.timers if id(t) not in old]:
            self.destroy_timer(timer)
        for srv in [s for s in self.services if id(s) not in old]:
            self.destroy_service(srv)
        for client in [c for c in self.clients if id(c) not in old]:
            self.destroy_client(client)
        self._timer_instants = [t for t in self._timer_instants if id(t) in before["timer_instants"]]
        for cb in [c for c in self._on_set_parameters_callbacks if id(c) not in before["on_set"]]:
            self.remove_on_set_parameters_callback(cb)
        for name in [n for n in self._parameters if n not in before["parameters"]]:
            self.undeclare_parameter(name)   # configure declares only live ones: read-only ones raise here

    def destroy_node(self) -> None:
        """Leave the lockstep accounting, then destroy (as GuardedNode; nothing more is published)."""
        self.active = False
        super().destroy_node()


def bring_up(node: GuardedLifecycleNode) -> None:
    """Configure, then activate ``node`` through its own transitions (trigger_configure, trigger_activate):
    what ``autostart`` does and what the embedded runner does. Raises the reason configure failed (the
    node's ``configure_error``: a START_ERROR, or the bug that failed it stop), RuntimeError if a transition
    failed otherwise."""
    if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
        raise node.configure_error or RuntimeError(f"{node.get_name()}: configure failed (state "
                                                   f"{node.lifecycle_state}); see its log")
    if node.trigger_activate() != TransitionCallbackReturn.SUCCESS:
        raise RuntimeError(f"{node.get_name()}: activate failed (state {node.lifecycle_state}); see its log")


__all__ = ["GuardedLifecycleNode", "bring_up"]
