"""WAV reading and MFCC features (iirsnn.data.audio): round trips through the standard library's WAV
writer, corrupt and truncated files, and the three ways of fixing the number of frames."""

from __future__ import annotations

import struct
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from iirsnn.data.audio import MfccConfig, Waveform, mfcc, read_wav
from iirsnn.data.errors import CorruptFileError

RATE = 8000
HOP = 80  # 10 ms at 8 kHz


def write_wav(path: Path, pcm: np.ndarray, rate: int = RATE) -> Path:
    """``pcm`` [n, channels] (uint8, int16 or int32) as a WAV file, by the standard library's writer."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(pcm.shape[1])
        w.setsampwidth(pcm.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(pcm.astype(pcm.dtype.newbyteorder("<")).tobytes())
    return path


def chirp(seconds: float, rate: int = RATE) -> np.ndarray:
    """A rising tone with a fade-in, [n] float32 in (-0.5, 0.5)."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.minimum(1.0, t / 0.05) * np.sin(2 * np.pi * (300 + 800 * t) * t)).astype(np.float32)


def test_read_wav_round_trips_16_bit_stereo(tmp_path):
    pcm = np.stack([np.arange(-500, 500, dtype=np.int16) * 60, np.arange(1000, dtype=np.int16)], axis=1)
    waveform = read_wav(write_wav(tmp_path / "s.wav", pcm, 16000))
    assert waveform.sample_rate == 16000
    assert waveform.samples.dtype == np.float32 and waveform.samples.shape == (1000, 2)
    np.testing.assert_array_equal(waveform.samples * 32768, pcm)
    np.testing.assert_allclose(waveform.mono(), pcm.mean(axis=1) / 32768, rtol=1e-6)


@pytest.mark.parametrize(("dtype", "scale", "offset"), [("u1", 128, 128), ("<i4", 2**31, 0)])
def test_read_wav_8_and_32_bit(tmp_path, dtype, scale, offset):
    pcm = np.array([[0], [1], [127], [255]], dtype=dtype) if dtype == "u1" else \
        np.array([[-(2**31)], [0], [2**30], [2**31 - 1]], dtype=dtype)
    samples = read_wav(write_wav(tmp_path / "x.wav", pcm)).samples
    np.testing.assert_allclose(samples, (pcm.astype(np.float64) - offset) / scale, rtol=1e-6)
    assert samples.min() >= -1 and samples.max() <= 1


def _with_header(content: bytes, chunk: bytes, offset: int, value: bytes) -> bytes:
    """``content`` with ``value`` written at ``offset`` bytes into the chunk ``chunk`` (past its id)."""
    data = bytearray(content)
    at = data.find(chunk) + offset
    data[at:at + len(value)] = value
    return bytes(data)


@pytest.fixture
def good_wav(tmp_path) -> bytes:
    return write_wav(tmp_path / "good.wav", (chirp(0.2) * 32767).astype(np.int16)[:, None]).read_bytes()


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda b: b"", "ends inside its header"),
    (lambda b: b[:30], "ends inside its header"),
    (lambda b: b"RIFX" + b[4:], "RIFF"),
    (lambda b: b[:8] + b"AVI " + b[12:], "not a WAVE file"),
    (lambda b: b[:1000], "truncated: the header announces 1600 frames (3200 bytes), the data chunk holds 956"),
    (lambda b: _with_header(b, b"data", 4, struct.pack("<I", 0xFFFFFFF0)), "truncated"),
    (lambda b: _with_header(b, b"fmt ", 8, struct.pack("<H", 3)), "unknown format: 3"),
    (lambda b: _with_header(b, b"fmt ", 10, struct.pack("<H", 0)), "channels"),
    (lambda b: _with_header(b, b"fmt ", 12, struct.pack("<I", 0)), "impossible sample rate 0"),
    (lambda b: _with_header(b, b"fmt ", 22, struct.pack("<H", 24)), "24-bit samples are not supported"),
])
def test_corrupt_wav_names_the_file_and_the_problem(tmp_path, good_wav, corrupt, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(corrupt(good_wav))
    with pytest.raises(CorruptFileError, match=r"bad\.wav") as info:
        read_wav(path)
    assert message in str(info.value)


def test_read_wav_survives_random_damage_to_the_header(tmp_path, good_wav):
    rng = np.random.default_rng(0)
    path = tmp_path / "damaged.wav"
    for _ in range(400):
        damaged = bytearray(good_wav)
        for at in rng.integers(0, 48, 4):
            damaged[at] = int(rng.integers(0, 256))
        path.write_bytes(bytes(damaged[: rng.integers(0, 200)] if rng.random() < 0.3 else damaged))
        try:
            waveform = read_wav(path)
        except CorruptFileError:
            continue
        assert np.isfinite(waveform.samples).all() and waveform.sample_rate > 0


def test_mfcc_has_one_frame_per_hop_and_finite_values():
    features = mfcc(chirp(0.5), RATE, n_mfcc=13, n_mels=30)
    assert features.shape == (1 + 4000 // HOP, 13) and features.dtype == np.float32
    assert np.isfinite(features).all()
    assert features[:, 0].std() > 0  # energy varies with the fade-in


def test_mfcc_rejects_empty_audio_and_more_coefficients_than_bands():
    with pytest.raises(ValueError, match="non-empty mono"):
        mfcc(np.zeros(0, np.float32), RATE)
    with pytest.raises(ValueError, match="n_mfcc=41 is more than n_mels=40"):
        mfcc(chirp(0.1), RATE, n_mfcc=41)


@pytest.mark.parametrize("bad", [{"fit": "stretch"}, {"n_frames": 0}, {"n_mfcc": 2.5}, {"hop_ms": 0}])
def test_mfcc_config_rejects_bad_parameters(bad):
    with pytest.raises(ValueError):
        MfccConfig(**bad)


def test_fit_resample_keeps_the_end_frames_of_short_and_long_utterances():
    config = MfccConfig(n_frames=90, fit="resample")
    for seconds in (0.3, 1.5):
        raw = mfcc(chirp(seconds), RATE)
        fitted = config.features(chirp(seconds), RATE)
        assert fitted.shape == (90, 20) and np.isfinite(fitted).all()
        np.testing.assert_allclose(fitted[[0, -1]], raw[[0, -1]], rtol=1e-5, atol=1e-4)


def test_fit_pad_appends_silence_and_never_cuts():
    config = MfccConfig(n_frames=90, fit="pad")
    short = chirp(0.5)  # 51 frames
    fitted = config.features(short, RATE)
    assert fitted.shape == (90, 20)
    np.testing.assert_allclose(fitted[:49], mfcc(short, RATE)[:49], rtol=1e-4, atol=1e-3)
    assert np.allclose(fitted[60:], fitted[60])  # digital silence: all padded frames alike
    exactly = config.features(chirp(0.89), RATE)  # 7120 samples: 1 + 7120 // 80 = 90 frames, no padding
    np.testing.assert_allclose(exactly, mfcc(chirp(0.89), RATE), rtol=1e-6)
    with pytest.raises(ValueError, match="never cuts"):
        config.features(chirp(0.9), RATE)  # 7200 samples: 91 frames


def test_fit_crop_keeps_the_first_frames():
    long = chirp(1.5)
    fitted = MfccConfig(n_frames=90, fit="crop").features(long, RATE)
    assert fitted.shape == (90, 20)
    np.testing.assert_allclose(fitted, mfcc(long[: 90 * HOP - 1], RATE), rtol=1e-6)
    np.testing.assert_allclose(fitted[:88], mfcc(long, RATE)[:88], rtol=1e-3, atol=0.05)


def test_cache_params_hold_every_parameter_and_the_librosa_version():
    params = MfccConfig(n_frames=50, fit="crop").cache_params()
    assert params == {"n_mfcc": 20, "n_frames": 50, "fit": "crop", "window_ms": 25.0, "hop_ms": 10.0,
                      "n_mels": 40, "librosa": params["librosa"]}
    assert params["librosa"]


def test_missing_librosa_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(ImportError, match=r"pip install iirsnn\[audio\]"):
        mfcc(chirp(0.1), RATE)


def test_waveform_mono_of_one_channel_is_that_channel():
    samples = np.linspace(-1, 1, 10, dtype=np.float32)[:, None]
    np.testing.assert_array_equal(Waveform(samples, RATE).mono(), samples[:, 0])
