"""Fuzzing every reader of an upstream file format with hypothesis.

Each format starts from a valid file (built here, or a small real one from the shared data) and
its reader is fed (a) random bytes, (b) truncations at every kind of position, (c) bit flips and
byte overwrites with extreme integers at any offset (every header field of a binary format gets
hit), and (d) headers and tokens that declare oversized, negative, huge-digit or non-ASCII sizes
and counts. The property, for every input: the reader returns a result or raises the library's own
error naming the file (:class:`DataError` for data files, :class:`ConfigError` for experiment
configs, :class:`CheckpointError` for checkpoints), never another exception; it never takes seconds
(a hang, a super-linear parse), and tracemalloc's peak stays within a small multiple of the file's
size (a lying size must be checked against the file before anything is allocated).

Every run draws the same examples (``derandomize=True``); ``pytest -s`` prints the number of inputs
tried per format.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gzip
import io
import re
import struct
import time
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from iirsnn.data import aedat, associative, auslan, dvs_gesture, idx, japanese_vowels, nmnist, ntidigits, sphere, uea
from iirsnn.data.audio import read_wav
from iirsnn.data.errors import DataError
from iirsnn.data.events import make_events
from iirsnn.train import checkpoint
from iirsnn.train.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
)
from test_data_uea import ARFF_EXAMPLE, TS_EXAMPLE  # the hand-written valid files

PEAK_BASE = 8 << 20  # bytes tracemalloc may see on top of PEAK_PER_BYTE per byte of the file
PEAK_PER_BYTE = 64
SECONDS = 5.0  # per read: a hang or a super-linear parse fails here instead of stalling CI
COUNTS: collections.Counter[str] = collections.Counter()  # inputs tried per format


def fuzz(max_examples: int) -> Callable:
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# --- valid files -----------------------------------------------------------------------------------

ARFF_UNIVARIATE_TEXT = ("@relation U\n@attribute t1 numeric\n@attribute t2 numeric\n@attribute c {a,b}\n"
                        "@data\n1,2,a\n3,?,b\n")


def wav_bytes() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.arange(-20, 20, dtype="<i2").tobytes())
    return out.getvalue()


def aedat_bytes() -> bytes:
    """Two polarity packets on either side of a timestamp overflow, and a special-event packet between."""
    events = make_events(np.array([1, 5, 127]), np.array([2, 6, 100]), np.array([10, 2**31 + 5, 2**31 + 9]),
                         np.array([0, 1, 1]))
    first, *rest = aedat.polarity_packets(events, packet_events=2)
    text = b"".join(line.encode() + b"\r\n" for line in aedat.DEFAULT_HEADER)
    return text + first + aedat.packet_bytes(2, bytes(16), 8, 2) + b"".join(rest)


def npy_bytes() -> bytes:
    out = io.BytesIO()
    np.save(out, (np.arange(24).reshape(2, 3, 4) % 2).astype(np.uint8))
    return out.getvalue()


def bin_bytes() -> bytes:
    rng = np.random.default_rng(0)
    return nmnist.encode_bin_events(make_events(rng.integers(0, 34, 6), rng.integers(0, 34, 6),
                                                np.sort(rng.integers(0, 2**23, 6)), rng.integers(0, 2, 6)))


def tsd_bytes() -> bytes:
    return "".join("\t".join(f"{(i * 22 + j) * 0.01:.3f}" for j in range(22)) + "\n" for i in range(3)).encode()


def vowels_bytes() -> bytes:
    frame, separator = " ".join(["0.5"] * 12) + " ", " ".join(["1.0"] * 12) + " "
    return "\r\n".join([frame, frame, separator, frame.replace("0.5", "-0.25"), separator, ""]).encode()


def checkpoint_bytes(directory: Path) -> bytes:
    path = directory / "built.pt"
    checkpoint.save(path, {"model": {"w": torch.arange(4.0)}, "epoch": 1, "metrics": [{"loss": 0.5}]})
    return path.read_bytes()


def config_bytes() -> bytes:
    return dump_config(ExperimentConfig()).encode()


@dataclass(frozen=True)
class Format:
    """A file format: the file name its readers see, its valid bytes, its readers, and the errors allowed."""

    name: str
    build: Callable[[Path], bytes]
    readers: tuple[Callable[[Path], object], ...]
    errors: tuple[type[Exception], ...] = (DataError,)
    text: bool = False  # also mutate it token by token and line by line


FORMATS = [
    Format("images-idx3-ubyte", lambda _: idx.idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
           (idx.read_idx,)),
    Format("labels-idx1-ubyte.gz", lambda _: gzip.compress(idx.idx_bytes(np.arange(10, dtype=">i4")), mtime=0),
           (idx.read_idx,)),
    Format("1.bs2", lambda _: bin_bytes(), (functools.partial(nmnist.read_bin_events, sensor_size=(34, 34)),
                                           nmnist.read_bin_events)),
    Format("train1K.txt", lambda _: b"#sample\t#class\r\n1\t5\r\n2\t0\r\n3\t9\r\n", (nmnist.read_index,), text=True),
    Format("user01_labels.csv", lambda _: b"class,startTime_usec,endTime_usec\r\n1,100,200\r\n11,300,900\r\n",
           (dvs_gesture.read_labels,), text=True),
    Format("trials_to_train.txt", lambda _: b"user01_fluorescent.aedat\nuser02_led.aedat\n",
           (dvs_gesture.read_trials,), text=True),
    Format("user01.aedat", lambda _: aedat_bytes(), (aedat.read_aedat3,)),
    Format("0_jackson_0.wav", lambda _: wav_bytes(), (read_wav,)),
    Format("mf1.sph", lambda _: sphere.sphere_bytes(np.arange(-10, 10, dtype=np.int16).reshape(10, 2), 8000),
           (sphere.read_sphere,), text=True),
    Format("NTIDIGITS_1.bs1", lambda _: ntidigits.bs1_bytes(ntidigits.Events1D(
        np.array([1, 60]), np.array([0, 1]), np.array([5, 900]))), (ntidigits.read_bs1,)),
    Format("alive-1.tsd", lambda _: tsd_bytes(), (auslan.read_tsd,), text=True),
    Format("ae.train", lambda _: vowels_bytes(), (japanese_vowels.read_blocks,), text=True),
    Format("Example_TRAIN.ts", lambda _: TS_EXAMPLE.encode(), (uea.read_ts, uea.declared_classes), text=True),
    Format("Mini_TRAIN.arff", lambda _: ARFF_EXAMPLE.encode(), (uea.read_arff, uea.declared_classes), text=True),
    Format("U_TEST.arff", lambda _: ARFF_UNIVARIATE_TEXT.encode(), (uea.read_arff, uea.declared_classes), text=True),
    Format("associative_target.npy", lambda _: npy_bytes(), (associative.read_npy,)),
    Format("config.yaml", lambda _: config_bytes(), (load_config,), (ConfigError,), text=True),
    Format("checkpoint-last.pt", checkpoint_bytes, (checkpoint.load,), (checkpoint.CheckpointError,)),
]
TEXT_FORMATS = [f for f in FORMATS if f.text]


def by_name(name: str) -> Format:
    return next(f for f in FORMATS if f.name == name)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")
    print("\ninputs tried per format:", ", ".join(f"{name} {n}" for name, n in sorted(COUNTS.items())),
          f"(total {sum(COUNTS.values())})")


@functools.cache
def _base(fmt: Format, directory: Path) -> bytes:
    data = fmt.build(directory)
    path = directory / fmt.name
    path.write_bytes(data)
    for read in fmt.readers:  # valid, and every module the reader imports on first use is imported now
        read(path)
    return data


every_format = pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
every_text_format = pytest.mark.parametrize("fmt", TEXT_FORMATS, ids=lambda f: f.name)


def check(fmt: Format, data: bytes, directory: Path, name: str | None = None) -> None:
    """Write ``data`` as ``fmt``'s file and read it with each of its readers: a result, or one of
    ``fmt.errors`` naming the file, in time and without allocating beyond what the size justifies."""
    path = directory / (name or fmt.name)
    path.write_bytes(data)
    COUNTS[fmt.name] += 1
    for read in fmt.readers:
        tracemalloc.start()
        start = time.perf_counter()
        try:
            read(path)
        except fmt.errors as exc:
            assert str(path) in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
        finally:
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert seconds < SECONDS, f"{read.__name__ if hasattr(read, '__name__') else read} took {seconds:.1f} s"
        assert peak <= PEAK_BASE + PEAK_PER_BYTE * len(data), f"peak {peak} bytes for a file of {len(data)}"


# --- (a) random bytes, (b) truncations, (c) bit flips and overwrites: every format ----------------

@every_format
@fuzz(40)
@given(data=st.binary(max_size=600))
def test_random_bytes(fmt: Format, fuzz_dir: Path, data: bytes):
    _base(fmt, fuzz_dir)  # the valid file is read first: imports on first use do not count as the fuzz's memory
    check(fmt, data, fuzz_dir)


@every_format
@fuzz(25)
@given(data=st.data())
def test_random_bytes_after_a_valid_start(fmt: Format, fuzz_dir: Path, data: st.DataObject):
    base = _base(fmt, fuzz_dir)
    keep = data.draw(st.integers(0, len(base)))
    check(fmt, base[:keep] + data.draw(st.binary(max_size=300)), fuzz_dir)


def truncations(length: int) -> list[int]:
    """Every cut inside the first and last 96 bytes, and 96 more spread over the middle."""
    spread = range(0, length, max(1, length // 96))
    return sorted({*range(min(length, 96)), *range(max(0, length - 96), length), *spread})


@every_format
def test_every_kind_of_truncation(fmt: Format, fuzz_dir: Path):
    base = _base(fmt, fuzz_dir)
    for cut in truncations(len(base)):
        check(fmt, base[:cut], fuzz_dir)


@every_format
@fuzz(60)
@given(flips=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 7)), min_size=1, max_size=8))
def test_bit_flips(fmt: Format, fuzz_dir: Path, flips: list[tuple[int, int]]):
    data = bytearray(_base(fmt, fuzz_dir))
    for position, bit in flips:
        data[position % len(data)] ^= 1 << bit
    check(fmt, bytes(data), fuzz_dir)


EXTREMES = [0, 1, 2**7 - 1, 2**7, 2**8 - 1, 2**15 - 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**63 - 1,
            2**63, 2**64 - 1]


@every_format
@fuzz(80)
@given(position=st.integers(0, 2**20), width=st.sampled_from([1, 2, 4, 8]), order=st.sampled_from(["little", "big"]),
       value=st.sampled_from(EXTREMES) | st.integers(0, 2**64 - 1))
def test_extreme_integers_at_any_offset(fmt: Format, fuzz_dir: Path, position: int, width: int, order: str,
                                        value: int):
    """Every header field of a binary format, whatever its width and byte order, declaring 0, -1,
    the largest signed or unsigned value, or anything else."""
    data = bytearray(_base(fmt, fuzz_dir))
    at = position % len(data)
    data[at:at + width] = (value % 2 ** (8 * width)).to_bytes(width, order)
    check(fmt, bytes(data), fuzz_dir)


# --- (d) tokens and lines of the text formats -----------------------------------------------------

NASTY_NUMBERS = ["0", "-1", "-0", "+5", "9" * 25, "9" * 5000, "0" * 5000 + "1", "1" * 20, "18446744073709551616",
                 "²", "٣", "1e999", "-1e999", "1_0", "nan", "inf", "-inf", "?", "0x10", " 7 ", "", "1.5", "1e-400"]
NASTY_TOKENS = [*NASTY_NUMBERS, "@", "@data", "#", "%", ":", ",", "'", "{", "}", "\\n", "end_head", "-s9" + "9" * 5000,
                "-i", "[" * 500, "!!int ''", "!!bool x", "!!timestamp x", "!!float x", "!!python/object:os.system",
                "&a [*a]", "*undefined"]
NASTY_LINES = ["@", "@ ", "@data", "@classLabel true", "@dimensions 0", "@seriesLength -3", "@attribute x relational",
               "@end x", "@end", "@attribute", "%", "#", "end_head", "sample_count -i 99999999999",
               "channel_count -i " + "9" * 40, "x -s" + "9" * 5000 + " v", "- [" * 300, "{" * 300, "a: &a [*a, *a]",
               "0" * 5000 + "1\t1", "1," + "9" * 5000 + ",2", "\x00\x01\x02", "1 " * 5000]
_TOKEN = re.compile(rb"[^\s,:{}'\"]+")


def nasty_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(st.sampled_from(NASTY_TOKENS).map(str.encode), st.text(max_size=8).map(str.encode),
                     st.integers(-(2**70), 2**70).map(lambda n: str(n).encode()),
                     st.sampled_from([b"\xff", b"\xfe\xff", b"\x80", b"\xc3", b"\x00"]))


@every_text_format
@fuzz(60)
@given(choice=st.integers(0, 2**20), token=nasty_bytes())
def test_nasty_tokens(fmt: Format, fuzz_dir: Path, choice: int, token: bytes):
    base = _base(fmt, fuzz_dir)
    spans = [m.span() for m in _TOKEN.finditer(base)]
    start, end = spans[choice % len(spans)]
    check(fmt, base[:start] + token + base[end:], fuzz_dir)


@every_text_format
@fuzz(40)
@given(choice=st.integers(0, 2**20), line=st.sampled_from(NASTY_LINES), times=st.integers(1, 3))
def test_nasty_lines(fmt: Format, fuzz_dir: Path, choice: int, line: str, times: int):
    lines = _base(fmt, fuzz_dir).split(b"\n")
    at = choice % (len(lines) + 1)
    check(fmt, b"\n".join([*lines[:at], *[line.encode()] * times, *lines[at:]]), fuzz_dir)


# --- (d) headers declaring sizes and counts, format by format --------------------------------------

sizes = st.sampled_from(EXTREMES) | st.integers(0, 2**64 - 1)
int32s = st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 8, 28, 4096]) | st.integers(-(2**31), 2**31 - 1)
numbers_text = st.sampled_from(NASTY_NUMBERS) | st.integers(-(2**70), 2**70).map(str) | st.text(max_size=5)


@fuzz(100)
@given(code=st.sampled_from([8, 9, 11, 12, 13, 14, 0, 255]), dims=st.lists(sizes.map(lambda n: n % 2**32), max_size=70),
       payload=st.binary(max_size=64))
@example(code=8, dims=[0, 2**32 - 1, 2**32 - 1], payload=b"")  # zero items, but sizes beyond the address space
@example(code=8, dims=[1] * 65, payload=b"x")  # more dimensions than numpy arrays have
def test_idx_header_sizes(fuzz_dir: Path, code: int, dims: list[int], payload: bytes):
    check(by_name("images-idx3-ubyte"), bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
          + payload, fuzz_dir)


@fuzz(100)
@given(fields=st.tuples(st.integers(-(2**15), 2**15 - 1), int32s, int32s, int32s, int32s, int32s, int32s),
       payload=st.integers(0, 64), which=st.integers(0, 2))
def test_aedat_packet_header_sizes(fuzz_dir: Path, fields: tuple[int, ...], payload: int, which: int):
    """eventType, eventSize, eventTSOffset, eventTSOverflow, eventCapacity, eventNumber, eventValid of one
    of the packets, and how many payload bytes follow it."""
    fmt = by_name("user01.aedat")
    base = _base(fmt, fuzz_dir)
    start = base.index(aedat.HEADER_END) + len(aedat.HEADER_END) + 2
    offsets = [start]
    while offsets[-1] < len(base):
        header = np.frombuffer(base, aedat.PACKET_HEADER, count=1, offset=offsets[-1])[0]
        offsets.append(offsets[-1] + aedat.PACKET_HEADER.itemsize + int(header["eventSize"] * header["eventCapacity"]))
    at = offsets[which]
    header = np.zeros(1, aedat.PACKET_HEADER)
    event_type, *rest = fields
    header[0] = (event_type, 1, *rest)
    check(fmt, base[:at] + header.tobytes() + bytes(payload) + base[at + aedat.PACKET_HEADER.itemsize:], fuzz_dir)


u16s = st.sampled_from([0, 1, 2, 8, 16, 24, 32, 2**15, 2**16 - 1, 0xFFFE]) | st.integers(0, 2**16 - 1)
u32s = st.sampled_from([0, 1, 16, 2**31 - 1, 2**31, 2**32 - 1, 2**32 - 8]) | st.integers(0, 2**32 - 1)


@fuzz(100)
@given(riff=u32s, fmt_size=st.sampled_from([16, 18, 40, 0, 14, 2**32 - 1]) | u32s,
       tag=st.sampled_from([1, 3, 0xFFFE]) | u16s,
       channels=u16s, rate=u32s, byte_rate=u32s, align=u16s, bits=u16s, data_size=u32s, payload=st.integers(0, 200))
def test_wav_header_sizes(fuzz_dir: Path, riff: int, fmt_size: int, tag: int, channels: int, rate: int,
                          byte_rate: int, align: int, bits: int, data_size: int, payload: int):
    extension = bytes(max(0, min(fmt_size, 64) - 16))  # a fmt chunk longer than 16 bytes: WAVE_FORMAT_EXTENSIBLE
    fmt_chunk = struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits) + extension
    content = (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<I", fmt_size) + fmt_chunk
               + b"data" + struct.pack("<I", data_size) + bytes(range(256))[:payload])
    check(by_name("0_jackson_0.wav"), content, fuzz_dir)


@fuzz(100)
@given(count=numbers_text, channels=numbers_text, n_bytes=st.sampled_from(["2", "1", "4", "0"]) | numbers_text,
       rate=numbers_text, byte_format=st.sampled_from(["01", "10", "1", "shortpack-v0"]),
       length=st.sampled_from(["2", "0", "99", "-1", "9" * 5000]) | numbers_text,
       header_size=st.none() | st.sampled_from([1024, 16, 0, 9999999]) | st.integers(0, 9999999),
       payload=st.integers(0, 64))
@example(count="0", channels="9" * 30, n_bytes="2", rate="8000", byte_format="01", length="2", header_size=None,
         payload=0)  # no samples, but more channels than an array can have
@example(count="0", channels="1", n_bytes="2", rate="8000", byte_format="01", length="9" * 5000, header_size=None,
         payload=0)  # a string length of 5000 digits
def test_sphere_header_fields(fuzz_dir: Path, count: str, channels: str, n_bytes: str, rate: str, byte_format: str,
                              length: str, header_size: int | None, payload: int):
    """The size fields, a string length and the header size (None: the true one) declaring anything."""
    fields = [f"sample_count -i {count}", f"channel_count -i {channels}", f"sample_n_bytes -i {n_bytes}",
              f"sample_rate -i {rate}", f"sample_byte_format -s{length} {byte_format}", "end_head"]
    text = "\n".join(fields).encode() + b"\n"
    size = -(-(16 + len(text)) // 1024) * 1024 if header_size is None else header_size
    head = b"NIST_1A\n" + f"{size:>7}\n".encode() + text
    check(by_name("mf1.sph"), head.ljust(-(-len(head) // 1024) * 1024, b" ") + bytes(payload), fuzz_dir)


DESCRS = ["'|u1'", "'<i4'", "'<f8'", "'|O'", "'|V0'", "('<i4', (2,))", "[('a', '<i4'), ('b', '|u1')]", "[]", "5",
          "'<U2147483647'", "[('a', '<i4', (1099511627776,))]", "{'names': ['a']}", "b'<i4'", "'xyz'"]


@fuzz(120)
@given(version=st.sampled_from([(1, 0), (2, 0), (3, 0), (0, 0), (9, 9)]), descr=st.sampled_from(DESCRS),
       fortran=st.sampled_from(["False", "True", "1", "None"]),
       shape=st.lists(st.sampled_from([0, 1, 2, -1, 2**31, 2**63, 10**30]) | st.integers(-5, 40) | st.just(True),
                      max_size=40),
       length=st.none() | u32s, tail=st.sampled_from(["}", "", "'''", "1: 2}", "[1]: 2}", "(" * 150 + "}"]),
       payload=st.integers(0, 64))
@example(version=(2, 0), descr="'|u1'", fortran="False", shape=[1], length=2**32 - 1, tail="}", payload=0)
@example(version=(1, 0), descr="'|u1'", fortran="False", shape=[1] * 65, length=None, tail="}", payload=1)
@example(version=(1, 0), descr="'<i4'", fortran="False", shape=[0, 10**30], length=None, tail="}", payload=0)
def test_npy_header_fields(fuzz_dir: Path, version: tuple[int, int], descr: str, fortran: str, shape: list,
                           length: int | None, tail: str, payload: int):
    """descr, fortran_order, shape, the header length field (None: the true length) and garbled endings."""
    items = ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "")
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': ({items}), {tail}".encode("latin1")
    width = 2 if version == (1, 0) else 4
    declared = len(header) if length is None else length % 2 ** (8 * width)
    content = b"\x93NUMPY" + bytes(version) + declared.to_bytes(width, "little") + header + bytes(range(64))[:payload]
    check(by_name("associative_target.npy"), content, fuzz_dir)


@fuzz(80)
@given(dims=st.integers(1, 40), lengths=st.lists(st.integers(1, 40), min_size=1, max_size=40),
       header=st.dictionaries(st.sampled_from(["dimensions", "seriesLength", "equalLength", "univariate",
                                               "classLabel", "timeStamps", "missing"]),
                              numbers_text | st.sampled_from(["true", "false", "true a b", "true a a"]), max_size=4))
@example(dims=3000, lengths=[3000], header={})  # a 12 kB line that padding would turn into 9 million values
def test_ts_declared_counts(fuzz_dir: Path, dims: int, lengths: list[int], header: dict[str, str]):
    """Cases whose first dimensions have ``lengths`` values and the others one, under headers declaring any counts."""
    tags = {"classLabel": "true a b", **header}
    case = ":".join(",".join(["1"] * (lengths[d] if d < len(lengths) else 1)) for d in range(dims))
    text = "".join(f"@{tag} {value}\n" for tag, value in tags.items()) + f"@data\n{case}:a\n{case}:b\n"
    check(by_name("Example_TRAIN.ts"), text.encode(), fuzz_dir)


@fuzz(60)
@given(steps=st.integers(0, 30), rows=st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=5), max_size=5),
       relational=st.booleans(), classes=st.sampled_from(["{a,b}", "{a,a}", "{}", "{a", "{'a b',c}"]))
def test_arff_declared_steps(fuzz_dir: Path, steps: int, rows: list[list[int]], relational: bool, classes: str):
    """Cases with any number of values per dimension against the time steps the attributes declare."""
    attributes = [f"@attribute t{i} numeric" for i in range(steps)]
    if relational:
        attributes = ["@attribute s relational", *attributes, "@end s"]
    lines = ["@relation R", *attributes, f"@attribute c {classes}", "@data"]
    for row in rows:
        values = [",".join(["1"] * n) for n in row]
        lines.append(("'" + "\\n".join(values) + "'" if relational else values[0]) + ",a")
    check(by_name("Mini_TRAIN.arff"), "\n".join(lines).encode(), fuzz_dir)


@fuzz(60)
@given(rows=st.lists(st.lists(numbers_text, min_size=1, max_size=4), max_size=6))
def test_index_and_label_fields(fuzz_dir: Path, rows: list[list[str]]):
    """Sample ids, classes and gesture times of any size, sign and digit alphabet."""
    lines = ["\t".join(row) for row in rows]
    check(by_name("train1K.txt"), "\r\n".join(["#sample\t#class", *lines]).encode(), fuzz_dir)
    lines = [",".join(row) for row in rows]
    check(by_name("user01_labels.csv"), "\r\n".join(["class,startTime_usec,endTime_usec", *lines]).encode(), fuzz_dir)


@fuzz(60)
@given(records=st.lists(st.tuples(st.integers(0, 255), st.sampled_from([240, 0, 33, 34, 255]) | st.integers(0, 255),
                                  st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)), max_size=200))
def test_event_records_with_overflow_markers(fuzz_dir: Path, records: list[tuple[int, ...]]):
    """N-MNIST/SLAYER records at any coordinate and time, many of them timestamp overflow markers (y = 240)."""
    check(by_name("1.bs2"), bytes(b for record in records for b in record), fuzz_dir)
    check(by_name("NTIDIGITS_1.bs1"), bytes(b for record in records for b in record), fuzz_dir)


# --- (d) experiment configs and checkpoints ----------------------------------------------------------

def _keys() -> list[str]:
    config = ExperimentConfig().to_dict()
    return sorted({*config, *(k for v in config.values() if isinstance(v, dict) for k in v)})


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=6),
                         st.sampled_from(["!!int ''", "!!bool x", "!!timestamp x", "!!float x", "!!binary ~~",
                                          "!!python/name:os.system", "*nothing", "9" * 5000, ".nan", "-.inf",
                                          "[" * 400, "&a [*a]", "!!set {a: 1}", "<<: 5", "? [1]"]))
json_like = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64), st.floats(),
                                   st.text(max_size=5)),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.sampled_from(_keys()) | st.text(max_size=4), inner, max_size=4),
                         max_leaves=12)


@fuzz(100)
@given(data=st.dictionaries(st.sampled_from(_keys()),
                            json_like | st.dictionaries(st.sampled_from(_keys()), json_like, max_size=4), max_size=6))
def test_config_from_dict_of_any_values(data: dict):
    """Any nested values under known and unknown keys: a config, or a ConfigError."""
    COUNTS["config_from_dict"] += 1
    with contextlib.suppress(ConfigError):
        config_from_dict(data)


@fuzz(100)
@given(section=st.sampled_from(["", "data.", "model.", "optimizer.", "augment.", "schedule.", "model.options."]),
       key=st.sampled_from(_keys()), value=yaml_scalars)
def test_config_files_and_overrides_with_any_values(fuzz_dir: Path, section: str, key: str, value: object):
    text = value if isinstance(value, str) else repr(value)
    parts = [*section.split(".")[:-1], key]
    nested = "".join(f"{'  ' * depth}{part}:\n" for depth, part in enumerate(parts[:-1]))
    check(by_name("config.yaml"), f"{nested}{'  ' * (len(parts) - 1)}{key}: {text}\n".encode(), fuzz_dir)
    COUNTS["apply_overrides"] += 1
    with contextlib.suppress(ConfigError):
        apply_overrides(ExperimentConfig(), [f"{section}{key}={text}"])


def test_a_yaml_alias_bomb_is_refused_before_it_expands(fuzz_dir: Path):
    """522 bytes whose aliases expand to 387 million values: loading it used to succeed, and writing the
    run's config.yaml (dump_config) then never ended."""
    lines = ["    a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = fuzz_dir / "bomb.yaml"
    path.write_text("model:\n  options:\n" + "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"bomb\.yaml: its YAML aliases expand"):
        load_config(path)
    path.write_text("model:\n  options: &o {dropout: 0.1}\nloss:\n  options: *o\n")  # a plain alias is fine
    assert load_config(path).loss.options == {"dropout": 0.1}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on a flipped PROTO opcode
@fuzz(100)
@given(position=st.integers(0, 2**20), value=st.sampled_from(EXTREMES) | st.integers(0, 2**32 - 1),
       width=st.sampled_from([1, 2, 4]))
def test_checkpoint_pickle_fields(fuzz_dir: Path, position: int, value: int, width: int):
    """Any value in the pickled state (sizes of strings, tensors and storages, memo indices, opcodes)."""
    fmt = by_name("checkpoint-last.pt")
    data = bytearray(_base(fmt, fuzz_dir))
    start = data.index(b"data.pkl") + len(b"data.pkl")
    end = data.index(b"PK", start)
    at = start + position % (end - start)
    data[at:at + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
    check(fmt, bytes(data), fuzz_dir)


def test_a_plain_pickle_checkpoint_is_refused_before_torch_reads_it(fuzz_dir: Path):
    """torch.load's reader of the pre-zip format allocated the 4 GiB that this 9-byte file declares."""
    check(by_name("checkpoint-last.pt"), b"\x80\x02X" + struct.pack("<I", 2**32 - 1) + b"ab", fuzz_dir)
    with pytest.raises(checkpoint.CheckpointError, match=r"checkpoint-last\.pt: not a readable checkpoint: .* zip"):
        checkpoint.load(fuzz_dir / "checkpoint-last.pt")


# --- small real files from the shared data -------------------------------------------------------------

REAL_FILES = {
    "mnist/t10k-labels-idx1-ubyte.gz": "labels-idx1-ubyte.gz",
    "nmnist_small/NMNISTsmall/test100.txt": "train1K.txt",
    "fsdd/recordings/6_nicolas_7.wav": "0_jackson_0.wav",
    "auslan_fragment/alive-1.tsd": "alive-1.tsd",
    "ntidigits_slayer_sample/NTIDIGITS_1.bs1": "NTIDIGITS_1.bs1",
}


@pytest.mark.parametrize("relative", list(REAL_FILES))
def test_real_files_truncated_and_flipped(shared_data: Path, fuzz_dir: Path, relative: str):
    source = shared_data / relative
    if not source.is_file():
        pytest.skip(f"{source} is not in the shared data")
    fmt, base = by_name(REAL_FILES[relative]), source.read_bytes()
    name = "real-" + source.name  # the suffix (.gz) stays, so the reader sees the same kind of file

    @fuzz(40)
    @given(flips=st.lists(st.tuples(st.integers(0, len(base) - 1), st.integers(0, 7)), min_size=1, max_size=4))
    def flipped(flips: list[tuple[int, int]]) -> None:
        data = bytearray(base)
        for position, bit in flips:
            data[position] ^= 1 << bit
        check(fmt, bytes(data), fuzz_dir, name)

    check(fmt, base, fuzz_dir, name)
    for cut in truncations(len(base))[::2]:
        check(fmt, base[:cut], fuzz_dir, name)
    flipped()
