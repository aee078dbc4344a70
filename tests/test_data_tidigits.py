"""TIDIGITS on generated corpora (iirsnn.data.tidigits, iirsnn.data.sphere) and the N-TIDIGITS sample
(iirsnn.data.ntidigits) on the real file: layouts, labels, SPHERE round trips, corrupt and compressed files."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data import ntidigits, tidigits
from iirsnn.data.errors import CorruptFileError, DataError, MissingDataError
from iirsnn.data.sphere import (
    UnsupportedAudioError,
    parse_sphere,
    read_sphere,
    sample_checksum,
    sphere_bytes,
    write_sphere,
)

RATE = 20000


def utterance(label: int, n: int = 5000) -> np.ndarray:
    """A tone whose pitch tells the digit, [n] int16."""
    t = np.arange(n) / RATE
    return (8000 * np.sin(2 * np.pi * (200 + 100 * label) * t) * np.minimum(1, t / 0.02)).astype(np.int16)


def make_corpus(base: Path, layout: str = "ldc", speakers_per_group: int = 1, upper: bool = False) -> Path:
    """A TIDIGITS tree of SPHERE files under ``base/tidigits``: per split and group ``speakers_per_group``
    speakers with their 22 isolated digits and one two-digit sequence; returns ``base``."""
    root = base / "tidigits"
    for split in tidigits.SPLITS:
        for group in tidigits.GROUPS:
            parts = ["data", tidigits.AGE_DIRS[group], split, group] if layout == "ldc" else [split, group]
            for k in range(speakers_per_group):
                speaker = root.joinpath(*(p.upper() if upper else p for p in parts), f"{group[0]}{split[1]}{k}")
                for code in tidigits.DIGIT_CODES:
                    for production in "ab":
                        name = f"{code}{production}.wav"
                        write_sphere(speaker / (name.upper() if upper else name),
                                     utterance(tidigits.DIGIT_CODES.index(code)), RATE)
                write_sphere(speaker / "1za.wav", utterance(1, 9000), RATE)
    return base


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("ldc"))


# --- SPHERE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("byte_format", "channels"), [("01", 1), ("10", 2)])
def test_sphere_round_trips_samples_and_header(tmp_path, byte_format, channels):
    samples = np.random.default_rng(0).integers(-32768, 32767, (300, channels)).astype(np.int16)
    path = write_sphere(tmp_path / "x.wav", samples, 16000, byte_format, {"database_id": "TIDIGITS"})
    content = path.read_bytes()
    assert content.startswith(b"NIST_1A\n   1024\n") and len(content) == 1024 + samples.nbytes
    first = samples.reshape(-1)[:1].astype("<i2" if byte_format == "01" else ">i2").tobytes()
    assert content[1024:1026] == first
    header, parsed = parse_sphere(content)
    np.testing.assert_array_equal(parsed, samples)
    assert header["sample_rate"] == 16000 and header["channel_count"] == channels
    assert header["database_id"] == "TIDIGITS" and header["sample_byte_format"] == byte_format
    assert header["sample_checksum"] == sample_checksum(samples)
    waveform = read_sphere(path)
    assert waveform.sample_rate == 16000 and waveform.samples.shape == (300, channels)
    np.testing.assert_array_equal(waveform.samples * 32768, samples)


def test_sphere_checksum_is_the_16_bit_sum():
    assert sample_checksum(np.array([1, 2, -1], dtype=np.int16)) == 2
    assert sample_checksum(np.array([32767, 32767, 2], dtype=np.int16)) == 0


def test_sphere_header_grows_past_1024_bytes_when_needed(tmp_path):
    fields = {f"comment_{i}": "x" * 40 for i in range(30)}
    content = sphere_bytes(utterance(3, 100), RATE, fields=fields)
    assert content[8:16] == b"   2048\n"
    header, samples = parse_sphere(content)
    assert header["comment_29"] == "x" * 40 and samples.shape == (100, 1)


def _replace(content: bytes, old: bytes, new: bytes) -> bytes:
    assert old in content
    return content.replace(old, new, 1)


GOOD = sphere_bytes(utterance(5, 1000), RATE)


@pytest.mark.parametrize(("content", "message"), [
    (b"", "bad SPHERE magic"),
    (b"RIFF" + GOOD[4:], "bad SPHERE magic"),
    (_replace(GOOD, b"   1024\n", b"   1x24\n"), "bad SPHERE header size line"),
    (_replace(GOOD, b"   1024\n", b"9999999\n"), "impossible SPHERE header size 9999999"),
    (GOOD[:500], "impossible SPHERE header size 1024 for a file of 500 bytes"),
    (_replace(GOOD, b"end_head", b"end_hexd"), "malformed SPHERE header line 'end_hexd'"),
    (_replace(GOOD, b"end_head\n", b"         "), "has no 'end_head'"),
    (_replace(GOOD, b"sample_rate -i 20000", b"sample_rate -i 2000x"), "is not a number"),
    (_replace(GOOD, b"sample_coding -s3 pcm", b"sample_coding -s9 pcm"), "string shorter than its length"),
    (_replace(GOOD, b"sample_count -i 1000", b"sample_count -i 1e99"), "is not a number"),
    (_replace(GOOD, b"sample_count -i 1000", b"sample_cnt -i 1000"), "lacks the field 'sample_count'"),
    (_replace(GOOD, b"sample_count -i 1000", b"sample_count -i -100"), "is not an integer >= 0"),
    (_replace(GOOD, b"sample_byte_format -s2 01", b"sample_byte_format -s2 11"), "'11' is not one of"),
    (_replace(GOOD, b"sample_rate -i 20000", b"sample_rate -i 0    "), "sample_rate=0"),
    (GOOD[:-1], "truncated: the SPHERE header announces 1000 samples x 1 channel(s) (2000 bytes)"),
    (GOOD + b"\0\0", "has trailing bytes"),
    (_replace(GOOD, b"sample_count -i 1000", b"sample_count -i 99999999999999"), "truncated"),
    (_replace(GOOD, b"channel_count -i 1", b"channel_count -i 9"), "truncated"),
    (GOOD[:-2] + bytes([GOOD[-2] ^ 1, GOOD[-1]]), "sample_checksum"),
    (GOOD[:20] + b"\xff" + GOOD[21:], "SPHERE header is not ASCII"),
])
def test_corrupt_sphere_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=r"bad\.wav") as info:
        read_sphere(path)
    assert message in str(info.value)


@pytest.mark.parametrize(("fields", "message"), [
    ({"sample_coding": "pcm,embedded-shorten-v2.00"}, "shorten-compressed"),
    ({"sample_coding": "ulaw"}, "sample_coding 'ulaw'"),
    ({"sample_byte_format": "shortpack-v0"}, "shortpack-v0"),
    ({"sample_n_bytes": 1}, "1-byte SPHERE samples are not supported"),
])
def test_compressed_or_unsupported_sphere_says_how_to_convert(tmp_path, fields, message):
    path = tmp_path / "1a.wav"
    path.write_bytes(sphere_bytes(utterance(1, 100), RATE, fields=fields)[:1100])  # compressed: any payload
    with pytest.raises(UnsupportedAudioError, match=r"1a\.wav") as info:
        read_sphere(path)
    assert message in str(info.value) and "sph2pipe -f sph -p IN OUT" in str(info.value)
    assert isinstance(info.value, DataError)


def test_sphere_reader_survives_random_damage(tmp_path):
    rng = np.random.default_rng(1)
    for _ in range(300):
        damaged = bytearray(GOOD)
        for at in rng.integers(0, 200, 3):
            damaged[at] = int(rng.integers(0, 256))
        content = bytes(damaged[: rng.integers(0, len(damaged))] if rng.random() < 0.3 else damaged)
        try:
            _, samples = parse_sphere(content, "damaged")
        except DataError:
            continue
        assert samples.dtype == np.int16 and samples.ndim == 2


# --- TIDIGITS ---------------------------------------------------------------------------------------


def test_ldc_layout_gives_the_isolated_digits_with_11_classes(corpus, tmp_path):
    train = tidigits.TIDIGITS(corpus, "train", cache_dir=tmp_path)
    assert len(train) == 4 * 22 and len(train.classes) == 11
    assert train.classes[0] == "zero" and train.classes[10] == "oh"
    assert train.targets.bincount().tolist() == [8] * 11
    assert {u.group for u in train.utterances} == set(tidigits.GROUPS)
    assert not any(u.path.name == "1za.wav" for u in train.utterances)
    first = train.utterances[0]
    assert (first.split, first.production) == ("train", "a") and first.path.name[0] in tidigits.DIGIT_CODES
    oh = next(i for i, u in enumerate(train.utterances) if u.path.name == "ob.wav")
    assert int(train.targets[oh]) == 10 and train.utterances[oh].production == "b"
    zero = next(i for i, u in enumerate(train.utterances) if u.path.name == "za.wav")
    assert int(train.targets[zero]) == 0
    test = tidigits.TIDIGITS(corpus, "test", groups=("man", "woman"), cache_dir=tmp_path)
    assert len(test) == 44 and {u.split for u in test.utterances} == {"test"}
    assert not {u.speaker for u in test.utterances} & {u.speaker for u in train.utterances}


def test_features_are_90_by_20_finite_and_depend_on_the_digit(corpus, tmp_path):
    dataset = tidigits.TIDIGITS(corpus, "train", groups=["girl"], cache_dir=tmp_path)
    x, label = dataset[0]
    assert x.shape == (90, 20) and x.dtype == torch.float32 and label == int(dataset.targets[0])
    features = dataset.features()
    assert torch.isfinite(features).all()
    same_digit = [i for i in range(len(dataset)) if dataset.targets[i] == label]
    other = next(i for i in range(len(dataset)) if dataset.targets[i] != label)
    assert torch.allclose(features[same_digit[0]], features[same_digit[1]])  # a and b are the same tone here
    assert not torch.allclose(features[same_digit[0]], features[other])
    assert len(list(tmp_path.glob("tidigits-*.pt"))) == 1


def test_flat_upper_case_layout_and_riff_wav_files_are_read(tmp_path):
    base = make_corpus(tmp_path / "flat", layout="flat", upper=True)
    speaker = next((base / "tidigits" / "TRAIN" / "MAN").iterdir())
    with wave.open(str(speaker / "ZA.WAV"), "wb") as w:  # as converted by sph2pipe -f wav
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(utterance(0).tobytes())
    dataset = tidigits.TIDIGITS(base, "train", groups=["man"], cache=False)
    assert len(dataset) == 22 and dataset.utterances[0].speaker == speaker.name.lower()
    za = next(i for i, u in enumerate(dataset.utterances) if u.path.name == "ZA.WAV")
    zb = next(i for i, u in enumerate(dataset.utterances) if u.path.name == "ZB.WAV")
    assert int(dataset.targets[za]) == 0
    torch.testing.assert_close(dataset[za][0], dataset[zb][0])  # same samples, WAV and SPHERE


def test_missing_corpus_names_the_expected_directories(tmp_path):
    (tmp_path / "tidigits").mkdir()
    with pytest.raises(MissingDataError, match="LDC93S10") as info:
        tidigits.TIDIGITS(tmp_path, "train", groups=["boy"])
    message = str(info.value)
    assert str(tmp_path / "tidigits" / "data" / "children" / "train" / "boy") in message
    assert str(tmp_path / "tidigits" / "train" / "boy") in message
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(MissingDataError, match="'tidigits' not found"):
        tidigits.TIDIGITS(tmp_path / "elsewhere")


def test_bad_split_and_groups_are_refused(corpus):
    with pytest.raises(ValueError, match="split"):
        tidigits.TIDIGITS(corpus, "dev")
    with pytest.raises(ValueError, match="groups"):
        tidigits.TIDIGITS(corpus, "train", groups=["men"])


def test_compressed_and_truncated_files_are_named_when_read_and_by_verify(tmp_path):
    base = make_corpus(tmp_path)
    speaker = next((base / "tidigits" / "data" / "adults" / "train" / "woman").iterdir())
    (speaker / "3a.wav").write_bytes(sphere_bytes(utterance(3), RATE,
                                                  fields={"sample_coding": "pcm,embedded-shorten-v2.00"})[:3000])
    (speaker / "4b.wav").write_bytes((speaker / "4b.wav").read_bytes()[:5000])
    dataset = tidigits.TIDIGITS(base, "train", groups=["woman"], cache=False)
    with pytest.raises(UnsupportedAudioError, match=r"3a\.wav.*sph2pipe"):
        dataset[0]
    problems = tidigits.verify(base)
    assert any("3a.wav" in p and "shorten-compressed" in p for p in problems)
    assert any("4b.wav" in p and "truncated" in p for p in problems)


def test_verify_counts_speakers_and_isolated_digits(tmp_path):
    base = make_corpus(tmp_path)
    problems = tidigits.verify(base)
    assert sorted(problems) == sorted(f"{g}: 2 speakers in train and test, expected {n}"
                                      for g, n in tidigits.SPEAKERS_PER_GROUP.items())
    speaker = next((base / "tidigits" / "data" / "children" / "test" / "boy").iterdir())
    (speaker / "9b.wav").unlink()
    assert f"test/boy/{speaker.name}: 21 isolated-digit files, expected 22" in tidigits.verify(base)
    (tmp_path / "elsewhere").mkdir()
    assert "'tidigits' not found" in tidigits.verify(tmp_path / "elsewhere")[0]
    assert tidigits.REMOTES == []


# --- N-TIDIGITS sample (SLAYER .bs1) ----------------------------------------------------------------


def test_real_ntidigits_sample(shared_data):
    assert ntidigits.verify(shared_data) == []
    events, spikes = ntidigits.load_sample(shared_data)
    assert len(events) == 898
    assert events.channel.min() == 0 and events.channel.max() == 63
    assert (events.polarity == 1).all() and events.time_us.max() == 1_079_040
    assert (np.diff(events.time_us) >= 0).all()
    assert spikes.shape == (1080, 64) and spikes.dtype == torch.float32
    assert spikes.sum() == 898
    assert spikes.sum(0).tolist() == np.bincount(events.channel, minlength=64).tolist()
    t, c = int(events.time_us[100] // 1000), int(events.channel[100])
    assert spikes[t, c] >= 1
    binary = ntidigits.bin_events(events, binary=True)
    assert binary.max() == 1 and binary.sum() <= 898 and (binary > 0).equal(spikes > 0)
    path = shared_data / ntidigits.NAME / ntidigits.SAMPLE_FILE
    assert ntidigits.bs1_bytes(events) == path.read_bytes()


def test_bs1_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    events = ntidigits.Events1D(rng.integers(0, 64, 500), rng.integers(0, 2, 500),
                                np.sort(rng.integers(0, ntidigits.MAX_TIME_US + 1, 500)))
    back = ntidigits.read_bs1(ntidigits.write_bs1(tmp_path / "e.bs1", events))
    for field in ("channel", "polarity", "time_us"):
        np.testing.assert_array_equal(getattr(back, field), getattr(events, field))
    wide = ntidigits.Events1D(np.array([65535]), np.array([1]), np.array([7]))
    assert ntidigits.bs1_bytes(wide) == bytes([0xFF, 0xFF, 0x80, 0x00, 0x07])
    assert ntidigits.parse_bs1(ntidigits.bs1_bytes(wide), n_channels=65536).channel.tolist() == [65535]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("channel", -1, "channel ids"), ("polarity", 2, "polarities"), ("time_us", 1 << 23, "timestamps")])
def test_bs1_writer_refuses_values_that_do_not_fit(field, value, message):
    fields = {"channel": np.array([0]), "polarity": np.array([1]), "time_us": np.array([0])}
    fields[field] = np.array([value])
    with pytest.raises(ValueError, match=message):
        ntidigits.bs1_bytes(ntidigits.Events1D(**fields))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda b: b[:-2], "4488 bytes is not a whole"),
    (lambda b: b"", "0 bytes"),
    (lambda b: b[:5] + b"\x7f" + b[6:], "channel id outside 0..63 (largest 32575)"),
    (lambda b: bytes(np.random.default_rng(0).integers(0, 256, 4490, dtype=np.uint8)), "outside 0..63"),
])
def test_corrupt_bs1_names_the_file(shared_data, tmp_path, damage, message):
    path = tmp_path / "bad.bs1"
    path.write_bytes(damage((shared_data / ntidigits.NAME / ntidigits.SAMPLE_FILE).read_bytes()))
    with pytest.raises(CorruptFileError, match=r"bad\.bs1") as info:
        ntidigits.read_bs1(path)
    assert message in str(info.value)


def test_verify_and_load_sample_report_missing_and_corrupt_files(shared_data, tmp_path):
    directory = tmp_path / ntidigits.NAME
    directory.mkdir()
    assert "NTIDIGITS_1.bs1: missing" in ntidigits.verify(tmp_path)[0]
    with pytest.raises(MissingDataError, match=r"NTIDIGITS_1\.bs1"):
        ntidigits.load_sample(tmp_path)
    (directory / ntidigits.SAMPLE_FILE).write_bytes((shared_data / ntidigits.NAME / ntidigits.SAMPLE_FILE)
                                                   .read_bytes()[:-5])
    assert "does not match the expected" in ntidigits.verify(tmp_path)[0]
    assert ntidigits.REMOTES[0].sha256 == ntidigits.SAMPLE_SHA256
    assert ntidigits.REMOTES[0].url.endswith("binarySpikeTestFiles/NTIDIGITS_1.bs1")


def test_bin_events_never_drops_events_silently():
    events = ntidigits.Events1D(np.array([0, 1, 1, 63]), np.ones(4, np.int64), np.array([0, 999, 1000, 4999]))
    spikes = ntidigits.bin_events(events, bin_us=1000)
    assert spikes.shape == (5, 64) and spikes[0, 0] == 1 and spikes[0, 1] == 1 and spikes[1, 1] == 1
    assert spikes[4, 63] == 1 and spikes.sum() == 4
    assert ntidigits.bin_events(events, bin_us=1000, n_bins=8)[5:].sum() == 0
    with pytest.raises(ValueError, match="1 events come later"):
        ntidigits.bin_events(events, bin_us=1000, n_bins=4)
    np.testing.assert_array_equal(ntidigits.bin_events(events, bin_us=2500.0).sum(1)[:2].numpy(), [3, 1])
    with pytest.raises(ValueError, match="bin_us"):
        ntidigits.bin_events(events, bin_us=0)
    empty = ntidigits.Events1D(*(np.zeros(0, np.int64) for _ in range(3)))
    assert ntidigits.bin_events(empty, n_bins=3).shape == (3, 64)
