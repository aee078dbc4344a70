"""Training on several processes (``torchrun``): the process group, the ranks' shares of a batch, sums over ranks.

``torchrun --nproc-per-node N -m iirsnn train ...`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address in their environment; :func:`process_group` joins them
(gloo for CPU tensors, and NCCL for CUDA tensors where CUDA is present; ``LOCAL_RANK`` picks the GPU) and
yields the :class:`Ranks` the trainer works with. Without those variables, or with ``WORLD_SIZE=1``, it yields
:data:`SINGLE`, whose every method is the identity: a single-process run is exactly what it was before.

The split of the work (:class:`iirsnn.train.Trainer` uses these hooks):

* every rank builds the same task and the same network (same seeds); the config's ``batch`` is the global
  batch, and each rank trains on its contiguous share of each one (:meth:`Ranks.shard`);
* each rank backpropagates its mean loss weighted by its share of the batch (:meth:`Ranks.weight`), and
  :meth:`Ranks.sum_gradients` sums the gradients, so that every rank holds the gradient of the global batch's
  mean loss and takes the same optimizer step: the run is the same run whatever the number of processes
  (up to float rounding);
* running sums (scores, spike counts, confusion matrices) are summed over ranks (:meth:`Ranks.sum`);
* rank 0 alone reads and writes the run directory (:meth:`Ranks.on_main`: its result, or its exception,
  reaches every rank), so the other ranks need neither the run directory nor a shared file system.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``world`` training processes (rank 0 is the main one)."""

    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous share of the sample indices ``index`` [B] of a global batch: [B_rank], the
        shares differing by at most one sample (the first ``B % world`` ranks take one more; a rank may get
        none when B < world)."""
        if self.world == 1:
            return index
        return torch.tensor_split(index, self.world)[self.rank]

    def weight(self, loss: torch.Tensor, n_rank: int, n_global: int) -> torch.Tensor:
        """``loss`` (the mean over this rank's ``n_rank`` samples) times ``n_rank / n_global``: summed over ranks,
        the weighted losses' gradients are the gradient of the mean over the global batch of ``n_global``."""
        if self.world == 1:
            return loss
        return loss * (n_rank / n_global)

    def sum_gradients(self, params: Sequence[torch.nn.Parameter], problem: str | None) -> str | None:
        """Sum the ``.grad`` of ``params`` over ranks, in place (one all-reduce; a parameter without a gradient on
        every rank keeps None, as in a single process); ``problem`` is this rank's non-finite value, if any.
        Returns ``problem``, or, when only another rank met one, a message saying so: every rank then skips
        or stops alike."""
        if self.world == 1:
            return problem
        dtype = params[0].dtype
        for p in params[1:]:
            dtype = torch.promote_types(dtype, p.dtype)
        device = params[0].device
        grads = [torch.zeros(p.numel(), dtype=dtype, device=device) if p.grad is None else
                 p.grad.detach().flatten().to(dtype) for p in params]
        flags = torch.tensor([p.grad is not None for p in params] + [problem is not None], dtype=dtype, device=device)
        flat = torch.cat([*grads, flags])
        dist.all_reduce(flat)
        summed = flat[:-len(flags)].split([p.numel() for p in params])
        for p, g, has in zip(params, summed, flat[-len(flags):-1].tolist(), strict=True):
            p.grad = g.view_as(p).to(p.dtype) if has else None
        if problem is None and flat[-1].item():
            return "another rank met a non-finite value (its own message names it)"
        return problem

    def sum(self, value: T) -> T:
        """``value`` summed over ranks, on every rank: numbers, tensors (on the CPU), and dicts (over the union of
        their keys), lists and tuples of these, element by element; summed in rank order, so every rank gets the
        same result. The identity in a single process."""
        if self.world == 1:
            return value
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, value)
        total = gathered[0]
        for other in gathered[1:]:
            total = _add(total, other)
        return total

    def on_main(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` run on rank 0 alone, its result (pickled) given to every rank; an exception it raises is
        raised on every rank. For reading and writing the run directory, which only rank 0 touches."""
        if self.world == 1:
            return fn(*args)
        box: list[Any] = [None]
        if self.main:
            try:
                box = [(True, fn(*args))]
            except Exception as exc:  # every rank stops alike
                dist.broadcast_object_list([(False, _portable(exc))], src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def main_first(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on rank 0 first, then on the other ranks: for work that fills an on-disk cache (the
        data's preprocessing), which the other ranks then read instead of computing it again. An exception on
        rank 0 is raised on every rank."""
        if self.world == 1:
            return fn(*args)
        if self.main:
            try:
                result = fn(*args)
            except Exception as exc:
                dist.broadcast_object_list([_portable(exc)], src=0)
                raise
            dist.broadcast_object_list([None], src=0)
            return result
        box: list[Any] = [None]
        dist.broadcast_object_list(box, src=0)
        if box[0] is not None:
            raise box[0]
        return fn(*args)

    def broadcast_(self, tensors: Sequence[torch.Tensor]) -> None:
        """Overwrite ``tensors`` with rank 0's, in place (the network's parameters and buffers at the start)."""
        if self.world > 1:
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def seed_step(self, seed: int, step: int) -> None:
        """Seed torch's generators from (``seed``, ``step``, rank) before a training step of a multi-process run,
        so that the ranks draw different dropout masks, augmentations and random encodings, and a resumed run
        draws what the uninterrupted one did (same number of processes). Nothing in a single process, whose
        generator state the checkpoints keep instead."""
        if self.world > 1:
            digest = hashlib.sha256(f"{seed}/{step}/{self.rank}".encode()).digest()
            torch.manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda`` without an index becomes ``cuda:LOCAL_RANK``."""
        if self.world > 1 and device.type == "cuda" and device.index is None:
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return device


SINGLE = Ranks()


def current() -> Ranks:
    """The :class:`Ranks` of the initialised default process group, else :data:`SINGLE`."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Ranks(dist.get_rank(), dist.get_world_size())
    return SINGLE


@contextlib.contextmanager
def process_group() -> Iterator[Ranks]:
    """Join the processes ``torchrun`` started (``WORLD_SIZE`` > 1 in the environment) for the block, and leave
    the group after it; yields this process's :class:`Ranks`. Backends: gloo for CPU tensors, NCCL for CUDA
    tensors when CUDA is available (then ``LOCAL_RANK`` is this process's GPU). Yields :data:`SINGLE` and does
    nothing without ``WORLD_SIZE`` > 1, and yields the group as it is when one is initialised already."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        yield current()
        return
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1, but this torch was built without torch.distributed")
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend)
    try:
        yield current()
        dist.barrier()  # leave together: a process that closes its connections early can abort the others
    finally:
        dist.destroy_process_group()
        # free the group now, while Python runs: gloo's worker threads otherwise release the last collectives'
        # tensors during interpreter shutdown, which aborts the process ("terminate called without an active
        # exception": a thread that takes the GIL at finalisation is ended by a forced unwind)
        gc.collect()


def _portable(exc: Exception) -> Exception:
    """``exc``, or a RuntimeError with its message where it does not survive pickling (to reach the other ranks)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: _add(a[k], b[k]) if k in a and k in b else a.get(k, b.get(k)) for k in a | b}
    if isinstance(a, (list, tuple)):
        return type(a)(_add(x, y) for x, y in zip(a, b, strict=True))
    return a + b
