"""How the robot carries its camera and its commands (nodes/topics.py Transport): the topic and type each
setting picks, cmd_vel read the same from a Twist or a TwistStamped, the compressed camera's validator,
and the watchdog's wire check on unstamped commands (core/watchdog/foreign.py)."""
import math

import cv2
import numpy as np
import pytest
from geometry_msgs.msg import Twist, TwistStamped
from hypothesis import given
from hypothesis import strategies as st
from sensor_msgs.msg import CompressedImage, Image

from hjepa_agent.core.events import Cause
from hjepa_agent.core.watchdog.foreign import UNDECLARED, ForeignPublishers
from hjepa_agent.nodes.codec import Command, command_to_msg, msg_to_command, to_time
from hjepa_agent.nodes.topics import (CAMERA_TOPIC, MAX_COMPRESSED_BYTES, MAX_TWIST, TOPICS, Rejected, Transport,
                                      all_inputs, check_command, check_compressed_image, check_image, inputs_of)


# ---- Transport ------------------------------------------------------------------------------------
def test_the_defaults_are_what_the_tables_say():
    t = Transport()
    assert t.topic("cmd_vel") is TOPICS["cmd_vel"] and t.topic("cmd_vel").type is TwistStamped
    assert t.input(inputs_of("perception")["camera"]) == inputs_of("perception")["camera"]
    assert t.topic(CAMERA_TOPIC).type is Image


def test_twist_makes_cmd_vel_an_unstamped_twist_with_the_same_name_qos_and_owners():
    row = Transport(cmd_vel_type="twist").topic("cmd_vel")
    assert (row.type, row.stamped) == (Twist, False)
    assert (row.name, row.qos, row.publishers) == ("cmd_vel", TOPICS["cmd_vel"].qos, TOPICS["cmd_vel"].publishers)
    assert Transport(cmd_vel_type="twist").topic("odom") is TOPICS["odom"]


def test_compressed_moves_every_camera_input_and_nothing_else():
    t = Transport(image_transport="compressed")
    for node, inputs in all_inputs().items():
        for key, spec in inputs.items():
            carried = t.input(spec)
            if spec.topic == CAMERA_TOPIC:
                assert carried.topic == "camera/image_raw/compressed" and carried.validate is check_compressed_image
                assert TOPICS[carried.topic].type is CompressedImage and carried.max_age == spec.max_age
            else:
                assert carried is spec, (node, key)


@pytest.mark.parametrize("field, value", [("cmd_vel_type", "TwistStamped"), ("cmd_vel_type", ""),
                                          ("image_transport", "theora"), ("image_transport", "Raw")])
def test_a_value_that_is_no_option_is_refused_naming_the_parameter_and_the_options(field, value):
    with pytest.raises(ValueError, match=f"parameter {field}: {value!r} is not one of"):
        Transport(**{field: value})


# ---- cmd_vel, either type -------------------------------------------------------------------------
def test_command_to_msg_and_back_for_both_types():
    stamped = command_to_msg(TwistStamped, 0.4, -0.2, to_time(12.5), "base_link")
    assert isinstance(stamped, TwistStamped)
    assert msg_to_command(stamped) == Command(0.4, -0.2, 12_500_000_000, "base_link")
    plain = command_to_msg(Twist, 0.4, -0.2, to_time(12.5), "base_link")
    assert isinstance(plain, Twist) and not hasattr(plain, "header")
    assert msg_to_command(plain) == Command(0.4, -0.2, None, "")
    with pytest.raises(ValueError, match="Twist or TwistStamped"):
        command_to_msg(Image, 0.0, 0.0, to_time(0.0), "")


@given(v=st.floats(allow_nan=True, allow_infinity=True), w=st.floats(allow_nan=True, allow_infinity=True),
       stamped=st.booleans())
def test_property_check_command_passes_exactly_the_finite_commands_within_max_twist(v, w, stamped):
    msg = command_to_msg(TwistStamped if stamped else Twist, 0.0, 0.0, to_time(1.0), "base_link")
    twist = msg.twist if stamped else msg
    twist.linear.x, twist.angular.z = v, w
    ok = math.isfinite(v) and math.isfinite(w) and abs(v) <= MAX_TWIST and abs(w) <= MAX_TWIST
    if ok:
        cmd = check_command(msg)
        assert (cmd.v, cmd.w) == (v, w) and (cmd.stamp_ns is None) == (not stamped)
    else:
        with pytest.raises(Rejected) as err:
            check_command(msg)
        finite = math.isfinite(v) and math.isfinite(w)
        assert err.value.cause == (Cause.OUT_OF_RANGE if finite else Cause.NON_FINITE)


def test_every_cmd_vel_input_reads_a_command():
    readers = [(n, k) for n, inputs in all_inputs().items() for k, s in inputs.items() if s.topic == "cmd_vel"]
    assert sorted(readers) == [("estimator", "command"), ("sim", "command"), ("watchdog", "command")]
    assert all(all_inputs()[n][k].validate is check_command for n, k in readers)


# ---- the compressed camera's validator ------------------------------------------------------------
def _jpeg(h: int = 48, w: int = 64) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
    return buf.tobytes()


def test_check_compressed_image_passes_a_jpeg_and_refuses_what_the_core_refuses():
    good = CompressedImage(format="rgb8; jpeg compressed bgr8", data=_jpeg())
    assert check_compressed_image(good) is good
    png_header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + (5000).to_bytes(4, "big") * 2
    for msg, words in [(CompressedImage(format="theora", data=_jpeg()), "not supported"),
                       (CompressedImage(format="jpeg", data=b""), "0 bytes"),
                       (CompressedImage(format="png", data=_jpeg()), "not a png stream"),
                       (CompressedImage(format="png", data=png_header), "5000x5000")]:
        with pytest.raises(Rejected, match=words) as err:
            check_compressed_image(msg)
        assert err.value.cause == Cause.BAD_LAYOUT


def test_check_compressed_image_refuses_a_buffer_beyond_the_bound_unread():
    class Huge:   # len() only: the validator must not look further
        def __len__(self) -> int:
            return MAX_COMPRESSED_BYTES + 1

        def __getitem__(self, _):
            raise AssertionError("read a buffer it should have refused by its length")
    with pytest.raises(Rejected, match="bytes"):
        check_compressed_image(type("M", (), {"format": "jpeg", "data": Huge()})())


def test_raw_images_keep_their_validator():
    assert Transport(image_transport="raw").input(inputs_of("watchdog")["camera"]).validate is check_image


# ---- the watchdog's wire check on unstamped commands ----------------------------------------------
def test_an_unstamped_command_with_the_values_the_bridge_sent_is_its_own():
    f = ForeignPublishers(match_window_s=0.25)
    f.on_command(1.00, None, 0.3, 0.1)
    f.on_declared(1_000_000_000, 0.3, 0.1)
    assert f.check(1.5) == [] and f.undeclared == 0


def test_an_unstamped_command_with_values_nobody_sent_is_foreign():
    f = ForeignPublishers(match_window_s=0.25)
    f.on_declared(1_000_000_000, 0.3, 0.1)
    f.on_command(1.00, None, 0.8, 0.0)
    assert f.check(1.2) == []
    f.on_declared(1_100_000_000, 0.3, 0.1, now_s=1.1)   # a later record: the bridge's flow on, none declares it
    (found,) = f.check(1.3)
    assert (found.topic, found.who, found.count) == ("cmd_vel", UNDECLARED, 1)


def test_the_watchdogs_own_unstamped_stop_is_known_by_its_values():
    f = ForeignPublishers(match_window_s=0.25)
    f.on_own(0.12, 0.0)
    f.on_command(2.0, None, 0.12, 0.0)
    f.on_command(2.0, None, 0.5, 0.0)
    (found,) = f.check(3.1)   # no record at all (the bridge silent): NO_RECORD_WINDOWS windows
    assert found.count == 1


def test_values_alone_never_clear_a_stamped_command():
    f = ForeignPublishers(match_window_s=0.25)
    f.on_declared(1_000_000_000, 0.3, 0.1)
    f.on_own(0.3, 0.1)
    f.on_command(1.00, 1_000_000_001, 0.3, 0.1)   # the bridge's values under a stamp it never sent
    f.on_declared(1_050_000_000, 0.3, 0.1, now_s=1.05)
    (found,) = f.check(1.3)
    assert found.count == 1
