"""Fault and fuzz battery, every node: generated input sequences for every input of every node
(nodes/topics.py all_inputs(), iterated, so a new input is fuzzed without a change here), fed over
DDS to the real node classes on a /clock the test drives (ticks, holds, jumps both ways, a reset to
zero, values that are not times; bursts at ten times the nominal rate).

Each node is built once for the module, in its own namespace (``fz_<node>``: what is fuzzed for
one node reaches that node only), with the shipped parameters (config/agent.yaml, so every
optional input is subscribed: the estimator's cmd_vel needs world_model: true) and sim time; the
watchdog trusts the harness as a publisher. State carries over between sequences: the properties
must hold whatever came before.

Properties, after every sequence:
1. no exception escaped a callback: every node's ``failure`` is None (a rejection must come from
   a validator, not a caught crash);
2. the bridge never went silent for longer than one period plus one tick of the test's clock
   (judged on its cmd_vel as received, throughout the module, whatever the clock did: jumps too);
3. no cmd_vel of the bridge exceeds the ego model's hard limits (judge.count_limit_violations).
A failure is printed at once (``FUZZ FAILURE``) and the failed node is rebuilt for the next test.

The budget: DEFAULT_PER_INPUT sequences per input (CI: with test_fuzz_bridge.py about 45 s on a
2-core machine), LONG_PER_INPUT under ``--long`` (the acceptance run, >= 10,000 sequences with
test_fuzz_bridge.py); $FUZZ_EXAMPLES overrides both; ``FUZZ_REPORT=path`` writes the figures
(test/conftest.py). Derandomized by default (CI is reproducible), random under --long.
"""
from __future__ import annotations

import sys

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz_strategies import NOMINAL_HZ, STRATEGIES, FuzzStack, budget, fuzz_stack, failure_text, sequences, strategy_for
from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.nodes.node_table import NODES, SIM_NODE, load_params
from hjepa_agent.nodes.mounts import MOUNT_NODES
from hjepa_agent.nodes.topics import all_inputs, inputs_of
from hjepa_agent.config.paths import data_path

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
PAIRS = [(node, key) for node, ins in all_inputs().items() for key in ins]
"""Every (node, input) of the INPUTS table."""
CLASSES = {spec.name: spec for spec in NODES + (SIM_NODE,)}
DEFAULT_PER_INPUT = 20
LONG_PER_INPUT = 300


def say(text: str) -> None:
    """A failure, at once on the terminal (a long run's summary comes only at its end)."""
    sys.__stderr__.write(f"\nFUZZ FAILURE {text[:4000]}\n")
    sys.__stderr__.flush()


def _settings(long: bool, examples: int) -> settings:
    # No shrinking: a failed node stays failed, so shrinking would only re-run the failure against it.
    return settings(max_examples=examples, deadline=None, derandomize=not long, database=None if not long else settings.default.database,
                    phases=(Phase.explicit, Phase.reuse, Phase.generate), print_blob=True,
                    suppress_health_check=list(HealthCheck))


def build(name: str, ctx):
    """A fresh agent node ``name`` in namespace fz_<name> with the shipped parameters and sim time."""
    from rclpy.parameter import Parameter
    params = dict(load_params(data_path("config", "agent.yaml")).get(name, {}))
    params["use_sim_time"] = True
    params["start_type_description_service"] = False
    if name == "watchdog":
        params["trusted_publishers"] = [FuzzStack.HARNESS]
    if name == "sim":
        params = {k: v for k, v in params.items() if k != "robot" or v}
    if name in MOUNT_NODES:   # the scan's frame (laser_link) is placed through the diffbot's URDF, as in `sim`
        params["urdf"] = str(data_path("urdf", "diffbot.urdf"))
    cls = CLASSES[name].load_class()
    return cls(context=ctx, namespace=f"fz_{name}", enable_rosout=False,
               parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


@pytest.fixture(scope="module")
def stack(fuzz_report):
    with fuzz_stack(lambda ctx: {name: build(name, ctx) for name in all_inputs()}, EGO, fuzz_report) as s:
        s.broken = None
        s.rebuild = lambda name: s.replace(name, build(name, s.ctx))
        yield s


def test_every_input_has_a_strategy_and_a_rate():
    missing = [f"{n}/{k} ({spec.topic})" for n, ins in all_inputs().items() for k, spec in ins.items()
               if spec.topic not in STRATEGIES or spec.topic not in NOMINAL_HZ]
    assert not missing, f"inputs without a fuzz strategy or nominal rate in test/fuzz_strategies.py: {missing}"
    assert set(all_inputs()) <= set(CLASSES), "a node in INPUTS has no class in node_table"


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_strategy_draws_its_topics_type(data):
    for node, key in PAIRS:
        spec = inputs_of(node)[key]
        draft = data.draw(strategy_for(spec), label=f"{node}/{key}")
        assert isinstance(draft.msg, spec.spec.type)
        assert (draft.stamp is not None) == spec.spec.stamped


def test_every_input_is_subscribed(stack):
    """The battery reaches every input: each built node subscribes every input of its row."""
    for name, node in stack.nodes.items():
        assert set(node.input_counts()) == set(inputs_of(name)), name


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("node,key", PAIRS, ids=[f"{n}/{k}" for n, k in PAIRS])
def test_no_exception_escapes_and_the_bridge_holds(stack, node, key, fuzz_long, fuzz_report):
    for name in list(stack.failures()):   # a node an earlier test failed: start this one on a fresh one
        stack.rebuild(name)
    stack.broken = None
    inputs = inputs_of(node)
    examples = budget(DEFAULT_PER_INPUT, LONG_PER_INPUT, fuzz_long)

    @_settings(fuzz_long, examples)
    @given(seq=sequences(node, key, inputs))
    def run(seq):
        if stack.broken:   # hypothesis replays the failing example: fail it the same way
            raise AssertionError(stack.broken)
        stack.where = f"{node}/{key}"
        stack.run(seq)
        fuzz_report.sequences[node] += 1
        fuzz_report.sequences_by_input[f"{node}/{key}"] += 1
        fuzz_report.property_checks["1_no_escape"] += 1
        failed = stack.failures()
        for name, f in failed.items():
            fuzz_report.escape(name, f, f"{node}/{key}")
        if failed:
            stack.broken = "\n".join(failure_text(n, f) for n, f in failed.items())
            say(f"{node}/{key}: {stack.broken}")
            raise AssertionError(stack.broken)
        silences, violations = stack.check_wire()
        fuzz_report.property_checks["2_bridge_silence"] += 1
        fuzz_report.property_checks["3_hard_limits"] += 1
        if silences or violations:
            stack.broken = f"bridge wire: silences {silences}, limit violations {dict(violations)}"
            say(f"{node}/{key}: {stack.broken}")
            raise AssertionError(stack.broken)
    run()
