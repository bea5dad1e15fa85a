"""driver node: the simulator acting as a real robot's drivers, for `hjepa-agent rehearse`.

The same PyBullet world as the sim node, presented the way a robot's own drivers present it (a driver
profile, hjepa_agent/sim/profile.py): stamped with the system clock (no /clock: a robot has none),
advanced in real time by its caller, publishing at the profile's rates and in its formats (the camera's
size, encoding and transport; the command type it takes on cmd_vel; no motor temperature or no battery
where the base has none), on the topic names its drivers use.

Publishes (names as the profile says): camera/image_raw (sensor_msgs/Image) or
           camera/image_raw/compressed (sensor_msgs/CompressedImage), scan, odom, joint_states,
           battery_state, motor_temperature, goal_pose, /diagnostics.
Subscribes: cmd_vel (Twist or TwistStamped, as the profile says), agent/bridge/output, base_stop.
Deliberate faults (:class:`DriverFaults`, none by default; what `hjepa-agent check` must catch): stamps lagging
           the system clock, a scan frame the URDF does not know, topics under other names, a cmd_vel type other
           than the profile's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from hjepa_agent.nodes.codec import time_ns, to_time
from hjepa_agent.nodes.sim import SimNode
from hjepa_agent.sim.profile import DriverProfile
from hjepa_agent.sim.sensors import TICK_S, noisy_image


def encode_frame(rgb: np.ndarray, width: int, height: int, encoding: str) -> tuple[bytes, int]:
    """An RGB render scaled to ``width`` x ``height`` in ``encoding``: (data, step)."""
    img = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR) if rgb.shape[:2] != (height, width) else rgb
    conv = {"rgb8": None, "bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA, "bgra8": cv2.COLOR_RGB2BGRA,
            "mono8": cv2.COLOR_RGB2GRAY}[encoding]
    out = img if conv is None else cv2.cvtColor(img, conv)
    out = np.ascontiguousarray(out)
    return out.tobytes(), int(out.strides[0])


def compress_frame(rgb: np.ndarray, width: int, height: int, fmt: str) -> tuple[bytes, str]:
    """An RGB render scaled to ``width`` x ``height`` and compressed as image_transport's compressed
    plugin does for a bgr8 image: (data, the format string it writes)."""
    img = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR) if rgb.shape[:2] != (height, width) else rgb
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 90] if fmt == "jpeg" else [])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {width}x{height} frame as {fmt}")
    return buf.tobytes(), f"bgr8; {fmt} compressed bgr8"


@dataclass(frozen=True)
class DriverFaults:
    """Ways for the drivers to misbehave (default: none): header stamps ``stamp_lag_s`` (s) behind the system
    clock; scans in ``scan_frame`` instead of the description's laser link; ``renames``: (topic, name) pairs,
    each topic published (or subscribed) under another name, ahead of the profile's own names; the base taking
    ``cmd_vel_type`` ("twist" or "twist_stamped") instead of the profile's."""

    stamp_lag_s: float = 0.0
    scan_frame: str = ""
    renames: tuple[tuple[str, str], ...] = ()
    cmd_vel_type: str = ""


class _Reframed:
    """A publisher whose messages go out with header.frame_id ``frame`` (a DriverFaults.scan_frame)."""

    def __init__(self, pub: Any, frame: str) -> None:
        self._inner, self._frame = pub, frame

    def publish(self, msg: Any) -> None:
        msg.header.frame_id = self._frame
        self._inner.publish(msg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class DriverNode(SimNode):
    """The simulated robot behind a driver profile (module docstring); ``faults``: deliberate misbehaviour."""

    def __init__(self, world, profile: DriverProfile, faults: DriverFaults | None = None, **kwargs) -> None:
        from rclpy.parameter import Parameter
        self.profile = profile
        self.driver_faults = faults or DriverFaults()
        if self.driver_faults.renames:   # first: rcl applies the first rule that matches a name
            renames = [a for t, name in self.driver_faults.renames for a in ("-r", f"{t}:={name}")]
            kwargs["cli_args"] = ["--ros-args", *renames, *(kwargs.get("cli_args") or [])]
        cmd_vel_type = self.driver_faults.cmd_vel_type or profile.cmd_vel_type
        overrides = list(kwargs.pop("parameter_overrides", []))
        overrides += [Parameter("use_sim_time", value=False), Parameter("cmd_vel_type", value=cmd_vel_type),
                      Parameter("image_transport", value=profile.camera.transport),
                      Parameter("motor_temperature", value=profile.temperature)]
        super().__init__(world, parameter_overrides=overrides, **kwargs)
        cam = self.robot.camera
        aspect, want = cam.width / cam.height, profile.camera.width / profile.camera.height
        if abs(aspect / want - 1.0) > 0.02:
            raise ValueError(f"profile {profile.name}: camera {profile.camera.width}x{profile.camera.height} has "
                             f"aspect {want:.3f}, but the robot description renders {cam.width}x{cam.height} "
                             f"({aspect:.3f}): give the description's camera the profile's aspect ratio")
        if profile.camera.transport == "compressed":
            self.pub_compressed = self.publisher("camera/image_raw/compressed")
        if self.driver_faults.scan_frame:
            self.pub_scan = _Reframed(self.pub_scan, self.driver_faults.scan_frame)
        self.publish_battery = profile.battery
        self._next: dict[str, float] = {}
        self.wall_offset_s = 0.0

    # -- time: the system clock, as a robot's drivers stamp -----------------------------------------
    @property
    def ros_time_s(self) -> float:
        """The system clock (s): what a robot's drivers stamp with (less DriverFaults.stamp_lag_s)."""
        return time.time() - self.driver_faults.stamp_lag_s

    def start_episode(self, scenario, seed: int) -> None:
        """Reset the world and the publishing schedule."""
        super().start_episode(scenario, seed)
        self._next = {"odom": 0.0, "scan": 0.0, "camera": 0.0, "slow": 0.0}

    def step_clock(self) -> None:
        """Step physics by one tick; nothing goes on /clock (a robot has no simulated clock)."""
        self.world.step(TICK_S)
        self.tick += 1

    def _due(self, what: str, rate_hz: float) -> bool:
        t = self.world.time_s
        if t + 1e-9 < self._next[what]:
            return False
        self._next[what] = max(self._next[what] + 1.0 / rate_hz, t)   # no burst after a stall
        return True

    def publish_due(self) -> int | None:
        """Publish what the profile's rates say is due now. Returns the camera stamp (ns) of a frame sent."""
        prof = self.profile
        stamp = to_time(self.ros_time_s)
        if self._due("odom", prof.odom_rate_hz):
            self._publish_odom(stamp)
        if self._due("slow", 2.0):
            self._publish_slow(stamp)
        if self._due("scan", prof.scan_rate_hz):
            self._publish_scan(stamp, self.world.scan())
        if self._due("camera", prof.camera.rate_hz):
            self._publish_image(stamp, noisy_image(self.world.render_camera(), self._rng))
            return time_ns(stamp)
        return None

    def _publish_image(self, stamp, rgb: np.ndarray) -> None:
        cam = self.profile.camera
        if cam.transport == "compressed":
            msg = CompressedImage()
            msg.data, msg.format = compress_frame(rgb, cam.width, cam.height, cam.format)
            pub = self.pub_compressed
        else:
            msg = Image()
            msg.height, msg.width, msg.encoding = cam.height, cam.width, cam.encoding
            data, msg.step = encode_frame(rgb, cam.width, cam.height, cam.encoding)
            msg.data = data
            pub = self.pub_image
        msg.header.stamp = stamp
        msg.header.frame_id = self.robot.camera.link
        ns = time_ns(stamp)
        self.camera_wall[ns] = time.perf_counter()
        if len(self.camera_wall) > 100:
            self.camera_wall.pop(next(iter(self.camera_wall)))
        self.last_camera_ns = ns
        pub.publish(msg)


__all__ = ["DriverFaults", "DriverNode", "TICK_S", "compress_frame", "encode_frame"]
