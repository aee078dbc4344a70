"""What every compiled kernel is handed: one declarative table, checked before each call.

Each kernel (``scans_impl.h``, ``sparse_impl.h``; compiled once per scalar type as ``<name>_f32`` and
``<name>_f64``) is listed with its C arguments in order. A pointer argument says

- its dtype: ``SCALAR`` (the kernel's float32 or float64: every such tensor must have it, so they also agree
  with each other), ``FLOAT64``, ``INT64``, ``INT32``, ``BITS`` (uint64 words, held in an int64 tensor) or
  ``POTENTIAL`` (the kernel's scalar, or bfloat16 when the call's flag named by the pointer's ``flag``,
  ``v_bf16`` unless said, is set: stored potentials, the fused layer's input current and its gradient);
- how many elements the kernel reads or writes through it, as an expression of the integer arguments
  (``"T * L"``, ``"(Q + 1) * period"``, ``"T * words(L)"`` with words(n) = ceil(n / 64)), or of an entry of
  an index tensor declared before it (``"rowptr[R]"``, the CSR's non-zeros);
- whether it may be NULL (``None`` at the call): never, always, or when a condition on the other
  arguments holds (``"acc_theta is None or hard"``).

:meth:`Kernel.check` raises before the call, naming the kernel, the argument and the mismatch, unless
every pointer is a dense CPU tensor of the right dtype, contiguous, with exactly the number of elements the
kernel touches, and every integer lies in its range (periods >= 1: the kernels index lane % period).
What the table cannot see is guaranteed where the tensors are made (``iirsnn.kernels.cpu.layer``): a CSR's
row pointer is the prefix sum of counts the count kernels wrote (so it starts at 0 and never decreases),
and its column indices (< N) and row indices (< R) were written by the fill kernels; the dense operand
of ``spmm_csr``, indexed by those columns, is checked against the CSR's shape by ``SpikeMatrix``.

The same table gives the ctypes signatures (:func:`ctypes_signature`); ``tests/test_kernel_signatures.py``
compares it with the C prototypes, so a kernel whose arguments change cannot be called by the old table.
"""

from __future__ import annotations

import ast
import ctypes
from dataclasses import dataclass

import torch

SCALAR, FLOAT64, INT64, INT32, BITS, POTENTIAL = "scalar", "float64", "int64", "int32", "bits", "potential"
_FIXED_DTYPES = {FLOAT64: torch.float64, INT64: torch.int64, INT32: torch.int32, BITS: torch.int64}
_INT32_MAX, _INT64_MAX = 2**31 - 1, 2**63 - 1


def words(n: int) -> int:
    """64-bit words holding n bits."""
    return (n + 63) // 64


@dataclass(frozen=True)
class Ptr:
    """A pointer argument: a tensor of ``dtype`` with ``size`` elements (None: checked by the caller, see ``note``).

    ``null``: False (never NULL), True (may be NULL) or an expression over the other arguments that must hold
    when it is NULL.
    """

    name: str
    dtype: str
    size: str | None
    null: bool | str = False
    note: str = ""
    flag: str = "v_bf16"  # POTENTIAL: the flag argument that says bfloat16

    ctype = ctypes.c_void_p


@dataclass(frozen=True)
class Int:
    """An integer argument in [lo, hi] (``bits`` 32 or 64: the C type int or int64_t)."""

    name: str
    lo: int = 0
    hi: int | None = None
    bits: int = 64

    @property
    def ctype(self):
        return ctypes.c_int64 if self.bits == 64 else ctypes.c_int

    @property
    def upper(self) -> int:
        return self.hi if self.hi is not None else (_INT64_MAX if self.bits == 64 else _INT32_MAX)


@dataclass(frozen=True)
class Real:
    """A double argument (finite)."""

    name: str

    ctype = ctypes.c_double


def flag(name: str) -> Int:
    """A C int that is 0 or 1."""
    return Int(name, 0, 1, bits=32)


def threads() -> Int:
    """The OpenMP thread count (at least 1)."""
    return Int("nthreads", 1, bits=32)


def period(name: str) -> Int:
    """A per-lane parameter's period: lanes read entry lane % period, so at least 1."""
    return Int(name, 1)


def _compile(expr: str, kernel: str, names: tuple[str, ...], what: str):
    """An expression over a kernel's arguments as a function of the argument tuple: names become a[i], and an
    entry of an index tensor, ``t[i]``, becomes ``entry(a[j], i, 't')``. Returns (function, indexed names)."""
    tree = ast.parse(expr, mode="eval")
    indexed: set[str] = set()

    class Rewrite(ast.NodeTransformer):
        def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
            if not isinstance(node.value, ast.Name):
                raise ValueError(f"kernel {kernel}: {what} {expr!r} may index only an argument, like rowptr[R]")
            indexed.add(node.value.id)
            return ast.Call(ast.Name("entry", ast.Load()),
                            [self.visit(node.value), self.visit(node.slice), ast.Constant(node.value.id)], [])

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in _EVAL_GLOBALS:
                return node
            if node.id not in names:
                raise ValueError(f"kernel {kernel}: {what} {expr!r} uses {node.id!r}, not an argument")
            return ast.Subscript(ast.Name("a", ast.Load()), ast.Constant(names.index(node.id)), ast.Load())

    body = Rewrite().visit(tree).body
    arguments = ast.arguments(posonlyargs=[], args=[ast.arg("a")], kwonlyargs=[], kw_defaults=[], defaults=[])
    fn = ast.Expression(ast.Lambda(arguments, body))
    code = compile(ast.fix_missing_locations(fn), f"<{what} of kernel {kernel}>", "eval")
    return eval(code, _EVAL_GLOBALS), indexed


def entry(t: torch.Tensor, i: int, name: str) -> int:
    """t[i] of an int64 index tensor already checked to be a contiguous CPU tensor (read without making a tensor)."""
    if not 0 <= i < t.numel():
        raise ValueError(f"{name} has {t.numel()} entries; entry {i} is needed")
    return ctypes.c_int64.from_address(t.data_ptr() + 8 * i).value


_EVAL_GLOBALS = {"__builtins__": {}, "words": words, "entry": entry}
_REAL = (float, int)
_STRIDED = torch.strided


class Kernel:
    """One kernel's arguments in C order, with :meth:`check` for the values a call passes."""

    def __init__(self, name: str, *args: Ptr | Int | Real, returns=None) -> None:
        self.name, self.args, self.returns = name, args, returns
        self.names = tuple(a.name for a in args)
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"kernel {name}: an argument name repeats")
        self.ints = tuple((i, a.lo, a.upper) for i, a in enumerate(args) if isinstance(a, Int))
        self.reals = tuple(i for i, a in enumerate(args) if isinstance(a, Real))
        self.pointers = tuple((i, a, _FIXED_DTYPES.get(a.dtype), self._size(a, i), self._null(a))
                              for i, a in enumerate(args) if isinstance(a, Ptr))
        self.bf16_flags = {}  # pointer position -> position of the flag that makes it bfloat16
        for i, p in enumerate(args):
            if isinstance(p, Ptr) and p.dtype == POTENTIAL:
                if p.flag not in self.names:
                    raise ValueError(f"kernel {name}: {p.name} needs the {p.flag} flag that says its dtype")
                self.bf16_flags[i] = self.names.index(p.flag)

    def _size(self, p: Ptr, position: int):
        """The function giving p's number of elements from the arguments (None: checked by the caller)."""
        if p.size is None:
            if not p.note:
                raise ValueError(f"kernel {self.name}: {p.name} has no size and no note saying who checks it")
            return None
        fn, indexed = _compile(p.size, self.name, self.names, f"size of {p.name}")
        for source in indexed:  # an entry is read only from an index tensor checked before it
            j = self.names.index(source)
            if j >= position or not isinstance(self.args[j], Ptr) or self.args[j].dtype != INT64:
                raise ValueError(f"kernel {self.name}: size of {p.name} reads {source}, which must be an int64 "
                                 "pointer declared before it")
        return fn

    def _null(self, p: Ptr):
        """True or False (NULL always or never allowed), or the function saying when it is."""
        return p.null if isinstance(p.null, bool) else _compile(p.null, self.name, self.names,
                                                                f"NULL condition of {p.name}")[0]

    def check(self, dtype: torch.dtype, a: tuple) -> None:
        """Raise TypeError or ValueError naming the argument unless ``a`` are what the kernel may be handed."""
        if len(a) != len(self.args):
            raise TypeError(f"kernel {self.name} takes {len(self.args)} arguments ({', '.join(self.names)}), "
                            f"got {len(a)}")
        for i, lo, hi in self.ints:
            v = a[i]
            if type(v) is not int or not lo <= v <= hi:
                self._scalar_error(i, v)
        for i in self.reals:
            v = a[i]
            if type(v) not in _REAL or v - v != 0:  # v - v is nan for inf and nan
                self._scalar_error(i, v)
        for i, p, fixed, size, null in self.pointers:
            t = a[i]
            if t is None:
                if null is not True and (null is False or not null(a)):
                    raise ValueError(f"kernel {self.name}: {p.name} is None (NULL), but the kernel reads or "
                                     "writes it" + ("" if null is False else f" unless {p.null}"))
                continue
            want = fixed or (torch.bfloat16 if i in self.bf16_flags and a[self.bf16_flags[i]] else dtype)
            if not (isinstance(t, torch.Tensor) and t.dtype is want and t.is_cpu and t.layout is _STRIDED
                    and t.is_contiguous()):
                _tensor_error(self.name, p.name, t, want)
            if size is not None and t.numel() != size(a):
                raise ValueError(f"kernel {self.name}: {p.name} has {t.numel()} elements (shape {list(t.shape)}), "
                                 f"the kernel reads or writes {p.size} = {size(a)} ({self._describe(p.size, a)})")

    def elements(self, name: str, a: tuple) -> int | None:
        """How many elements the kernel touches through pointer ``name`` for the arguments ``a`` (None: unknown to
        the table); the integer arguments and any index tensor the size reads must be in ``a``."""
        for _, p, _, size, _ in self.pointers:
            if p.name == name:
                return None if size is None else size(a)
        raise KeyError(f"kernel {self.name} has no pointer argument {name!r}")

    def _describe(self, expr: str, a: tuple) -> str:
        """The integer arguments an expression uses, as 'T=3, L=5'."""
        used = {n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)}
        return ", ".join(f"{k}={v}" for k, v in zip(self.names, a, strict=True) if k in used and type(v) is int)

    def _scalar_error(self, i: int, v: object) -> None:
        arg = self.args[i]
        if isinstance(arg, Real):
            raise TypeError(f"kernel {self.name}: {arg.name} must be a finite float, got {v!r}")
        if type(v) is not int:
            raise TypeError(f"kernel {self.name}: {arg.name} must be an int, got {type(v).__name__} {v!r}")
        raise ValueError(f"kernel {self.name}: {arg.name} = {v} is outside [{arg.lo}, {arg.upper}]")


def _tensor_error(kernel: str, name: str, t: object, dtype: torch.dtype) -> None:
    """Raise for what makes ``t`` unfit: a kernel reads a contiguous CPU tensor of ``dtype`` from its first element."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"kernel {kernel}: {name} must be a tensor (or None for NULL), got {type(t).__name__}")
    if t.dtype is not dtype:
        raise TypeError(f"kernel {kernel}: {name} is {t.dtype}, expected {dtype}")
    if not t.is_cpu:
        raise ValueError(f"kernel {kernel}: {name} is on {t.device}; the compiled kernels read CPU memory only")
    if t.layout is not _STRIDED:
        raise ValueError(f"kernel {kernel}: {name} is a {t.layout} tensor; the kernels read dense (strided) memory")
    raise ValueError(f"kernel {kernel}: {name} is not contiguous (shape {list(t.shape)}, strides "
                     f"{list(t.stride())}); the kernel reads it as one flat array")


def _s(name: str, size: str, null: bool | str = False) -> Ptr:
    return Ptr(name, SCALAR, size, null)


_LEAK = (_s("leak", "leak_period"), period("leak_period"), _s("theta", "theta_period"), period("theta_period"))
_SURROGATE = (Int("surr_kind", 0, 4, bits=32), Real("surr_param"))
_LANES = (Int("T"), Int("L"), threads())

KERNELS: dict[str, Kernel] = {k.name: k for k in (
    Kernel("neuron_forward", _s("I", "T * L"), _s("V", "T * L"), _s("O", "T * L"), _s("v0", "L"), _s("s0", "L"),
           _s("v_last", "L"), _s("s_last", "L"), *_LEAK, Real("threshold"), flag("hard"), *_LANES),
    Kernel("neuron_backward", _s("gO", "T * L"), _s("gVout", "T * L", True), _s("g_vlast", "L"), _s("g_slast", "L"),
           _s("V", "T * L"), _s("v0", "L"), _s("s0", "L"), *_LEAK, Real("threshold"), flag("hard"), flag("detach"),
           *_SURROGATE, _s("S_prev", "T * L", "acc_theta is None or hard"), _s("gI", "T * L"), _s("g_v0", "L"),
           _s("g_s0", "L"), _s("acc_leak", "L"), _s("acc_theta", "L", True), *_LANES),
    Kernel("reset_trace", Ptr("V", POTENTIAL, "T * L"), flag("v_bf16"), _s("s0", "L"), _s("theta", "theta_period"),
           period("theta_period"), Real("threshold"), _s("S_prev", "T * L"), *_LANES),
    Kernel("filter_forward", _s("x", "T * L"), _s("x_hist", "Q * L"), _s("f_hist", "P * L"),
           _s("alpha", "P * period"), _s("beta", "(Q + 1) * period"), period("period"), _s("F", "T * L"), Int("P"),
           Int("Q"), *_LANES),
    Kernel("filter_backward", _s("gF", "T * L"), _s("x", "T * L"), _s("x_hist", "Q * L"), _s("F", "T * L"),
           _s("f_hist", "P * L"), _s("alpha", "P * period"), _s("beta", "(Q + 1) * period"), period("period"),
           _s("G", "T * L"), _s("gx", "T * L", True), _s("g_xh", "Q * L", True), _s("g_fh", "P * L", True),
           _s("acc_alpha", "P * L", True), _s("acc_beta", "(Q + 1) * L", True), Int("P"), Int("Q"), *_LANES),
    Kernel("filter_neuron_forward", Ptr("X", POTENTIAL, "T * L", flag="x_bf16"), flag("x_bf16"),
           Ptr("alpha", FLOAT64, "P"), Int("P"),
           Ptr("beta", FLOAT64, "Q + 1"), Int("Q"), _s("bias", "bias_period", True), period("bias_period"),
           _s("x_hist", "Q * L", True), _s("f_hist", "P * L", True), _s("v0", "L", True), _s("s0", "L", "v0 is None"),
           Ptr("V", POTENTIAL, "T * L", True), flag("v_bf16"), _s("O", "T * L"), *_LEAK, Real("threshold"),
           flag("hard"), Int("T"), Int("L"), Ptr("bits", BITS, "T * words(L)"), _s("x_last", "Q * L", True),
           _s("f_last", "P * L", True), _s("v_last", "L", True), _s("s_last", "L", True), threads()),
    Kernel("filter_neuron_backward", _s("gO", "T * L"), Ptr("V", POTENTIAL, "T * L"), flag("v_bf16"),
           Ptr("alpha", FLOAT64, "P"), Int("P"), Ptr("beta", FLOAT64, "Q + 1"), Int("Q"), *_LEAK, Real("threshold"),
           flag("hard"), flag("detach"), *_SURROGATE, _s("S_prev", "T * L", "acc_theta is None or hard"),
           _s("v0", "L", True), _s("s0", "L", "v0 is None"), _s("g_xlast", "Q * L", True),
           _s("g_flast", "P * L", True), _s("g_vlast", "L", "g_slast is None"), _s("g_slast", "L", "g_vlast is None"),
           Ptr("gX", POTENTIAL, "T * L", flag="gx_bf16"), flag("gx_bf16"), _s("g_xh", "Q * L", True),
           _s("g_fh", "P * L", True), _s("g_v0", "L", True), _s("g_s0", "L", True), _s("acc_bias", "L"),
           _s("acc_leak", "L"), _s("acc_theta", "L", True), *_LANES),
    Kernel("csr_count", _s("X", "R * N"), Int("R"), Int("N"), Ptr("counts", INT64, "R"), threads(),
           returns=ctypes.c_int),
    Kernel("csr_fill", _s("X", "R * N"), Int("R"), Int("N", hi=_INT32_MAX), Ptr("rowptr", INT64, "R + 1"),
           Ptr("col", INT32, "rowptr[R]"), _s("val", "rowptr[R]", True), threads()),
    Kernel("spmm_csr", Ptr("rowptr", INT64, "R + 1"), Ptr("col", INT32, "rowptr[R]"), _s("val", "rowptr[R]", True),
           Ptr("WT", SCALAR, None, note="rows indexed by col: SpikeMatrix.matmul_t checks WT is [N, M]"),
           _s("out", "R * M"), Int("R"), Int("M"), threads()),
    Kernel("spmm_csc", Ptr("colptr", INT64, "N + 1"), Ptr("row", INT32, "colptr[N]"), _s("val", "colptr[N]", True),
           _s("G", "R * M"), _s("gWT", "N * M"), Int("N"), Int("M"), Int("R"), threads()),
    Kernel("csr_to_csc", Ptr("rowptr", INT64, "R + 1"), Ptr("col", INT32, "rowptr[R]"), _s("val", "rowptr[R]", True),
           Int("R", hi=_INT32_MAX), Int("N"), Ptr("colptr", INT64, "N + 1"), Ptr("row", INT32, "rowptr[R]"),
           _s("cval", "rowptr[R]", "val is None"), Ptr("counts", INT64, "nthreads * N"), threads()),
    Kernel("bits_count", Ptr("bits", BITS, "T * words(B * N)"), Int("T"), Int("B"), Int("N"),
           Ptr("counts", INT64, "T * B"), threads()),
    Kernel("bits_fill", Ptr("bits", BITS, "T * words(B * N)"), Int("T"), Int("B"), Int("N", hi=_INT32_MAX),
           Ptr("rowptr", INT64, "T * B + 1"), Ptr("col", INT32, "rowptr[T * B]"), threads()),
)}


def ctypes_signature(name: str) -> list:
    """The ctypes argtypes of kernel ``name``, from the table."""
    return [a.ctype for a in KERNELS[name].args]
