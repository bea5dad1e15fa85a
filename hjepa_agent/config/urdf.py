"""Sensor mounts from a URDF: the transform base frame -> a link through the joint chain, as
robot_state_publisher computes it, read with xml.etree (no ROS, no URDF library).

Each joint's ``<origin xyz rpy>`` is the child link's pose in its parent's (rpy: fixed-axis roll,
pitch, yaw, R = Rz(yaw) Ry(pitch) Rx(roll)); a link's pose in the base frame is the product along
the tree from the base to it (up the tree and down again when the base is not an ancestor of the
link, e.g. base_footprint and base_link siblings under one root). Only ``fixed`` joints may lie on
that path: a sensor behind a moving joint (revolute, continuous, prismatic, floating, planar) has no
fixed mount, and robot_state_publisher would need its joint state. :meth:`Urdf.static_transforms`
gives each fixed joint's transform as robot_state_publisher puts it on /tf_static. Errors
(:class:`UrdfError`) name the file and what is wrong.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hjepa_agent.core.frames import FrameTransform
from hjepa_agent.core.types import Mount

_SNAP = 1e-12
"""Components of a composed mount smaller than this read exactly 0 (a sensor on the base's axis stays on it)."""


class UrdfError(ValueError):
    """A URDF cannot give the transform asked for; the message names the file and the reason."""


@dataclass(frozen=True)
class Joint:
    """One URDF joint: name, type, parent and child link, and the child's pose in the parent (4, 4)."""

    name: str
    type: str
    parent: str
    child: str
    origin: np.ndarray


def _floats(text: str | None, what: str, path: str) -> tuple[float, float, float]:
    if text is None:
        return 0.0, 0.0, 0.0
    try:
        vals = tuple(float(v) for v in text.split())
    except ValueError:
        raise UrdfError(f"{path}: {what} {text!r} is not three numbers") from None
    if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
        raise UrdfError(f"{path}: {what} {text!r} is not three finite numbers")
    return vals  # type: ignore[return-value]


def rpy_matrix(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation (3, 3) of URDF's fixed-axis rpy (rad): Rz(yaw) Ry(pitch) Rx(roll)."""
    return Mount(roll_rad=roll, pitch_rad=pitch, yaw_rad=yaw).rotation()


def mount_from_matrix(t: np.ndarray) -> Mount:
    """The Mount of a homogeneous transform (4, 4) (translation m, rotation -> fixed-axis rpy rad)."""
    r = np.asarray(t, dtype=np.float64)[:3, :3]
    x, y, z = (float(v) if abs(v) >= _SNAP else 0.0 for v in np.asarray(t, dtype=np.float64)[:3, 3])
    pitch = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    if abs(math.cos(pitch)) > 1e-9:
        roll, yaw = math.atan2(r[2, 1], r[2, 2]), math.atan2(r[1, 0], r[0, 0])
    else:   # gimbal lock: roll and yaw turn about the same axis; put it all in yaw
        roll, yaw = 0.0, math.atan2(-r[0, 1], r[1, 1])
    roll, pitch, yaw = (a if abs(a) >= _SNAP else 0.0 for a in (roll, pitch, yaw))
    return Mount(x, y, z, roll, pitch, yaw)


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation (3, 3) of a quaternion (x, y, z, w) (normalised here); ValueError for a zero or non-finite one."""
    q = np.array([x, y, z, w], dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not (math.isfinite(n) and n > 1e-9):
        raise ValueError(f"quaternion {tuple(q)} is not a rotation")
    x, y, z, w = q / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_quaternion(r: np.ndarray) -> tuple[float, float, float, float]:
    """The unit quaternion (x, y, z, w) of a rotation matrix (3, 3), w >= 0 (the inverse of
    :func:`quaternion_matrix`; Shepperd's method: the largest of w, x, y, z is found first, so it stays
    exact near 180 degree turns)."""
    m = np.asarray(r, dtype=np.float64)
    tr = float(m[0, 0] + m[1, 1] + m[2, 2])
    k = int(np.argmax([tr, m[0, 0], m[1, 1], m[2, 2]]))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + tr)
        q = (float(m[2, 1] - m[1, 2]) / s, float(m[0, 2] - m[2, 0]) / s, float(m[1, 0] - m[0, 1]) / s, s / 4.0)
    elif k == 1:
        s = 2.0 * math.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
        q = (s / 4.0, float(m[0, 1] + m[1, 0]) / s, float(m[0, 2] + m[2, 0]) / s, float(m[2, 1] - m[1, 2]) / s)
    elif k == 2:
        s = 2.0 * math.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 0.0))
        q = (float(m[0, 1] + m[1, 0]) / s, s / 4.0, float(m[1, 2] + m[2, 1]) / s, float(m[0, 2] - m[2, 0]) / s)
    else:
        s = 2.0 * math.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 0.0))
        q = (float(m[0, 2] + m[2, 0]) / s, float(m[1, 2] + m[2, 1]) / s, s / 4.0, float(m[1, 0] - m[0, 1]) / s)
    n = math.sqrt(sum(v * v for v in q)) * (1.0 if q[3] >= 0.0 else -1.0)
    return tuple(v / n for v in q)  # type: ignore[return-value]


@dataclass(frozen=True)
class Urdf:
    """A URDF's kinematic tree: its links and its joints by child link."""

    path: str
    links: frozenset[str]
    joints: dict[str, Joint]

    @property
    def root(self) -> str:
        """The tree's root link (the one that is no joint's child; the first such, in name order)."""
        roots = sorted(self.links - set(self.joints))
        if not roots:
            raise UrdfError(f"{self.path}: every link is a joint's child: no root")
        return roots[0]

    def _up(self, link: str) -> list[Joint]:
        """Joints from ``link`` up to the root, nearest first."""
        chain: list[Joint] = []
        while link in self.joints:
            if len(chain) > len(self.joints):
                raise UrdfError(f"{self.path}: the joints above {chain[0].child!r} form a loop, not a tree")
            chain.append(self.joints[link])
            link = chain[-1].parent
        return chain

    def transform(self, base: str, link: str) -> Mount:
        """Pose of ``link`` in ``base`` (both link names of this URDF); UrdfError naming the file when a
        link is missing, the two are not connected, or a joint on the path between them is not fixed."""
        for name in (base, link):
            if name not in self.links:
                raise UrdfError(f"{self.path}: no link {name!r} (links: {', '.join(sorted(self.links))})")
        up_link, up_base = self._up(link), self._up(base)
        root_link = up_link[-1].parent if up_link else link
        root_base = up_base[-1].parent if up_base else base
        if root_link != root_base:
            raise UrdfError(f"{self.path}: link {link!r} is not connected to {base!r} (trees rooted at "
                            f"{root_link!r} and {root_base!r})")
        # drop the joints the two paths share (above their common ancestor)
        while up_link and up_base and up_link[-1] is up_base[-1]:
            up_link.pop()
            up_base.pop()
        for j in up_link + up_base:
            if j.type != "fixed":
                raise UrdfError(f"{self.path}: joint {j.name!r} ({j.type}) lies between {base!r} and {link!r}: "
                                f"the mount would depend on its position; only fixed joints can be read")
        anc_link = np.eye(4)   # link in the common ancestor
        for j in reversed(up_link):
            anc_link = anc_link @ j.origin
        anc_base = np.eye(4)   # base in the common ancestor
        for j in reversed(up_base):
            anc_base = anc_base @ j.origin
        return mount_from_matrix(np.linalg.inv(anc_base) @ anc_link if up_base else anc_link)


    def static_transforms(self) -> list[FrameTransform]:
        """Each fixed joint's transform parent link -> child link (its ``<origin>``), in the file's order:
        what robot_state_publisher publishes on /tf_static. Moving joints are left out (their transforms
        depend on joint states: robot_state_publisher puts them on /tf)."""
        out = []
        for j in self.joints.values():
            if j.type == "fixed":
                t = j.origin[:3, 3]
                out.append(FrameTransform(j.parent, j.child, (float(t[0]), float(t[1]), float(t[2])),
                                          matrix_quaternion(j.origin[:3, :3])))
        return out


def read_urdf(path: str | Path) -> Urdf:
    """Parse a URDF file's links and joints; UrdfError naming the file on anything unreadable
    (no file, not XML, no <robot>, a joint without parent/child, a link with two parents)."""
    p = str(path)
    if not Path(p).is_file():
        raise UrdfError(f"{p}: URDF file not found")
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise UrdfError(f"{p}: not valid XML: {exc}") from None
    if root.tag != "robot":
        raise UrdfError(f"{p}: top element is <{root.tag}>, expected <robot>")
    links = frozenset(el.get("name", "") for el in root.findall("link"))
    joints: dict[str, Joint] = {}
    for el in root.findall("joint"):
        name, kind = el.get("name", "?"), el.get("type", "")
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None or not parent.get("link") or not child.get("link"):
            raise UrdfError(f"{p}: joint {name!r} needs <parent link=...> and <child link=...>")
        origin = el.find("origin")
        xyz = _floats(None if origin is None else origin.get("xyz"), f"joint {name!r} origin xyz", p)
        rpy = _floats(None if origin is None else origin.get("rpy"), f"joint {name!r} origin rpy", p)
        t = np.eye(4)
        t[:3, :3] = rpy_matrix(*rpy)
        t[:3, 3] = xyz
        c = child.get("link")
        if c in joints:
            raise UrdfError(f"{p}: link {c!r} is the child of two joints ({joints[c].name!r}, {name!r})")
        joints[c] = Joint(name, kind, parent.get("link"), c, t)
    return Urdf(p, links, joints)


def link_mount(path: str | Path, base: str, link: str) -> Mount:
    """Pose of ``link`` in ``base`` from the URDF at ``path`` (:meth:`Urdf.transform`)."""
    return read_urdf(path).transform(base, link)


__all__ = ["Joint", "Urdf", "UrdfError", "link_mount", "matrix_quaternion", "mount_from_matrix", "quaternion_matrix",
           "read_urdf", "rpy_matrix"]
