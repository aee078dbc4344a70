"""Returning malloc's free heap pages (iirsnn.kernels.heap) before the chunks of a checkpointed step."""

import ctypes

import pytest

from iirsnn import config
from iirsnn.kernels import heap


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(heap._malloc_trim() is None, reason="not glibc: nothing to trim")
def test_the_holes_of_a_fragmented_heap_leave_resident_memory():
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    block, count = 64 << 10, 1024  # 64 MiB in blocks below the mmap threshold: from the heap
    pointers = [libc.malloc(block) for _ in range(count)]
    for p in pointers:
        ctypes.memset(p, 1, block)
    for p in pointers[:-1]:  # the last block stays: the heap's top cannot shrink past it
        libc.free(p)
    before = resident_bytes()
    assert heap.release_free_pages()
    after = resident_bytes()
    libc.free(pointers[-1])
    assert before - after > (count // 2) * block  # most of the 64 MiB of holes went back


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setattr(config, "trim_heap", False)
    assert heap.release_free_pages() is False
