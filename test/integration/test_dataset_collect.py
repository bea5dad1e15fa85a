"""`hjepa-agent dataset collect`: sim roll-outs as a dataset, in this process and on Ray workers."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from hjepa_agent.dataset.collect import add_arguments, collect_dataset, collect_main
from hjepa_agent.dataset.format import FEATURES, PRIVILEGED, DatasetError, open_dataset
from hjepa_agent.config.paths import data_path
from hjepa_agent.train.collect import CONTROL_DT_S

OPEN = data_path("config", "scenarios", "open.yaml")
MAX_S = 3.0
"""Short episodes: at most 30 frames each."""
COMPARED = ("observation.image", "observation.scan", "observation.pose", "observation.twist", "action",
            "action.command", "sim.pose", "sim.obst_dist", "sim.obst_bearing")


@pytest.fixture(scope="module")
def here(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Two episodes (open.yaml, train seeds 0 and 1) collected in this process, no Ray."""
    out = tmp_path_factory.mktemp("collect") / "here"
    return out, collect_dataset(out, episodes_per_scenario=2, scenarios_dir=OPEN, workers=0, max_time_s=MAX_S,
                                progress=False)


def test_in_process_dataset_opens_with_privileged_columns(here: tuple[Path, dict]) -> None:
    out, result = here
    ds = open_dataset(out)
    info = ds.info
    assert set(ds.features) == set(FEATURES) | set(PRIVILEGED)
    assert all(ds.features[k].privileged for k in PRIVILEGED)
    assert info["source"] == "sim" and info["total_episodes"] == result["episodes"] == 2
    eps = [json.loads(line) for line in (out / "meta" / "episodes.jsonl").read_text().splitlines()]
    assert info["total_frames"] == result["frames"] == sum(e["length"] for e in eps)
    assert [e["source"]["seed"] for e in eps] == [0, 1] and all(e["source"]["scenario"] == "open" for e in eps)
    assert sorted(sum(info["splits"].values(), [])) == [0, 1]
    assert info["collection"]["workers"] == 0 and info["collection"]["seeds"] == [0, 1]
    rows = ds.load(ds.split("all"))
    n = info["total_frames"]
    assert np.array_equal(rows["index"], np.arange(n))
    assert 0 < n <= 2 * round(MAX_S / CONTROL_DT_S)
    assert rows["observation.image"].shape == (n, 3, 64, 64) and rows["observation.image"].dtype == np.uint8
    assert rows["observation.scan"].max() > 1.0   # metres, not the [0, 1] training scale
    assert rows["observation.has_goal"].all() and set(rows["mode"]) == {"EXPERT"}
    assert np.array_equal(rows["action"], rows["action.command"])
    assert np.array_equal(rows["observation.pose"], rows["sim.pose"])
    first = rows["frame_index"] == 0
    assert np.allclose(rows["timestamp"], rows["frame_index"] * CONTROL_DT_S)
    assert np.array_equal(rows["observation.twist"][first], np.zeros((2, 2), np.float32))  # at rest at the start
    assert (np.abs(rows["action"][:, 0]) <= 0.6 + 1e-6).all()   # m/s within the operating limit
    assert np.allclose(np.hypot(*rows["sim.obst_bearing"].T), 1.0, atol=1e-5)


def test_same_seeds_same_content_on_ray_workers(here: tuple[Path, dict], tmp_path: Path) -> None:
    out0, _ = here
    out2 = tmp_path / "ray"
    result = collect_dataset(out2, episodes_per_scenario=2, scenarios_dir=OPEN, workers=2, max_time_s=MAX_S,
                             progress=False)
    assert result["workers"] == 2 and result["episodes"] == 2
    a, b = open_dataset(out0), open_dataset(out2)
    assert a.info["total_frames"] == b.info["total_frames"] and a.info["splits"] == b.info["splits"]
    for i in range(2):
        x, y = a.load([i]), b.load([i])
        for k in COMPARED:
            assert np.array_equal(x[k], y[k]), (i, k)
    import ray
    assert not ray.is_initialized()   # this call started Ray, so it shut it down


def test_cli_refuses_a_non_empty_out_and_keeps_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = add_arguments(argparse.ArgumentParser())
    out = tmp_path / "cli"
    assert collect_main(parser.parse_args(["--out", str(out), "--episodes", "1", "--scenario", str(OPEN),
                                           "--workers", "0", "--max-episode-s", "1", "--quiet"])) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["episodes"] == 1 and printed["frames"] == open_dataset(out).info["total_frames"]
    with pytest.raises(DatasetError, match="not empty"):
        collect_main(parser.parse_args(["--out", str(out), "--episodes", "1", "--scenario", str(OPEN),
                                        "--workers", "0", "--quiet"]))
    assert (out / "meta" / "info.json").is_file()   # refused, not discarded


def test_a_failed_collection_leaves_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "bad"
    with pytest.raises(Exception):
        collect_dataset(out, episodes_per_scenario=1, scenarios_dir=OPEN, workers=0, max_time_s=1.0,
                        held_out=1.5, progress=False)   # finalize refuses the held-out fraction
    assert not out.exists()
