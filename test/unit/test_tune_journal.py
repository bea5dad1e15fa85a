"""tune replay's walk along a journal: inputs are looked up by kind and stamp, clear and live
threshold changes are applied where the journal has them, and missing inputs are counted."""
from collections import defaultdict, deque

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.core.types import Mode
from hjepa_agent.core.watchdog import load_watchdog_config
from hjepa_agent.config.paths import data_path
from hjepa_agent.nodes.journal import ReplayContext, rerun


def test_the_journal_is_followed_in_order_with_live_changes_and_missing_inputs_counted():
    cfg = load_watchdog_config(data_path("config", "watchdog.yaml"))
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    journal = [
        {"session": "a", "tick": 0.05, "inputs": [["camera", 123, 0.01]], "mode": "SAFE_STOP", "events": []},
        {"session": "a", "tick": 0.10, "inputs": [["params", {"ambiguity_stop": 1.0}, 0.07], ["clear", 0, 0.08]],
         "mode": "SAFE_STOP", "events": []},
        {"session": "b", "tick": 0.15, "inputs": [], "mode": "SAFE_STOP", "events": []},
    ]
    inputs = {"camera": defaultdict(deque)}          # the camera frame of stamp 123 is not in the "bag"
    seen = [(e["session"], core.cfg.ambiguity_stop, out.mode, missing)
            for e, core, out, _, missing in rerun(journal, inputs, ReplayContext(cfg, ego))]
    assert seen == [("a", cfg.ambiguity_stop, Mode.SAFE_STOP, 1), ("a", 1.0, Mode.SAFE_STOP, 0),
                    ("b", cfg.ambiguity_stop, Mode.SAFE_STOP, 0)]     # a new session: a fresh core


def test_a_wall_clock_stamp_is_matched_exactly_and_as_older_journals_wrote_it():
    """A robot's stamps (~1.8e18 ns) do not survive a float of seconds: the journal once keyed them through
    one (up to ~128 ns off: half a wall-clock rehearsal's inputs went unmatched); it now keys them exactly,
    and a recording is looked up under both keys, so journals of either age replay."""
    from geometry_msgs.msg import Twist, TwistStamped

    from hjepa_agent.nodes.journal import stamp_keys
    msg = TwistStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1796670755, 597495617
    exact = 1796670755597495617
    float_key = int(round(exact * 1e-9 * 1e9))
    assert float_key != exact                       # the loss the exact key avoids
    assert stamp_keys(msg) == (exact, float_key)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 12, 340000000   # simulated time: exact either way
    assert stamp_keys(msg) == (12_340_000_000,)
    cmd = Twist()
    cmd.linear.x, cmd.angular.z = 0.25, -0.5
    keys = stamp_keys(cmd)                          # unstamped: its values, and 0 (older journals: receipt order)
    assert keys[0] == 0 and keys[1] < 0 and len(keys) == 2
    other = Twist()
    other.linear.x, other.angular.z = 0.25, -0.4
    assert stamp_keys(other)[1] != keys[1] and stamp_keys(cmd) == keys   # other values, another key


def test_a_command_the_recording_missed_misaligns_no_other():
    """Journal keys by content: with one unstamped command lost by the recorder, every other one is still
    found (keyed by order, the loss shifted every later command onto the wrong tick)."""
    from collections import defaultdict, deque

    from geometry_msgs.msg import Twist

    from hjepa_agent.nodes.codec import content_key, msg_to_command
    from hjepa_agent.nodes.journal import stamp_keys
    sent = []
    for i in range(5):
        m = Twist()
        m.linear.x = 0.1 * i
        sent.append(m)
    recorded = [m for i, m in enumerate(sent) if i != 1]          # the recorder missed the second
    inputs: dict = defaultdict(deque)
    for m in recorded:
        for key in stamp_keys(m):
            inputs[key].append(m)
    journal_keys = [content_key(msg_to_command(m)) for m in sent]   # what the watchdog consumed
    found = [inputs[k][0] if inputs.get(k) else None for k in journal_keys]
    assert [f is m for f, m in zip(found, sent)] == [True, False, True, True, True] and found[1] is None
