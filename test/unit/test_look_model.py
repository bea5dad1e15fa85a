"""The world model's look score (core/look.py): a k-nearest-neighbour density of the image's look
statistics, its bank file in the manifest, and what the shipped bank says about nominal close-ups
and unseen looks."""
from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from hjepa_agent.core.fingerprint import load_robot_fingerprint
from hjepa_agent.core.look import LOOK_EPS, LOOK_FILE, LOOK_MODEL, LookModel, load_look_model
from hjepa_agent.core.models import WORLD_CALIBRATION_FILE, ModelMismatchError
from hjepa_agent.core.perception import APPEARANCE_FEATURES, Perception, appearance_features
from hjepa_agent.core.types import N_LATENT
from hjepa_agent.config.paths import data_path
from hjepa_agent.sim.appearance import Appearance
from hjepa_agent.sim.scenario import Scenario, Start, load_scenario
from hjepa_agent.train.look import fit_look

MODELS = data_path("models")
SHIPPED = load_robot_fingerprint(data_path("config", "robots", "diffbot.yaml"), data_path("config", "ego_model.yaml"))
FOOTPRINT_M = float(yaml.safe_load(data_path("config", "ego_model.yaml").read_text())["hard"]["footprint"]["radius_m"])
AMBIGUITY_STOP = float(yaml.safe_load(data_path("config", "watchdog.yaml").read_text())["ambiguity_stop"])
F = len(APPEARANCE_FEATURES)


@pytest.fixture(scope="module")
def shipped() -> tuple[LookModel, tuple[float, float], float]:
    """The shipped look model, the appearance score's nominal (mean, std) and the ambiguity scale."""
    look = load_look_model(MODELS, expected=SHIPPED)
    assert look is not None, "models/manifest.yaml has no world_look: run `hjepa-agent train world-model --recalibrate`"
    cal = yaml.safe_load((MODELS / WORLD_CALIBRATION_FILE).read_text())
    return look, tuple(cal["score_ref"]["appearance"]), float(cal["ambiguity_scale"])


def _ambiguity(score: np.ndarray | float, ref: tuple[float, float], scale: float) -> np.ndarray:
    """The appearance score's share of the world state's ambiguity (core.world_model.WorldModel.ambiguity)."""
    return np.maximum((np.asarray(score) - ref[0]) / ref[1], 0.0) / scale


def _frames(world, scenario: Scenario, look: Appearance | None, n: int, v: float = 0.4, w: float = 0.3) -> np.ndarray:
    """``n`` preprocessed camera frames (n, 3, 64, 64) uint8, one per 0.5 s of a slow turning drive."""
    from hjepa_agent.core.perception import preprocess_image
    world.reset(scenario, 0, look)
    out = []
    for _ in range(n):
        world.set_cmd(v, w)
        world.step(0.5)
        out.append((preprocess_image(world.render_camera())[0] * 255.0 + 0.5).astype(np.uint8))
    return np.stack(out)


# ---------------------------------------------------------------------------------- the score
def test_the_score_is_the_log_mean_distance_to_the_k_nearest_bank_rows() -> None:
    rng = np.random.default_rng(0)
    mean, scale = rng.uniform(0.2, 0.8, F).astype(np.float32), rng.uniform(0.05, 0.2, F).astype(np.float32)
    model = LookModel(mean, scale, rng.normal(size=(300, F)).astype(np.float32), k=7)
    f = rng.uniform(0, 1, (50, F)).astype(np.float32)
    d = np.linalg.norm(((f - mean) / scale)[:, None] - model.bank[None], axis=2)
    want = np.log(np.sort(d, axis=1)[:, :7].mean(1) + LOOK_EPS)
    assert np.allclose(model.score_features(f), want, atol=1e-4)
    # a bank row scores log(mean distance to it and its 6 nearest other rows); k = 1: log(eps)
    exact = LookModel(mean, scale, model.bank, k=1)
    rows = model.bank[:3] * scale + mean
    assert exact.score_features(rows) == pytest.approx(np.full(3, math.log(LOOK_EPS)), abs=1e-2)
    images = rng.integers(0, 256, (4, 3, 64, 64), dtype=np.uint8)
    batch = model.score(images)
    assert batch.shape == (4,) and batch.dtype == np.float32
    one = model.score(images[1])
    assert isinstance(one, float) and one == pytest.approx(float(batch[1]), abs=1e-5)
    with pytest.raises(ValueError, match="k must be"):
        LookModel(mean, scale, model.bank, k=301)
    with pytest.raises(ValueError, match="scale"):
        LookModel(mean, np.zeros(F), model.bank, k=3)


def test_the_bank_is_thinned_to_its_size_without_duplicates_and_far_looks_score_higher() -> None:
    rng = np.random.default_rng(1)
    f = np.concatenate([rng.normal(0.5, 0.05, (3000, F)), np.repeat(rng.normal(0.5, 0.05, (1, F)), 200, 0)])
    model = fit_look(None, bank_size=500, k=5, features=np.clip(f, 0, 1).astype(np.float32))
    assert model.bank.shape == (500, F) and len(np.unique(model.bank, axis=0)) == 500 and model.k == 5
    near = model.score_features(np.clip(rng.normal(0.5, 0.05, (20, F)), 0, 1))
    far = model.score_features(np.clip(rng.normal(0.8, 0.05, (20, F)), 0, 1))
    assert far.min() > near.max()


def test_perception_sends_the_look_score_as_appearance_log(shipped) -> None:
    look = shipped[0]
    rgb = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    p = Perception(lambda x, s: np.zeros((1, N_LATENT), np.float32), encoder_reads_scan=True, look=look)
    percept = p.on_image(0.0, rgb, scan_max_age_s=0.3)
    assert percept.appearance_log == pytest.approx(look.score(np.ascontiguousarray(rgb.transpose(2, 0, 1))), abs=1e-5)
    assert Perception(lambda x, s: np.zeros((1, N_LATENT), np.float32), encoder_reads_scan=True
                      ).on_image(0.0, rgb, scan_max_age_s=0.3).appearance_log == 0.0   # no look model


# ---------------------------------------------------------------------------------- the shipped bank
def test_nominal_looks_score_low_and_unseen_looks_high(shipped, diffbot_world) -> None:
    look, ref, scale = shipped
    sc = load_scenario(data_path("config", "scenarios", "clutter.yaml"))
    nominal = [None] + [Appearance.sample(np.random.default_rng(60_000 + i), "nominal") for i in range(3)]
    unseen = [Appearance.sample(np.random.default_rng(70_000 + i), "unseen") for i in range(4)]
    nom = np.concatenate([_ambiguity(look.score(_frames(diffbot_world, sc, a, 4)), ref, scale) for a in nominal])
    uns = np.concatenate([_ambiguity(look.score(_frames(diffbot_world, sc, a, 4)), ref, scale) for a in unseen])
    assert nom.max() < 0.75, nom                                   # 1.0: the calibration frames' 0.999 quantile
    assert uns.min() > nom.max() and np.median(uns) > 0.75, uns    # unseen: above every nominal frame


def test_a_close_up_filled_with_one_obstacle_colour_is_not_called_unseen(shipped, diffbot_world) -> None:
    """The false stop this score replaced a Gaussian for (`hjepa-agent sim --layouts procedural --split val
    --families clutter --seed 0`): in the sim's default look the robot drives up to the layout's large
    blue cylinder (the default palette's blue, a hue of the unseen looks' half of the colour wheel) and
    the frame fills with its colour. The Gaussian put these frames at 1.9-2.3 (stop then: 1.505). With
    the stop recalibrated on procedural validation runs (1.138), the look alone still stays below it
    while the footprint is 0.2 m or more from the cylinder (half the picture blue; the watchdog has long
    been planning there: the habitual command's 1-s clearance falls under clearance_plan_m at ~0.45 m);
    head-on closer than that, the picture filling with blue, it rises to ~1.35 (README, what does not work
    yet; the agent in these val clutter layouts, 10 episodes, stopped in none)."""
    from hjepa_agent.config.ego_model import load_ego_model
    from hjepa_agent.core.perception import preprocess_image
    from hjepa_agent.sim.layouts import LayoutId, make_layout
    look, ref, scale = shipped
    layout = make_layout(LayoutId("clutter", "val", 0), load_ego_model(data_path("config", "ego_model.yaml")))
    blue = layout.obstacles[8]   # obstacle i has the default palette's colour i % 9: 8 is the blue
    assert blue.shape == "cylinder" and blue.radius_m > 0.2
    start = Start(blue.x_m + 1.2, blue.y_m, math.pi)   # 1.2 m east of it, facing it
    diffbot_world.reset(dataclasses.replace(layout, start=start), 0, None)
    frames, clear = [], []
    while not diffbot_world.in_collision() and len(frames) < 60:
        frames.append((preprocess_image(diffbot_world.render_camera())[0] * 255.0 + 0.5).astype(np.uint8))
        x, y, _ = diffbot_world.pose()
        clear.append(math.hypot(x - blue.x_m, y - blue.y_m) - blue.radius_m - FOOTPRINT_M)
        diffbot_world.set_cmd(0.3, 0.0)
        diffbot_world.step(0.1)
    rgb = np.stack(frames).astype(np.float32) / 255.0
    filled = ((rgb[:, 2] > rgb[:, 0] + 0.25) & (rgb[:, 2] > rgb[:, 1] + 0.25)).mean(axis=(1, 2))
    assert filled[0] < 0.3 and filled.max() > 0.9, filled   # from a view of the scene to a frame of blue
    amb = _ambiguity(look.score(np.stack(frames)), ref, scale)
    far = np.array(clear) >= 0.2
    assert far.sum() >= 10 and filled[far].max() > 0.4, (filled, clear)   # the cylinder fills half the view
    assert amb[far].max() < AMBIGUITY_STOP and np.median(amb) < 1.0, (amb, filled, clear)
    assert amb.max() < 1.5, (amb, filled)   # filled with blue: 1.35 at most (the Gaussian: 1.9-2.3)


# ---------------------------------------------------------------------------------- the file
def _copy(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("manifest.yaml", LOOK_FILE):
        shutil.copy(MODELS / name, models / name)
    return models


def test_loading_refuses_a_bank_whose_sha256_differs_or_that_is_missing(tmp_path: Path, shipped) -> None:
    models = _copy(tmp_path)
    ok = load_look_model(models, expected=SHIPPED)
    assert np.array_equal(ok.bank, shipped[0].bank) and ok.k == shipped[0].k
    LookModel(ok.mean, ok.scale, ok.bank[:-1], ok.k).save(models / LOOK_FILE)   # one row fewer
    with pytest.raises(ModelMismatchError, match=r"sha256 .* differs from models.world_look.sha256.*"
                                                 r"hjepa-agent train world-model --recalibrate"):
        load_look_model(models, expected=SHIPPED)
    (models / LOOK_FILE).unlink()
    with pytest.raises(ModelMismatchError, match="not found.*hjepa-agent train world-model --recalibrate"):
        load_look_model(models)


def test_a_manifest_without_a_look_model_has_no_appearance_score(tmp_path: Path) -> None:
    from hjepa_agent.core.world_model import WorldModel
    models = tmp_path / "models"
    shutil.copytree(MODELS, models, ignore=shutil.ignore_patterns("skidrover"))
    doc = yaml.safe_load((models / "manifest.yaml").read_text())
    doc["models"].pop(LOOK_MODEL)
    (models / "manifest.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (models / LOOK_FILE).unlink()
    assert load_look_model(models) is None
    wm = WorldModel(models, with_encoder=False)
    assert wm.look is None and np.isnan(wm.appearance(np.zeros((2, 3, 64, 64), np.uint8))).all()
    assert not wm.online().has_appearance


def test_a_bank_file_needing_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / LOOK_FILE
    np.savez(path, format=np.int64(1), features=np.array(APPEARANCE_FEATURES, dtype=object),
             mean=np.zeros(F), scale=np.ones(F), bank=np.zeros((2, F)), k=np.int64(1))
    with pytest.raises(ValueError, match="plain arrays"):
        LookModel.read(path)


def test_the_brightness_percentiles_are_numpys_bit_for_bit() -> None:
    from hjepa_agent.core.perception import _percentiles
    rng = np.random.default_rng(3)
    rows = [rng.random((4, 4096), dtype=np.float32), rng.random((1, 7), dtype=np.float32),
            np.full((2, 100), 0.25, np.float32), (rng.integers(0, 5, (3, 999)) / 4).astype(np.float32),
            rng.random((1, 1), dtype=np.float32), rng.random((2, 2), dtype=np.float32)]
    for x in rows:
        want = np.percentile(x, (10, 50, 90), axis=1).T
        got = _percentiles(x, (10, 50, 90))
        assert got.dtype == want.dtype and np.array_equal(got, want), (x.shape, got, want)
