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


def _chunk_from_environment() -> int | str:
    text = os.environ.get("IIRSNN_CHECKPOINT_CHUNK", "").strip()
    if not text:
        return "auto"
    if text in ("auto", "whole"):
        return text
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"IIRSNN_CHECKPOINT_CHUNK must be 'auto', 'whole' or a positive number of time steps, "
                         f"got {text!r}")
    return int(text)


checkpoint_chunk: int | str | None = _chunk_from_environment()
"""Default ``checkpoint_chunk`` of ``from_spec`` networks: ``"auto"`` (the default) trains sequences of more than
512 steps in chunks of 256, recomputed in the backward (iirsnn.nn.chunked.auto_chunk), shorter ones whole;
``"whole"`` (or None) always trains on whole sequences; an integer always runs training steps in chunks of that
many time steps. The environment variable IIRSNN_CHECKPOINT_CHUNK sets it."""
reuse_buffers: bool = True
"""Keep the large buffers of the compiled kernels (1 MiB or more, each on its own mapping) for the next step
instead of handing them back, which would fault them in again page by page (iirsnn.kernels.buffers)."""
trim_heap: bool = True
"""Return malloc's free heap pages to the system before each chunk of a checkpointed training step, so that
its resident memory follows the live tensors (iirsnn.kernels.heap)."""
dense_gemm: str = "auto"
"""Which library runs the cpu backend's dense float32 products (the input gradients): ``"auto"`` (oneDNN on x86
CPUs not made by Intel, where MKL's sgemm was 1.3-1.6x slower; torch's matmul, MKL, elsewhere), ``"mkl"`` or
``"onednn"`` (iirsnn.kernels.cpu.gemm)."""
sparse_max_density: float = 0.3
"""Spike matrices at most this dense (fraction of non-zeros) use the sparse products of the cpu
backend; denser ones use GEMMs. Measured crossover: see benchmarks/RESULTS.md."""
