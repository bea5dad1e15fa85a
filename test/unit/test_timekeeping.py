"""The receipt clock: ages are judged on a clock no step of the ROS clock can turn back."""
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from hjepa_agent.core.timekeeping import ABSURD_TIME_S, ReceiptClock, valid_ros_time


def test_without_jumps_it_is_the_ros_clock():
    c = ReceiptClock(sim_time=True)
    for k in range(1, 200):
        assert c.update(10.0 + 0.01 * k, 0.001 * k) is None
        assert c.now_s == 10.0 + 0.01 * k or math.isclose(c.now_s, 10.0 + 0.01 * k, abs_tol=1e-9)


def test_sim_time_zero_means_no_clock_yet():
    c = ReceiptClock(sim_time=True)
    assert c.update(0.0, 1.0) is None and not c.started
    assert c.update(12.0, 1.1) is None and c.started and c.now_s == 12.0   # not a jump from 0 to 12


def test_steps_back_and_forward_are_jumps_and_time_goes_on_by_one_tick():
    c = ReceiptClock(sim_time=True, jump_tolerance_s=0.5)
    c.update(20.0, 0.0)
    c.update(20.01, 0.0)
    back = c.update(15.02, 0.0)
    assert back is not None and back.backwards and math.isclose(back.size_s, -4.99)
    assert math.isclose(c.now_s, 20.02)                     # the tick went on: 10 ms, not -5 s
    c.update(15.03, 0.0)
    assert math.isclose(c.now_s, 20.03)
    fwd = c.update(25.04, 0.0)
    assert fwd is not None and not fwd.backwards and math.isclose(fwd.size_s, 10.01)
    assert math.isclose(c.now_s, 20.04) and c.jumps == 2


def test_an_old_stamp_is_old_on_arrival_even_after_a_forward_jump():
    c = ReceiptClock(sim_time=True)
    c.update(20.0, 0.0)
    c.update(30.0, 0.0)                                      # +10 s: a jump
    assert c.now_s - c.reading_time(20.0, 30.0) == 10.0      # stamped before it: 10 s old
    assert c.reading_time(None, 30.0) == c.now_s


def test_wall_time_uses_the_steady_clock_and_sees_system_clock_steps():
    c = ReceiptClock(sim_time=False, jump_tolerance_s=0.5)
    c.update(1.8e9, 100.0)
    assert c.update(1.8e9 + 1.0, 101.0) is None and c.now_s == 101.0
    jump = c.update(1.8e9 - 5.0, 101.1)                      # NTP stepped the system clock back 6 s
    assert jump is not None and jump.backwards and math.isclose(jump.size_s, -6.1)
    assert c.now_s == 101.1


def test_times_no_robot_can_be_at_are_refused():
    assert valid_ros_time(-1.0) and valid_ros_time(math.nan) and valid_ros_time(ABSURD_TIME_S)
    assert valid_ros_time(0.0) is None and valid_ros_time(1.8e9) is None
    c = ReceiptClock(sim_time=True)
    c.update(5.0, 0.0)
    assert c.update(-3.0, 0.0) is None and c.update(math.inf, 0.0) is None and c.now_s == 5.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1e6), st.floats(0.0, 10.0)), min_size=1, max_size=60),
       st.booleans())
def test_never_goes_back_whatever_the_ros_clock_does(steps, sim_time):
    c = ReceiptClock(sim_time=sim_time)
    steady, last = 0.0, -math.inf
    for ros, dsteady in steps:
        steady += dsteady
        c.update(ros, steady)
        if c.started:
            assert c.now_s >= last
            last = c.now_s
