"""Test-session setup: without a GPU, Triton kernels run in its interpreter on CPU tensors.

TRITON_INTERPRET must be set before Triton compiles (decorates) any kernel, so it is set here,
before the tests import anything that could.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
