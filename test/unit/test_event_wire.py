"""Events on agent/events (nodes/topics.py event_to_json / event_from_json / check_event): the typed event
goes over the wire and comes back the same; anything else is refused with a typed cause, never raised."""
from __future__ import annotations

import json
import math

import pytest
from std_msgs.msg import String

from hjepa_agent.core.events import Cause, Event, Transition
from hjepa_agent.nodes.topics import MAX_EVENT_DEPTH, Rejected, check_event, event_from_json, event_to_json


def _good(**change) -> str:
    doc = {"stamp_s": 12.5, "kind": "mode", "reasons": ["clearance 0.10 m < 0.15 m"], "causes": ["habitual_clearance"],
           "transition": ["HABITUAL", "PLANNING"], "values": {"clearance_m": 0.1}}
    doc.update(change)
    return json.dumps(doc)


@pytest.mark.parametrize("ev", [
    Event(12.5, "mode", ("clearance 0.10 m < 0.15 m",), (Cause.HABITUAL_CLEARANCE,), Transition("HABITUAL", "PLANNING"),
          {"clearance_m": 0.1}),
    Event(0.0, "input", ("/scan: rejected: x", "(further ...)"), (Cause.NON_FINITE,)),
    Event(3.25, "goal", ()),
    Event(1.0, "graded", ("r",), tuple(Cause), Transition("NORMAL", "SLOW"), {"z": math.inf}),
])
def test_an_event_comes_back_as_it_was_sent(ev: Event) -> None:
    back = check_event(String(data=event_to_json(ev)))
    assert back == ev and back.text() == ev.text()


@pytest.mark.parametrize("text, detail", [
    ("{", "not JSON"), ("", "not JSON"), ("[1, 2]", "not an object"), ("NaN", "not an object"),
    ("[" * (MAX_EVENT_DEPTH + 1) + "]" * (MAX_EVENT_DEPTH + 1), "nested deeper"),
    ("[" * 40000 + "]" * 40000, "nested"),
    (_good(causes=["not_a_cause"]), "causes"), (_good(causes="stall"), "causes"), (_good(causes=[1]), "causes"),
    (_good(reasons="not a list"), "reasons"), (_good(reasons=[math.nan]), "reasons"),
    (_good(transition="HABITUAL->PLANNING"), "transition"), (_good(transition=["HABITUAL"]), "transition"),
    (_good(transition=["", "PLANNING"]), "transition"), (_good(values={"x": "1"}), "values"),
    (_good(values=[1.0]), "values"), (_good(kind=""), "kind"), (_good(kind=3), "kind"), (_good(stamp_s="1"), "stamp_s"),
    (_good(stamp_s=True), "stamp_s"),
])
def test_anything_else_is_a_bad_layout_naming_what(text: str, detail: str) -> None:
    with pytest.raises(Rejected) as exc:
        event_from_json(text)
    assert exc.value.cause is Cause.BAD_LAYOUT and detail in exc.value.detail


def test_a_missing_field_is_named_and_a_non_finite_stamp_is_non_finite() -> None:
    doc = json.loads(_good())
    del doc["transition"]
    with pytest.raises(Rejected, match="no 'transition'"):
        event_from_json(json.dumps(doc))
    with pytest.raises(Rejected) as exc:
        event_from_json(_good(stamp_s=math.inf))
    assert exc.value.cause is Cause.NON_FINITE


def test_an_event_longer_than_a_string_may_be_is_refused_unread() -> None:
    with pytest.raises(Rejected, match="at most 65536"):
        check_event(String(data=_good(reasons=["x" * 70000])))
