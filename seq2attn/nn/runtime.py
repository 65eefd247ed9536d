"""Run-time settings shared by training and decoding: the precision (autocast) and, on Linux,
the allocator.

``precision`` (``train.precision``, ``decode.precision``): fp32 runs as is; bf16 runs matmuls
under ``torch.autocast`` in bfloat16 (CPU and CUDA) with float32 weights; fp16 does the same in
float16 on CUDA only (training adds a gradient scaler). Losses and log-probabilities are always
computed in float32.

glibc's malloc serves every block above a (dynamic) threshold with a fresh ``mmap`` and gives it
back with ``munmap`` on free. A training step allocates and frees the same large activations and
gradients every time, so each step page-faults its way through hundreds of MB of new pages: on the
2-core benchmark machine this cost a quarter of the RNN step and a third of the Transformer step
(profiled with torch.profiler: ``fill_`` of a fresh 131 MB gradient took 205 ms, at 0.6 GB/s).
``keep_freed_memory`` turns that off: blocks come from the heap and stay with the process for
reuse (jemalloc and tcmalloc, the allocators PyTorch's CPU tuning guide suggests preloading, do the
same). Since the training loss no longer materialises the logits (seq2attn/loss.py) few blocks are
that large, and the gain shrank to 3-5% (60 steps of the benchmark's Multi30k training, RNN and
Transformer, with and without it). The cost is that the resident size does not shrink after the
peak, which a training process does not need. ``seq2attn train`` calls it; SEQ2ATTN_MALLOC=system
keeps glibc's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings
import weakref
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from seq2attn.errors import ConfigError

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_MAX = -4
_done = False


def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory; True when it did.
    A no-op (False) elsewhere: macOS, Windows, musl, or SEQ2ATTN_MALLOC=system."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("SEQ2ATTN_MALLOC", "") == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _done = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return _done


def check_precision(precision: str, device: torch.device, *, option: str) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"{option}=fp16 needs a CUDA device; use bf16 on CPU")
    if precision == "int8" and device.type != "cpu":
        raise ConfigError(f"{option}=int8 (dynamic quantization) runs on CPU; use bf16 or fp16 on {device.type}")


def _cpu_has_amx() -> bool:
    caps = getattr(torch.cpu, "get_capabilities", None)  # newer torch; /proc/cpuinfo on older ones
    if caps is not None:
        return bool(caps().get("amx_bf16", False))
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in f)
    except OSError:
        return False


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """``train.precision`` as it will run, and why: ``auto`` becomes bf16 where the hardware has
    bf16 matrix units (AMX on a CPU: about a quarter more training steps a minute than fp32 at the
    same loss per step, docs/recipes.md "Precision"; a CUDA GPU that supports bf16), else fp32.
    Without them torch emulates bf16 on a CPU, many times slower than fp32."""
    if precision != "auto":
        return precision, ""
    if device.type == "cuda":
        return ("bf16", "a CUDA GPU with bf16") if torch.cuda.is_bf16_supported() else ("fp32", "no bf16 on this GPU")
    if device.type == "cpu" and _cpu_has_amx():
        return "bf16", "a CPU with AMX"
    return "fp32", f"no bf16 matrix units on this {device.type}"


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    """The autocast context of a precision name: none for fp32 and int8 (see ``for_precision``)."""
    if precision in ("fp32", "int8"):
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


_INT8: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


def for_precision(model: nn.Module, precision: str) -> nn.Module:
    """The model to decode with: ``model`` itself, or for int8 a dynamically quantized copy
    (made once per model): the weights of its GRUs and Linear layers in int8, activations
    quantized on the fly (``torch.ao.quantization.quantize_dynamic``). Attention scorers stay in
    float: they are small, and some read their weights directly."""
    if precision != "int8":
        return model
    if model not in _INT8:
        import copy

        from seq2attn.nn.attention import Attention

        scorers = [name for name, m in model.named_modules() if isinstance(m, Attention)]
        names = {name for name, m in model.named_modules() if isinstance(m, (nn.GRU, nn.Linear))
                 and not any(name.startswith(s + ".") for s in scorers)}
        with warnings.catch_warnings():  # torch 2.13 announces the quantized tensor types' retirement
            warnings.filterwarnings("ignore", category=UserWarning, message=".*quantize_per_tensor.*")
            _INT8[model] = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), qconfig_spec=names,
                                                                  dtype=torch.qint8).eval()
    return _INT8[model]


def resolve_device(name: str, *, local_rank: int | None = None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto``; under torchrun, plain ``cuda`` means the
    process's own GPU (``LOCAL_RANK``)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: no CUDA device is available; use --device cpu or auto")
        index = int(name[5:]) if name != "cuda" else (local_rank or 0)
        if index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
        return torch.device("cuda", index)
    return torch.device(name)
