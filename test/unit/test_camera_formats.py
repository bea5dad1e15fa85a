"""Real cameras: any image size (central square crop), CompressedImage (jpeg, png) decoding, and the 1-s
image change paired by time so a camera at any rate scores as the 10 Hz training camera did."""
import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.core.perception import (IMAGE_SIZE, IMAGE_STILL_S, IMAGE_STILL_TOLERANCE_S, MIN_IMAGE_SIDE,
                                         ImageError, ImageHistory, Perception, compressed_format,
                                         compressed_image_size, decode_compressed, image_change, preprocess_image)
from hjepa_agent.core.types import N_LATENT

RED = (255, 0, 0)


def _framed(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An h x w RGB image: its largest central square random with no red at all, the rest pure red."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = RED
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    centre = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    centre[..., 0] = 0
    img[top:top + side, left:left + side] = centre
    return img


# ---- any size: the largest central square, resized -------------------------------------------------
def test_a_64x64_image_goes_through_untouched_bit_for_bit():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    before = np.ascontiguousarray((rgb.astype(np.float32) * (1.0 / 255.0)).transpose(2, 0, 1)[None])  # the old rule
    out = preprocess_image(rgb)
    assert out.dtype == np.float32 and np.array_equal(out, before)


@pytest.mark.parametrize("h, w", [(480, 640), (720, 1280), (250, 250), (640, 480), (96, 96)])
def test_any_size_is_its_central_square_resized_with_inter_area(h, w):
    rgb = _framed(h, w)
    out = preprocess_image(rgb)
    assert out.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert out[0, 0].max() == 0.0, "the red margins outside the central square reached the encoder"
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = cv2.resize(rgb[top:top + side, left:left + side], (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    assert np.array_equal(out, preprocess_image(square))
    assert np.array_equal(np.round(out[0].transpose(1, 2, 0) * 255.0).astype(np.uint8), square)


def test_a_small_image_is_enlarged_with_inter_linear():
    rgb = _framed(MIN_IMAGE_SIDE, 40)
    out = preprocess_image(rgb)
    square = cv2.resize(rgb[:, 12:28], (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(np.round(out[0].transpose(1, 2, 0) * 255.0).astype(np.uint8), square)
    assert out[0, 0].max() == 0.0


@pytest.mark.parametrize("h, w", [(MIN_IMAGE_SIDE - 1, 640), (480, MIN_IMAGE_SIDE - 1), (1, 1)])
def test_an_image_too_small_is_refused_naming_the_minimum(h, w):
    with pytest.raises(ImageError, match=f"too small: its short side must be at least {MIN_IMAGE_SIDE} px"):
        preprocess_image(np.zeros((h, w, 3), np.uint8))


@settings(max_examples=60, deadline=None)
@given(h=st.integers(MIN_IMAGE_SIDE, 400), w=st.integers(MIN_IMAGE_SIDE, 400), seed=st.integers(0, 2 ** 16))
def test_property_only_the_central_square_is_seen(h, w, seed):
    out = preprocess_image(_framed(h, w, seed))
    assert out.shape == (1, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert out[0, 0].max() == 0.0
    assert 0.0 <= out.min() and out.max() <= 1.0


# ---- CompressedImage -----------------------------------------------------------------------------
def _encode(rgb: np.ndarray, ext: str, **params: int) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [v for k, x in params.items() for v in (getattr(cv2, k), x)])
    assert ok
    return buf.tobytes()


def _halves(h: int = 48, w: int = 80) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = (220, 30, 30)    # red left
    rgb[:, w // 2:] = (30, 30, 220)     # blue right
    return rgb


@pytest.mark.parametrize("fmt", ["png", "bgr8; png compressed bgr8", "rgb8; png compressed bgr8", " PNG "])
def test_png_decodes_exactly_in_rgb(fmt):
    rgb = np.random.default_rng(3).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    assert np.array_equal(decode_compressed(_encode(rgb, ".png"), fmt, 10_000), rgb)


@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8"])
def test_jpeg_decodes_in_rgb_with_its_colours_where_they_were(fmt):
    out = decode_compressed(_encode(_halves(), ".jpg", IMWRITE_JPEG_QUALITY=95), fmt, 10_000)
    assert out.shape == (48, 80, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - _halves()).mean() < 3.0   # lossy, but red stays left and blue right


def test_bytes_holding_rgb_order_are_not_swapped():
    rgb = _halves()
    ok, buf = cv2.imencode(".png", rgb)   # the RGB array written as if it were BGR: "... compressed rgb8"
    assert np.array_equal(decode_compressed(buf.tobytes(), "rgb8; png compressed rgb8", 10_000), rgb)


def test_the_size_is_read_from_the_header():
    assert compressed_image_size(_encode(_halves(48, 80), ".jpg"), "jpeg") == (80, 48)
    assert compressed_image_size(_encode(_halves(48, 80), ".png"), "png") == (80, 48)
    progressive = _encode(_halves(48, 80), ".jpg", IMWRITE_JPEG_PROGRESSIVE=1)
    assert compressed_image_size(progressive, "jpeg") == (80, 48)


@pytest.mark.parametrize("fmt", ["", "theora", "compressedDepth", "16UC1; compressedDepth png", "tiff", "jpeg2000"])
def test_an_unknown_format_is_refused_naming_the_supported_ones(fmt):
    with pytest.raises(ImageError, match="is not supported .*jpeg, png"):
        decode_compressed(_encode(_halves(), ".png"), fmt, 10_000)


@pytest.mark.parametrize("data, fmt, words", [
    (b"", "jpeg", "not a jpeg stream"),
    (b"\x00" * 100, "png", "not a png stream"),
    (bytes(range(256)) * 4, "jpeg", "not a jpeg stream"),
    (b"\xff\xd8\xff" + bytes(200), "jpeg", "no marker|frame header"),
    (b"\xff\xd8\xff\xda\x00\x02", "jpeg", "frame header"),
    (b"\x89PNG\r\n\x1a\n" + bytes(8), "png", "IHDR"),
])
def test_garbage_is_refused(data, fmt, words):
    with pytest.raises(ImageError, match=words):
        decode_compressed(data, fmt, 10_000)


def test_a_png_sent_as_jpeg_is_refused():
    with pytest.raises(ImageError, match="not a jpeg stream"):
        decode_compressed(_encode(_halves(), ".png"), "rgb8; jpeg compressed bgr8", 10_000)


def test_truncated_or_corrupt_data_is_refused():
    jpg, png = _encode(_halves(), ".jpg"), _encode(_halves(), ".png")
    with pytest.raises(ImageError, match="truncated"):
        decode_compressed(jpg[: len(jpg) // 2], "jpeg", 10_000)
    with pytest.raises(ImageError, match="does not decode"):
        decode_compressed(png[: len(png) // 2], "png", 10_000)


def test_an_image_beyond_max_pixels_is_refused_before_its_pixels_are_decoded(monkeypatch):
    png = bytearray(_encode(_halves(), ".png"))
    png[16:24] = (100_000).to_bytes(4, "big") + (100_000).to_bytes(4, "big")   # the IHDR claims 100000 x 100000
    jpg = _encode(_halves(), ".jpg")
    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded an image whose header is too large"))
    with pytest.raises(ImageError, match="100000x100000: size must be 1..10000 pixels"):
        decode_compressed(bytes(png), "png", 10_000)
    with pytest.raises(ImageError, match="80x48: size must be 1..3839 pixels"):
        decode_compressed(jpg, "jpeg", 80 * 48 - 1)


def test_compressed_format_says_which_byte_order_it_holds():
    assert compressed_format("rgb8; jpeg compressed bgr8") == ("jpeg", False)
    assert compressed_format("png") == ("png", False)
    assert compressed_format("rgba8; png compressed rgba8") == ("png", True)


# ---- the 1-s image change, by time ---------------------------------------------------------------
def _scene(t_ms: int) -> np.ndarray:
    """The camera's view at t_ms: a texture that slides 1 px every 10 ms (3, 64, 64) uint8."""
    base = np.random.default_rng(7).integers(0, 256, (3, 64, 256), dtype=np.uint8)
    return np.ascontiguousarray(np.roll(base, -(t_ms // 10), axis=2)[:, :, :64])


def _stream(hz: int, seconds: float) -> dict[float, float]:
    """{stamp s: change score} of a camera at ``hz`` watching _scene."""
    hist = ImageHistory()
    return {k / hz: hist.change(k / hz, _scene(k * 1000 // hz)) for k in range(int(seconds * hz) + 1)}


def test_a_30_hz_and_a_10_hz_camera_of_the_same_scene_score_the_same():
    s10, s30 = _stream(10, 3.0), _stream(30, 3.0)
    common = [t for t in s10 if t in s30]
    assert len(common) == 31
    assert [s10[t] for t in common] == [s30[t] for t in common]
    scored = [t for t in common if s10[t] >= 0.0]
    assert scored and min(scored) == pytest.approx(IMAGE_STILL_S - 0.1) and max(s10[t] for t in scored) > 10.0


def test_at_10_hz_it_pairs_the_frame_ten_earlier_as_training_did():
    s10 = _stream(10, 3.0)
    for k in range(10, 31):
        assert s10[k / 10] == image_change(_scene(k * 100), _scene((k - 10) * 100))


def test_no_score_without_an_image_about_a_second_old():
    hist = ImageHistory()
    assert hist.change(0.0, _scene(0)) == -1.0
    assert hist.change(0.5, _scene(500)) == -1.0                                      # 0.5 s: too young
    assert hist.change(1.5 + IMAGE_STILL_TOLERANCE_S + 0.01, _scene(1660)) == -1.0  # 1.16 s / 1.66 s: none close
    assert hist.change(2.0, _scene(2000)) == -1.0                                      # after a gap
    assert hist.change(1.0, _scene(1000)) == -1.0                                      # a clock stepped back: anew
    assert hist.change(2.0, _scene(2000)) == image_change(_scene(2000), _scene(1000))


def test_a_frozen_camera_scores_exactly_zero_at_any_rate():
    for hz in (10, 30, 60):
        hist = ImageHistory()
        scores = [hist.change(k / hz, _scene(0)) for k in range(3 * hz)]
        assert set(scores[2 * hz:]) == {0.0}


def test_a_fast_camera_is_thinned_not_cut_short():
    hist = ImageHistory()
    scores = [hist.change(k / 1000, _scene(k)) for k in range(3000)]
    assert len(hist._kept) <= (IMAGE_STILL_S + IMAGE_STILL_TOLERANCE_S) / hist.min_gap_s + 1
    assert all(s >= 0.0 for s in scores[1200:])


def test_perception_percepts_carry_the_timed_change():
    encoder = lambda x: np.zeros((1, N_LATENT), np.float32)  # noqa: E731
    p10, p30 = Perception(encoder), Perception(encoder)
    def rgb(t_ms: int) -> np.ndarray:
        return np.ascontiguousarray(_scene(t_ms).transpose(1, 2, 0))
    at10 = {k / 10: p10.on_image(k / 10, rgb(k * 100), 0.3).image_change for k in range(21)}
    at30 = {k / 30: p30.on_image(k / 30, rgb(k * 100 // 3), 0.3).image_change for k in range(61)}
    assert all(at10[t] == at30[t] for t in at10)
    assert at10[2.0] == image_change(_scene(2000), _scene(1000)) > 0.0
