"""DistributedDataParallel for a full training run: one process per device, started by torch's own launcher
(``torch.distributed.run``, i.e. torchrun) or by Ray Train; the process group comes from torch's environment
variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or is already set up by Ray Train.
NCCL on GPUs, gloo on CPU (so a CPU machine runs the same path with two processes)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn

from effnas.space.errors import SearchError, UserError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its rank among ``world`` processes and the device it trains on."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        """Rank 0 writes the run's files and draws the progress bar."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sums over every rank (float64, so counts of images stay exact)."""
        if self.world == 1:
            return list(values)
        comm = self.device if self.device.type == "cuda" else torch.device("cpu")
        tensor = torch.tensor(values, dtype=torch.float64, device=comm)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def wrap(self, model: nn.Module) -> nn.Module:
        """DDP averages gradients over the ranks (and broadcasts rank 0's weights and buffers at the start)."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


HELD_BY_LAUNCHER = "EFFNAS_RUN_HELD"  # set for the ranks that :func:`launch` starts


def holds_run_folder() -> bool:
    """Whether this process is the one that holds the run folder (:func:`search.training.checkpoint.held`): a
    process on its own, or the launcher of its ranks; under another launcher (a user's torchrun, Ray Train),
    rank 0."""
    if os.environ.get(HELD_BY_LAUNCHER):
        return False
    if not launched():
        return True
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def launched() -> bool:
    """True in a process that torchrun (or Ray Train) started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or (torch.distributed.is_available()
                                                          and torch.distributed.is_initialized())


def setup(device: torch.device) -> Ranks:
    """This process's rank and device; joins the process group when launched as one of several."""
    if not launched():
        return Ranks(rank=0, world=1, local_rank=0, device=device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    if device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", torch.distributed.get_world_size()))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))  # the ranks share the cores
    return Ranks(rank=torch.distributed.get_rank(), world=torch.distributed.get_world_size(), local_rank=local,
                 device=device)


def check_devices(count: int, device: torch.device) -> None:
    """``--devices N`` needs N GPUs on a CUDA run; on CPU it means N gloo processes."""
    if device.type == "cuda" and count > torch.cuda.device_count():
        raise UserError(f"--devices {count}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def launch(count: int, argv: list[str]) -> int:
    """Run ``effnas`` with ``argv`` as ``count`` processes under torch's launcher (torchrun --standalone);
    the exit status is the launcher's."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if "OMP_NUM_THREADS" not in os.environ:  # torchrun would set 1 and warn; share the cores instead
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
    os.environ[HELD_BY_LAUNCHER] = "1"  # the launcher holds the run folder for its ranks
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={count}", "--module", "effnas.studies.cli",
                                         *argv])
    try:
        run(args)
    except ChildFailedError as exc:
        failures = "; ".join(f"rank {f.local_rank} exit code {f.exitcode}" for f in exc.failures.values())
        raise SearchError(f"a training process failed ({failures}); see its messages above") from None
    return 0
