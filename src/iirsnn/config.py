"""Process-wide settings.

check_finite
    Check inputs of the filter and neuron scans for NaN/Inf (default True). The check is one sum
    over the tensor; a non-finite input would otherwise silently stop a neuron from spiking.
precision
    Default precision of ``from_spec`` networks (see below).
checkpoint_chunk
    Default time chunk of ``from_spec`` networks for gradient checkpointing (see below).
backend
    Default backend of the scans: ``"auto"`` picks the fastest available one for the tensor's
    device; ``"torch"`` (portable, hand-written backward) and ``"reference"`` (plain autograd
    through a step-by-step loop, the ground truth of the tests) can be forced.
"""

import os

check_finite: bool = True
backend: str = "auto"
precision: str = os.environ.get("IIRSNN_PRECISION", "fp32")
"""Default precision of networks built by ``iirsnn.models.from_spec`` (``"fp32"`` or ``"bf16-mixed"``);
the environment variable IIRSNN_PRECISION sets it, e.g. to run an outside benchmark in bf16-mixed."""


def _chunk_from_environment() -> int | None:
    text = os.environ.get("IIRSNN_CHECKPOINT_CHUNK", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"IIRSNN_CHECKPOINT_CHUNK must be a positive number of time steps, got {text!r}")
    return int(text)


checkpoint_chunk: int | None = _chunk_from_environment()
"""Default ``checkpoint_chunk`` of ``from_spec`` networks: None trains on whole sequences; an integer runs
training steps in chunks of that many time steps, recomputed in the backward (iirsnn.nn.chunked); the
environment variable IIRSNN_CHECKPOINT_CHUNK sets it."""
reuse_buffers: bool = True
"""Keep the large buffers of the compiled kernels (32 MiB or more) for the next step instead of handing
them back to malloc, which would fault them in again page by page (iirsnn.kernels.buffers)."""
sparse_max_density: float = 0.3
"""Spike matrices at most this dense (fraction of non-zeros) use the sparse products of the cpu
backend; denser ones use GEMMs. Measured crossover: see benchmarks/RESULTS.md."""
