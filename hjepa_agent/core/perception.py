"""Perception: camera image + range scan -> Percept (latent, scan sectors, quality).

OpenCV does the preprocessing; the encoder is an ONNX model run through
:class:`hjepa_agent.core.models.OnnxModel`. The same ``preprocess_image`` and
``scan_to_bins`` are used to build training data, so training and runtime agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M, Percept

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


def preprocess_image(rgb: np.ndarray, max_upscale: float = 2.0) -> np.ndarray:
    """HxWx3 uint8 RGB -> (1, 3, IMAGE_SIZE, IMAGE_SIZE) float32 in [0, 1].

    Images of another size are resized with INTER_AREA when the aspect ratio is
    within 10 % of square and the upscale factor is at most ``max_upscale``;
    otherwise ImageError (resizing would distort what the encoder was trained on).
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageError(f"expected HxWx3 uint8, got shape {rgb.shape} dtype {rgb.dtype}")
    h, w = rgb.shape[:2]
    if (h, w) != (IMAGE_SIZE, IMAGE_SIZE):
        aspect = w / h
        if not 0.9 <= aspect <= 1.1:
            raise ImageError(f"image {w}x{h} has aspect {aspect:.2f}; encoder needs ~square images")
        if IMAGE_SIZE / min(h, w) > max_upscale:
            raise ImageError(f"image {w}x{h} too small to upscale to {IMAGE_SIZE}x{IMAGE_SIZE}")
        rgb = cv2.resize(rgb, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    x = rgb.astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def scan_to_bins(ranges: np.ndarray, angle_min: float, angle_increment: float,
                 range_min: float, range_max: float) -> np.ndarray:
    """Minimum range per sector, shape (N_SCAN_BINS,), metres, clipped to SCAN_RANGE_MAX_M.

    Sector k spans [-pi + k*2pi/N, -pi + (k+1)*2pi/N) in the sensor frame. Readings
    outside [range_min, range_max] or non-finite count as 'no return' (SCAN_RANGE_MAX_M).
    Sectors no beam falls into read SCAN_RANGE_MAX_M.
    """
    r = np.asarray(ranges, dtype=np.float32)
    valid = np.isfinite(r) & (r >= range_min) & (r <= range_max)
    r = np.where(valid, np.minimum(r, SCAN_RANGE_MAX_M), SCAN_RANGE_MAX_M)
    angles = angle_min + angle_increment * np.arange(r.size, dtype=np.float64)
    wrapped = (angles + math.pi) % (2.0 * math.pi)
    idx = np.minimum((wrapped / (2.0 * math.pi) * N_SCAN_BINS).astype(np.int64), N_SCAN_BINS - 1)
    bins = np.full(N_SCAN_BINS, SCAN_RANGE_MAX_M, dtype=np.float32)
    np.minimum.at(bins, idx, r)
    return bins


def image_quality(rgb: np.ndarray, previous: np.ndarray | None) -> tuple[float, str]:
    """Cheap image health score in [0, 1] and the reason when it is low.

    Low when the image is nearly black or saturated, flat (no contrast), or
    bit-identical to the previous frame (a frozen camera).
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    mean = float(gray.mean())
    std = float(gray.std())
    if mean < 8.0:
        return 0.0, "blackout"
    if mean > 250.0:
        return 0.0, "saturated"
    if std < 2.0:
        return 0.1, "flat"
    if previous is not None and previous.shape == rgb.shape and np.array_equal(previous, rgb):
        return 0.2, "frozen"
    return 1.0, ""


IMAGE_STILL_K = 10
"""Frames between the two images of :func:`image_change` (1 s at the 10 Hz camera)."""


def image_change(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Mean absolute difference (grey levels) between images (..., 3, H, W) uint8 taken IMAGE_STILL_K
    frames apart; shape (...) (a float for single images). A frozen camera gives exactly 0."""
    d = np.abs(np.asarray(now, np.float32) - np.asarray(before, np.float32)).mean(axis=(-3, -2, -1))
    return d if np.ndim(d) else float(d)


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
    appearance_stats: tuple[np.ndarray, np.ndarray] | None = None
    """(mean (26,), precision (26, 26)) of appearance_features on the world model's training images:
    with them each percept carries appearance_log; without, 0.0."""
    scan_bins: np.ndarray | None = None
    scan_stamp_s: float = -math.inf
    _previous: np.ndarray | None = None
    _history: list[np.ndarray] = field(default_factory=list)
    """The last IMAGE_STILL_K preprocessed uint8 images, oldest first."""

    def on_scan(self, stamp_s: float, ranges: np.ndarray, angle_min: float, angle_increment: float,
                range_min: float, range_max: float) -> None:
        """Store the sectors of a new scan."""
        self.scan_bins = scan_to_bins(ranges, angle_min, angle_increment, range_min, range_max)
        self.scan_stamp_s = stamp_s

    def on_image(self, stamp_s: float, rgb: np.ndarray, scan_max_age_s: float) -> Percept:
        """Encode one image into a Percept with the latest scan.

        A scan older than ``scan_max_age_s`` (or none yet) gives sectors of zero
        range, which downstream reads as 'blocked everywhere': missing range data
        never looks like free space. Raises ImageError for unusable images.
        """
        x = preprocess_image(rgb)
        fresh = self.scan_bins is not None and (stamp_s - self.scan_stamp_s) <= scan_max_age_s
        bins = self.scan_bins if fresh else np.zeros(N_SCAN_BINS, dtype=np.float32)
        if self.encoder_reads_scan:
            out = self.encoder(x, (bins / SCAN_RANGE_MAX_M)[None].astype(np.float32))
        else:
            out = self.encoder(x)
        z = np.asarray(out, dtype=np.float32).reshape(-1)
        if z.shape != (N_LATENT,) or not np.all(np.isfinite(z)):
            raise ImageError(f"encoder returned shape {z.shape} or non-finite values")
        quality, _ = image_quality(rgb, self._previous)
        self._previous = rgb
        image_u8 = (x[0] * 255.0 + 0.5).astype(np.uint8)  # exact: the training data's images
        noise_log = math.log(float(image_noise_sigma(image_u8)) + 1e-3)
        look = 0.0 if self.appearance_stats is None else float(appearance_score(image_u8, *self.appearance_stats))
        change = image_change(image_u8, self._history[0]) if len(self._history) == IMAGE_STILL_K else -1.0
        self._history = self._history[-(IMAGE_STILL_K - 1):] + [image_u8]
        return Percept(stamp_s, z, bins.copy(), quality, noise_log, look, change)


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


def appearance_features(images: np.ndarray) -> np.ndarray:
    """Global look of images (N, 3, H, W) uint8 (channels first, RGB) -> (N, 14) float32.

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
    pct = np.percentile(grey, (10, 50, 90), axis=1).T
    edge = np.abs(np.diff(x.mean(1), axis=2)).mean(axis=(1, 2))
    floor = x[:, :, -x.shape[2] // 4:].mean(axis=(1, 2, 3))
    hists = np.empty((n, 12), np.float32)
    u8 = np.asarray(images, dtype=np.uint8).reshape(n, 3, x.shape[2], x.shape[3])
    for i in range(n):
        hsv = cv2.cvtColor(np.ascontiguousarray(u8[i].transpose(1, 2, 0)), cv2.COLOR_RGB2HSV).reshape(-1, 3)
        h, sv, v = hsv[:, 0].astype(np.int64) * 8 // 180, hsv[:, 1] / 255.0, hsv[:, 2].astype(np.int64) * 4 // 256
        hists[i, :8] = np.bincount(h % 8, weights=sv, minlength=8) / len(h)
        hists[i, 8:] = np.bincount(v, minlength=4) / len(v)
    out = np.concatenate([flat.mean(2), flat.std(2), chroma, sat[:, None], pct, edge[:, None], floor[:, None],
                          hists], axis=1).astype(np.float32)
    return out[0] if single else out


def appearance_score(images: np.ndarray, mean: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """log((f - mean)^T prec (f - mean)) of appearance_features(images) (N,) (a float for one image);
    NaN when mean/prec are empty (models trained before the score existed)."""
    f = appearance_features(images)
    if len(mean) == 0:
        return np.full(f.shape[:-1], np.nan, np.float32) if f.ndim == 2 else float("nan")
    d = f - mean
    m = np.einsum("...i,ij,...j->...", d, prec, d)
    return np.log(m + 1e-9).astype(np.float32) if f.ndim == 2 else float(np.log(m + 1e-9))
