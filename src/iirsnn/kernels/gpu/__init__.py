"""GPU backend (``"gpu"``): the scans as Triton kernels, chosen automatically for CUDA tensors.

The kernels' logic is tested on CPU tensors with TRITON_INTERPRET=1 (tests/test_gpu_kernels.py);
their speed needs a CUDA device. Triton is an optional dependency (``pip install iirsnn[gpu]``).
"""

from __future__ import annotations

import importlib.util
import os


def available_for(device_type: str) -> bool:
    """Whether the Triton kernels can run on tensors of this device type."""
    if importlib.util.find_spec("triton") is None:
        return False
    if device_type == "cuda":
        return True
    return device_type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1"
