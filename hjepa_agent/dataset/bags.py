"""Recordings -> dataset episodes: ``hjepa-agent dataset build --bags DIR... --out DS``.

Reads rosbag2 recordings (MCAP or SQLite, as `hjepa-agent record`, robot.launch.py record:=true and
`hjepa-agent sim` write them) with rosbags only (no ROS install needed) and only the topics a robot
has: the camera, the scan, odometry, cmd_vel, the goal and, when recorded, the watchdog's mode; no
simulator state. Per recording:

* Rows: camera frames thinned to the dataset's rate (format.FPS; a frame is taken when at least
  0.75/fps s have passed since the last one taken). Each row holds, by header stamp, the latest scan
  (placed in the base frame with the bag's /tf_static, or --urdf) and the latest odometry at or before
  the frame, the latest goal (in the odom frame: a base-frame goal is placed with the odometry of its
  stamp), and, by receive time, the latest mode. ``action`` is the mean of the cmd_vel messages stamped
  in [t, t + 1/fps) (the command in force before them when there is none; zero once the last one is
  older than ``cmd_timeout_s``, as the base's own timeout stops it); ``action.command`` is the latest
  of them. An unstamped cmd_vel (geometry_msgs/Twist, e.g. from a joystick) is placed by receive time,
  mapped onto the camera's stamps.
* Episodes: a new one starts where the goal moves by more than ``goal_change_m``, where odometry jumps
  by more than ``jump_m`` between frames (a reset or a simulator's new episode), or where the stamps go
  backwards. Episodes shorter than ``min_episode_s`` are dropped and listed in the build's notes.
* Goals: in the odom frame as they are; in the base frame placed with the odometry of their stamp; in
  any other frame F (a map) placed with the latest /tf F -> odom recorded at or before their stamp
  (what a localisation, e.g. AMCL or a SLAM node, broadcasts).
* Problems (refused, naming the bag, the topic and the time): a bag that cannot be read to its end
  (corrupt, truncated), a required topic that is absent or empty, a camera gap longer than
  ``max_gap_s`` inside an episode, a frame whose latest scan or odometry is older than ``max_age_s``,
  a scan whose frame has no known mount, a goal in a frame the recording cannot place. With ``allow_gaps``
  the gaps and stale inputs cut the episode there instead, and are listed in meta/problems.jsonl.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from hjepa_agent.core.perception import ImageError, decode_compressed, decode_image, preprocess_image, scan_to_bins
from hjepa_agent.core.types import Mount
from hjepa_agent.dataset.format import FPS, DatasetError

REQUIRED = ("camera", "scan", "odom", "cmd_vel")
"""Topics a recording must have; goal and mode are optional (teleoperation has neither)."""
DEFAULT_TOPICS = {"camera": "camera/image_raw", "scan": "scan", "odom": "odom", "cmd_vel": "cmd_vel",
                  "goal": "goal_pose", "mode": "agent/mode"}
"""Role -> the agent's topic name (relative: resolved under --namespace; remap with --topic ROLE=NAME)."""
MODES = ("HABITUAL", "PLANNING", "OPTIMISING", "SAFE_STOP")


@dataclass(frozen=True)
class BuildOptions:
    """How recordings become rows and episodes (module doc); times in s, distances in m."""

    namespace: str = ""
    topics: tuple[tuple[str, str], ...] = ()
    base_frame: str = "base_link"
    odom_frame: str = "odom"
    urdf: str | None = None
    max_gap_s: float = 0.35
    max_age_s: float = 0.35   # `dataset build` reads perception's scan_max_age_s from the params file
    cmd_timeout_s: float = 0.5
    goal_change_m: float = 0.05
    jump_m: float = 0.5
    min_episode_s: float = 2.0
    allow_gaps: bool = False

    def topic(self, role: str) -> str:
        """The recorded name of ``role``'s topic."""
        name = dict(self.topics).get(role, DEFAULT_TOPICS[role])
        if name.startswith("/"):
            return name
        ns = self.namespace.strip("/")
        return f"/{ns}/{name}" if ns else f"/{name}"


@dataclass(frozen=True)
class Problem:
    """Something wrong in a recording: where (bag, topic, stamp s and s into the bag) and what."""

    bag: str
    topic: str
    time_s: float | None
    offset_s: float | None
    kind: str
    detail: str

    def text(self) -> str:
        clock = "receive time" if self.kind == "unreadable" else "stamp"   # an unread message has no header
        when = "" if self.time_s is None else f" at {clock} {self.time_s:.3f} s ({self.offset_s:.1f} s into the bag)"
        return f"{self.bag}: {self.topic}{when}: {self.kind}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"bag": self.bag, "topic": self.topic, "time_s": self.time_s, "offset_s": self.offset_s,
                "kind": self.kind, "detail": self.detail}


class BagRefused(DatasetError):
    """Recordings the build refuses; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [p.text() for p in problems[:20]]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the recordings:\n  " + "\n  ".join(lines) + more +
                         "\n(re-record, remap a topic with --topic ROLE=NAME, or cut episodes at gaps with --allow-gaps)")


@dataclass
class _Streams:
    """A bag's messages per role, in receive order: log ns, stamp ns (or -1), decoded values."""

    log: dict[str, list[int]] = field(default_factory=dict)
    stamp: dict[str, list[int]] = field(default_factory=dict)
    value: dict[str, list[Any]] = field(default_factory=dict)
    frames: dict[str, Any] = field(default_factory=dict)     # scan frame_id -> Mount | problem text
    to_odom: dict[str, list[tuple[int, float, float, float]]] = field(default_factory=dict)
    """/tf's transforms parent -> odom frame (a localisation's map -> odom): parent -> [(stamp ns, x, y, yaw)]."""

    def add(self, role: str, log_ns: int, stamp_ns: int, value: Any) -> None:
        self.log.setdefault(role, []).append(log_ns)
        self.stamp.setdefault(role, []).append(stamp_ns)
        self.value.setdefault(role, []).append(value)


def _ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _yaw(q: Any) -> float:
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _static_tree(edges: dict[str, tuple[str, np.ndarray]], base: str, child: str) -> np.ndarray | None:
    """The 4x4 transform base -> child through /tf_static's edges (child -> (parent, parent_T_child))."""
    chain, at = [], child
    while at != base:
        if at not in edges or len(chain) > 64:
            return None
        parent, t = edges[at]
        chain.append(t)
        at = parent
    out = np.eye(4)
    for t in reversed(chain):
        out = out @ t
    return out


def _where_it_ends(bag: Path) -> tuple[str, int, int] | None:
    """(topic, log ns, first log ns) of the last message an MCAP file still holds, read record by record
    (a truncated file has no summary for rosbags to open); None when not even that can be read."""
    try:
        from mcap.records import Channel, Message
        from mcap.stream_reader import StreamReader
    except ImportError:
        return None
    files = sorted(bag.glob("*.mcap")) if bag.is_dir() else [bag]
    topics: dict[int, str] = {}
    last: tuple[str, int, int] | None = None
    first = None
    for f in files:
        try:
            with f.open("rb") as fh:
                for rec in StreamReader(fh, skip_magic=False).records:
                    if isinstance(rec, Channel):
                        topics[rec.id] = rec.topic
                    elif isinstance(rec, Message):
                        first = rec.log_time if first is None else min(first, rec.log_time)
                        last = (topics.get(rec.channel_id, "?"), rec.log_time, first)
        except Exception:   # the end of what is readable
            pass
    return last


def read_bag(bag: Path, opts: BuildOptions) -> tuple[_Streams, list[Problem], tuple[int, int]]:
    """Decode the roles' messages of one recording; problems for what cannot be read or is absent.
    Returns (streams, problems, (first, last) log ns)."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from hjepa_agent.config.urdf import mount_from_matrix, quaternion_matrix, read_urdf

    store = get_typestore(Stores.LATEST)
    name = str(bag)
    problems: list[Problem] = []
    streams = _Streams()
    roles = {opts.topic(r): r for r in DEFAULT_TOPICS}
    compressed = opts.topic("camera") + "/compressed"
    edges: dict[str, tuple[str, np.ndarray]] = {}
    last_topic, last_log, first_log = "(opening)", None, None
    try:
        reader = Reader(bag)
        reader.open()
    except Exception as exc:   # rosbags raises many types for a broken file
        end = _where_it_ends(Path(bag))
        if end is None:
            raise BagRefused([Problem(name, "(file)", None, None, "unreadable",
                                      f"cannot be opened ({type(exc).__name__}: {str(exc)[:160]}): not a rosbag2 "
                                      f"recording, or corrupt")]) from None
        topic, last_ns, first_ns = end
        raise BagRefused([Problem(name, topic, last_ns * 1e-9, (last_ns - first_ns) * 1e-9, "unreadable",
                                  f"the file ends after this message ({type(exc).__name__}: {str(exc)[:120]}): it is "
                                  f"corrupt or incomplete (a recording cut short); re-record it, or repair it with "
                                  f"`mcap recover` and build again")]) from None
    try:
        first_log = reader.start_time
        present = {c.topic: c for c in reader.connections if c.msgcount or c.topic in roles}
        cam_topic = opts.topic("camera")
        if not any(c.topic == cam_topic and c.msgcount for c in reader.connections) and compressed in present:
            roles[compressed] = "camera"
            roles.pop(cam_topic, None)
        conns = [c for c in reader.connections if c.topic in roles or c.topic in ("/tf_static", "/tf")]
        for conn, log_ns, raw in reader.messages(connections=conns):
            last_topic, last_log = conn.topic, log_ns
            msg = store.deserialize_cdr(raw, conn.msgtype)
            if conn.topic == "/tf":   # only what places a goal: parent -> odom (e.g. map -> odom)
                for tf in msg.transforms:
                    if tf.child_frame_id == opts.odom_frame and tf.header.frame_id != opts.odom_frame:
                        tr, r = tf.transform.translation, tf.transform.rotation
                        streams.to_odom.setdefault(tf.header.frame_id, []).append(
                            (_ns(tf.header.stamp), tr.x, tr.y, _yaw(r)))
                continue
            if conn.topic == "/tf_static":
                for tf in msg.transforms:
                    r, tr = tf.transform.rotation, tf.transform.translation
                    m = np.eye(4)
                    m[:3, :3] = quaternion_matrix(r.x, r.y, r.z, r.w)
                    m[:3, 3] = (tr.x, tr.y, tr.z)
                    edges[tf.child_frame_id] = (tf.header.frame_id, m)
                continue
            role = roles[conn.topic]
            stamp = _ns(msg.header.stamp) if hasattr(msg, "header") else -1
            if role == "camera":
                try:
                    if conn.msgtype.endswith("CompressedImage"):
                        rgb = decode_compressed(bytes(msg.data), msg.format, 4096 * 4096)
                    else:
                        rgb = decode_image(np.asarray(msg.data, np.uint8), msg.height, msg.width, msg.encoding, msg.step)
                    value = (preprocess_image(rgb)[0] * 255.0 + 0.5).astype(np.uint8)
                except (ImageError, ValueError) as exc:
                    problems.append(Problem(name, conn.topic, stamp * 1e-9, (log_ns - first_log) * 1e-9, "bad_image", str(exc)))
                    continue
            elif role == "scan":
                value = (msg.header.frame_id, np.asarray(msg.ranges, np.float32), msg.angle_min, msg.angle_increment,
                         msg.range_min, msg.range_max)
                streams.frames.setdefault(msg.header.frame_id, None)
            elif role == "odom":
                p, t = msg.pose.pose, msg.twist.twist
                value = (p.position.x, p.position.y, _yaw(p.orientation), t.linear.x, t.angular.z)
            elif role == "cmd_vel":
                tw = msg.twist if hasattr(msg, "twist") else msg
                value = (tw.linear.x, tw.angular.z)
            elif role == "goal":
                value = (msg.header.frame_id, msg.pose.position.x, msg.pose.position.y)
            else:
                value = msg.data
            streams.add(role, log_ns, stamp, value)
        last = reader.end_time
    except Exception as exc:   # a truncated or corrupt file: refuse, saying where reading stopped
        at = "" if last_log is None or first_log is None else f" after {(last_log - first_log) * 1e-9:.1f} s"
        raise BagRefused([Problem(name, last_topic, None if last_log is None else last_log * 1e-9,
                                  None if last_log is None or first_log is None else (last_log - first_log) * 1e-9,
                                  "unreadable", f"reading stopped{at} ({type(exc).__name__}: {str(exc)[:160]}): the "
                                  f"file is corrupt or incomplete")]) from None
    finally:
        reader.close()
    for role in REQUIRED:
        if not streams.log.get(role):
            topic = opts.topic(role)
            have = ", ".join(sorted(present)[:12])
            problems.append(Problem(name, topic, None, None, "missing_topic",
                                    f"no messages (the {role} role; the bag has {have}): record it, or name the topic "
                                    f"it was recorded as with --topic {role}=NAME"))
    urdf = read_urdf(opts.urdf) if opts.urdf else None
    for frame in streams.frames:
        if frame == opts.base_frame:
            streams.frames[frame] = Mount()
            continue
        mat = _static_tree(edges, opts.base_frame, frame)
        if mat is not None:
            streams.frames[frame] = mount_from_matrix(mat)
        elif urdf is not None:
            try:
                streams.frames[frame] = urdf.transform(opts.base_frame, frame)
            except Exception as exc:   # UrdfError: say it as a problem
                streams.frames[frame] = f"no mount in --urdf: {exc}"
        else:
            streams.frames[frame] = (f"scan frame {frame!r} has no transform from {opts.base_frame!r} in the bag's "
                                     f"/tf_static: record /tf_static, or give --urdf the robot's URDF")
    return streams, problems, (first_log or 0, last)


def _place(series: list[tuple[int, float, float, float]], t: int, gx: float, gy: float) -> tuple[float, float] | None:
    """A point (gx, gy) of a frame F in the odom frame, with the latest recorded F -> odom transform at or
    before ``t`` (the odom frame's pose in F: x, y, yaw); None before the first one."""
    stamps = [s for s, *_ in series]
    k = int(np.searchsorted(stamps, t, side="right")) - 1   # series sorted by stamp (episodes_from_bag)
    if k < 0:
        return None
    _, x, y, yaw = series[k]
    dx, dy = gx - x, gy - y                                   # p_odom = R(-yaw) (p_F - t)
    c, s = math.cos(yaw), math.sin(yaw)
    return c * dx + s * dy, -s * dx + c * dy


def _latest(stamps: np.ndarray, t: int) -> int:
    """Index of the last stamp <= t, -1 when none (stamps sorted)."""
    return int(np.searchsorted(stamps, t, side="right")) - 1


def _sorted(streams: _Streams, role: str, by: str = "stamp") -> tuple[np.ndarray, list[Any]]:
    t = np.asarray((streams.stamp if by == "stamp" else streams.log).get(role, []), np.int64)
    order = np.argsort(t, kind="stable")
    values = streams.value.get(role, [])
    return t[order], [values[i] for i in order]


def episodes_from_bag(bag: Path, opts: BuildOptions) -> tuple[list[dict[str, Any]], list[Problem], list[str]]:
    """The episodes of one recording (dicts of format.FEATURES arrays plus ``timestamp`` and ``source``),
    its problems (module doc) and notes (dropped short episodes). Raises BagRefused for an unreadable
    bag or a missing required topic."""
    streams, problems, (first_log, _) = read_bag(bag, opts)
    for series in streams.to_odom.values():
        series.sort()
    if problems and any(p.kind in ("missing_topic", "unreadable") for p in problems):
        raise BagRefused(problems)
    name, dt = str(bag), 1.0 / FPS
    cam_log = np.asarray(streams.log["camera"], np.int64)
    cam_stamp = np.asarray(streams.stamp["camera"], np.int64)
    images = streams.value["camera"]
    scan_t, scans = _sorted(streams, "scan")
    odom_t, odoms = _sorted(streams, "odom")
    goal_t, goals = _sorted(streams, "goal")
    mode_t, modes = _sorted(streams, "mode", by="log")
    cmd_stamped = np.asarray(streams.stamp["cmd_vel"], np.int64)
    cmd_log = np.asarray(streams.log["cmd_vel"], np.int64)
    # an unstamped command (Twist) is placed by receive time on the camera's stamp axis
    cmd_t = np.where(cmd_stamped >= 0, cmd_stamped,
                     np.interp(cmd_log, cam_log, cam_stamp).astype(np.int64) if len(cam_log) > 1 else cmd_log)
    order = np.argsort(cmd_t, kind="stable")
    cmd_t, cmds = cmd_t[order], np.asarray(streams.value["cmd_vel"], np.float64).reshape(-1, 2)[order]

    def where(topic_role: str, stamp_ns: int) -> tuple[str, float, float]:
        return opts.topic(topic_role), stamp_ns * 1e-9, (int(np.interp(stamp_ns, cam_stamp, cam_log)) - first_log) * 1e-9

    rows: list[dict[str, Any]] = []
    cuts: list[int] = []           # row indices starting a new episode
    last_taken, last_goal, last_pose = None, None, None
    force_new = False              # an unusable frame (stale input, unknown mount) ends the episode before it
    reported: set[tuple[str, str]] = set()   # a bad frame is said once; a stale input once per stretch
    stale_before: set[str] = set()
    for i in range(len(cam_stamp)):
        t = int(cam_stamp[i])
        if last_taken is not None and t >= last_taken and t - last_taken < 0.75 * dt * 1e9:
            continue
        new = last_taken is None or t < last_taken or force_new
        k_odom, k_scan = _latest(odom_t, t + 1_000_000), _latest(scan_t, t + 1_000_000)
        if k_odom < 0 or k_scan < 0:
            continue   # nothing to pair with yet (start of the bag)
        x, y, yaw, v, w = odoms[k_odom]
        k_goal = _latest(goal_t, t)
        goal, has_goal, goal_raw = (0.0, 0.0), False, None
        if k_goal >= 0:
            frame, gx, gy = goals[k_goal]
            goal_raw = (gx, gy)
            if frame in (opts.odom_frame, ""):
                goal, has_goal = (gx, gy), True
            elif frame == opts.base_frame:
                k = _latest(odom_t, int(goal_t[k_goal]) + 1_000_000)
                if k >= 0:
                    ox, oy, oyaw = odoms[k][:3]
                    goal = (ox + math.cos(oyaw) * gx - math.sin(oyaw) * gy, oy + math.sin(oyaw) * gx + math.cos(oyaw) * gy)
                    has_goal = True
            elif frame in streams.to_odom:   # e.g. map: the recorded map -> odom at the goal's stamp
                placed = _place(streams.to_odom[frame], int(goal_t[k_goal]), gx, gy)
                if placed is not None:
                    goal, has_goal = placed, True
                elif ("goal-early", frame) not in reported:
                    reported.add(("goal-early", frame))
                    problems.append(Problem(name, opts.topic("goal"), *where("goal", int(goal_t[k_goal]))[1:],
                                            "bad_frame", f"goal in frame {frame!r} before any /tf {frame} -> "
                                                         f"{opts.odom_frame} was recorded"))
            elif ("goal", frame) not in reported:
                reported.add(("goal", frame))
                problems.append(Problem(name, opts.topic("goal"), *where("goal", int(goal_t[k_goal]))[1:], "bad_frame",
                                        f"goal in frame {frame!r}: the recording has no /tf {frame} -> "
                                        f"{opts.odom_frame} (a localisation's); record /tf, or send goals in "
                                        f"{opts.odom_frame!r} or {opts.base_frame!r}"))
        if last_goal is not None and goal_raw is not None and math.dist(goal_raw, last_goal) > opts.goal_change_m:
            new = True
        if last_pose is not None and math.dist((x, y), last_pose) > opts.jump_m:
            new = True
        if not new and last_taken is not None and (t - last_taken) * 1e-9 > opts.max_gap_s:
            problems.append(Problem(name, opts.topic("camera"), *where("camera", last_taken)[1:], "gap",
                                    f"no camera frame for {(t - last_taken) * 1e-9:.2f} s (more than {opts.max_gap_s} s)"))
            new = True
        stale = [(role, tt) for role, tt in (("scan", scan_t[k_scan]), ("odom", odom_t[k_odom]))
                 if (t - int(tt)) * 1e-9 > opts.max_age_s]
        for role, tt in stale:
            if role in stale_before:
                continue
            problems.append(Problem(name, opts.topic(role), *where(role, t)[1:], "stale",
                                    f"latest message {(t - int(tt)) * 1e-9:.2f} s older than the camera frame "
                                    f"(more than {opts.max_age_s} s)"))
        stale_before = {role for role, _ in stale}
        frame_id, ranges, amin, ainc, rmin, rmax = scans[k_scan]
        mount = streams.frames.get(frame_id)
        if not isinstance(mount, Mount):
            if ("scan", frame_id) in reported:
                force_new = True
                continue
            reported.add(("scan", frame_id))
            problems.append(Problem(name, opts.topic("scan"), *where("scan", t)[1:], "bad_frame", str(mount)))
            force_new = True
            continue
        last_taken, last_goal, last_pose = t, goal_raw, (x, y)
        if stale:
            force_new = True
            continue   # the frame itself is not usable
        force_new = False
        lo, hi = int(np.searchsorted(cmd_t, t)), int(np.searchsorted(cmd_t, t + int(dt * 1e9)))
        if hi > lo:
            action, command = cmds[lo:hi].mean(0), cmds[hi - 1]
        else:
            k = lo - 1
            held = k >= 0 and (t - int(cmd_t[k])) * 1e-9 <= opts.cmd_timeout_s
            action = command = cmds[k] if held else np.zeros(2)
        k_mode = _latest(mode_t, int(cam_log[i]))
        if new:
            cuts.append(len(rows))
        rows.append({"t": t, "observation.image": images[i],
                     "observation.scan": scan_to_bins(ranges, amin, ainc, rmin, rmax, mount),
                     "observation.pose": (x, y, yaw), "observation.twist": (v, w), "observation.goal": goal,
                     "observation.has_goal": has_goal, "action": action, "action.command": command,
                     "mode": modes[k_mode] if k_mode >= 0 and modes[k_mode] in MODES else ""})
    episodes, notes = [], []
    bounds = cuts + [len(rows)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = rows[a:b]
        if not part:
            continue
        span = (part[-1]["t"] - part[0]["t"]) * 1e-9 + dt
        if span < opts.min_episode_s:
            notes.append(f"{name}: dropped an episode of {span:.1f} s at stamp {part[0]['t'] * 1e-9:.2f} s "
                         f"(shorter than {opts.min_episode_s} s)")
            continue
        ep = {k: np.asarray([r[k] for r in part]) for k in part[0] if k != "t"}
        ep["timestamp"] = np.asarray([(r["t"] - part[0]["t"]) * 1e-9 for r in part])
        ep["source"] = {"bag": name, "stamp_from_s": part[0]["t"] * 1e-9, "stamp_to_s": part[-1]["t"] * 1e-9}
        episodes.append(ep)
    return episodes, problems, notes


def find_bags(paths: Iterable[str | Path]) -> list[Path]:
    """rosbag2 recordings under ``paths`` (a bag folder with metadata.yaml, or folders holding them)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "metadata.yaml").is_file() or p.suffix in (".mcap", ".db3") and p.is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted({m.parent for m in p.rglob("metadata.yaml")})
            if not found:
                raise DatasetError(f"{p}: no rosbag2 recording in it (no metadata.yaml below it)")
            out.extend(found)
        else:
            raise DatasetError(f"{p}: no such recording")
    return out


__all__ = ["BagRefused", "BuildOptions", "DEFAULT_TOPICS", "Problem", "REQUIRED", "episodes_from_bag", "find_bags",
           "read_bag"]
