"""Export a torch module to a single-file ONNX model and check it against torch.

The exported graph has one input and one output with a dynamic batch axis
(named ``batch``); :func:`export_onnx` refuses to return a model whose ONNX
Runtime outputs differ from torch's by more than ``tol`` on random inputs.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

log = logging.getLogger(__name__)

PARITY_TOL = 1e-4
"""Largest acceptable max-abs difference between torch and ONNX Runtime outputs."""


class ExportError(RuntimeError):
    """The exported model disagrees with torch or could not be exported."""


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: str | Path,
                input_names: list[str], output_names: list[str], *, n_parity: int = 64,
                tol: float = PARITY_TOL, seed: int = 0,
                low: float = 0.0, high: float = 1.0) -> float:
    """Export ``module`` (one tensor in, one tensor out) to ``path`` and check parity.

    example: a tensor of shape (B, ...) used for tracing; the batch axis is
    exported as dynamic. The parity check feeds ``n_parity`` random inputs drawn
    uniformly from [low, high) (same trailing shape as ``example``) through torch
    and ONNX Runtime (CPU) as one batch and as a single sample.

    Returns the max abs error. Raises ExportError when it exceeds ``tol``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, (example,), dynamo=True, external_data=False,
                                 input_names=input_names, output_names=output_names,
                                 dynamic_shapes=({0: batch},), verbose=False)
    if prog is None:
        raise ExportError(f"torch.onnx.export returned no program for {path}")
    prog.save(str(path), external_data=False)

    gen = torch.Generator().manual_seed(seed)
    x = low + (high - low) * torch.rand((n_parity, *example.shape[1:]), generator=gen)
    with torch.no_grad():
        ref = module(x).numpy()
    sess = _session(path)
    in_name = sess.get_inputs()[0].name
    got = sess.run(None, {in_name: x.numpy()})[0]
    got_one = sess.run(None, {in_name: x[:1].numpy()})[0]
    if got.shape != ref.shape:
        raise ExportError(f"{path}: ONNX output shape {got.shape} != torch {ref.shape}")
    err = float(max(np.max(np.abs(got - ref)), np.max(np.abs(got_one - ref[:1]))))
    if not err <= tol:
        raise ExportError(f"{path}: ONNX vs torch max abs error {err:.3g} > {tol:.1g}")
    log.info("exported %s (%d bytes), parity max abs err %.2e", path, path.stat().st_size, err)
    return err


def as_numpy(module: torch.nn.Module):
    """``module`` as a numpy function (float32 in, numpy out, no gradients): a torch network where the
    runtime expects its exported ONNX counterpart (e.g. while it is being trained)."""
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.asarray(x, np.float32))).numpy()
    return run


def setup_training_logging() -> None:
    """INFO logging with timestamps for a training run (unless the caller configured logging),
    with the ONNX exporter's own chatter turned down to errors."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("onnxscript", "onnx_ir", "torch.onnx", "torch.onnx._internal.exporter._registration"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
