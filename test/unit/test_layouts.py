"""Procedural layouts (sim/layouts.py): seeded, disjoint splits, solvable, each family what it says."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hjepa_agent.config.ego_model import load_ego_model
from hjepa_agent.config.paths import data_path
from hjepa_agent.harness.report import EpisodeResult, family_table
from hjepa_agent.sim.expert import ScriptedExpert
from hjepa_agent.sim.layouts import (CHECK_RESOLUTION_M, FAMILIES, GAP_FACTORS, SPLIT_SIZE, SPLITS, WALL_M, LayoutId,
                                     layout_ids, make_layout, time_limit_s)

pytestmark = pytest.mark.system

EGO = load_ego_model(data_path("config", "ego_model.yaml"))
WIDTH_M = 2.0 * EGO.hard.footprint.radius_m


def _path_length(path: np.ndarray) -> float:
    return float(np.sum(np.linalg.norm(np.diff(path, axis=0), axis=1)))


def test_same_id_same_layout_and_other_indices_differ() -> None:
    a, b = make_layout(LayoutId("clutter", "test", 3), EGO), make_layout(LayoutId("clutter", "test", 3), EGO)
    assert a == b
    c = make_layout(LayoutId("clutter", "test", 4), EGO)
    assert c.obstacles != a.obstacles


def test_splits_are_disjoint_by_seed() -> None:
    seeds = {s: {lid.seed for lid in layout_ids(s, 7 * 50)} for s in SPLITS}
    for i, s in enumerate(SPLITS):
        for t in SPLITS[i + 1:]:
            assert not seeds[s] & seeds[t], (s, t)
    # the same index in two splits is a different layout
    assert make_layout(LayoutId("rooms", "train", 0), EGO) != make_layout(LayoutId("rooms", "test", 0), EGO)
    with pytest.raises(ValueError, match="index"):
        LayoutId("rooms", "test", SPLIT_SIZE)
    with pytest.raises(ValueError, match="family"):
        LayoutId("maze", "test", 0)


def test_layout_ids_cycle_through_the_families() -> None:
    ids = layout_ids("val", 15, first=4)
    assert [i.family for i in ids[:7]] == list(FAMILIES)
    assert ids[7] == LayoutId(FAMILIES[0], "val", 5) and ids[14] == LayoutId(FAMILIES[0], "val", 6)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_layout_is_solvable_with_a_time_limit_from_its_path(family: str) -> None:
    for k in range(4):
        sc = make_layout(LayoutId(family, "test", k), EGO)
        path = ScriptedExpert(sc, EGO, resolution_m=CHECK_RESOLUTION_M).plan(sc.start.x_m, sc.start.y_m)
        assert len(path) > 1, sc.name
        assert np.allclose(path[-1], (sc.goal.x_m, sc.goal.y_m))
        assert sc.time_limit_s == time_limit_s(_path_length(path), EGO.operating.max_linear_mps)
        assert sc.time_limit_s >= 20.0 + 3.0 * _path_length(path) / EGO.operating.max_linear_mps
        for ob in sc.obstacles:
            for x, y in ((sc.start.x_m, sc.start.y_m), (sc.goal.x_m, sc.goal.y_m)):
                assert ob.distance_to(x, y) >= EGO.hard.footprint.radius_m + 0.05


def _openings(sc) -> list[float]:
    """Widths of the openings along the gap family's divider (vertical wall segments at one x)."""
    segs = sorted((ob.y_m - ob.size_y_m / 2, ob.y_m + ob.size_y_m / 2) for ob in sc.obstacles
                  if ob.shape == "box" and math.isclose(ob.size_x_m, WALL_M))
    return [b[0] - a[1] for a, b in zip(segs, segs[1:])]


def test_gap_family_passages_span_the_stated_widths() -> None:
    widths = []
    for k in range(40):
        opens = _openings(make_layout(LayoutId("gap", "test", k), EGO))
        assert opens, k
        widths.append(min(opens))
    lo, hi = GAP_FACTORS[0] * WIDTH_M, GAP_FACTORS[1] * WIDTH_M
    assert all(lo - 1e-9 <= w <= hi + 1e-9 for w in widths), widths
    assert sum(w < 1.5 * WIDTH_M for w in widths) >= 5, "narrow passages must be common, not rare"


def test_goal_behind_starts_with_its_back_to_the_goal() -> None:
    for k in range(10):
        sc = make_layout(LayoutId("goal_behind", "test", k), EGO)
        to_goal = math.atan2(sc.goal.y_m - sc.start.y_m, sc.goal.x_m - sc.start.x_m)
        off = abs(math.atan2(math.sin(sc.start.yaw_rad - to_goal), math.cos(sc.start.yaw_rad - to_goal)))
        assert off > math.pi / 2, (k, off)


def test_dead_end_pocket_faces_the_start() -> None:
    for k in range(10):
        sc = make_layout(LayoutId("dead_end", "test", k), EGO)
        back = max(sc.obstacles, key=lambda o: o.size_y_m)   # the pocket's back wall
        assert sc.start.x_m < back.x_m < sc.goal.x_m
        lo, hi = back.y_m - back.size_y_m / 2, back.y_m + back.size_y_m / 2
        assert lo < sc.start.y_m < hi, "the straight route runs into the pocket"


def test_family_table_counts_per_family_and_all() -> None:
    rs = [EpisodeResult(0, "gap_test_0", 0, family="gap", success=True, outcome="goal"),
          EpisodeResult(1, "gap_test_1", 1, family="gap", outcome="timeout"),
          EpisodeResult(2, "rooms_test_0", 2, family="rooms", outcome="safe_stop", safe_stops=1)]
    t = family_table(rs)
    assert t["gap"]["episodes"] == 2 and t["gap"]["successes"] == 1 and t["gap"]["failures"] == {"timeout": 1}
    assert t["rooms"]["safe_stop_episodes"] == 1 and t["all"]["episodes"] == 3 and t["all"]["success_rate"] == 0.3333
