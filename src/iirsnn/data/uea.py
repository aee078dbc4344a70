"""UEA/UCR multivariate time-series classification sets in their two upstream formats, ``.ts`` and ``.arff``.

Layout under ``<root>/<Problem>/``: ``<Problem>_TRAIN.ts`` and ``<Problem>_TEST.ts`` (sktime's
format), or the same names ending ``.arff`` (Weka; the UEA archive ships both).

``.ts``: ``#`` comments, then header tags (case-insensitive) ``@problemName``, ``@timeStamps``,
``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <class> ...``, then ``@data`` and one case per line: the dimensions separated
by ``:``, the values of a dimension by ``,``, ``?`` for a missing value, the class after the last
``:``. Files with time stamps or without class labels (regression) are not supported.

``.arff``: ``%`` comments, ``@relation``, then either one ``relational`` attribute whose inner
numeric attributes are the time steps, followed by the nominal class attribute (multivariate:
each value is a quoted string of one row of comma-separated values per dimension, rows joined by
the two characters ``\\n``), or numeric attributes (the time steps) followed by the nominal class
(univariate). ARFF has no per-case length: UEA pads shorter cases with ``?``, so trailing time
steps missing in every dimension are taken as padding and removed.

A series comes back as float32 ``[T_i, D]`` (time-major, NaN for a missing value; within a
``.ts`` case a dimension shorter than the others is padded with NaN). Class indices follow the
order in which the file declares its classes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from iirsnn.data.download import Remote
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.files import data_root, dataset_dir
from iirsnn.data.timeseries import SeriesDataset, SeriesTransform

SPLITS = {"train": "TRAIN", "test": "TEST"}
FORMATS = ("ts", "arff")
_TS_FLAGS = ("timestamps", "missing", "univariate", "equallength", "classlabel", "targetlabel")
MAX_COUNT_DIGITS = 18  # @dimensions, @seriesLength: below 10**18, and int() never sees thousands of digits
MAX_PADDING = 4  # NaN padding of .ts cases: at most this many values made per value read
_ATTRIBUTE = re.compile(r"@attribute\s+('[^']*'|\"[^\"]*\"|\S+)\s*(.*)$", re.IGNORECASE)

# Which sets appear under the data root is up to the user; the UEA archive publishes no checksums.
REMOTES: list[Remote] = []


@dataclass(frozen=True)
class LabelledSeries:
    """The content of one UEA file: ``series`` (each float32 [T_i, D], NaN = missing), the class
    name of each in ``labels``, the declared class names in ``classes`` and the ``problem`` name."""

    problem: str
    series: list[torch.Tensor]
    labels: list[str]
    classes: list[str]


def _text_lines(path: Path) -> list[str]:
    """The lines of a text file; CorruptFileError naming it for bytes that are not UTF-8."""
    try:
        return path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise CorruptFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _numbers(texts: list[str], numbers: list[int], path: Path) -> np.ndarray:
    """All comma-separated values of ``texts`` (``?`` = NaN) as one float64 array; a bad token is
    reported with its line from ``numbers`` (1-based, one per text)."""
    joined = ",".join(texts)
    if not joined:
        return np.zeros(0)
    try:
        values = np.array(joined.replace("?", "nan").split(","), dtype=np.float64)
    except ValueError:
        for text, number in zip(texts, numbers, strict=True):
            for token in text.split(","):
                try:
                    float(token.replace("?", "nan"))
                except ValueError:
                    raise CorruptFileError(f"{path}, line {number}: {token!r} is not a number or '?'") from None
        raise CorruptFileError(f"{path}: holds a value that is not a number or '?'") from None
    if np.isinf(values).any():
        raise CorruptFileError(f"{path}: holds infinite values")
    return values


def _flag(value: str, tag: str, path: Path) -> bool:
    """A ``true``/``false`` header value."""
    word = value.split()[0].lower() if value.split() else ""
    if word not in ("true", "false"):
        raise CorruptFileError(f"{path}: @{tag} must be true or false, got {value!r}")
    return word == "true"


def _count(value: str, tag: str, path: Path) -> int:
    """A positive integer header value (plain ASCII digits, at most 18 of them: no count of a file is larger)."""
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) <= MAX_COUNT_DIGITS) or int(digits) < 1:
        raise CorruptFileError(f"{path}: @{tag} must be a positive integer, got {value[:40]!r}")
    return int(digits)


def _ts_header(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    """The header tags of a ``.ts`` file (lower-case tag -> value) and the index of its first data line."""
    header: dict[str, str] = {}
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise CorruptFileError(f"{path}, line {index + 1}: data before the @data line (a .ts file starts "
                                   "with @problemName ... @data)")
        tag, *value = line[1:].split(None, 1) or [""]
        if not tag:
            raise CorruptFileError(f"{path}, line {index + 1}: a header line '@' without a tag name")
        if tag.lower() == "data":
            return header, index + 1
        header[tag.lower()] = value[0].strip() if value else ""
    raise CorruptFileError(f"{path}: no @data line; not a .ts file or a truncated header")


def _ts_classes(header: dict[str, str], path: Path) -> list[str]:
    """The declared classes of a ``.ts`` header; DataError for files this reader does not support."""
    flags = {tag: _flag(header[tag], tag, path) for tag in _TS_FLAGS if tag in header}
    if flags.get("timestamps"):
        raise DataError(f"{path}: @timeStamps true (time-stamped values) is not supported")
    if not flags.get("classlabel"):
        raise DataError(f"{path}: no class labels (@classLabel true ...); only classification sets are supported")
    classes = header["classlabel"].split()[1:]
    if not classes or len(set(classes)) != len(classes):
        raise CorruptFileError(f"{path}: @classLabel must list distinct class names, got {header['classlabel']!r}")
    return classes


def _ts_cases(lines: list[str], first: int, path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """(labels, dimension texts, 1-based line) of every data line from index ``first``."""
    labels, dims, numbers = [], [], []
    for index in range(first, len(lines)):
        line = lines[index].strip()
        if not line or line.startswith("#"):
            continue
        body, colon, label = line.rpartition(":")
        if not colon or not label.strip():
            raise CorruptFileError(f"{path}, line {index + 1}: no class label after a ':' (a truncated case?)")
        labels.append(label.strip())
        dims.append(body.split(":"))
        numbers.append(index + 1)
    return labels, dims, numbers


def _assemble(values: np.ndarray, sizes: np.ndarray) -> list[torch.Tensor]:
    """Cases [T_i, D] from ``values`` laid out case by case, dimension by dimension, with ``sizes``
    [N, D] values per dimension; a dimension shorter than its case's longest is padded with NaN."""
    if (sizes == sizes[0, 0]).all():
        cases = values.reshape(*sizes.shape, sizes[0, 0]).transpose(0, 2, 1).astype(np.float32)
        return [torch.from_numpy(case.copy()) for case in cases]
    series, offset = [], 0
    for row in sizes:
        steps = int(row.max())
        case = np.full((len(row), steps), np.nan, dtype=np.float32)
        for d, size in enumerate(row):
            case[d, :size] = values[offset:offset + size]
            offset += size
        series.append(torch.from_numpy(case.T.copy()))
    return series


def _check_padding(sizes: np.ndarray, path: Path) -> None:
    """Raise :class:`CorruptFileError` when padding the dimensions of each case to its longest (``sizes``
    [N, D] values per dimension) would make more than :data:`MAX_PADDING` values per value in the file:
    a line of D dimensions, one of them T values long, would otherwise become D x T values."""
    padded, read = int((sizes.max(axis=1) * sizes.shape[1]).sum()), int(sizes.sum())
    if padded > MAX_PADDING * read:
        raise CorruptFileError(f"{path}: the dimensions of its cases differ so much in length that padding them "
                               f"with NaN would make {padded} values of the {read} in the file (more than "
                               f"{MAX_PADDING} per value: garbled?)")


def read_ts(path: str | os.PathLike) -> LabelledSeries:
    """Read a UEA/sktime ``.ts`` classification file: series [T_i, D] float32 and their class names.

    Raises :class:`CorruptFileError` naming the file (and line) for a missing ``@data``, a header
    value or dimension count that the data contradicts, unequal lengths under ``@equalLength
    true``, a class not declared, or a value that is not a number or ``?``; :class:`DataError` for
    time-stamped or unlabelled files.
    """
    path = Path(path)
    lines = _text_lines(path)
    header, first = _ts_header(lines, path)
    classes = _ts_classes(header, path)
    labels, dims, numbers = _ts_cases(lines, first, path)
    if not labels:
        raise CorruptFileError(f"{path}: no cases after @data")
    widths = np.array([len(d) for d in dims])
    expected = _count(header["dimensions"], "dimensions", path) if "dimensions" in header else int(widths[0])
    if "univariate" in header and _flag(header["univariate"], "univariate", path) and expected != 1:
        raise CorruptFileError(f"{path}: @univariate true but {expected} dimensions")
    if (widths != expected).any():
        bad = int(np.flatnonzero(widths != expected)[0])
        raise CorruptFileError(f"{path}, line {numbers[bad]}: {widths[bad]} dimensions, expected {expected}")
    sizes = np.array([[text.count(",") + 1 for text in case] for case in dims])
    steps = sizes.max(axis=1)
    equal = "equallength" in header and _flag(header["equallength"], "equallength", path)
    if equal and (sizes != sizes[0, 0]).any():
        bad = int(np.flatnonzero((sizes != sizes[0, 0]).any(axis=1))[0])
        raise CorruptFileError(f"{path}, line {numbers[bad]}: lengths {sizes[bad].tolist()} but @equalLength true "
                               f"and the first case has {sizes[0, 0]} values (a truncated case?)")
    if "serieslength" in header and (steps != _count(header["serieslength"], "seriesLength", path)).any():
        bad = int(np.flatnonzero(steps != int(header["serieslength"]))[0])
        raise CorruptFileError(f"{path}, line {numbers[bad]}: {steps[bad]} values, but @seriesLength "
                               f"{header['serieslength']}")
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise CorruptFileError(f"{path}: class label(s) {unknown} are not declared in @classLabel {classes}")
    _check_padding(sizes, path)
    values = _numbers([",".join(case) for case in dims], numbers, path)
    return LabelledSeries(header.get("problemname", path.stem), _assemble(values, sizes), labels, classes)


@dataclass(frozen=True)
class _ArffHeader:
    """The parts of a UEA ``.arff`` header: relation name, steps (inner or plain numeric attributes),
    whether the series are relational (multivariate), declared classes, index of the first data line."""

    relation: str
    steps: int
    relational: bool
    classes: list[str]
    first: int


def _unquote(text: str) -> str:
    """``text`` without surrounding whitespace and one pair of quotes."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _arff_header(lines: list[str], path: Path) -> _ArffHeader:
    """Parse the header of a UEA ``.arff`` file up to ``@data``."""
    relation, attributes, inner, open_relation = path.stem, [], 0, None
    for index, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        keyword = line.split()[0].lower()
        if keyword == "@relation":
            relation = _unquote(line[len("@relation"):])
        elif keyword == "@attribute":
            match = _ATTRIBUTE.match(line)
            if match is None:
                raise CorruptFileError(f"{path}, line {index + 1}: malformed @attribute line {line!r}")
            kind = match.group(2).strip()
            if open_relation is not None:
                if kind.lower() not in ("numeric", "real", "integer"):
                    raise DataError(f"{path}, line {index + 1}: inner attribute of type {kind!r}; UEA series are "
                                    "numeric")
                inner += 1
            else:
                attributes.append((kind, index))
                if kind.lower() == "relational":
                    open_relation = _unquote(match.group(1))
        elif keyword == "@end":
            if open_relation is None:
                raise CorruptFileError(f"{path}, line {index + 1}: @end without a relational attribute")
            open_relation = None
        elif keyword == "@data":
            if open_relation is not None:
                raise CorruptFileError(f"{path}: relational attribute {open_relation!r} has no @end")
            return _arff_layout(relation, attributes, inner, index + 1, path)
        else:
            raise CorruptFileError(f"{path}, line {index + 1}: unexpected line {line[:60]!r} in the header")
    raise CorruptFileError(f"{path}: no @data line; not an .arff file or a truncated header")


def _arff_layout(relation: str, attributes: list[tuple[str, int]], inner: int, first: int,
                 path: Path) -> _ArffHeader:
    """Check the attributes form a UEA layout: (relational | numeric...) then a nominal class."""
    if len(attributes) < 2 or not attributes[-1][0].startswith("{"):
        raise DataError(f"{path}: expected series attribute(s) followed by a nominal class attribute "
                        "{a,b,...}; not a UEA classification .arff file")
    kind, number = attributes[-1]
    if not kind.endswith("}"):
        raise CorruptFileError(f"{path}, line {number + 1}: unterminated nominal class list {kind!r}")
    classes = [_unquote(c) for c in kind[1:-1].split(",")]
    if not all(classes) or len(set(classes)) != len(classes):
        raise CorruptFileError(f"{path}, line {number + 1}: class list must hold distinct names, got {kind!r}")
    kinds = [k.lower() for k, _ in attributes[:-1]]
    if kinds == ["relational"]:
        if inner == 0:
            raise CorruptFileError(f"{path}: the relational attribute has no inner attributes (time steps)")
        return _ArffHeader(relation, inner, True, classes, first)
    if all(k in ("numeric", "real", "integer") for k in kinds):
        return _ArffHeader(relation, len(kinds), False, classes, first)
    raise DataError(f"{path}: attribute types {kinds} are neither one relational attribute nor numeric ones")


def _arff_case(line: str, header: _ArffHeader, number: int, path: Path) -> tuple[list[str], str]:
    """(rows of comma-separated values, one per dimension; class label) of one data line."""
    if line.startswith("{"):
        raise DataError(f"{path}, line {number}: sparse ARFF data is not supported")
    if not header.relational:
        body, comma, label = line.rpartition(",")
        if not comma:
            raise CorruptFileError(f"{path}, line {number}: no class label after a ','")
        return [body], _unquote(label)
    quote = line[0]
    end = line.find(quote, 1) if quote in "'\"" else -1
    rest = line[end + 1:].strip() if end > 0 else ""
    if not rest.startswith(","):
        raise CorruptFileError(f"{path}, line {number}: expected a quoted series followed by ',<class>' "
                               "(a truncated or garbled case)")
    return line[1:end].split("\\n"), _unquote(rest[1:])


def _strip_padding(case: np.ndarray) -> np.ndarray:
    """``case`` [T, D] without the trailing time steps that are missing (NaN) in every dimension."""
    observed = np.flatnonzero(~np.isnan(case).all(axis=1))
    return case[: observed[-1] + 1] if observed.size else case[:0]


def read_arff(path: str | os.PathLike) -> LabelledSeries:
    """Read a UEA ``.arff`` classification file: series [T_i, D] float32 and their class names.

    Raises :class:`CorruptFileError` naming the file (and line) for a malformed header, a case
    without the declared number of time steps or with a different number of dimensions, a class
    not declared, a value that is not a number or ``?``, or a case missing in every step;
    :class:`DataError` for ARFF layouts that are not UEA classification sets.
    """
    path = Path(path)
    lines = _text_lines(path)
    header = _arff_header(lines, path)
    rows, labels, numbers = [], [], []
    for index in range(header.first, len(lines)):
        line = lines[index].strip()
        if not line or line.startswith("%"):
            continue
        case, label = _arff_case(line, header, index + 1, path)
        rows.append(case)
        labels.append(label)
        numbers.append(index + 1)
    if not rows:
        raise CorruptFileError(f"{path}: no cases after @data")
    widths = np.array([len(case) for case in rows])
    if (widths != widths[0]).any():
        bad = int(np.flatnonzero(widths != widths[0])[0])
        raise CorruptFileError(f"{path}, line {numbers[bad]}: {widths[bad]} dimensions, the first case has "
                               f"{widths[0]}")
    sizes = np.array([[text.count(",") + 1 for text in case] for case in rows])
    if (sizes != header.steps).any():
        bad = int(np.flatnonzero((sizes != header.steps).any(axis=1))[0])
        raise CorruptFileError(f"{path}, line {numbers[bad]}: {sizes[bad].tolist()} values per dimension, the "
                               f"header declares {header.steps} time steps (a truncated case?)")
    unknown = sorted(set(labels) - set(header.classes))
    if unknown:
        raise CorruptFileError(f"{path}: class label(s) {unknown} are not in the declared classes {header.classes}")
    values = _numbers([",".join(case) for case in rows], numbers, path)
    cases = values.reshape(len(rows), widths[0], header.steps).transpose(0, 2, 1).astype(np.float32)
    series = [torch.from_numpy(_strip_padding(case).copy()) for case in cases]
    empty = [numbers[i] for i, s in enumerate(series) if s.shape[0] == 0]
    if empty:
        raise CorruptFileError(f"{path}, line {empty[0]}: every value of the case is missing")
    return LabelledSeries(header.relation, series, labels, header.classes)


def declared_classes(path: str | os.PathLike) -> list[str]:
    """The class names a ``.ts`` or ``.arff`` file declares in its header, without reading its data."""
    path = Path(path)
    header_lines = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            header_lines.append(line)
            if line.strip().lower().startswith("@data"):
                break
    if path.suffix == ".arff":
        return _arff_header(header_lines, path).classes
    return _ts_classes(_ts_header(header_lines, path)[0], path)


def split_file(directory: Path, problem: str, split: str, file_format: str | None = None) -> Path:
    """``<directory>/<problem>_<TRAIN|TEST>.<ts|arff>`` (``.ts`` first when ``file_format`` is None)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if file_format is not None and file_format not in FORMATS:
        raise ValueError(f"file_format must be None or one of {list(FORMATS)}, got {file_format!r}")
    candidates = [directory / f"{problem}_{SPLITS[split]}.{ext}" for ext in FORMATS
                  if file_format in (None, ext)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    listed = " or ".join(str(c) for c in candidates)
    raise MissingDataError(f"UEA set {problem!r}: expected {listed}; unpack the UEA archive's {problem}/ folder "
                           "(Multivariate_ts or Multivariate_arff) under the data root")


class UEA(SeriesDataset):
    """A UEA/UCR classification set as series [length, D] (float32, time-major, NaN = missing).

    Args:
        problem: the set's name, e.g. ``"BasicMotions"``: its directory under the root and the stem
            of its files.
        root: the data root holding ``<problem>/`` (default ``$IIRSNN_DATA``), or that directory.
        split: ``"train"`` or ``"test"`` (the upstream files).
        file_format: ``"ts"``, ``"arff"`` or None (``.ts`` when present, else ``.arff``).
        length, mode: the common length and how series reach it (:mod:`iirsnn.data.timeseries`);
            ``length=None`` pads to the longest series of this split.
        normalize: e.g. a :class:`~iirsnn.data.timeseries.ChannelStats` of the training split.
        transform: applied to each fitted sample.

    Labels index the classes in the order the file declares them; the other split's file, when
    present, must declare the same classes (else :class:`CorruptFileError`), so that the indices
    of train and test agree.
    """

    def __init__(self, problem: str, root: str | os.PathLike | None = None, split: str = "train",
                 file_format: str | None = None, length: int | None = None, mode: str = "pad",
                 normalize: SeriesTransform | None = None, transform: SeriesTransform | None = None) -> None:
        directory = dataset_dir(problem, root)
        path = split_file(directory, problem, split, file_format)
        content = read_ts(path) if path.suffix == ".ts" else read_arff(path)
        other = directory / path.name.replace(f"_{SPLITS[split]}.", f"_{SPLITS[_other(split)]}.")
        if other.is_file() and declared_classes(other) != content.classes:
            raise CorruptFileError(f"{path} declares the classes {content.classes} but {other} declares "
                                   f"{declared_classes(other)}; train and test labels would not agree")
        index = {name: i for i, name in enumerate(content.classes)}
        targets = torch.tensor([index[label] for label in content.labels], dtype=torch.long)
        super().__init__(content.series, targets, content.classes, length, mode, normalize, transform)
        self.problem = content.problem


def _other(split: str) -> str:
    """The split that is not ``split``."""
    return "test" if split == "train" else "train"


def verify(root: str | os.PathLike | None = None, problem: str | None = None) -> list[str]:
    """Problems with the UEA sets on disk (empty list: all good), reading every split file fully:
    ``problem``'s, or every directory under the root that holds ``*_TRAIN``/``*_TEST`` ``.ts`` or
    ``.arff`` files. The archive publishes no checksums, so files are checked by parsing. Never
    raises for missing or corrupt files."""
    try:
        directories = [dataset_dir(problem, root)] if problem else sorted(
            p for p in data_root(root).iterdir() if p.is_dir())
    except DataError as exc:
        return [str(exc)]
    problems = []
    for directory in directories:
        name = problem or directory.name
        files = [directory / f"{name}_{s}.{ext}" for s in SPLITS.values() for ext in FORMATS]
        present = [f for f in files if f.is_file()]
        if not present:
            if problem:
                problems.append(f"{directory}: no {name}_TRAIN/_TEST .ts or .arff files")
            continue
        for split in SPLITS:
            try:
                split_file(directory, name, split)
            except MissingDataError as exc:
                problems.append(str(exc))
        for path in present:
            try:
                read_ts(path) if path.suffix == ".ts" else read_arff(path)
            except DataError as exc:
                problems.append(str(exc))
    return problems
