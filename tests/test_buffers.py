"""The cache of large kernel buffers (iirsnn.kernels.buffers): reused only when nothing uses them, never a view,
layouts kept, idle blocks released, and no page faults on reuse."""

from __future__ import annotations

import resource

import pytest
import torch

from iirsnn import config
from iirsnn.kernels import buffers

LARGE = (512, 1024)  # 2 MiB of float32


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch):
    """A clean cache that takes blocks from 1 MiB (the tests' sizes) instead of 32 MiB."""
    monkeypatch.setattr(buffers, "MIN_BYTES", 1 << 20)
    buffers.clear()
    yield
    buffers.clear()


def test_a_freed_buffer_is_reused_and_a_live_one_is_not():
    a = buffers.empty(LARGE, torch.float32)
    where = a.data_ptr()
    b = buffers.empty(LARGE, torch.float32)
    assert b.data_ptr() != where  # a is alive
    del a
    c = buffers.empty(LARGE, torch.float32)
    assert c.data_ptr() == where


def test_a_view_keeps_its_buffer_in_use():
    a = buffers.empty(LARGE, torch.float32)
    where = a.data_ptr()
    view = a[1:].t()
    view.fill_(3.0)
    del a
    b = buffers.empty(LARGE, torch.float32)
    b.fill_(-1.0)
    assert b.data_ptr() != where
    assert bool((view == 3.0).all())
    del view
    assert buffers.empty(LARGE, torch.float32).data_ptr() == where


def test_buffers_are_plain_tensors_of_the_asked_dtype_and_layout():
    a = buffers.empty(LARGE, torch.bfloat16)
    assert a.dtype == torch.bfloat16 and a.shape == LARGE and a.is_contiguous() and a._base is None
    version = a._version
    a.add_(1)
    assert a._version == version + 1
    x = torch.empty(8, 64, 32, 32).contiguous(memory_format=torch.channels_last)
    y = buffers.empty_like(x, torch.uint8)
    assert y.dtype == torch.uint8 and y.stride() == x.stride()
    assert buffers.contiguous(x.permute(0, 2, 3, 1)).is_contiguous()


def test_contiguous_copies_only_what_is_not_and_passes_gradients():
    x = torch.randn(64, 4096, requires_grad=True)
    assert buffers.contiguous(x) is x
    y = buffers.contiguous(x.t())
    assert y.is_contiguous() and torch.equal(y, x.t())
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_small_buffers_and_the_switch_bypass_the_cache(monkeypatch):
    buffers.empty((10, 10), torch.float32)
    assert buffers.cached_bytes() == (0, 0)
    monkeypatch.setattr(config, "reuse_buffers", False)
    buffers.empty(LARGE, torch.float32)
    assert buffers.cached_bytes() == (0, 0)


def test_idle_blocks_are_released_and_clear_forgets_all():
    a = buffers.empty(LARGE, torch.float32)
    del a
    total, in_use = buffers.cached_bytes()
    assert total >= 2 * 2**20 and in_use == 0
    keep = [buffers.empty((300, 1024), torch.float32) for _ in range(2)]  # another size class, alive
    for _ in range(buffers.IDLE_REQUESTS + 1):
        buffers.empty((300, 1024), torch.float32)
    buffers.empty((5000, 1024), torch.float32)  # a miss: releases the idle 2 MiB block
    kept_blocks = 3 * buffers.size_class(300 * 1024 * 4) + buffers.size_class(5000 * 1024 * 4)  # 2 alive, 1 reused
    assert buffers.cached_bytes()[0] == kept_blocks  # without the idle 2 MiB one
    del keep
    buffers.clear()
    assert buffers.cached_bytes() == (0, 0)


def test_size_classes_round_up_by_at_most_an_eighth():
    for n in (2**20, 2**20 + 1, 3 * 2**20 + 12345, 80 * 2**20):
        c = buffers.size_class(n)
        assert n <= c <= n * 1.125
    assert buffers.size_class(80 * 2**20) == 80 * 2**20


def test_reuse_faults_no_pages_in():
    """The point of the cache: writing a reused 64 MiB buffer faults in no fresh pages (a fresh one faults ~16k)."""
    buffers.empty((16, 2**20), torch.float32).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers.empty((16, 2**20), torch.float32).fill_(2.0)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before < 200


def test_requests_of_any_size_age_the_cache_and_blocks_live_outside_mallocs_heap():
    a = buffers.empty(LARGE, torch.float32)
    where = a.data_ptr()
    assert where % 4096 == 0  # a mapping of its own: page-aligned, not a heap chunk
    del a
    assert buffers.cached_bytes()[0] > 0
    for _ in range(2 * buffers.IDLE_REQUESTS):  # small buffers only: no miss of the cache, yet the block is idle
        buffers.empty((10, 10), torch.float32)
    assert buffers.cached_bytes() == (0, 0)


def test_a_miss_unmaps_the_free_blocks_of_an_old_working_set_first():
    old = buffers.empty(LARGE, torch.float32)
    del old  # free, of one size class
    for _ in range(buffers.MISS_IDLE_REQUESTS + 1):
        buffers.empty((10, 10), torch.float32)
    new = buffers.empty((300, 1024), torch.float32)  # a miss of another class
    assert buffers.cached_bytes() == (buffers.size_class(300 * 1024 * 4),) * 2  # only the new block is left
    del new
    recent = buffers.empty(LARGE, torch.float32)
    del recent
    buffers.empty((5000, 1024), torch.float32)  # a miss right after: the freshly freed blocks stay
    kept = [buffers.size_class(n * 1024 * 4) for n in (300, LARGE[0] * LARGE[1] // 1024, 5000)]
    assert buffers.cached_bytes()[0] == sum(kept)
