"""ONNX models of the agent: execution-provider choice (:mod:`.providers`), the manifest (:mod:`.manifest`),
the robot fingerprint checks and the command that retrains a refused model (:mod:`.robot`), checked
sessions (:mod:`.sessions`) and the nodes' loaders (:mod:`.loaders`). Every name is importable from here.

``models/manifest.yaml`` (written by :mod:`hjepa_agent.train.manifest`)::

    format: 2
    robot: sample_diffbot                  # ego model's robot name (informative: names are not compared)
    fingerprint: {sha256: ..., values: {wheel_radius_m: 0.05, scan.n_beams: 64, ...}}  # core/fingerprint.py
    observation: {image: [3, 64, 64], scan_bins: 16, latent: 16, habitual_features: 37,
                  speed_norm: [0.8, 2.0]}  # (max_linear_mps, max_angular_rps) given to habitual_features
    action: {names: [linear_x, angular_z], scale: [0.6, 1.8]}  # (v, w) = habitual output * scale
    models:
      encoder:  {file: encoder.onnx, sha256: ..., inputs: [{name: image, shape: [batch, 3, 64, 64],
                 dtype: float32}], outputs: [...], trained: {data: ..., metrics: {...}, ...}}
      habitual: {...}

A dynamic dimension is written as -1 or as a name. Every check fails loudly at
construction with :class:`ModelMismatchError` saying what differs and what to do;
a malformed manifest raises :class:`~hjepa_agent.config.loader.ConfigError`.
This package imports onnxruntime only (no onnx, no torch).

The robot: ``fingerprint`` is that of the robot description and ego model the models were
trained on (:mod:`hjepa_agent.core.fingerprint`); a loader given the fingerprint of the robot it
runs on (``expected``) refuses a model whose manifest has another one, naming each differing key
and the one command (:func:`train_command`) that trains that model for this robot. A format-1
manifest (written before fingerprints) is read as having none, and refused the same way.
"""
from hjepa_agent.core.fingerprint import ACTION_NAMES, EXPECTED_OBSERVATION
from hjepa_agent.core.models.loaders import (HABITUAL_MODELS, LATENT_SOURCES, WORLD_CALIBRATION_FILE, habitual_latent_source,
                                             load_encoder, load_habitual, load_typical_risk, load_world_encoder,
                                             world_action_norm)
from hjepa_agent.core.models.manifest import (EXPECTED_IO, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_FORMATS_READ, Manifest,
                                              ModelEntry, TensorSpec, load_manifest, sha256_file)
from hjepa_agent.core.models.providers import probe_cuda, select_providers
from hjepa_agent.core.models.robot import RETRAIN_HINT, TRAINERS, ModelMismatchError, retrain_hint, train_command
from hjepa_agent.core.models.sessions import OnnxModel

__all__ = ["ACTION_NAMES", "EXPECTED_IO", "EXPECTED_OBSERVATION", "HABITUAL_MODELS", "LATENT_SOURCES", "MANIFEST_FILE",
           "MANIFEST_FORMAT", "MANIFEST_FORMATS_READ", "Manifest", "ModelEntry", "ModelMismatchError", "OnnxModel",
           "RETRAIN_HINT", "TRAINERS", "TensorSpec", "WORLD_CALIBRATION_FILE", "habitual_latent_source", "load_encoder",
           "load_habitual", "load_manifest", "load_typical_risk", "load_world_encoder", "probe_cuda", "retrain_hint",
           "select_providers", "sha256_file", "train_command", "world_action_norm"]
