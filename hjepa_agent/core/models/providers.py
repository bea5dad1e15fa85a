"""Which ONNX Runtime execution providers to use: CUDA only where a probe session really ran on it."""
from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging

import numpy as np
import onnxruntime as ort

log = logging.getLogger(__package__)

# A minimal ONNX model (y = x + x, x: float32 [1, 4], opset 13), serialised once with
# onnx.helper so the runtime can probe a provider without the onnx package.
_PROBE_MODEL = (b'\x08\x07\x12\x05hjepa:A\n\x0e\n\x01x\n\x01x\x12\x01y"\x03Add\x12\x05probeZ\x13\n\x01x'
                b'\x12\x0e\n\x0c\x08\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04b\x13\n\x01y\x12\x0e\n\x0c'
                b'\x08\x01\x12\x08\n\x02\x08\x01\n\x02\x08\x04B\x04\n\x00\x10\r')


def session_options() -> ort.SessionOptions:
    """Session options for the agent's small graphs: one thread each, ONNX Runtime's log quiet."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # small graphs, several nodes per process on 2-core machines
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def _cuda_major() -> int | None:
    try:
        from onnxruntime.capi import build_and_package_info as info
    except ImportError:
        return None
    version = getattr(info, "cuda_version", "") or ""
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


@functools.lru_cache(maxsize=1)
def probe_cuda() -> tuple[bool, str]:
    """Whether ONNX Runtime can really run on CUDA here: (usable, reason when not).

    onnxruntime-gpu lists CUDAExecutionProvider even with no GPU, so this checks
    the driver and the CUDA libraries via ctypes first and then runs a tiny model.
    Cached per process; logs one info line when CUDA is not usable.
    """
    ort.set_default_logger_severity(3)
    ok, reason = False, ""
    major = _cuda_major()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        reason = "onnxruntime has no CUDAExecutionProvider"
    elif ort.get_device() != "GPU":
        reason = f"onnxruntime device is {ort.get_device()}"
    else:
        try:
            ctypes.CDLL("libcuda.so.1")
        except OSError:
            reason = "no NVIDIA driver: libcuda.so.1 not loadable"
    if not reason and hasattr(ort, "preload_dlls"):
        # Loads cudart/cublas from nvidia-* wheels when present; it prints, so keep it quiet.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ort.preload_dlls(cuda=True, cudnn=True, msvc=False)
    if not reason:
        suffix = f".so.{major}" if major else ".so"
        for lib in ("libcudart", "libcublas", "libcublasLt"):
            try:
                ctypes.CDLL(lib + suffix)
            except OSError:
                reason = f"{lib}{suffix} not loadable"
                break
    if not reason:
        try:
            sess = ort.InferenceSession(_PROBE_MODEL, session_options(),
                                        providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            if sess.get_providers()[0] != "CUDAExecutionProvider":
                reason = "session fell back to CPU"
            else:
                y = sess.run(None, {"x": np.ones((1, 4), np.float32)})[0]
                ok = bool(np.allclose(y, 2.0))
                reason = "" if ok else "probe model gave wrong output on CUDA"
        except (RuntimeError, ValueError, OSError) as exc:  # ort raises its own RuntimeError subclasses
            reason = f"probe session failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if not ok:
        log.info("CUDA not usable (%s); running on CPU", reason)
    return ok, reason


def select_providers(prefer_cuda: bool = True) -> tuple[list[str], str]:
    """ONNX Runtime providers to use and a one-line description of the choice.

    Returns (["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda") only when
    :func:`probe_cuda` proves CUDA works; otherwise (["CPUExecutionProvider"], reason).
    """
    if not prefer_cuda:
        return ["CPUExecutionProvider"], "cpu (CUDA not requested)"
    ok, reason = probe_cuda()
    if ok:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda"
    return ["CPUExecutionProvider"], f"cpu ({reason})"


__all__ = ["probe_cuda", "select_providers", "session_options"]
