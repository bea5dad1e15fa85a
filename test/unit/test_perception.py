"""Perception preprocessing: image decoding errors, resizing rules, scan sectors, quality flags."""
import math

import numpy as np
import pytest

from hjepa_agent.core.perception import (IMAGE_SIZE, ImageError, Perception, decode_image, image_quality,
                                         preprocess_image, scan_to_bins)
from hjepa_agent.core.types import N_LATENT, N_SCAN_BINS, SCAN_RANGE_MAX_M


def test_decode_rgb_and_bgr_agree():
    rgb = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    a = decode_image(rgb.tobytes(), 8, 8, "rgb8", 24)
    b = decode_image(rgb[:, :, ::-1].copy().tobytes(), 8, 8, "bgr8", 24)
    assert np.array_equal(a, rgb) and np.array_equal(b, rgb)


@pytest.mark.parametrize("args, words", [
    ((b"\0" * 192, 8, 8, "32FC1", 32), "unsupported encoding"),
    ((b"\0" * 100, 8, 8, "rgb8", 24), "buffer has 100 bytes"),
    ((b"", 0, 8, "rgb8", 24), "empty image"),
])
def test_decode_rejects(args, words):
    with pytest.raises(ImageError, match=words):
        decode_image(*args)


def test_preprocess_resizes_square_and_refuses_tiny():
    out = preprocess_image(np.full((96, 96, 3), 255, np.uint8))
    assert out.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE) and out.dtype == np.float32
    assert out.max() == pytest.approx(1.0)
    with pytest.raises(ImageError, match="too small"):
        preprocess_image(np.zeros((15, 64, 3), np.uint8))


def test_scan_bins_min_per_sector_and_no_return():
    n = 64
    ranges = np.full(n, np.inf, np.float32)
    ranges[n // 2] = 1.0  # angle 0 (straight ahead)
    ranges[0] = math.nan
    bins = scan_to_bins(ranges, -math.pi, 2 * math.pi / n, 0.05, 4.0)
    assert bins.shape == (N_SCAN_BINS,)
    assert bins[N_SCAN_BINS // 2] == pytest.approx(1.0)
    assert np.sum(bins < SCAN_RANGE_MAX_M) == 1


def test_quality_flags_blackout_and_frozen():
    img = np.random.default_rng(1).integers(30, 220, (64, 64, 3), dtype=np.uint8)
    assert image_quality(img, None) == (1.0, "")
    assert image_quality(img, img.copy())[1] == "frozen"
    assert image_quality(np.zeros_like(img), None)[1] == "blackout"


def test_missing_scan_reads_as_blocked():
    p = Perception(encoder=lambda x: np.zeros((1, N_LATENT), np.float32))
    img = np.random.default_rng(2).integers(30, 220, (64, 64, 3), dtype=np.uint8)
    percept = p.on_image(1.0, img, scan_max_age_s=0.3)
    assert np.all(percept.scan_bins == 0.0)
    p.on_scan(1.0, np.full(64, 3.0, np.float32), -math.pi, 2 * math.pi / 64, 0.05, 4.0)
    percept = p.on_image(1.1, img, scan_max_age_s=0.3)
    assert np.allclose(percept.scan_bins, 3.0)
    assert p.on_image(2.0, img, scan_max_age_s=0.3).scan_bins.max() == 0.0  # scan now stale


def test_bad_encoder_output_rejected():
    p = Perception(encoder=lambda x: np.full((1, N_LATENT), np.nan, np.float32))
    with pytest.raises(ImageError, match="non-finite"):
        p.on_image(0.0, np.zeros((64, 64, 3), np.uint8) + 100, 0.3)


def test_world_encoder_reads_the_scan_sectors():
    seen = {}

    def world_encoder(x, scan):
        seen["scan"] = scan.copy()
        return np.zeros((1, N_LATENT), np.float32)

    p = Perception(encoder=world_encoder, encoder_reads_scan=True)
    img = np.random.default_rng(3).integers(30, 220, (64, 64, 3), dtype=np.uint8)
    p.on_scan(1.0, np.full(64, 2.0, np.float32), -math.pi, 2 * math.pi / 64, 0.05, 4.0)
    p.on_image(1.05, img, scan_max_age_s=0.3)
    assert seen["scan"].shape == (1, N_SCAN_BINS) and np.allclose(seen["scan"], 2.0 / SCAN_RANGE_MAX_M)


def test_image_noise_sigma_recovers_added_noise():
    from hjepa_agent.core.perception import image_noise_sigma
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:64, 0:64]
    smooth = np.stack([(2 * xx + yy) % 256] * 3, axis=-1).astype(np.float32)  # a ramp: no noise
    assert image_noise_sigma(smooth.astype(np.uint8)) < 1.0
    for sigma in (5.0, 20.0):
        noisy = np.clip(smooth + rng.normal(0, sigma, (64, 64, 1)), 0, 255).astype(np.uint8)
        assert image_noise_sigma(noisy) == pytest.approx(sigma, rel=0.25)
    batch = np.stack([smooth.transpose(2, 0, 1)] * 4).astype(np.uint8)  # (N, 3, H, W)
    assert image_noise_sigma(batch).shape == (4,)


def test_encode_then_describe_is_on_image_frame_by_frame():
    """The perception node publishes the early percept (encode) before it computes the image statistics
    (describe): the two together must give what on_image gives, frame after frame (the frozen check and
    the 1-s change read the earlier frames)."""
    rng = np.random.default_rng(7)
    encoder = (lambda x: x.reshape(1, -1)[:, :N_LATENT] * 2.0)
    whole, split = Perception(encoder=encoder), Perception(encoder=encoder)
    imgs = [rng.integers(30, 220, (48, 80, 3), dtype=np.uint8) for _ in range(4)]
    imgs.append(imgs[-1].copy())   # a frozen frame
    for k, img in enumerate(imgs * 4):
        t = 0.1 * k
        for p in (whole, split):
            p.on_scan(t, np.full(64, 1.0 + k % 3, np.float32), -math.pi, 2 * math.pi / 64, 0.05, 4.0)
        a = whole.on_image(t, img, 0.3)
        early, x = split.encode(t, img, 0.3)
        assert early.stamp_s == t and np.array_equal(early.vector(), a.vector()[:early.SIZE])
        b = split.describe(early, img, x)
        assert np.array_equal(b.vector(), a.vector()) and b.stamp_s == a.stamp_s
    assert b.quality == 0.2 and b.image_change >= 0.0   # the last frame repeats the one before: frozen
