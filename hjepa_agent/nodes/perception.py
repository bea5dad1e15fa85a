"""perception node: camera image + scan -> percept (latent, scan sectors, quality, image noise, look).

Subscribes (through the input guard, nodes/topics.py INPUTS["perception"]): camera/image_raw
            (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, mono8) or, with image_transport compressed,
            camera/image_raw/compressed (sensor_msgs/CompressedImage: jpeg, png); scan (sensor_msgs/LaserScan).
            An image of any size from 16 px on its short side: the encoder sees its central square
            (core/perception.py preprocess_image).
Publishes:  agent/percept/early (sensor_msgs/JointState: the frame's latent and scan sectors) as soon as the
            image is encoded, then agent/percept (the same with the image statistics the ambiguity reads:
            quality, noise, look, change; computed after the callback has returned, GuardedNode.later, so
            the reflex path does not wait for them), layouts in nodes/codec.py; /diagnostics.
Parameters: models_dir, use_cuda, ego_model, robot (read-only; the manifest's robot fingerprint must be
            that of this robot description with this ego model: nodes/common.py declare_robot),
            encoder_model (read-only: "encoder", the foundation behaviour-cloned one (default), or
            "world_encoder", the JEPA encoder over camera + scan; the habitual node's latent_source must
            name the same one), scan_max_age_s [s]. With the world encoder each percept also carries the
            image's noise estimate, look score (core/look.py: the manifest's world_look, refused at start
            when its file is missing or altered; 0.0 for models without one) and 1-s change (the world
            model's image scores).
            urdf (read-only: the robot's URDF, empty = none) and base_frame (read-only, default base_link):
            the scanner's mount, base_frame -> the scan's frame_id, from the URDF's fixed joints (or tf2 where
            tf2_ros is installed and no urdf is given; nodes/mounts.py). The scan is binned into sectors
            from the base origin (core.perception.scan_to_bins); a scan in a frame with no known mount is
            rejected (bad_frame) with a message saying to give `urdf`; a scan in base_frame needs none.
            And the guard's (nodes/guard.py), image_transport (read-only: raw | compressed) among them.
Bad images (encoding, size, buffer, compressed data that does not decode) are rejected with a counted
reason; nothing is published for them.
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import CompressedImage, Image, LaserScan

from hjepa_agent.core.events import Cause
from hjepa_agent.core.models import load_encoder, load_world_encoder
from hjepa_agent.core.perception import ImageError, Perception, decode_compressed, decode_image
from hjepa_agent.core.look import load_look_model
from hjepa_agent.nodes.codec import early_percept_to_msg, percept_to_msg
from hjepa_agent.nodes.common import Diagnostics, declare, declare_ego_model, declare_robot, run_node
from hjepa_agent.nodes.guard import GuardedNode, Receipt
from hjepa_agent.nodes.mounts import SensorMounts
from hjepa_agent.nodes.topics import MAX_IMAGE_PIXELS, Rejected
from hjepa_agent.config.paths import models_dir as models_path


class PerceptionNode(GuardedNode):
    """Thin wrapper around core.perception.Perception."""

    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        models_dir = str(models_path(declare(self, "models_dir", "", "directory with manifest.yaml and ONNX "
                                                         "models (relative: from here, else the package's)")))
        use_cuda = declare(self, "use_cuda", True, "use CUDA when it truly works")
        self.scan_max_age_s = declare(self, "scan_max_age_s", 0.35, "max age of the scan fused with an image",
                                      unit="s", lo=0.01, hi=5.0)
        ego = declare_ego_model(self)
        which = declare(self, "encoder_model", "encoder", "encoder: 'encoder' or 'world_encoder'")
        if which == "encoder":
            self.core = Perception(load_encoder(models_dir, prefer_cuda=use_cuda, expected=declare_robot(self, ego)))
        elif which == "world_encoder":
            robot = declare_robot(self, ego)
            self.core = Perception(load_world_encoder(models_dir, prefer_cuda=use_cuda, expected=robot),
                                   encoder_reads_scan=True, look=load_look_model(models_dir, expected=robot))
        else:
            raise ValueError(f"encoder_model: must be 'encoder' or 'world_encoder', got {which!r}")
        self.mounts = SensorMounts(self)
        self.frames = 0
        self.pub_early = self.publisher("agent/percept/early")
        self.pub = self.publisher("agent/percept")
        self.subscribe("camera", self.on_image)
        self.subscribe("scan", self.on_scan)
        self.diag = Diagnostics(self)
        self.create_timer(1.0, self.report)

    def on_scan(self, msg: LaserScan, rx: Receipt) -> None:
        """Store the scan's sectors, binned from the base origin through the scanner's mount (the guard
        checked its angles and range window; a frame with no known mount is rejected, bad_frame)."""
        mount = self.mounts.mount(msg.header.frame_id)
        self.core.on_scan(rx.stamp_s, np.asarray(msg.ranges, dtype=np.float32),
                          msg.angle_min, msg.angle_increment, msg.range_min, msg.range_max, mount)

    def on_image(self, msg: Image | CompressedImage, rx: Receipt) -> None:
        """Decode (raw or compressed: the guard subscribed the one image_transport names), encode and
        publish; an image that does not decode or that the encoder cannot take is rejected with its reason."""
        try:
            if isinstance(msg, CompressedImage):
                rgb = decode_compressed(msg.data, msg.format, MAX_IMAGE_PIXELS)
            else:
                rgb = decode_image(msg.data, msg.height, msg.width, msg.encoding, msg.step)
            early, x = self.core.encode(rx.stamp_s, rgb, self.scan_max_age_s)
        except ImageError as exc:
            raise Rejected(Cause.BAD_LAYOUT, f"image: {exc}") from None
        self.frames += 1
        self.pub_early.publish(early_percept_to_msg(early))
        self.later(lambda: self.pub.publish(percept_to_msg(self.core.describe(early, rgb, x))), "image statistics")

    def report(self) -> None:
        """Publish /diagnostics (the guard adds its counters)."""
        n_rej = sum(sum(v for k, v in c.items() if k.startswith("rejected")) for c in self.input_counts().values())
        self.diag.publish("OK" if n_rej == 0 else "WARN", f"{self.frames} frames, {n_rej} rejected",
                          {"frames": self.frames})


def main() -> None:
    """Entry point: ros2 run hjepa_agent perception."""
    run_node(PerceptionNode)
