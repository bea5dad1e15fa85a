"""Foreign publishers: the ROS graph against each topic's owners, and cmd_vel messages no agent node sent."""
from hjepa_agent.core.events import Cause
from hjepa_agent.core.watchdog.foreign import UNDECLARED, ForeignPublishers


def test_a_node_not_allowed_is_foreign_once_the_graph_has_shown_it_for_confirm_s():
    f = ForeignPublishers(confirm_s=0.4)
    f.on_graph("cmd_vel", ["bridge", "teleop"], ("bridge", "watchdog"), now_s=1.0)
    assert f.check(1.2) == []                                   # the graph lags: not yet
    (found,) = f.check(1.4)
    assert (found.topic, found.who) == ("cmd_vel", "teleop")
    f.on_graph("cmd_vel", ["bridge"], ("bridge", "watchdog"), now_s=2.0)
    assert f.check(2.5) == []                                   # gone from the graph


def test_a_second_node_with_an_owners_name_is_foreign():
    f = ForeignPublishers(confirm_s=0.0)
    f.on_graph("agent/habitual/cmd", ["habitual", "habitual"], ("habitual",), now_s=0.0)
    (found,) = f.check(0.0)
    assert "second node of that name" in found.who


def test_a_stale_listing_that_goes_away_within_confirm_s_is_never_reported():
    f = ForeignPublishers(confirm_s=0.4)
    f.on_graph("agent/mode", ["old_watchdog"], ("watchdog",), now_s=0.0)
    f.on_graph("agent/mode", ["watchdog"], ("watchdog",), now_s=0.3)
    assert f.check(1.0) == []


def test_commands_the_bridge_declared_are_its_own_and_others_are_foreign():
    f = ForeignPublishers(match_window_s=0.25, clear_after_s=2.0)
    f.on_command(1.00, 1_000_000_000, 0.3, 0.0)                 # the bridge's record may come after it
    f.on_declared(1_000_000_000, 0.3, 0.0)
    f.on_command(1.05, 1_050_000_000, 0.3, 0.0, own=True)       # the watchdog's own stop ramp
    assert f.check(1.5) == []
    f.on_command(2.00, 1_050_000_000, 0.8, 0.0)                 # same stamp, other values: not the bridge's
    assert f.check(2.1) == []                                   # still within the match window
    f.on_declared(1_100_000_000, 0.3, 0.0, now_s=2.2)           # the bridge's records flow on, none declares it
    (found,) = f.check(2.3)
    assert (found.topic, found.who, found.count) == ("cmd_vel", UNDECLARED, 1)
    assert f.check(4.4) == [] and f.undeclared == 1             # clean wire for clear_after_s: dropped


def test_the_watchdog_stops_on_a_foreign_publisher_or_only_warns():
    from conftest import load_yaml_dict
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.types import Mode
    from hjepa_agent.core.watchdog import Watchdog, WatchdogConfig
    from hjepa_agent.config.paths import data_path
    ego = load_ego_model(data_path("config", "ego_model.yaml"))
    for action, stops in (("stop", True), ("warn", False)):
        wd = Watchdog(WatchdogConfig(foreign_publishers=action), ego)
        wd.foreign.on_graph("cmd_vel", ["teleop"], ("bridge", "watchdog"), now_s=0.0)
        out = wd.tick(1.0)
        foreign = [e for e in out.events if Cause.FOREIGN_PUBLISHER in e.causes]
        assert foreign and foreign[0].kind == "foreign"
        assert out.mode == Mode.SAFE_STOP                     # (starts in SAFE_STOP: inputs never came)
        assert out.base_stop is stops
        assert ("foreign_publisher" in out.status["values"]["cause_codes"]) is stops
    assert load_yaml_dict("config", "watchdog.yaml")["foreign_publishers"] == "stop"


def test_a_command_waits_for_its_record_while_no_later_record_has_come():
    """The watchdog's process starved with the bridge's record still queued (seven processes on two cores,
    at start-up) must not make the bridge's own command foreign: without a later record it waits
    NO_RECORD_WINDOWS match windows; once records flow again, an undeclared command is named after one."""
    from hjepa_agent.core.watchdog.foreign import NO_RECORD_WINDOWS, ForeignPublishers
    fp = ForeignPublishers(match_window_s=0.25)
    fp.on_command(10.0, 1_000, 0.1, 0.0)
    assert fp.check(10.4) == []                       # past the window, but no record since: not yet judged
    fp.on_declared(1_000, 0.1, 0.0, now_s=10.45)      # the record arrives late: declared
    assert fp.check(11.0) == [] and fp.undeclared == 0
    fp.on_command(11.0, 2_000, 0.9, 0.0)              # a command nobody declares
    fp.on_declared(3_000, 0.2, 0.0, now_s=11.1)       # while the bridge's records flow
    assert fp.check(11.2) == [] and [f.who for f in fp.check(11.3)] == ["undeclared commands"]
    lone = ForeignPublishers(match_window_s=0.25)     # and with the bridge silent (dead) too
    lone.on_command(0.0, 5, 0.5, 0.0)
    assert lone.check(NO_RECORD_WINDOWS * 0.25 - 0.01) == [] and lone.check(NO_RECORD_WINDOWS * 0.25 + 0.01) != []
