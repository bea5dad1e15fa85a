"""What the simulator's babbling node sends (nodes/intruders.py garbage) is the real thing's type and layout with
non-finite numbers: every validator that reads the topic refuses it for an expected cause of nan_flood,
never for its layout alone (so the flood tests the validators, not the decoder)."""
import pytest
from builtin_interfaces.msg import Time

from hjepa_agent.nodes.intruders import garbage
from hjepa_agent.nodes.topics import Rejected, all_inputs
from hjepa_agent.harness.judge import EXPECTED_CAUSES
from hjepa_agent.sim.faults import NAN_FLOOD_TOPICS


@pytest.mark.parametrize("topic", [t for t, _ in NAN_FLOOD_TOPICS])
def test_every_reader_of_a_flooded_topic_rejects_the_garbage_for_an_expected_cause(topic):
    readers = [spec for rows in all_inputs().values() for spec in rows.values() if spec.topic == topic]
    assert readers, f"nobody reads {topic}"
    for k in range(3):   # NaN, +inf, -inf
        msg = garbage(topic, k, Time(sec=10, nanosec=0))
        for spec in readers:
            with pytest.raises(Rejected) as err:
                spec.validate(msg)
            assert err.value.cause in EXPECTED_CAUSES["nan_flood"], (topic, k, err.value.detail)
