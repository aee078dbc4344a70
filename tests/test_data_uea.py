"""UEA .ts and .arff readers: hand-written files, writer round trips, the dataset, corrupt files."""

import math
from pathlib import Path

import pytest
import torch

from iirsnn.data import CorruptFileError, DataError, MissingDataError
from iirsnn.data.uea import UEA, declared_classes, read_arff, read_ts, verify

TS_EXAMPLE = """# written by hand after sktime's format description
@problemName Example
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength false
@classLabel true yes no
@data
1.0,2.0,3.0:4.0,5.0,6.0:yes

7,?,9:10,11:no
"""

ARFF_EXAMPLE = """% a UEA-style relational file
@relation Mini
@attribute series relational
  @attribute t1 numeric
  @attribute t2 numeric
  @attribute t3 numeric
@end series
@attribute activity {Standing,Running}

@data
'1,2,3\\n4,5,6',Standing
'7,8,?\\n10,?,?',Running
"""


def number(v: float) -> str:
    return "?" if math.isnan(v) else repr(v)


def write_ts(path: Path, series: list[torch.Tensor], labels: list[str], classes: list[str]) -> None:
    """A .ts file of ``series`` (each [T_i, D]; NaN written as '?')."""
    equal = len({s.shape[0] for s in series}) == 1
    dims = series[0].shape[1]
    lines = [f"@problemName {path.stem.split('_')[0]}", "@timeStamps false", "@missing true",
             f"@univariate {str(dims == 1).lower()}", f"@dimensions {dims}", f"@equalLength {str(equal).lower()}"]
    if equal:
        lines.append(f"@seriesLength {series[0].shape[0]}")
    lines += ["@classLabel true " + " ".join(classes), "@data"]
    for s, label in zip(series, labels, strict=True):
        lines.append(":".join(",".join(number(v) for v in s[:, d].tolist()) for d in range(dims)) + f":{label}")
    path.write_text("\n".join(lines) + "\n")


def write_arff(path: Path, series: list[torch.Tensor], labels: list[str], classes: list[str]) -> None:
    """A UEA .arff file of ``series`` (each [T_i, D], shorter ones padded with '?'); univariate for D = 1."""
    steps, dims = max(s.shape[0] for s in series), series[0].shape[1]
    attributes = [f"@attribute t{i} numeric" for i in range(1, steps + 1)]
    if dims > 1:
        attributes = ["@attribute case relational", *attributes, "@end case"]
    lines = [f"@relation {path.stem.split('_')[0]}", *attributes, "@attribute target {" + ",".join(classes) + "}",
             "@data"]
    for s, label in zip(series, labels, strict=True):
        padded = torch.cat([s, torch.full((steps - s.shape[0], dims), math.nan)])
        rows = [",".join(number(v) for v in padded[:, d].tolist()) for d in range(dims)]
        lines.append(("'" + "\\n".join(rows) + "'" if dims > 1 else rows[0]) + f",{label}")
    path.write_text("\n".join(lines) + "\n")


def random_series(lengths: list[int], dims: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, dims, generator=g) for n in lengths]


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(torch.nan_to_num(a, 7e7), torch.nan_to_num(b, 7e7))


def test_handwritten_ts_file(tmp_path: Path):
    path = tmp_path / "Example_TRAIN.ts"
    path.write_text(TS_EXAMPLE)
    content = read_ts(path)
    assert content.problem == "Example" and content.classes == ["yes", "no"] and content.labels == ["yes", "no"]
    assert torch.equal(content.series[0], torch.tensor([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]))
    second = content.series[1]  # dimension 2 has 2 values: padded with NaN; '?' is NaN
    assert second.shape == (3, 2) and second[0].tolist() == [7.0, 10.0] and second[2, 0].item() == 9.0
    assert math.isnan(second[1, 0]) and math.isnan(second[2, 1]) and second[1, 1].item() == 11.0


def test_handwritten_arff_file(tmp_path: Path):
    path = tmp_path / "Mini_TEST.arff"
    path.write_text(ARFF_EXAMPLE)
    content = read_arff(path)
    assert content.problem == "Mini" and content.classes == ["Standing", "Running"]
    assert content.labels == ["Standing", "Running"]
    assert torch.equal(content.series[0], torch.tensor([[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]))
    second = content.series[1]  # the last step is missing everywhere: UEA padding, removed
    assert second.shape == (2, 2) and second[:, 0].tolist() == [7.0, 8.0] and second[0, 1].item() == 10.0
    assert math.isnan(second[1, 1])
    assert declared_classes(path) == ["Standing", "Running"]


@pytest.mark.parametrize("write, read", [(write_ts, read_ts), (write_arff, read_arff)])
@pytest.mark.parametrize("lengths, dims", [([5, 5, 5], 3), ([4, 9, 1, 6], 2), ([8, 3], 1)])
def test_writer_round_trip(tmp_path: Path, write, read, lengths, dims):
    series = random_series(lengths, dims)
    series[0][1, 0] = math.nan  # a missing value inside a series
    classes = ["b", "a", "c"]
    labels = [classes[i % 3] for i in range(len(lengths))]
    path = tmp_path / f"Round_TRAIN.{'ts' if read is read_ts else 'arff'}"
    write(path, series, labels, classes)
    content = read(path)
    assert content.labels == labels and content.classes == classes and content.problem == "Round"
    assert all(same(a, b) for a, b in zip(content.series, series, strict=True))


def make_set(root: Path, ext: str = "ts", problem: str = "Toy") -> list[torch.Tensor]:
    directory = root / problem
    directory.mkdir(parents=True, exist_ok=True)
    write = write_ts if ext == "ts" else write_arff
    train = random_series([6, 4, 5, 6], 3)
    write(directory / f"{problem}_TRAIN.{ext}", train, ["up", "down", "up", "flat"], ["flat", "up", "down"])
    write(directory / f"{problem}_TEST.{ext}", random_series([7, 2], 3, seed=1), ["down", "flat"],
          ["flat", "up", "down"])
    return train


@pytest.mark.parametrize("ext", ["ts", "arff"])
def test_uea_dataset(tmp_path: Path, ext: str):
    series = make_set(tmp_path, ext)
    train = UEA("Toy", tmp_path, split="train")
    assert train.problem == "Toy" and train.classes == ["flat", "up", "down"]
    assert train.targets.tolist() == [1, 2, 1, 0] and train.lengths.tolist() == [6, 4, 5, 6]
    x, y = train[1]
    assert x.shape == (6, 3) and y == 2 and same(x[:4], series[1]) and not x[4:].any()
    test = UEA("Toy", tmp_path / "Toy", split="test", length=5, mode="crop", normalize=train.channel_stats())
    assert len(test) == 2 and test.valid_lengths.tolist() == [5, 2] and test[0][0].shape == (5, 3)
    assert verify(tmp_path) == [] and verify(tmp_path, "Toy") == []


def test_dataset_picks_the_format_and_checks_the_other_split(tmp_path: Path):
    make_set(tmp_path, "arff")
    assert len(UEA("Toy", tmp_path, file_format="arff")) == 4
    with pytest.raises(MissingDataError, match=r"Toy_TRAIN\.ts"):
        UEA("Toy", tmp_path, file_format="ts")
    with pytest.raises(ValueError, match="file_format"):
        UEA("Toy", tmp_path, file_format="csv")
    make_set(tmp_path, "ts")
    test_file = tmp_path / "Toy" / "Toy_TEST.ts"
    test_file.write_text(test_file.read_text().replace("true flat up down", "true up flat down"))
    with pytest.raises(CorruptFileError, match="labels would not agree"):
        UEA("Toy", tmp_path, split="train")
    (tmp_path / "Toy" / "Toy_TEST.arff").unlink()
    test_file.unlink()
    with pytest.raises(MissingDataError, match=r"Toy_TEST\.ts or .*Toy_TEST\.arff"):
        UEA("Toy", tmp_path, split="test")
    (problem,) = verify(tmp_path)
    assert "Toy_TEST" in problem
    with pytest.raises(MissingDataError):
        UEA("Nothing", tmp_path)
    assert "Nothing" in verify(tmp_path, "Nothing")[0]


GOOD_TS_LINES = TS_EXAMPLE.replace("@equalLength false", "@equalLength true").replace("10,11:no", "10,11,12:no")

TS_CORRUPTIONS = {
    "no_data": (TS_EXAMPLE.replace("@data\n", ""), "data before the @data line"),
    "header_only": (TS_EXAMPLE.split("@data")[0], "no @data line"),
    "truncated_case": (GOOD_TS_LINES.replace("10,11,12:no", "10,11:no"), r"line 12: lengths \[3, 2\] but @equalLength"),
    "cut_label": (TS_EXAMPLE.replace("10,11:no", "10,1"), "line 12: 1 dimensions, expected 2"),
    "undeclared": (TS_EXAMPLE.replace(":yes", ":maybe"), r"\['maybe'\] are not declared"),
    "garbled": (TS_EXAMPLE.replace("2.0", "2.O"), r"line 10: '2\.O' is not a number"),
    "dimensions": (TS_EXAMPLE.replace("@dimensions 2", "@dimensions 3"), "line 10: 2 dimensions, expected 3"),
    "length": (GOOD_TS_LINES.replace("@classLabel", "@seriesLength 4\n@classLabel"), "@seriesLength 4"),
    "flag": (TS_EXAMPLE.replace("@univariate false", "@univariate maybe"), "@univariate must be true or false"),
    "univariate": (TS_EXAMPLE.replace("@univariate false", "@univariate true"), "@univariate true but 2"),
    "infinite": (TS_EXAMPLE.replace("2.0", "inf"), "infinite"),
    "empty": (TS_EXAMPLE.split("1.0,2.0")[0], "no cases after @data"),
    "classes": (TS_EXAMPLE.replace("true yes no", "true yes yes"), "distinct class names"),
}


@pytest.mark.parametrize("case", sorted(TS_CORRUPTIONS))
def test_corrupt_ts_files(tmp_path: Path, case: str):
    text, message = TS_CORRUPTIONS[case]
    path = tmp_path / f"{case}.ts"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=message) as info:
        read_ts(path)
    assert path.name in str(info.value)


def test_unsupported_and_binary_ts_files(tmp_path: Path):
    path = tmp_path / "odd.ts"
    path.write_text(TS_EXAMPLE.replace("@timeStamps false", "@timeStamps true"))
    with pytest.raises(DataError, match=r"odd\.ts: @timeStamps true .* not supported"):
        read_ts(path)
    path.write_text(TS_EXAMPLE.replace("@classLabel true yes no", "@classLabel false"))
    with pytest.raises(DataError, match="only classification"):
        read_ts(path)
    path.write_bytes(b"\xff\xd8" + TS_EXAMPLE.encode())
    with pytest.raises(CorruptFileError, match=r"odd\.ts: not UTF-8"):
        read_ts(path)


ARFF_CORRUPTIONS = {
    "no_data": (ARFF_EXAMPLE.replace("@data\n", ""), "unexpected line"),
    "header_only": (ARFF_EXAMPLE.split("@data")[0], "no @data line"),
    "no_end": (ARFF_EXAMPLE.replace("@end series\n", "").replace("@attribute activity {Standing,Running}\n", ""),
               "has no @end"),
    "short_case": (ARFF_EXAMPLE.replace("'1,2,3\\n4,5,6'", "'1,2,3\\n4,5'"),
                   r"line 11: \[3, 2\] values per dimension, the header declares 3"),
    "cut_line": (ARFF_EXAMPLE.replace("'7,8,?\\n10,?,?',Running", "'7,8,?\\n10"), "line 12: expected a quoted series"),
    "dims": (ARFF_EXAMPLE.replace("'7,8,?\\n10,?,?'", "'7,8,?'"), "line 12: 1 dimensions, the first case has 2"),
    "garbled": (ARFF_EXAMPLE.replace("4,5,6", "4,5,#"), r"line 11: '#' is not a number"),
    "undeclared": (ARFF_EXAMPLE.replace("',Running", "',Sitting"), r"\['Sitting'\] are not in the declared"),
    "all_missing": (ARFF_EXAMPLE.replace("'7,8,?\\n10,?,?'", "'?,?,?\\n?,?,?'"), "line 12: every value"),
    "class_list": (ARFF_EXAMPLE.replace("{Standing,Running}", "{Standing,Running"), "unterminated nominal"),
    "stray_end": (ARFF_EXAMPLE.replace("@relation Mini", "@relation Mini\n@end nothing"), "@end without"),
    "no_inner": (ARFF_EXAMPLE.replace("  @attribute t1 numeric\n  @attribute t2 numeric\n  @attribute t3 numeric\n",
                                      ""), "no inner attributes"),
}


@pytest.mark.parametrize("case", sorted(ARFF_CORRUPTIONS))
def test_corrupt_arff_files(tmp_path: Path, case: str):
    text, message = ARFF_CORRUPTIONS[case]
    path = tmp_path / f"{case}.arff"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=message) as info:
        read_arff(path)
    assert path.name in str(info.value)


def test_unsupported_arff_layouts(tmp_path: Path):
    path = tmp_path / "odd.arff"
    path.write_text(ARFF_EXAMPLE.replace("'1,2,3\\n4,5,6',Standing", "{0 1.0, 3 Standing}"))
    with pytest.raises(DataError, match="sparse ARFF"):
        read_arff(path)
    path.write_text(ARFF_EXAMPLE.replace("@attribute activity {Standing,Running}", "@attribute activity numeric"))
    with pytest.raises(DataError, match="nominal class attribute"):
        read_arff(path)
    path.write_text(ARFF_EXAMPLE.replace("@attribute t2 numeric", "@attribute t2 string"))
    with pytest.raises(DataError, match="UEA series are numeric"):
        read_arff(path)


def test_verify_reports_corrupt_files_without_raising(tmp_path: Path):
    make_set(tmp_path, "ts")
    path = tmp_path / "Toy" / "Toy_TEST.ts"
    path.write_text(path.read_text()[:-25])
    (problem,) = verify(tmp_path)
    assert "Toy_TEST.ts" in problem
    (tmp_path / "notes").mkdir()  # a directory without UEA files is not a problem
    assert len(verify(tmp_path)) == 1
    assert "not a directory" in verify(tmp_path / "missing")[0]
