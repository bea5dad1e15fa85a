"""The SROS2 policy is made from the topic table: each agent node may publish exactly what it owns and
subscribe to exactly its inputs, so on a secured domain nobody else can command the base."""
from xml.etree import ElementTree as ET

from hjepa_agent.nodes.security import policy_xml
from hjepa_agent.nodes.topics import AGENT_NODES, TOPICS, inputs_of


def _profiles(xml: str) -> dict[str, dict[str, set[str]]]:
    out = {}
    for profile in ET.fromstring(xml).iter("profile"):
        perms = {"publish": set(), "subscribe": set(), "reply": set()}
        for group in profile:
            key = next(k for k in perms if group.get(k) == "ALLOW")
            perms[key] |= {item.text for item in group}
        out[profile.get("node")] = perms
    return out


def test_each_node_publishes_what_it_owns_and_subscribes_to_its_inputs():
    profiles = _profiles(policy_xml("robot1"))
    assert set(profiles) == set(AGENT_NODES)
    for node, perms in profiles.items():
        owned = {f"/robot1/{t}" for t, spec in TOPICS.items() if spec.publishers and node in spec.publishers}
        agent_topics = {p for p in perms["publish"] if p.startswith("/robot1/")}
        assert agent_topics == owned, node
        assert {f"/robot1/{s.topic}" for s in inputs_of(node).values()} <= perms["subscribe"], node
        assert f"/robot1/{node}/set_parameters" in perms["reply"]


def test_only_the_bridge_and_the_watchdog_may_command_the_base():
    profiles = _profiles(policy_xml())
    assert {n for n, p in profiles.items() if "/cmd_vel" in p["publish"]} == {"bridge", "watchdog"}
    assert {n for n, p in profiles.items() if "/base_stop" in p["publish"]} == {"watchdog"}
    assert "/agent/estop/reset" in profiles["bridge"]["reply"]
    assert "/agent/clear_safe_stop" in profiles["watchdog"]["reply"]
