"""Data-parallel training: ``torchrun --nproc-per-node N -m anomalia fit DATA --ddp ...``.

Every process runs the ordinary fit (same data, same seed, so the same split, the same shuffles and the
same initial weights); inside :func:`anomalia.nn.training.data_parallel` the training loop gives each
process one contiguous shard of every global mini-batch and sums the gradients over the processes, so each
step is the step one process takes on the whole batch (float rounding aside): the same model as a single
process at the same global batch size and seed. gloo on CPU, NCCL where each process has a GPU. Rank 0
writes the model folder; the others write theirs to a temporary folder that is removed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._core import InputError
from ..nn.training import DataParallel, data_parallel
from ..workflows import fit as fit_one
from ..workflows.fit import FitResult

#: The environment torchrun sets for each process.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def rank() -> int:
    """This process's rank under torchrun (0 outside it)."""
    return int(os.environ.get("RANK", "0"))


def fit_ddp(data: str | Path, *, out: str | Path, **options: Any) -> FitResult:
    """Fit as :func:`anomalia.workflows.fit` does, data-parallel over the processes torchrun started."""
    dist = torch.distributed
    missing = [k for k in TORCHRUN_ENV if k not in os.environ]
    if missing:
        raise InputError(
            "--ddp runs under torchrun, e.g. `torchrun --nproc-per-node 2 -m anomalia fit DATA --ddp --out MODEL/` "
            f"(the environment lacks {', '.join(missing)})"
        )
    if options.get("contaminated"):
        raise InputError("--contaminated trims each batch's worst rows, which shards cannot agree on; leave it out")
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if gpu else "gloo")
    me, world = dist.get_rank(), dist.get_world_size()
    try:
        with data_parallel(DataParallel(me, world)):
            if me == 0:
                result = fit_one(str(data), out=str(out), **options)
            else:
                with tempfile.TemporaryDirectory(prefix="anomalia-ddp-") as tmp:
                    result = fit_one(str(data), out=str(Path(tmp) / Path(out).name), **options)
                    result.path = Path(out)
        dist.barrier()
    finally:
        if started:
            dist.destroy_process_group()
    return result


__all__ = ["fit_ddp", "rank"]
