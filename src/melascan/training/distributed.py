"""Where a training process runs: the device, DistributedDataParallel under ``torchrun``,
seeds and the RNG state a checkpoint carries (needs torch)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from melascan.errors import DataError


def torch_device(choice: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise DataError("device cuda: no CUDA device is available (use auto or cpu)")
    return torch.device(choice)



@dataclass
class Dist:
    """Where this process runs: ``rank`` of ``world_size`` processes on ``device``."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup_distributed(device_choice: str) -> Dist:
    """Single process, or DDP when ``torchrun`` set ``WORLD_SIZE`` > 1 (NCCL on GPUs, Gloo on CPUs)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch_device(device_choice).type == "cuda"
    if world_size == 1:
        return Dist(0, 1, torch.device("cuda" if cuda else "cpu"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch; ask for deterministic kernels where the backend has them."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


def rng_state() -> dict:
    """All RNG states, as types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
