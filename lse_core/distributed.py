"""Several processes rendering one journey into one session, with torch.distributed.

``torchrun --nproc_per_node N --no-python lse run CONFIG`` starts N processes (one per
GPU, on one or several machines); each reads its rank from the environment torchrun
sets. Every rank runs the same plan, so the plans stay in step; the batches a single
process would form are dealt out by their index, so a frame's bytes do not depend on
the number of ranks, and after each round of batches the ranks meet (and exchange the
frames a plan asked to get back). Rank 0 owns ``session.json`` and its journal, the
session lock, the questions to the user and the media.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterator

from .errors import one_line


class RankFailed(Exception):
    """Another rank (or this one) failed; the run ends on every rank."""

    def __init__(self, rank: int | None, reason: str, bad_input: bool = False) -> None:
        super().__init__(f"rank {rank}: {reason}" if rank is not None else reason)
        self.rank = rank
        self.reason = reason
        self.bad_input = bad_input


@dataclass
class Failure:
    """What a rank sends instead of its results when it failed or was stopped."""

    reason: str
    bad_input: bool = False
    stopped: bool = False  # Ctrl-C or SIGTERM: the whole run stops, resumable


def launched_ranks() -> int:
    """How many processes torchrun started for this run (1 when not under torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


class Group:
    """The ranks of one run and the few collective steps lse needs from torch.distributed."""

    def __init__(self, rank: int, size: int, local_rank: int) -> None:
        self.rank = rank
        self.size = size
        self.local_rank = local_rank

    @classmethod
    def join(cls, use_cuda: bool, timeout_s: float = 1800) -> "Group":
        """Join the process group torchrun prepared: NCCL between GPUs, gloo on CPUs.

        Gloo carries the exchanged objects in either case, so frames travel through
        host memory and no GPU waits on another's copy.
        """
        import torch
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend="cuda:nccl,cpu:gloo" if use_cuda else "gloo",
                                    timeout=timedelta(seconds=timeout_s))
        return cls(dist.get_rank(), dist.get_world_size(), local_rank)

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def broadcast(self, value: Any = None) -> Any:
        """Rank 0's ``value``, on every rank."""
        import torch.distributed as dist

        box = [value if self.is_root else None]
        with _peers_answer():
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank; a ``Failure`` from any
        rank becomes ``RankFailed`` on all of them."""
        import torch.distributed as dist

        from .errors import Cancelled

        values: list[Any] = [None] * self.size
        with _peers_answer():
            dist.all_gather_object(values, value)
        failures = [(rank, item) for rank, item in enumerate(values) if isinstance(item, Failure)]
        for rank, item in failures:
            if not item.stopped:
                raise RankFailed(rank, item.reason, item.bad_input)
        if failures:
            raise Cancelled()
        return values

    def check(self, error: BaseException | None) -> None:
        """Agree that every rank got this far; raise on all ranks if one did not."""
        self.gather(None if error is None else failure_of(error))

    def leave(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


@contextmanager
def _peers_answer() -> Iterator[None]:
    """A rank that died (kill -9, a lost machine) breaks the collective on the others."""
    try:
        yield
    except RuntimeError as exc:  # torch.distributed's errors derive from it
        raise RankFailed(None, f"another rank stopped answering ({one_line(str(exc), 120)}); "
                               "the session can be resumed") from None


def failure_of(error: BaseException) -> Failure:
    from .errors import BadInput, Cancelled

    if isinstance(error, Cancelled):
        return Failure("stopped", stopped=True)
    if isinstance(error, RankFailed):
        return Failure(error.reason, error.bad_input)
    text = str(error) if isinstance(error, BadInput) else f"{error.__class__.__name__}: {error}"
    return Failure(one_line(text), isinstance(error, BadInput))
