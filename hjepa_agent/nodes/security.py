"""An SROS2 access-control policy for the agent, made from the one topic table (nodes/topics.py).

On a robot with full ROS 2 (``sros2`` installed; the PyPI wheels carry no DDS-Security plugins), this
closes the DDS domain: each node gets an enclave whose permissions allow it to publish exactly the
topics it owns (TOPICS[...].publishers), to subscribe to exactly its inputs (INPUTS), and to serve its
own services. Nobody else can then publish cmd_vel or the agent's topics; the drivers', the operator's
(agent/estop, goal_pose) and the tools' enclaves are the integrator's to add. The recipe is in
docs/safety.md; ``hjepa-agent security policy`` writes the file.

Names are ROS names (relative ones resolved under the namespace); sros2's ``create_permission``
transpiles them into DDS permissions.
"""
from __future__ import annotations

from xml.etree import ElementTree as ET

from hjepa_agent.nodes.topics import AGENT_NODES, TOPICS, inputs_of

SERVICES = {"bridge": ("agent/estop/reset",), "watchdog": ("agent/clear_safe_stop",)}
"""Services each node serves (besides its parameter services)."""
PARAMETER_SERVICES = ("describe_parameters", "get_parameter_types", "get_parameters", "list_parameters",
                      "set_parameters", "set_parameters_atomically")
"""rclpy's per-node parameter services (~/<name>)."""
POLICY_VERSION = "0.2.0"


def _resolve(name: str, namespace: str) -> str:
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return name if name.startswith("/") else f"{ns}/{name}"


def node_permissions(node: str, namespace: str = "") -> dict[str, list[str]]:
    """What ``node`` may do: {"publish": topics, "subscribe": topics, "reply": services}, ROS names."""
    publish = sorted({_resolve(t, namespace) for t, spec in TOPICS.items() if spec.publishers and node in spec.publishers}
                     | {"/diagnostics", "/rosout", "/parameter_events"})
    subscribe = sorted({_resolve(spec.topic, namespace) for spec in inputs_of(node).values()}
                       | {"/clock", "/parameter_events"})
    own = "/" + "/".join(p for p in (namespace.strip("/"), node) if p)
    reply = sorted([_resolve(s, namespace) for s in SERVICES.get(node, ())]
                   + [f"{own}/{s}" for s in PARAMETER_SERVICES])
    return {"publish": publish, "subscribe": subscribe, "reply": reply}


def policy_xml(namespace: str = "", enclave_root: str = "/hjepa_agent") -> str:
    """The SROS2 policy (schema 0.2.0): one enclave per agent node, ``<enclave_root>/<node>``."""
    root = ET.Element("policy", version=POLICY_VERSION)
    enclaves = ET.SubElement(root, "enclaves")
    for node in AGENT_NODES:
        perms = node_permissions(node, namespace)
        enclave = ET.SubElement(enclaves, "enclave", path=f"{enclave_root}/{node}")
        profiles = ET.SubElement(enclave, "profiles")
        profile = ET.SubElement(profiles, "profile", ns="/" + namespace.strip("/"), node=node)
        for tag, attr, key, item in (("topics", "publish", "publish", "topic"),
                                     ("topics", "subscribe", "subscribe", "topic"),
                                     ("services", "reply", "reply", "service")):
            group = ET.SubElement(profile, tag, {attr: "ALLOW"})
            for name in perms[key]:
                ET.SubElement(group, item).text = name
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


__all__ = ["node_permissions", "policy_xml"]
