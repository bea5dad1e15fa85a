"""Perception: camera image + range scan -> Percept (latent, scan sectors, quality).

OpenCV does the preprocessing; the encoder is an ONNX model run through
:class:`hjepa_agent.core.models.OnnxModel`. The same ``preprocess_image`` and
``scan_to_bins`` are used to build training data, so training and runtime agree.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from hjepa_agent.core.types import (MIN_RETURN_M, N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M, UNKNOWN_RANGE_M,
                                    EarlyPercept, Mount, Percept, sector_index)

if TYPE_CHECKING:
    from hjepa_agent.core.look import LookModel

IMAGE_SIZE = 64
"""Encoder input is (1, 3, IMAGE_SIZE, IMAGE_SIZE) float32 RGB in [0, 1]."""
SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


class ImageError(ValueError):
    """An image cannot be used (wrong encoding, size or content); nothing is produced."""


def decode_image(data: bytes | np.ndarray, height: int, width: int, encoding: str, step: int) -> np.ndarray:
    """Turn raw sensor_msgs/Image fields into an HxWx3 uint8 RGB array.

    Raises ImageError on an unsupported encoding or a buffer whose size disagrees
    with height, width and step.
    """
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageError(f"unsupported encoding {encoding!r} (supported: {', '.join(SUPPORTED_ENCODINGS)})")
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}[encoding]
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image {width}x{height}")
    if step < width * channels:
        raise ImageError(f"step {step} < width*channels {width * channels}")
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if buf.size != step * height:
        raise ImageError(f"buffer has {buf.size} bytes, expected step*height = {step * height}")
    rows = buf.reshape(height, step)[:, : width * channels]
    img = rows.reshape(height, width, channels)
    if encoding == "rgb8":
        return np.ascontiguousarray(img)
    if encoding == "bgr8":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB)
    if encoding == "bgra8":
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)


COMPRESSED_FORMATS = ("jpeg", "png")
"""The sensor_msgs/CompressedImage formats decoded (what image_transport's compressed plugin writes)."""
_MAGIC = {"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"}
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # start-of-frame markers (not DHT, JPG, DAC)


def compressed_format(fmt: str) -> tuple[str, bool]:
    """Parse a CompressedImage ``format``: (the compression, "jpeg" or "png"; whether the decoded
    channels are RGB rather than OpenCV's BGR).

    image_transport's compressed plugin writes "<source encoding>; <jpeg|png> compressed <encoding the
    bytes hold>" (e.g. "rgb8; jpeg compressed bgr8"); cameras that compress themselves write "jpeg" or
    "png". The bytes hold BGR unless the encoding after "compressed" is rgb8/rgba8/rgb16/rgba16.
    Raises ImageError for anything else (theora, compressedDepth, an empty format)."""
    described = fmt.strip().lower().split(";", 1)[-1]   # "jpeg compressed bgr8", or "jpeg"
    codec, _, held = described.strip().partition(" compressed")
    if codec not in COMPRESSED_FORMATS:
        raise ImageError(f"compressed format {fmt[:60]!r} is not supported (supported: "
                         f"{', '.join(COMPRESSED_FORMATS)}, as image_transport's compressed plugin writes them, "
                         f"e.g. 'rgb8; jpeg compressed bgr8')")
    return codec, held.strip().startswith("rgb")


def compressed_image_size(data: bytes | np.ndarray, codec: str) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame or a PNG's IHDR, read without decoding the pixels.
    Raises ImageError when the bytes are not a ``codec`` stream or the header cannot be found."""
    buf = bytes(data[:65536]) if codec == "png" else bytes(data)
    if not buf.startswith(_MAGIC[codec]):
        raise ImageError(f"the data is not a {codec} stream (it starts {buf[:8].hex() or 'empty'})")
    if codec == "png":
        if len(buf) < 24 or buf[12:16] != b"IHDR":
            raise ImageError("png without an IHDR header")
        return int.from_bytes(buf[16:20], "big"), int.from_bytes(buf[20:24], "big")
    i = 2
    while i + 4 <= len(buf):   # walk the marker segments up to the start of frame
        if buf[i] != 0xFF:
            raise ImageError(f"jpeg: no marker at byte {i}")
        marker = buf[i + 1]
        if marker == 0xFF:   # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            if i + 9 > len(buf):
                break
            return int.from_bytes(buf[i + 7:i + 9], "big"), int.from_bytes(buf[i + 5:i + 7], "big")
        if marker == 0xDA or marker == 0xD9:   # start of scan or end of image before any frame header
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:   # standalone markers
            i += 2
            continue
        i += 2 + int.from_bytes(buf[i + 2:i + 4], "big")
    raise ImageError("jpeg without a frame header (SOF) before its image data")


def decode_compressed(data: bytes | np.ndarray, fmt: str, max_pixels: int) -> np.ndarray:
    """sensor_msgs/CompressedImage data and format -> HxWx3 uint8 RGB (cv2.imdecode).

    The format must be one of COMPRESSED_FORMATS (:func:`compressed_format`), the bytes must be that
    format's stream, and the size in its header must be at most ``max_pixels``: checked before the
    pixels are decoded, so a small message cannot make the decoder allocate a huge image. Raises
    ImageError for any of these, and for bytes that do not decode to an image of the header's size."""
    codec, rgb_order = compressed_format(fmt)
    raw = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
    w, h = compressed_image_size(raw, codec)
    if w <= 0 or h <= 0 or w * h > max_pixels:
        raise ImageError(f"{codec} image {w}x{h}: size must be 1..{max_pixels} pixels")
    if codec == "jpeg" and b"\xff\xd9" not in raw[-32:]:
        raise ImageError("jpeg without its end-of-image marker: truncated")
    img = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None or img.shape[:2] != (h, w):
        got = "nothing" if img is None else f"{img.shape[1]}x{img.shape[0]}"
        raise ImageError(f"{codec} data does not decode (header says {w}x{h}, decoded {got}): corrupt or truncated")
    return np.ascontiguousarray(img) if rgb_order else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


MIN_IMAGE_SIDE = 16
"""Images whose short side is below this (px) are refused: upscaled more than 4x to IMAGE_SIZE they
hold too little for the encoder."""


def preprocess_image(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB of any size with both sides >= MIN_IMAGE_SIDE -> (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    float32 in [0, 1].

    The rule: crop the largest central square (640x480 -> its central 480x480, 480x640 -> its central
    480x480 rows; the encoder sees the middle of the picture, so a wide camera's horizontal field of view
    shrinks to its vertical one), then resize it to IMAGE_SIZE with cv2.INTER_AREA when shrinking,
    cv2.INTER_LINEAR when enlarging, and not at all when it already is IMAGE_SIZE (a 64x64 image, as the
    simulator renders and the shipped models were trained on, goes through untouched). Raises ImageError
    for another shape or dtype, or a short side below MIN_IMAGE_SIDE.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected HxWx3 uint8, got shape {rgb.shape} dtype {rgb.dtype}")
    h, w = rgb.shape[:2]
    side = min(h, w)
    if side < MIN_IMAGE_SIDE:
        raise ImageError(f"image {w}x{h} too small: its short side must be at least {MIN_IMAGE_SIDE} px")
    if h != w:
        top, left = (h - side) // 2, (w - side) // 2
        rgb = rgb[top:top + side, left:left + side]
    if side != IMAGE_SIZE:
        rgb = cv2.resize(rgb, (IMAGE_SIZE, IMAGE_SIZE),
                         interpolation=cv2.INTER_AREA if side > IMAGE_SIZE else cv2.INTER_LINEAR)
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def scan_in_base(ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float,
                 range_max: float, mount: Mount | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scan's beams seen from the base origin: (angles (n,) rad, distances (n,) m, returned (n,) bool).

    Beam i leaves the sensor at ``angle_min + i * angle_increment`` in the sensor's plane; ``mount``
    is the sensor frame's pose in the base frame (None: at the base origin, level, facing +x). A beam
    with a return (a finite range in [range_min, range_max]) reads the angle and the distance of its
    return point from the base origin. A beam without one (NaN, +-inf, or outside the window: REP-117's
    "no return") reads the direction, from the base origin, of the point at its reach
    min(range_max, SCAN_RANGE_MAX_M), and its distance is that reach (returned False). A sensor on the
    base's z axis and level (Mount.planar_yaw_only) keeps its ranges (float32) and angles + yaw exactly.
    ValueError on a non-finite angle_min or angle_increment."""
    if not (math.isfinite(angle_min) and math.isfinite(angle_increment)):
        raise ValueError(f"scan angles must be finite, got angle_min={angle_min}, angle_increment={angle_increment}")
    r = np.asarray(ranges, dtype=np.float32).reshape(-1)
    returned = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    angles = angle_min + angle_increment * np.arange(r.size, dtype=np.float64)
    if mount is None or mount.planar_yaw_only:
        yaw = 0.0 if mount is None else mount.yaw_rad
        return (angles + yaw if yaw else angles), r, returned
    reach = np.where(returned, r, min(float(range_max), SCAN_RANGE_MAX_M)).astype(np.float64)
    x, y = mount.to_base_xy(reach * np.cos(angles), reach * np.sin(angles))
    return np.arctan2(y, x), np.hypot(x, y), returned


def beams_in_base(ranges: np.ndarray, angle_min: float, angle_increment: float, range_min: float,
                  range_max: float, mount: Mount | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """A scan as beams from the base origin, for what reads raw beams (the planner's navfield and
    beam_points): (angles (n,) rad, ranges (n,) m, range_min, range_max). Without a mount, or with a
    Mount.planar_yaw_only one, the scan's own ranges and window, its angles turned by the yaw. Otherwise
    (:func:`scan_in_base`) a return reads its point's angle and distance from the base origin, the
    window widened by the mount's offset so that it stays a return; a beam without one reads +inf at its
    direction (a NaN beam stays NaN: invalid, skipped)."""
    angles, dist, returned = scan_in_base(ranges, angle_min, angle_increment, range_min, range_max, mount)
    if mount is None or mount.planar_yaw_only:
        return angles, np.asarray(dist, dtype=np.float64), float(range_min), float(range_max)
    raw = np.asarray(ranges, dtype=np.float64).reshape(-1)
    out = np.where(returned, dist, np.where(np.isnan(raw), np.nan, np.inf))
    offset = math.hypot(mount.x_m, mount.y_m)
    return angles, out, max(0.0, float(range_min) - offset), float(range_max) + offset


def scan_to_bins(ranges: np.ndarray, angle_min: float, angle_increment: float,
                 range_min: float, range_max: float, mount: Mount | None = None) -> np.ndarray:
    """Minimum range per sector, shape (N_SCAN_BINS,) float32, metres from the base origin, clipped to
    [MIN_RETURN_M, SCAN_RANGE_MAX_M]; UNKNOWN_RANGE_M where no beam covered the sector.

    Sector k spans [-pi + k*2pi/N, -pi + (k+1)*2pi/N) in the base frame (core.types.sector_index).
    Each beam is placed from the base origin by :func:`scan_in_base` (``mount``: the sensor frame's
    pose in the base frame; None = at the base origin, facing +x) and covers the sector of its
    direction: a return puts its distance there, a beam without a return (NaN, +-inf, outside
    [range_min, range_max]) reads SCAN_RANGE_MAX_M (free) there. A sector no beam covered is unknown
    (UNKNOWN_RANGE_M), never free: a 270-deg scanner's rear sectors. A 360-deg scan from the base
    origin, unrotated, gives what this function gave before mounts existed (what the shipped models
    were trained on), except that a return under MIN_RETURN_M now reads MIN_RETURN_M.
    """
    angles, dist, returned = scan_in_base(ranges, angle_min, angle_increment, range_min, range_max, mount)
    lo, hi = np.float32(MIN_RETURN_M), np.float32(SCAN_RANGE_MAX_M)
    r = np.where(returned, np.clip(np.asarray(dist, dtype=np.float32), lo, hi), hi)
    idx = sector_index(angles)
    bins = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, dtype=np.float32)
    np.minimum.at(bins, idx, r)
    covered = np.zeros(N_SCAN_BINS, dtype=bool)
    covered[idx] = True
    bins[~covered] = UNKNOWN_RANGE_M
    return bins


def image_quality(rgb: np.ndarray, previous: np.ndarray | None) -> tuple[float, str]:
    """Cheap image health score in [0, 1] and the reason when it is low.

    Low when the image is nearly black or saturated, flat (no contrast), or
    bit-identical to the previous frame (a frozen camera).
    """
    m, s = cv2.meanStdDev(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    mean, std = float(m[0, 0]), float(s[0, 0])
    if mean < 8.0:
        return 0.0, "blackout"
    if mean > 250.0:
        return 0.0, "saturated"
    if std < 2.0:
        return 0.1, "flat"
    if previous is not None and previous.shape == rgb.shape and np.array_equal(previous, rgb):
        return 0.2, "frozen"
    return 1.0, ""


IMAGE_STILL_S = 1.0
"""Time (s) between the two images of :func:`image_change`: what the world model's image_stillness
score was trained and calibrated with (IMAGE_STILL_K frames of the 10 Hz training camera)."""
IMAGE_STILL_TOLERANCE_S = 0.15
"""At run time the earlier image is the one closest to IMAGE_STILL_S before the new one, at most this
far (s) from it (:class:`ImageHistory`); none that close: no change score."""
IMAGE_STILL_K = 10
"""IMAGE_STILL_S in frames of the training data's 10 Hz camera (the simulator's): training and
calibration (core/world_model.py frame_scores) pair images this many frames apart. Only there: a
camera at another rate is paired by time (ImageHistory)."""


def image_change(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Mean absolute difference (grey levels) between images (..., 3, H, W) uint8 taken IMAGE_STILL_S
    apart; shape (...) (a float for single images). A frozen camera gives exactly 0."""
    d = np.abs(np.asarray(now, np.float32) - np.asarray(before, np.float32)).mean(axis=(-3, -2, -1))
    return d if np.ndim(d) else float(d)


@dataclass
class ImageHistory:
    """The recent preprocessed images (3, H, W) uint8 with their stamps (s), oldest first: what
    :meth:`change` pairs a new image with, by time, so a camera at any rate gives the score a 10 Hz
    one gives. Keeps what arrived in the last ``span_s + tolerance_s``, at most one image per
    ``min_gap_s`` (a 30 Hz camera: 35 images of 12 KB; a faster one is thinned, not the span cut)."""

    span_s: float = IMAGE_STILL_S
    tolerance_s: float = IMAGE_STILL_TOLERANCE_S
    min_gap_s: float = 0.02
    _kept: deque = field(default_factory=deque)

    def change(self, stamp_s: float, image_u8: np.ndarray) -> float:
        """:func:`image_change` between ``image_u8`` (taken at ``stamp_s``) and the kept image whose
        stamp is closest to ``stamp_s - span_s``, if one is within ``tolerance_s`` of it (the older on
        a tie); -1.0 when none is (the first second, or after a gap). Then keeps ``image_u8``. A stamp
        not after the last kept one (a clock stepped back) starts the history again."""
        kept = self._kept
        if kept and stamp_s <= kept[-1][0]:
            kept.clear()
        while kept and stamp_s - kept[0][0] > self.span_s + self.tolerance_s:
            kept.popleft()
        target = stamp_s - self.span_s
        best = min(kept, key=lambda item: abs(item[0] - target), default=None)
        change = -1.0
        if best is not None and abs(best[0] - target) <= self.tolerance_s:
            change = float(image_change(image_u8, best[1]))
        if not kept or stamp_s - kept[-1][0] >= self.min_gap_s:
            kept.append((stamp_s, image_u8))
        return change


class Encoder(Protocol):
    """Maps (1, 3, 64, 64) float32 [and, for the world encoder, (1, N_SCAN_BINS) scan / range max]
    to (1, N_LATENT) float32."""

    def __call__(self, *x: np.ndarray) -> np.ndarray: ...


@dataclass
class Perception:
    """Stateful perception: remembers the previous frame (frozen-camera check) and the latest scan sectors.

    ``encoder_reads_scan``: the encoder takes the scan sectors / SCAN_RANGE_MAX_M as a second
    input (the JEPA world encoder), instead of the image alone (the behaviour-cloned encoder)."""

    encoder: Encoder
    encoder_reads_scan: bool = False
    look: LookModel | None = None
    """The world model's look model (core/look.py load_look_model): with it each percept carries the
    image's look score as appearance_log; without (models that have none), 0.0."""
    scan_bins: np.ndarray | None = None
    scan_stamp_s: float = -math.inf
    _previous: np.ndarray | None = None
    _history: ImageHistory = field(default_factory=ImageHistory)
    """The recent preprocessed uint8 images and their stamps (the 1-s image change)."""

    def on_scan(self, stamp_s: float, ranges: np.ndarray, angle_min: float, angle_increment: float,
                range_min: float, range_max: float, mount: Mount | None = None) -> None:
        """Store the sectors of a new scan (:func:`scan_to_bins`; ``mount``: the scanner's pose in the
        base frame, None = at the base origin facing +x)."""
        self.scan_bins = scan_to_bins(ranges, angle_min, angle_increment, range_min, range_max, mount)
        self.scan_stamp_s = stamp_s

    def on_image(self, stamp_s: float, rgb: np.ndarray, scan_max_age_s: float) -> Percept:
        """Encode one image into a Percept with the latest scan: :meth:`encode` then :meth:`describe`.

        A scan older than ``scan_max_age_s`` (or none yet) makes every sector unknown
        (UNKNOWN_RANGE_M), which downstream counts as occupied beyond the footprint: missing range
        data never looks like free space. Raises ImageError for unusable images.
        """
        early, x = self.encode(stamp_s, rgb, scan_max_age_s)
        return self.describe(early, rgb, x)

    def encode(self, stamp_s: float, rgb: np.ndarray, scan_max_age_s: float) -> tuple[EarlyPercept, np.ndarray]:
        """What the reflex path needs of one image: (its EarlyPercept: latent and the latest scan's sectors,
        stale ones unknown as in :meth:`on_image`; the preprocessed image, for :meth:`describe`). Raises
        ImageError for unusable images."""
        x = preprocess_image(rgb)
        fresh = self.scan_bins is not None and (stamp_s - self.scan_stamp_s) <= scan_max_age_s
        bins = self.scan_bins if fresh else np.full(N_SCAN_BINS, UNKNOWN_RANGE_M, dtype=np.float32)
        if self.encoder_reads_scan:
            out = self.encoder(x, (bins / SCAN_RANGE_MAX_M)[None].astype(np.float32))
        else:
            out = self.encoder(x)
        z = np.asarray(out, dtype=np.float32).reshape(-1)
        if z.shape != (N_LATENT,) or not np.all(np.isfinite(z)):
            raise ImageError(f"encoder returned shape {z.shape} or non-finite values")
        return EarlyPercept(stamp_s, z, bins.copy()), x

    def describe(self, early: EarlyPercept, rgb: np.ndarray, x: np.ndarray) -> Percept:
        """The whole Percept of an image :meth:`encode` took (``rgb`` the image, ``x`` its preprocessed
        form): the early part with the image statistics only the ambiguity reads (quality, noise, look,
        1-s change). Called once per encoded image, in their order (the frozen-camera check and the
        change compare with earlier images)."""
        quality, _ = image_quality(rgb, self._previous)
        self._previous = rgb
        image_u8 = (x[0] * 255.0 + 0.5).astype(np.uint8)  # exact: the training data's images
        noise_log = math.log(float(image_noise_sigma(image_u8)) + 1e-3)
        look = 0.0 if self.look is None else float(self.look.score(image_u8))
        change = self._history.change(early.stamp_s, image_u8)
        return Percept(early.stamp_s, early.latent, early.scan_bins, quality, noise_log, look, change)


_NOISE_KERNEL_NORM = math.sqrt(math.pi / 2.0) / 6.0


def image_noise_sigma(images: np.ndarray) -> np.ndarray:
    """Per-image sensor-noise estimate (grey levels), Immerkaer's fast method.

    ``images``: (..., 3, H, W) or (..., H, W, 3) uint8 (channel axis detected by size 3), or
    (..., H, W) grey. The grey image is filtered with the 3x3 kernel [[1,-2,1],[-2,4,-2],[1,-2,1]],
    which cancels smooth image structure, and sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |response|.
    Returns an array of the leading shape (a float for a single image)."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim >= 3 and x.shape[-3] == 3 and x.shape[-1] != 3:
        x = x.mean(axis=-3)
    elif x.ndim >= 3 and x.shape[-1] == 3:
        x = x.mean(axis=-1)
    c = x[..., 1:-1, 1:-1]
    resp = (4.0 * c - 2.0 * (x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:])
            + x[..., :-2, :-2] + x[..., :-2, 2:] + x[..., 2:, :-2] + x[..., 2:, 2:])
    return _NOISE_KERNEL_NORM * np.abs(resp).mean(axis=(-2, -1))


APPEARANCE_FEATURES = (("mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "chroma_r", "chroma_g",
                        "saturation", "bright_p10", "bright_p50", "bright_p90", "edge", "floor_bright")
                       + tuple(f"hue_{k}" for k in range(8)) + tuple(f"value_{k}" for k in range(4)))
"""Names of :func:`appearance_features`' columns."""


_HUE_BIN = ((np.arange(256) * 8 // 180) % 8).astype(np.intp)
"""OpenCV's 8-bit hue (0..179) -> one of 8 bins, by table (the frame's look is on the reflex path)."""
_VALUE_BIN = (np.arange(256) * 4 // 256).astype(np.intp)
_SATURATION = np.arange(256) / 255.0


def _percentiles(x: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """np.percentile(x, qs, axis=1).T (its default, linear interpolation) for rows x (N, M), bit for bit,
    from the two order statistics around each percentile instead of a sort (a third of the time)."""
    m = x.shape[-1]
    at = np.asarray(qs, np.float64) / 100.0 * (m - 1)
    lo = np.floor(at).astype(np.intp)
    hi = np.minimum(lo + 1, m - 1)
    part = np.partition(x, np.unique(np.concatenate([lo, hi])), axis=-1)
    a, b = part[..., lo], part[..., hi]
    frac = at - lo
    diff = b - a
    return np.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac)


def appearance_features(images: np.ndarray) -> np.ndarray:
    """Global look of images (N, 3, H, W) uint8 (channels first, RGB) -> (N, 26) float32.

    Lighting and colour statistics the world latent is trained to ignore (see the world model's
    look augmentation) but which say whether the camera sees a world like the training one:
    per-channel mean and std, mean chromaticity r/(r+g+b), g/(r+g+b), mean saturation
    (max - min channel), brightness percentiles 10/50/90, mean absolute horizontal gradient
    (texture scale), the mean brightness of the bottom quarter (the floor), a saturation-weighted
    histogram of hue (8 bins) and a histogram of HSV value (4 bins). All in [0, 1].
    A single image (3, H, W) gives shape (26,)."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    single = x.ndim == 3
    if single:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"appearance_features: expected (N, 3, H, W) images, got shape {x.shape}")
    n = x.shape[0]
    flat = x.reshape(n, 3, -1)
    grey = flat.mean(1)
    total = flat.sum(1) + 1e-3
    chroma = (flat[:, :2] / total[:, None]).mean(2)
    sat = (flat.max(1) - flat.min(1)).mean(1)
    pct = _percentiles(grey, (10, 50, 90))
    edge = np.abs(np.diff(x.mean(1), axis=2)).mean(axis=(1, 2))
    floor = x[:, :, -x.shape[2] // 4:].mean(axis=(1, 2, 3))
    hists = np.empty((n, 12), np.float32)
    u8 = np.asarray(images, dtype=np.uint8).reshape(n, 3, x.shape[2], x.shape[3])
    for i in range(n):
        hsv = cv2.cvtColor(np.ascontiguousarray(u8[i].transpose(1, 2, 0)), cv2.COLOR_RGB2HSV).reshape(-1, 3)
        hists[i, :8] = np.bincount(_HUE_BIN[hsv[:, 0]], weights=_SATURATION[hsv[:, 1]], minlength=8) / len(hsv)
        hists[i, 8:] = np.bincount(_VALUE_BIN[hsv[:, 2]], minlength=4) / len(hsv)
    out = np.concatenate([flat.mean(2), flat.std(2), chroma, sat[:, None], pct, edge[:, None], floor[:, None],
                          hists], axis=1).astype(np.float32)
    return out[0] if single else out

