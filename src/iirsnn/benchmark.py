"""``iirsnn bench``: time and peak memory of training and inference, with dense floors and scaling curves.

Workloads (the networks of the peer benchmark, ../shared/bench/peers.py): LIF neurons behind a
dual-exponential synapse, threshold 1, time-major Bernoulli input spikes [T, B, *input_shape].

  mlp       784-500-500-10, T 25, batch 64, input density 0.2, spike-count cross-entropy
  temporal  300-500-200-500-300, T 300, batch 16, input density 0.05, tau_m 8, tau_s 2,
            MSE of dual-exponential traces of output and random target spikes (Van Rossum style)
  conv      1x28x28 64C3-32C3-32C3-256-10, T 25, batch 16, input density 0.2, spike-count cross-entropy

Weights get the peer benchmark's statistics and one common factor that makes the output fire at
5-25 %. Every workload also runs as its dense floor: the same layers as a plain network folded over
T*B, ReLU, no neurons; what a step with dense matmuls costs at least, the floor that sparsity must beat.

Sweeps (scaling curves):

  length      T in 25, 100, 300, 1000 on temporal; training bytes per neuron-step from the slope of peak RSS
  batch       batch 8, 16, 32, 64 on mlp
  width       hidden layers of 250, 500, 1000 neurons on mlp
  density     input density 0.01 to 0.5 on mlp (every layer's firing rate reported)
  throughput  inference only, samples per second at batch 1, 16, 64 on every selected workload

Every measurement runs in its own process (``python -m iirsnn.benchmark --one CONFIG_JSON``), so that
its peak RSS is its own: the median seconds of a training step (forward, loss, backward, Adam) and of
an inference forward (no_grad), the peak RSS added after the network and data were built, and the
firing rate of every spiking layer. Each of these processes applies the process settings of the one
that started it (:func:`iirsnn.process.tune_process`: the allocator mode, flush-to-zero if on).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import torch
from tqdm import tqdm

from iirsnn import __version__
from iirsnn.atomic import atomic_write_json
from iirsnn.models import from_spec
from iirsnn.models.spec import _CONV, _DENSE
from iirsnn.nn import SpikingLayer
from iirsnn.process import MALLOC_MODES, process_settings, tune_process


@dataclass(frozen=True)
class Workload:
    """A network and its data: input spikes [T, batch, *input_shape] through ``spec``."""

    spec: str
    input_shape: tuple[int, ...]
    T: int
    batch: int
    rate: float  # input spike density: Bernoulli probability per channel and step
    tau_m: float
    tau_s: float
    loss: str  # "count" (spike-count cross-entropy) or "trace" (dual-exponential trace MSE)
    steps: int  # timed training steps

    @property
    def n_out(self) -> int:
        return int(self.spec.split("-")[-1])


WORKLOADS: dict[str, Workload] = {
    "mlp": Workload("500-500-10", (784,), 25, 64, 0.2, 4.0, 1.0, "count", 8),
    "temporal": Workload("500-200-500-300", (300,), 300, 16, 0.05, 8.0, 2.0, "trace", 3),
    "conv": Workload("64C3-32C3-32C3-256-10", (1, 28, 28), 25, 16, 0.2, 4.0, 1.0, "count", 3),
}
#: tiny versions of the workloads (``--quick``): a smoke run in seconds
QUICK_WORKLOADS: dict[str, Workload] = {
    "mlp": Workload("32-32-10", (64,), 8, 4, 0.2, 4.0, 1.0, "count", 2),
    "temporal": Workload("50-20-50-30", (30,), 20, 2, 0.05, 8.0, 2.0, "trace", 2),
    "conv": Workload("8C3-4C3-4C3-16-10", (1, 8, 8), 8, 2, 0.2, 4.0, 1.0, "count", 2),
}


@dataclass(frozen=True)
class Sweep:
    """A scaling curve: ``field`` ("T", "batch", "width" or "rate") of a workload over ``values``."""

    workload: str | None  # None: every selected workload
    field: str
    values: tuple[float, ...]
    quick_values: tuple[float, ...]
    train: bool = True  # False: inference only


SWEEPS: dict[str, Sweep] = {
    "length": Sweep("temporal", "T", (25, 100, 300, 1000), (10, 30)),
    "batch": Sweep("mlp", "batch", (8, 16, 32, 64), (2, 4)),
    "width": Sweep("mlp", "width", (250, 500, 1000), (16, 32)),
    "density": Sweep("mlp", "rate", (0.01, 0.02, 0.05, 0.1, 0.2, 0.5), (0.05, 0.5)),
    "throughput": Sweep(None, "batch", (1, 16, 64), (1, 4), train=False),
}
MODELS = ("iirsnn", "dense-floor")
GAIN, MEAN = 3.0, 3.0  # weights ~ N(MEAN / fan_in, GAIN^2 / fan_in), as in the peer benchmark
_RESULT = "RESULT "


@dataclass(frozen=True)
class Config:
    """One measurement: ``model`` ("iirsnn" or "dense-floor") on ``net``, in a row of ``sweep``."""

    sweep: str  # "workloads" for the workload table, else a key of SWEEPS
    workload: str
    model: str
    net: Workload
    steps: int
    precision: str = "fp32"
    train: bool = True
    value: float | None = None  # the swept value

    @classmethod
    def from_json(cls, text: str) -> Config:
        d = json.loads(text)
        return cls(**{**d, "net": Workload(**{**d["net"], "input_shape": tuple(d["net"]["input_shape"])})})


# ----------------------------------------------------------------------------- networks and data
class DenseFloor(torch.nn.Module):
    """Not an SNN: the layers of ``spec`` folded over T*B with ReLU, [T, B, *input_shape] -> [T, B, n_out]."""

    def __init__(self, spec: str, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(*_dense_layers(spec, tuple(input_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def _dense_layers(spec: str, shape: tuple[int, ...]) -> list[torch.nn.Module]:
    """Plain torch layers of the convolution (nCk, same padding) and dense (n) tokens of ``spec``."""
    layers: list[torch.nn.Module] = []
    for token in spec.split("-"):
        conv, dense = _CONV.match(token), _DENSE.match(token)
        if conv:
            channels, k = int(conv.group(1)), int(conv.group(2))
            conv_cls = torch.nn.Conv2d if len(shape) == 3 else torch.nn.Conv1d
            layers.append(conv_cls(shape[0], channels, k, padding="same"))
            shape = (channels, *shape[1:])
        elif dense:
            if len(shape) > 1:
                layers.append(torch.nn.Flatten())
                shape = (math.prod(shape),)
            layers.append(torch.nn.Linear(shape[0], int(dense.group(1))))
            shape = (int(dense.group(1)),)
        else:
            raise ValueError(f"the dense floor supports convolution and dense tokens only, got {token!r} in {spec!r}")
        layers.append(torch.nn.ReLU())
    return layers


def build(cfg: Config) -> torch.nn.Module:
    """The network of ``cfg``; a precision other than fp32 is passed to :func:`from_spec` as is.

    The dense floor is always fp32: a plain network, the reference of the spiking one.
    """
    net = cfg.net
    if cfg.model == "dense-floor":
        return DenseFloor(net.spec, net.input_shape)
    options = {} if cfg.precision == "fp32" else {"precision": cfg.precision}
    return from_spec(net.spec, net.input_shape, synapse="dual_exp", tau_m=net.tau_m, tau_s=net.tau_s, **options)


def init_active_(model: torch.nn.Module, seed: int = 1) -> None:
    """The peer benchmark's weights: N(MEAN / fan_in, GAIN^2 / fan_in), biases 0, so that layers spike."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * GAIN / math.sqrt(fan_in) + MEAN / fan_in)
            elif name.endswith("bias"):
                p.zero_()


@torch.no_grad()
def calibrate_(model: torch.nn.Module, x: torch.Tensor, low: float = 0.05, high: float = 0.25) -> float:
    """Scale all weights by one common factor until the output fires at a rate in [low, high]; returns it."""
    weights = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() >= 2]
    step = 1.5
    for _ in range(24):
        rate = float(model(x).mean())
        if low <= rate <= high:
            break
        factor = 1 / step if rate > high else step
        for w in weights:
            w.mul_(factor)
        step = max(1.05, step**0.85)
    return rate


@functools.lru_cache(maxsize=8)
def _trace_matrix(T: int, a: float, b: float) -> torch.Tensor:
    """Lower-triangular Toeplitz kernel [T, T]: K[t, u] = a^(t-u+1) - b^(t-u+1) for t >= u, else 0."""
    lag = torch.arange(T, dtype=torch.float64)
    lag = lag[:, None] - lag[None, :] + 1
    return torch.where(lag >= 1, a ** lag.clamp(min=1) - b ** lag.clamp(min=1), torch.zeros(())).float()


def dual_exp_trace(s: torch.Tensor, a: float, b: float, block: int = 256) -> torch.Tensor:
    """Dual-exponential filtering of spikes [T, B, N] along time, as matrix products; same shape.

    Sequences longer than two blocks go block by block, linear in T; lags of more than one block
    (below 1e-13 of the kernel's peak for tau 8) are dropped.
    """
    T = s.shape[0]
    x = s.reshape(T, -1)
    n = -(-T // block)
    if n <= 2:
        return (_trace_matrix(T, a, b).to(s.dtype) @ x).reshape(s.shape)
    xb = torch.nn.functional.pad(x, (0, 0, 0, n * block - T)).view(n, block, -1)
    k = _trace_matrix(2 * block, a, b).to(s.dtype)
    y = k[:block, :block] @ xb
    y[1:] += k[block:, :block] @ xb[:-1]
    return y.reshape(n * block, -1)[:T].reshape(s.shape)


def _loss_fn(net: Workload, generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The workload's loss of output spikes [T, B, n_out] against random labels or target spike trains."""
    if net.loss == "count":
        labels = torch.randint(0, net.n_out, (net.batch,), generator=generator)
        return lambda out: torch.nn.functional.cross_entropy(out.sum(0), labels)
    a, b = math.exp(-1 / net.tau_m), math.exp(-1 / net.tau_s)
    target = dual_exp_trace((torch.rand(net.T, net.batch, net.n_out, generator=generator) < 0.02).float(), a, b)
    return lambda out: ((dual_exp_trace(out, a, b) - target) ** 2).sum() / (2 * net.T)


# ----------------------------------------------------------------------------- one measurement
def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def layer_activity(model: torch.nn.Module, x: torch.Tensor) -> tuple[list[float], int]:
    """Firing rate of every SpikingLayer on x [T, B, ...] and the number of neurons of one sample-step."""
    outputs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out))
             for m in model.modules() if isinstance(m, SpikingLayer)]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    steps = x.shape[0] * x.shape[1]
    return [float(o.float().mean()) for o in outputs], sum(o.numel() // steps for o in outputs)


def describe(cfg: Config) -> dict:
    """The identity of a measurement, as it heads its result row."""
    net = cfg.net
    return dict(sweep=cfg.sweep, workload=cfg.workload, model=cfg.model, value=cfg.value, spec=net.spec,
                input_shape=list(net.input_shape), T=net.T, batch=net.batch, input_rate=net.rate,
                precision=cfg.precision, train=cfg.train)


def _train_step(model: torch.nn.Module, x: torch.Tensor,
                loss_of: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
    """One training step on x [T, B, ...] as a closure: forward, loss, backward, Adam (lr 1e-4)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_of(model(x)).backward()
        opt.step()

    return step


def measure(cfg: Config) -> dict:
    """Run one measurement in this process; returns its result row.

    Rates and inference time are those of the calibrated network, before the timed training steps
    change its weights; the peak RSS added is counted from the built network and data.
    """
    torch.manual_seed(0)
    net = cfg.net
    g = torch.Generator().manual_seed(0)
    model = build(cfg)
    init_active_(model)
    x = (torch.rand(net.T, net.batch, *net.input_shape, generator=g) < net.rate).float()
    loss_of = _loss_fn(net, g)
    row = {**describe(cfg), "rss_after_build_mb": _peak_rss_mb()}
    rates: list[float] = []
    if cfg.model == "iirsnn":  # the dense floor has no spikes to calibrate
        calibrate_(model, x)
        rates, row["neurons"] = layer_activity(model, x)
    row.update(layer_rates=rates, out_rate=rates[-1] if rates else None)
    with torch.no_grad():
        row["infer_s"] = _median_seconds(lambda: model(x), max(2, cfg.steps // 2))
    row["infer_samples_per_s"] = net.batch / row["infer_s"]
    if cfg.train:
        row["train_s"] = _median_seconds(_train_step(model, x, loss_of), cfg.steps)
        row["train_samples_per_s"] = net.batch / row["train_s"]
    row["peak_rss_added_mb"] = _peak_rss_mb() - row["rss_after_build_mb"]
    return row


def run_in_process(cfg: Config) -> dict:
    """:func:`measure`, with an exception reported as an error row."""
    try:
        return measure(cfg)
    except Exception as e:  # one failed configuration must not end the whole benchmark
        return {**describe(cfg), "error": f"{type(e).__name__}: {e}"[:300]}


def run_isolated(cfg: Config) -> dict:
    """:func:`measure` in a fresh process, so that the peak RSS is this configuration's own."""
    settings = process_settings()
    flush = "on" if settings.flush_denormal == "on" else "off"
    cmd = [sys.executable, "-m", "iirsnn.benchmark", "--one", json.dumps(asdict(cfg)),
           "--malloc", settings.malloc or "system", "--flush-denormal", flush]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(_RESULT)]
    if lines:
        return json.loads(lines[-1][len(_RESULT):])
    reason = proc.stderr.strip()[-300:] or f"the measurement process exited with status {proc.returncode}"
    return {**describe(cfg), "error": reason}


# ----------------------------------------------------------------------------- the whole benchmark
def plan(workloads: Sequence[str], sweeps: Sequence[str], steps: int | None = None, quick: bool = False,
         precision: str = "fp32") -> list[Config]:
    """The measurements: each workload and its dense floor, then every point of every sweep."""
    table = QUICK_WORKLOADS if quick else WORKLOADS
    configs = [Config("workloads", name, model, table[name], steps or table[name].steps, precision)
               for name in workloads for model in MODELS]
    for sweep_name in sweeps:
        sweep = SWEEPS[sweep_name]
        for name in [sweep.workload] if sweep.workload else workloads:
            for value in sweep.quick_values if quick else sweep.values:
                net = _vary(table[name], sweep.field, value)
                configs.append(Config(sweep_name, name, "iirsnn", net, steps or net.steps, precision, sweep.train,
                                      value))
    return configs


def _vary(net: Workload, field: str, value: float) -> Workload:
    """``net`` with ``field`` set to ``value``; "width" is the size of every hidden dense layer."""
    if field == "width":
        tokens = net.spec.split("-")
        return replace(net, spec="-".join([str(int(value))] * (len(tokens) - 1) + tokens[-1:]))
    return replace(net, **{field: value})


def bytes_per_neuron_step(neuron_steps: Sequence[float], peak_mb: Sequence[float]) -> float:
    """Least-squares slope of peak memory (MiB) against neuron-steps (T * batch * neurons), in bytes.

    The slope in T cancels the fixed costs (libraries, thread buffers, weights) of every point.
    """
    if len(set(neuron_steps)) < 2:
        raise ValueError("need peak memory at two or more different numbers of neuron-steps")
    mean_n, mean_m = statistics.fmean(neuron_steps), statistics.fmean(peak_mb)
    cov = sum((n - mean_n) * (m - mean_m) for n, m in zip(neuron_steps, peak_mb, strict=True))
    var = sum((n - mean_n) ** 2 for n in neuron_steps)
    return cov / var * 2**20


def _length_memory(rows: Sequence[dict]) -> float | None:
    """Training bytes per neuron-step of the length sweep's rows, None without two successful points."""
    ok = [r for r in rows if r["sweep"] == "length" and "error" not in r]
    if len({r["T"] for r in ok}) < 2:
        return None
    return bytes_per_neuron_step([r["T"] * r["batch"] * r["neurons"] for r in ok], [r["peak_rss_added_mb"] for r in ok])


def run(workloads: Sequence[str], sweeps: Sequence[str], steps: int | None = None, quick: bool = False,
        precision: str = "fp32", json_path: str | None = None, progress: bool = True,
        runner: Callable[[Config], dict] = run_isolated) -> dict:
    """Run the benchmark; returns {"meta", "rows", "bytes_per_neuron_step"}, also written to ``json_path``.

    The JSON file is rewritten after every measurement, so that an interrupted run keeps its results.
    """
    meta = dict(iirsnn=__version__, torch=torch.__version__, threads=torch.get_num_threads(), quick=quick,
                steps=steps, precision=precision, workloads=list(workloads), sweeps=list(sweeps))
    report: dict = dict(meta=meta, rows=[], bytes_per_neuron_step=None)
    bar = tqdm(plan(workloads, sweeps, steps, quick, precision), desc="bench", unit="config", disable=not progress)
    for cfg in bar:
        bar.set_postfix_str(f"{cfg.sweep} {cfg.workload} {cfg.model}" + ("" if cfg.value is None else f" {cfg.value}"))
        report["rows"].append(runner(cfg))
        report["bytes_per_neuron_step"] = _length_memory(report["rows"])
        if json_path:
            atomic_write_json(json_path, report)
    return report


# ----------------------------------------------------------------------------- the printed table
def _cell(value: object, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    """Right-aligned columns, two spaces apart."""
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(header)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *lines])


_MEASURED = ("train s", "infer s", "train/s", "infer/s", "+RSS MB", "out rate")


def _measured(row: dict) -> list[str]:
    return [_cell(row.get("train_s"), ".4f"), _cell(row.get("infer_s"), ".4f"),
            _cell(row.get("train_samples_per_s"), ".1f"), _cell(row.get("infer_samples_per_s"), ".1f"),
            _cell(row.get("peak_rss_added_mb"), ".1f"), _cell(row.get("out_rate"), ".3f")]


def _workload_table(rows: Sequence[dict]) -> str:
    """One line per workload: iirsnn, then its dense floor's step times and the ratio of training steps."""
    by = {(r["workload"], r["model"]): r for r in rows}
    lines = []
    for name in dict.fromkeys(r["workload"] for r in rows):
        snn, floor = by.get((name, "iirsnn"), {}), by.get((name, "dense-floor"), {})
        ratio = snn["train_s"] / floor["train_s"] if "train_s" in snn and "train_s" in floor else None
        ref = snn or floor
        lines.append([name, ref["spec"], str(ref["T"]), str(ref["batch"]), *_measured(snn),
                      _cell(floor.get("train_s"), ".4f"), _cell(floor.get("infer_s"), ".4f"), _cell(ratio, ".2f")])
    header = ["workload", "spec", "T", "batch", *_MEASURED, "floor train s", "floor infer s", "train/floor"]
    return "workloads (iirsnn, and the dense floor: same layers, ReLU, no neurons)\n" + _table(header, lines)


def _sweep_table(name: str, rows: Sequence[dict]) -> str:
    """One line per point of the sweep, with the firing rate of every layer, first to output."""
    sweep = SWEEPS[name]
    lines = [[r["workload"], r["spec"], str(r["T"]), str(r["batch"]), _cell(r["input_rate"], "g"), *_measured(r),
              "/".join(f"{v:.3f}" for v in r.get("layer_rates", []))] for r in rows]
    header = ["workload", "spec", "T", "batch", "input rate", *_MEASURED, "layer rates"]
    mode = "training and inference" if sweep.train else "inference only"
    return f"sweep {name}: {sweep.field} ({mode})\n" + _table(header, lines)


def format_report(report: dict) -> str:
    """The report as text: the workload table, one table per sweep, training memory and errors."""
    rows = report["rows"]
    parts = []
    workload_rows = [r for r in rows if r["sweep"] == "workloads"]
    if workload_rows:
        parts.append(_workload_table(workload_rows))
    parts += [_sweep_table(name, [r for r in rows if r["sweep"] == name])
              for name in SWEEPS if any(r["sweep"] == name for r in rows)]
    if report["bytes_per_neuron_step"] is not None:
        parts.append(f"training memory: {report['bytes_per_neuron_step']:.1f} bytes per neuron-step "
                     "(slope of peak RSS in T, length sweep)")
    errors = [f"ERROR {r['sweep']} {r['workload']} {r['model']}{'' if r['value'] is None else ' ' + str(r['value'])}"
              f": {r['error']}" for r in rows if "error" in r]
    if errors:
        parts.append("\n".join(errors))
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- argument types and worker
def names_type(valid: Sequence[str], allow_none: bool = False) -> Callable[[str], list[str]]:
    """An argparse type: comma-separated names out of ``valid`` (or "none" for no names, if allowed)."""

    def parse(text: str) -> list[str]:
        if allow_none and text.strip() == "none":
            return []
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in valid]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"expected comma-separated names out of {', '.join(valid)}"
                                             f"{' (or none)' if allow_none else ''}, got {text!r}")
        return list(dict.fromkeys(names))

    return parse


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _worker(argv: Sequence[str] | None = None) -> None:
    """``python -m iirsnn.benchmark --one CONFIG_JSON``: one measurement, printed as a RESULT line."""
    parser = argparse.ArgumentParser(description="one measurement of iirsnn bench (run by it)")
    parser.add_argument("--one", required=True, metavar="CONFIG_JSON", help="a Config as JSON")
    parser.add_argument("--malloc", choices=MALLOC_MODES, default="system", help="allocator mode to apply first")
    parser.add_argument("--flush-denormal", choices=["on", "off"], default="off", help="flush-to-zero to apply first")
    args = parser.parse_args(argv)
    tune_process(malloc=args.malloc, flush_denormal=args.flush_denormal == "on")
    print(_RESULT + json.dumps(run_in_process(Config.from_json(args.one))), flush=True)


if __name__ == "__main__":
    _worker()
