"""The table of what each compiled kernel is handed (iirsnn.kernels.cpu.signatures) and its checks in run().

- The table agrees with the C prototypes (names, order, pointer element types, integer widths), so that a kernel
  whose arguments change cannot go on being called through the old entry.
- Every kernel, called through run() with every tensor exactly as large as the table says, touches nothing
  beyond: each tensor is followed by guard values that must stay unchanged (writes), and under
  IIRSNN_SANITIZE=address each tensor is its own allocation, so AddressSanitizer reports any read past it.
- Each kind of wrong argument (size, dtype, device, layout, NULL, range, count) raises, naming it, before the
  kernel writes anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from iirsnn.kernels import cpu as cpu_kernels
from iirsnn.kernels.cpu import scans
from iirsnn.kernels.cpu.signatures import (
    BITS,
    FLOAT64,
    INT32,
    INT64,
    KERNELS,
    POTENTIAL,
    SCALAR,
    Int,
    Kernel,
    Ptr,
    Real,
    words,
)

pytestmark = pytest.mark.skipif(not cpu_kernels.available(), reason="compiled CPU kernels unavailable")
SOURCES = Path(cpu_kernels.__file__).parent
_C_POINTERS = {"SCALAR": SCALAR, "double": FLOAT64, "int64_t": INT64, "int32_t": INT32, "uint64_t": BITS,
               "void": POTENTIAL}
_C_SCALARS = {"int64_t": (Int, 64), "int": (Int, 32), "double": (Real, None)}
SANITIZED = bool(os.environ.get("IIRSNN_SANITIZE"))
GUARD = 16  # at least this many elements after each tensor (and as many as it has) must stay unchanged


def c_prototypes() -> dict[str, tuple[str, list[tuple[str, str, bool]]]]:
    """name -> (return type, [(C type, argument name, is pointer)]) of every exported kernel in the headers."""
    found = {}
    for header in ("scans_impl.h", "sparse_impl.h"):
        text = (SOURCES / header).read_text()
        for ret, name, params in re.findall(r"^(void|int) FN\((\w+)\)\(([^)]*)\)", text, flags=re.M):
            args = []
            for param in params.split(","):
                tokens = param.replace("*", " * ").replace("const", " ").replace("restrict", " ").split()
                args.append((tokens[0], tokens[-1], "*" in tokens))
            found[name] = (ret, args)
    return found


def test_table_matches_the_c_prototypes():
    protos = c_prototypes()
    assert set(protos) == set(KERNELS), "kernels in the headers and in the table differ"
    for name, (ret, c_args) in protos.items():
        kernel = KERNELS[name]
        assert (kernel.returns is not None) == (ret == "int"), f"{name}: return type"
        assert [a.name for a in kernel.args] == [n for _, n, _ in c_args], f"{name}: argument names or order"
        for arg, (ctype, cname, pointer) in zip(kernel.args, c_args, strict=True):
            if pointer:
                assert isinstance(arg, Ptr) and arg.dtype == _C_POINTERS[ctype], f"{name}.{cname}: {ctype} *"
            else:
                cls, bits = _C_SCALARS[ctype]
                assert isinstance(arg, cls) and (bits is None or arg.bits == bits), f"{name}.{cname}: {ctype}"


def test_a_table_entry_cannot_read_an_index_it_has_not_checked():
    with pytest.raises(ValueError, match="size of col reads rowptr, which must be an int64 pointer declared before"):
        Kernel("bad", Ptr("col", INT32, "rowptr[R]"), Ptr("rowptr", INT64, "R + 1"), Int("R"))
    with pytest.raises(ValueError, match="uses 'K', not an argument"):
        Kernel("bad", Ptr("x", SCALAR, "K * L"), Int("L"))
    with pytest.raises(ValueError, match="no size and no note"):
        Kernel("bad", Ptr("x", SCALAR, None))


# ------------------------------------------------------------------------------- every kernel at exact sizes

INTS = dict(T=3, L=70, R=6, N=70, M=5, B=2, P=2, Q=1, period=7, leak_period=7, theta_period=1, bias_period=7,
            nthreads=2, hard=0, detach=0, surr_kind=0)
REALS = dict(threshold=0.5, surr_param=0.4)


class Guarded:
    """Tensors of exact sizes: separate allocations under ASan, else slices followed by guard values (a table
    entry that is too small then shows as changed guards, not as a corrupted heap)."""

    def __init__(self) -> None:
        self.buffers: list[tuple[torch.Tensor, int]] = []

    def tensor(self, values: torch.Tensor) -> torch.Tensor:
        n = values.numel()
        if SANITIZED:
            return values.flatten().clone()
        buf = torch.full((n + max(n, GUARD),), 7, dtype=values.dtype)
        buf[:n] = values.flatten()
        self.buffers.append((buf, n))
        return buf[:n]

    def untouched(self) -> bool:
        return all(bool((buf[n:] == 7).all()) for buf, n in self.buffers)


def spike_index(g: torch.Generator, R: int, N: int) -> dict[str, torch.Tensor]:
    """A random [R, N] spike matrix X with its CSR (rowptr, col), CSC (colptr, row) and bits ([R // B] rows of B N)."""
    X = (torch.rand(R, N, generator=g) < 0.2).double()
    counts = (X != 0).sum(1)
    rowptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    colptr = torch.cat([torch.zeros(1, dtype=torch.int64), (X != 0).sum(0).cumsum(0)])
    T, B = INTS["T"], INTS["B"]
    flat = X.view(T, B * N) != 0
    padded = torch.zeros(T, words(B * N) * 64, dtype=torch.bool)
    padded[:, :B * N] = flat
    weights = 2 ** torch.arange(64, dtype=torch.float64)  # bits as words (exact below 2^53 per half)
    halves = padded.view(T, -1, 2, 32).double() @ weights[:32]
    bits = (halves[..., 0].long() | (halves[..., 1].long() << 32)).view(T, -1)
    return dict(X=X, rowptr=rowptr, col=X.nonzero()[:, 1].int(), colptr=colptr, row=X.t().nonzero()[:, 1].int(),
                bits=bits)


def exact_arguments(kernel: Kernel, dtype: torch.dtype, v_bf16: int, store: Guarded) -> tuple:
    """Valid arguments of ``kernel``, every tensor exactly as large as the table says (random values)."""
    g = torch.Generator().manual_seed(0)
    assert INTS["R"] == INTS["T"] * INTS["B"]
    index = spike_index(g, INTS["R"], INTS["N"])
    fixed = {FLOAT64: torch.float64, INT64: torch.int64, INT32: torch.int32, BITS: torch.int64,
             POTENTIAL: torch.bfloat16 if v_bf16 else dtype}
    sparse = kernel.name.startswith(("csr_", "spmm_", "bits_"))  # these read a spike matrix's index
    flags = ("v_bf16", "x_bf16", "gx_bf16")  # every bfloat16 flag of the call as v_bf16
    a: list = [REALS[arg.name] if isinstance(arg, Real) else (v_bf16 if arg.name in flags else INTS[arg.name])
               if not isinstance(arg, Ptr) else None for arg in kernel.args]
    for i, arg in enumerate(kernel.args):  # in order: an index tensor precedes the sizes that read it
        if not isinstance(arg, Ptr):
            continue
        if sparse and arg.name in index and arg.dtype in (INT64, INT32, BITS):
            values = index[arg.name]
        elif sparse and arg.name == "X":  # the spike matrix the CSR describes
            values = index["X"]
        elif arg.name == "WT":  # [N, M]: its rows are indexed by the CSR's columns
            values = torch.randn(INTS["N"] * INTS["M"], generator=g, dtype=torch.float64)
        else:
            values = torch.rand(kernel.elements(arg.name, tuple(a)), generator=g, dtype=torch.float64)
        a[i] = store.tensor(values.to(fixed.get(arg.dtype, dtype)))
    return tuple(a)


CASES = [(name, dtype, 0) for name in KERNELS for dtype in (torch.float32, torch.float64)]
CASES += [(name, torch.float32, 1) for name in ("reset_trace", "filter_neuron_forward", "filter_neuron_backward")]


@pytest.mark.parametrize(("name", "dtype", "v_bf16"), CASES, ids=[f"{n}-{str(d)[6:]}-bf16{b}" for n, d, b in CASES])
def test_every_kernel_stays_within_the_sizes_of_the_table(name, dtype, v_bf16):
    store = Guarded()
    args = exact_arguments(KERNELS[name], dtype, v_bf16, store)
    scans.run(name, dtype, *args)
    assert store.untouched(), f"{name} wrote past a tensor of the size its table entry gives"


# ------------------------------------------------------------------------------- wrong arguments raise

def spmm_args(dtype=torch.float32, **change):
    """spmm_csr's arguments for a [6, 70] spike matrix times W^T [70, 5], with some replaced."""
    index = spike_index(torch.Generator().manual_seed(1), 6, 70)
    a = dict(rowptr=index["rowptr"], col=index["col"], val=None, WT=torch.randn(70, 5, dtype=dtype),
             out=torch.full((6, 5), -1.0, dtype=dtype), R=6, M=5, nthreads=2)
    a.update(change)
    return a


def test_the_valid_call_writes_the_product():
    a = spmm_args(dtype=torch.float64)
    scans.run("spmm_csr", torch.float64, *a.values())
    X = spike_index(torch.Generator().manual_seed(1), 6, 70)["X"]
    assert torch.allclose(a["out"], X @ a["WT"])


@pytest.mark.parametrize(("change", "exc", "match"), [
    (dict(out=torch.full((5, 5), -1.0)), ValueError, r"spmm_csr: out has 25 elements.*R \* M = 30 \(R=6, M=5\)"),
    (dict(out=torch.full((6, 5), -1.0, dtype=torch.float64)), TypeError, r"out is torch.float64, expected .*float32"),
    (dict(WT=torch.randn(70, 5, dtype=torch.float64)), TypeError, r"WT is torch.float64, expected torch.float32"),
    (dict(WT=torch.randn(70, 5, device="meta")), ValueError, r"WT is on meta; the compiled kernels read CPU memory"),
    (dict(out=torch.empty(6, 5, device="meta")), ValueError, r"out is on meta"),
    (dict(WT=torch.randn(5, 70).t()), ValueError, r"WT is not contiguous \(shape \[70, 5\], strides \[1, 70\]\)"),
    (dict(WT=torch.eye(70, 5).to_sparse()), ValueError, r"WT is a torch.sparse_coo tensor; the kernels read dense"),
    (dict(col=None), ValueError, r"col is None \(NULL\), but the kernel reads or writes it"),
    (dict(col=torch.zeros(3, dtype=torch.int64)), TypeError, r"col is torch.int64, expected torch.int32"),
    (dict(rowptr=torch.zeros(6, dtype=torch.int64)), ValueError, r"rowptr has 6 elements.*R \+ 1 = 7"),
    (dict(R=-1), ValueError, r"R = -1 is outside \[0, "),
    (dict(M=5.0), TypeError, r"M must be an int, got float"),
    (dict(nthreads=0), ValueError, r"nthreads = 0 is outside \[1, 2147483647\]"),
    (dict(out=[0.0] * 30), TypeError, r"out must be a tensor \(or None for NULL\), got list"),
])
def test_a_wrong_argument_raises_before_anything_is_written(change, exc, match):
    a = spmm_args(**change)
    with pytest.raises(exc, match=match):
        scans.run("spmm_csr", torch.float32, *a.values())
    if isinstance(a["out"], torch.Tensor) and not a["out"].is_meta:
        assert bool((a["out"] == -1).all()), "the kernel ran"


def test_the_non_zeros_come_from_the_row_pointer():
    """col must hold exactly rowptr[R] entries: one fewer would let the kernel read past it."""
    a = spmm_args()
    a["col"] = a["col"][:-1].clone()
    with pytest.raises(ValueError, match=r"col has \d+ elements.*rowptr\[R\] = \d+"):
        scans.run("spmm_csr", torch.float32, *a.values())


def test_null_only_where_the_kernel_allows_it():
    """neuron_backward reads S_prev exactly when it accumulates the reset decay's gradient with the filter reset."""
    T, L = 2, 3
    z = torch.zeros
    a = [z(T * L), None, z(L), z(L), z(T * L), z(L), z(L), z(1), 1, z(1), 1, 1.0, 0, 0, 0, 0.4, None, z(T * L),
         z(L), z(L), z(L), z(L), T, L, 1]
    with pytest.raises(ValueError, match=r"S_prev is None \(NULL\).*unless acc_theta is None or hard"):
        scans.run("neuron_backward", torch.float32, *a)
    a[21] = None  # without acc_theta, S_prev is not read
    scans.run("neuron_backward", torch.float32, *a)


@pytest.mark.parametrize(("name", "dtype", "args", "exc", "match"), [
    ("spmm_csr", torch.float16, (), TypeError, r"float32 or float64, got torch.float16 for kernel spmm_csr"),
    ("no_such_kernel", torch.float32, (), ValueError, r"unknown kernel 'no_such_kernel'"),
    ("csr_count", torch.float32, (torch.zeros(4), 2, 2), TypeError, r"csr_count takes 5 arguments \(X, R, N, counts"),
    ("neuron_forward", torch.float32, (*[torch.zeros(1)] * 7, torch.zeros(1), 0, torch.zeros(1), 1, 1.0, 0, 1, 1, 1),
     ValueError, r"leak_period = 0"),
    ("reset_trace", torch.float32, (torch.zeros(2), 0, torch.zeros(2), torch.zeros(1), 1, float("nan"),
                                    torch.zeros(2), 1, 2, 1), TypeError, r"threshold must be a finite float"),
    ("reset_trace", torch.float32, (torch.zeros(2), 1, torch.zeros(2), torch.zeros(1), 1, 1.0, torch.zeros(2), 1, 2,
                                    1), TypeError, r"V is torch.float32, expected torch.bfloat16"),
])
def test_run_refuses(name, dtype, args, exc, match):
    with pytest.raises(exc, match=match):
        scans.run(name, dtype, *args)
