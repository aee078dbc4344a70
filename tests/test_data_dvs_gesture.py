"""DVS128 Gesture: SLAYER's ten real streams, the AEDAT 3.1 reader on files written here (no
official AEDAT file is available offline), the IBM release layout built from the real streams,
and corrupt files."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from iirsnn.data.aedat import (
    POLARITY_DTYPE,
    POLARITY_EVENT,
    packet_bytes,
    polarity_packets,
    read_aedat3,
    write_aedat3,
)
from iirsnn.data.dvs_gesture import (
    NAME,
    SAMPLE_FILES,
    SAMPLES_NAME,
    DVSGesture,
    DVSGestureSamples,
    read_labels,
    read_trials,
    verify,
)
from iirsnn.data.errors import CorruptFileError, MissingDataError
from iirsnn.data.events import make_events
from iirsnn.data.nmnist import read_bin_events

T = 29  # 50 ms bins over 1.45 s


@pytest.fixture(scope="module")
def samples(shared_data: Path) -> DVSGestureSamples:
    return DVSGestureSamples(shared_data, T=T, cache=False)


def test_samples_are_ten_real_dvs128_streams(samples: DVSGestureSamples):
    assert len(samples) == 10 and samples.targets.tolist() == list(range(10))
    assert len(samples.classes) == 11 and samples.classes[0] == "hand_clapping"
    for i, (name, (_, count, _)) in enumerate(SAMPLE_FILES.items()):
        frames, label = samples[i]
        assert frames.shape == (T, 2, 32, 32) and frames.dtype == torch.float32 and label == i
        assert frames.sum() == count  # every event lies in the 1.45 s window
        events = samples.events(i)
        assert len(events) == count and samples.files[i].name == name
        assert events["x"].max() == 127 and events["y"].max() == 127 and 0.45 < events["p"].mean() < 0.56
        assert events["t"].max() < 1_450_000


def test_downsampled_frames_are_sum_pooled_full_frames(shared_data: Path, samples: DVSGestureSamples):
    full = DVSGestureSamples(shared_data, T=T, downsample=1, cache=False)
    frames = full[2][0]
    assert frames.shape == (T, 2, 128, 128)
    torch.testing.assert_close(torch.nn.functional.avg_pool2d(frames, 4) * 16, samples[2][0])


def test_sample_checksums(shared_data: Path, tmp_path: Path):
    assert verify(shared_data, SAMPLES_NAME) == []
    copy = tmp_path / SAMPLES_NAME
    copy.mkdir()
    for name in SAMPLE_FILES:
        shutil.copyfile(shared_data / SAMPLES_NAME / name, copy / name)
    data = bytearray((copy / "3.bs2").read_bytes())
    data[10] ^= 1
    (copy / "3.bs2").write_bytes(bytes(data))
    (copy / "4.bs2").write_bytes((shared_data / SAMPLES_NAME / "4.bs2").read_bytes()[:-5])
    (copy / "5.bs2").unlink()
    problems = verify(tmp_path, SAMPLES_NAME)
    assert len(problems) == 3
    assert "3.bs2: sha256 does not match" in problems[0]
    assert "4.bs2: 759390 bytes, expected 759395" in problems[1]
    assert "5.bs2: missing" in problems[2]
    with pytest.raises(MissingDataError, match=r"5\.bs2"):
        DVSGestureSamples(tmp_path, cache=False)


# --- AEDAT 3.1 ---------------------------------------------------------------------------------

def random_events(n: int, t0: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), t0 + np.sort(rng.integers(0, 10**6, n)),
                       rng.integers(0, 2, n))


def test_aedat_round_trip_across_packets_and_timestamp_overflow(tmp_path: Path):
    events = random_events(5000, t0=2**31 - 500_000)  # about half after the 31-bit wrap
    assert (events["t"] >= 2**31).any() and (events["t"] < 2**31).any()
    packets = polarity_packets(events, packet_events=700)
    assert len(packets) > 5000 // 700 + 1  # split at the overflow as well
    write_aedat3(tmp_path / "a.aedat", packets)
    assert (tmp_path / "a.aedat").read_bytes().startswith(b"#!AER-DAT3.1\r\n")
    np.testing.assert_array_equal(read_aedat3(tmp_path / "a.aedat"), events)


def test_aedat_bit_layout(tmp_path: Path):
    """uint32 data: bit 0 valid, bit 1 polarity, bits 2..16 y, bits 17..31 x; int32 timestamp."""
    record = np.array([((100 << 17) | (33 << 2) | (1 << 1) | 1, 1234)], POLARITY_DTYPE)
    write_aedat3(tmp_path / "one.aedat", [packet_bytes(POLARITY_EVENT, record.tobytes(), 8, 1, ts_overflow=2)])
    event = read_aedat3(tmp_path / "one.aedat")[0]
    assert (event["x"], event["y"], event["p"], event["t"]) == (100, 33, True, (2 << 31) | 1234)


def test_aedat_drops_invalid_events_skips_other_packets_and_unused_capacity(tmp_path: Path):
    events = random_events(100)
    valid = np.ones(100, bool)
    valid[::7] = False
    first, second = polarity_packets(events[:60], 60, valid[:60]), polarity_packets(events[60:], 60, valid[60:])
    special = packet_bytes(0, bytes(range(24)), 8, 3)  # three special events
    imu = packet_bytes(3, bytes(4 * 36), 36, 4)  # four 36-byte IMU6 events
    spare = np.zeros(5, POLARITY_DTYPE)
    spare["data"] = 1  # valid-looking slots beyond eventNumber must not be read
    tail = events[60:][valid[60:]]
    payload = second[0][28:] + spare.tobytes()
    padded = packet_bytes(POLARITY_EVENT, payload, 8, 40, event_valid=int(valid[60:].sum()))
    write_aedat3(tmp_path / "mixed.aedat", [*first, special, imu, padded])
    np.testing.assert_array_equal(read_aedat3(tmp_path / "mixed.aedat"),
                                  np.concatenate([events[:60][valid[:60]], tail]))


def write_corrupt(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "bad.aedat"
    path.write_bytes(content)
    return path


HEADER = b"#!AER-DAT3.1\r\n#!END-HEADER\r\n"


def one_packet(**fields) -> bytes:
    events = polarity_packets(random_events(10), 10)[0]
    header = np.frombuffer(events[:28], np.dtype([(name, "<i4") for name in
                                                  ("typesource", "size", "offset", "overflow", "capacity", "number",
                                                   "valid")])).copy()
    for name, value in fields.items():
        header[name] = value
    return header.tobytes() + events[28:]


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04garbage", "bad magic"),
    (b"#!AER-DAT2.0\r\n#!END-HEADER\r\n", "not AEDAT 3.x"),
    (b"#!AER-DAT3.1\r\n#Format: RAW\r\n", "never ends"),
    (b"#!AER-DAT3.1\r\nFormat: RAW\r\n#!END-HEADER\r\n", "does not start with '#'"),
    (HEADER + one_packet()[:20], "truncated packet header at byte 28: 20 of 28 bytes"),
    (HEADER + one_packet()[:-3], "truncated packet at byte 28: it declares 10 events of 8 bytes, only 77 bytes remain"),
    (HEADER + one_packet(capacity=2**31 - 1, number=5, valid=5), "truncated packet"),
    (HEADER + one_packet(number=11, valid=11), "impossible packet header"),
    (HEADER + one_packet(valid=12), "impossible packet header"),
    (HEADER + one_packet(size=0), "impossible packet header"),
    (HEADER + one_packet(capacity=-1), "impossible packet header"),
    (HEADER + one_packet(overflow=-1), "impossible packet header"),
    (HEADER + one_packet(size=4, capacity=20), "polarity events are 8 bytes"),
    (HEADER + one_packet(offset=0), "eventTSOffset=0"),
    (HEADER + packet_bytes(POLARITY_EVENT, np.array([(3, -5)], POLARITY_DTYPE).tobytes(), 8, 1), "negative timestamp"),
])
def test_corrupt_aedat_files_are_reported(tmp_path: Path, content: bytes, message: str):
    path = write_corrupt(tmp_path, content)
    with pytest.raises(CorruptFileError, match=message) as error:
        read_aedat3(path)
    assert str(path) in str(error.value)


def test_missing_aedat_file(tmp_path: Path):
    with pytest.raises(MissingDataError, match=r"absent\.aedat"):
        read_aedat3(tmp_path / "absent.aedat")


# --- the IBM release layout ---------------------------------------------------------------------

GESTURE_US = 1_450_000


def make_release(root: Path, shared_data: Path) -> dict[str, list[tuple[int, int]]]:
    """``dvs128_gesture/DvsGesture/`` with three trials built from the real streams: each gesture is one
    stream shifted to its start time (trial B crosses the 31-bit timestamp wrap); returns per trial
    (stream number, start) of each gesture."""
    folder = root / NAME / "DvsGesture"
    folder.mkdir(parents=True)
    trials = {"user01_fluorescent": [(1, 3_000_000), (2, 5_000_000), (10, 6_450_000)],
              "user02_lab": [(4, 2**31 - 700_000), (7, 2**31 + 2_000_000)],
              "user24_led": [(9, 1_000_000)]}
    for trial, gestures in trials.items():
        parts = []
        for stream, start in gestures:
            events = read_bin_events(shared_data / SAMPLES_NAME / f"{stream}.bs2")
            events["t"] += start
            parts.append(events)
        write_aedat3(folder / f"{trial}.aedat", polarity_packets(np.concatenate(parts), 4096))
        rows = [f"{stream},{start},{start + GESTURE_US}" for stream, start in gestures]
        (folder / f"{trial}_labels.csv").write_text("class,startTime_usec,endTime_usec\n" + "\n".join(rows) + "\n")
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\nuser02_lab.aedat\n\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return trials


def test_release_is_cut_into_one_sample_per_gesture(shared_data: Path, samples: DVSGestureSamples, tmp_path: Path):
    trials = make_release(tmp_path, shared_data)
    train = DVSGesture(tmp_path, train=True, T=T, cache=False)
    gestures = trials["user01_fluorescent"] + trials["user02_lab"]
    assert len(train) == 5 and train.targets.tolist() == [stream - 1 for stream, _ in gestures]
    assert [p.name for p in train.trials] == ["user01_fluorescent.aedat"] * 3 + ["user02_lab.aedat"] * 2
    assert train.windows[:, 0].tolist() == [start for _, start in gestures]
    for i, (stream, _) in enumerate(gestures):
        frames, label = train[i]
        assert label == stream - 1
        torch.testing.assert_close(frames, samples[stream - 1][0])
    events = train.events(4)
    np.testing.assert_array_equal(events["t"] - gestures[4][1], samples.events(6)["t"])
    test = DVSGesture(tmp_path, train=False, T=T, cache=False)
    assert test.targets.tolist() == [8]
    whole = DVSGesture(tmp_path, train=False, T=T, duration_us=None, cache=False)  # the labelled window is 1.45 s
    torch.testing.assert_close(whole[0][0], test[0][0])


def test_a_short_duration_bins_the_start_of_each_gesture(shared_data: Path, tmp_path: Path):
    make_release(tmp_path, shared_data)
    short = DVSGesture(tmp_path, train=False, T=5, duration_us=500_000, downsample=2, cache=False)
    frames = short[0][0]
    assert frames.shape == (5, 2, 64, 64)
    stream = read_bin_events(shared_data / SAMPLES_NAME / "9.bs2")
    assert frames.sum() == (stream["t"] < 500_000).sum()


def test_release_frames_go_through_the_cache(shared_data: Path, tmp_path: Path):
    make_release(tmp_path, shared_data)
    cache = tmp_path / "cache"
    first = DVSGesture(tmp_path, train=False, T=T, cache_dir=cache)
    assert len(list(cache.glob("dvs128_gesture-*.pt"))) == 1
    torch.testing.assert_close(DVSGesture(tmp_path, train=False, T=T, cache_dir=cache)[0][0], first[0][0])
    DVSGesture(tmp_path, train=False, T=T, downsample=8, cache_dir=cache)
    assert len(list(cache.glob("dvs128_gesture-*.pt"))) == 2


def test_release_verify(shared_data: Path, tmp_path: Path):
    make_release(tmp_path, shared_data)
    folder = tmp_path / NAME / "DvsGesture"
    (folder / "user02_lab_labels.csv").unlink()
    (folder / "user24_led.aedat").write_bytes(b"#!AER-DAT2.0\r\n")
    problems = verify(tmp_path)
    assert problems == [f"{folder / 'trials_to_train.txt'}: 2 trials, expected 98 (the standard split)",
                        f"{folder / 'user02_lab_labels.csv'}: missing",
                        f"{folder / 'trials_to_test.txt'}: 1 trials, expected 24 (the standard split)",
                        f"{folder / 'user24_led.aedat'}: bad magic, not an AEDAT 3.1 file"]
    assert "not found" in verify(tmp_path / NAME / "DvsGesture")[0]


def test_release_missing_files_are_all_listed(shared_data: Path, tmp_path: Path):
    make_release(tmp_path, shared_data)
    folder = tmp_path / NAME / "DvsGesture"
    (folder / "user02_lab_labels.csv").unlink()
    (folder / "user01_fluorescent.aedat").unlink()
    with pytest.raises(MissingDataError, match=r"2 expected file\(s\) missing") as error:
        DVSGesture(tmp_path, cache=False)
    assert "user02_lab_labels.csv" in str(error.value) and "user01_fluorescent.aedat" in str(error.value)
    (folder / "trials_to_test.txt").unlink()
    with pytest.raises(MissingDataError, match=r"trials_to_test\.txt"):
        DVSGesture(tmp_path, train=False, cache=False)


def test_events_off_the_sensor_fail_with_the_file_name(tmp_path: Path):
    folder = tmp_path / NAME
    folder.mkdir()
    write_aedat3(folder / "u.aedat", polarity_packets(make_events([5, 130], [5, 5], [10, 20], [0, 1])))
    (folder / "u_labels.csv").write_text("class,startTime_usec,endTime_usec\n1,0,100\n")
    (folder / "trials_to_train.txt").write_text("u.aedat\n")
    with pytest.raises(CorruptFileError, match=r"u\.aedat: event at x=130"):
        DVSGesture(tmp_path, cache=False)


@pytest.mark.parametrize("text, message", [
    ("class,startTime_usec,endTime_usec\n1,100,200\n12,300,400\n", "line 3: class must be 1..11"),
    ("class,startTime_usec,endTime_usec\n1,200,100\n", "line 2: class must be 1..11 and start < end"),
    ("class,startTime_usec,endTime_usec\n1,100\n", "line 2: expected 'class,start,end'"),
    ("class,startTime_usec,endTime_usec\n1,1e5,2e5\n", "line 2: expected"),
    ("1,100,200\n", "the first line must be"),
    ("class,startTime_usec,endTime_usec\n", "no gestures"),
    ("\x00\x01garbage\xff", "the first line must be"),
    ("class,startTime_usec,endTime_usec\n1,100," + "9" * 25 + "\n", "line 2: expected .* below 2\\^63"),
])
def test_garbled_label_files_are_reported(tmp_path: Path, text: str, message: str):
    path = tmp_path / "user01_led_labels.csv"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(CorruptFileError, match=message) as error:
        read_labels(path)
    assert str(path) in str(error.value)


def test_label_file_with_crlf_and_spaces(tmp_path: Path):
    path = tmp_path / "user01_led_labels.csv"
    path.write_bytes(b"class,startTime_usec,endTime_usec\r\n3, 100, 200\r\n11,300,400\r\n\r\n")
    assert read_labels(path).tolist() == [[2, 100, 200], [10, 300, 400]]


@pytest.mark.parametrize("text, message", [
    ("user01_led.aedat\nuser01_led.csv\n", "line 2"),
    ("../user01_led.aedat\n", "line 1"),
    ("\n\n", "no trials"),
])
def test_garbled_trial_lists_are_reported(tmp_path: Path, text: str, message: str):
    path = tmp_path / "trials_to_train.txt"
    path.write_text(text)
    with pytest.raises(CorruptFileError, match=message):
        read_trials(path)


def test_ten_classes_leave_the_other_gestures_out(shared_data: Path, tmp_path: Path):
    from iirsnn.data.task_builders import build_task

    make_release(tmp_path, shared_data)
    labels = tmp_path / NAME / "DvsGesture" / "user01_fluorescent_labels.csv"
    rows = labels.read_text().splitlines()
    rows[1] = "11," + rows[1].split(",", 1)[1]  # the first gesture becomes "other_gestures"
    labels.write_text("\n".join(rows) + "\n")
    released = build_task("dvs-gesture", tmp_path, {"release": "ibm", "steps": 4}, seed=0, val_fraction=0.0)
    paper = build_task("dvs-gesture", tmp_path, {"release": "ibm", "steps": 4, "classes": 10}, seed=0,
                       val_fraction=0.0)
    assert released.n_outputs == 11 and paper.n_outputs == 10 and "other_gestures" not in paper.classes
    assert released.size("train") == 5 and paper.size("train") == 4
    assert 10 in released.batch("train", torch.arange(5), 1).y.tolist()
    assert 10 not in paper.batch("train", torch.arange(4), 1).y.tolist()
    with pytest.raises(ValueError, match="classes must be 11"):
        build_task("dvs-gesture", tmp_path, {"release": "ibm", "classes": 9}, seed=0, val_fraction=0.0)
