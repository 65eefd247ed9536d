"""torchrun + DistributedDataParallel: the process group and the few collectives training needs.

``seq2attn train`` reads the environment torchrun sets (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``); without it the run is one process and every call here is a
no-op. Every rank computes the same epoch plan from the seed and takes its share of each
optimizer step's batches (seq2attn/data.py); rank 0 alone validates and writes the model
directory while the others wait at a barrier.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from seq2attn.errors import ConfigError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The rank that validates, logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env() -> World:
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError("WORLD_SIZE / RANK / LOCAL_RANK must be integers (set by torchrun)") from None
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} WORLD_SIZE={size}: expected 0 <= RANK < WORLD_SIZE")
    return World(rank, size, local)


_joined = False  # this process joined a process group: it is a torchrun worker


def init(world: World, device: torch.device) -> None:
    """Join the process group: nccl between GPUs, gloo between CPU processes."""
    if not world.distributed or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    timeout = timedelta(minutes=float(os.environ.get("SEQ2ATTN_DIST_TIMEOUT_MIN", "30")))
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=timeout)
    global _joined
    _joined = True


def close() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def exit_worker(code: int) -> None:
    """End a torchrun worker now, with exit status ``code``, skipping interpreter finalization.

    Everything a run writes is on disk by then (atomically), and its process group destroyed. What
    is left at finalization is gloo's C++ state (worker threads, work objects holding tensors), and
    tearing that down while the interpreter dies can abort the process ("terminate called without an
    active exception", exit 134) after a clean run: seen in CI's two-process test, and the reason
    upstream torch tried an atexit destroy (pytorch/pytorch PR 179291). A process that never joined
    a group returns and exits normally."""
    if not _joined:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said on it
            pass
    os._exit(code)


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def share(world: World, value: Any) -> Any:
    """Rank 0's ``value``, on every rank (a picklable object: a few numbers, a flag)."""
    if not world.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(world: World, value: Any) -> list[Any]:
    """Every rank's ``value`` (a picklable object), in rank order, on every rank."""
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def any_rank(world: World, flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any: stop decisions (Ctrl-C, time limit)
    that one rank takes alone must stop all of them at the same step."""
    if not world.distributed:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
