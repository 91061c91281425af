#!/usr/bin/python3
"""Writes tests/data/media/mel_reference.safetensors, the golden log-mel spectrograms of media/mel.h.

The log-mel follows Whisper: torch.stft with n_fft 400, hop 160, torch.hann_window(400)
(periodic), center=True with reflect padding, the power |STFT|^2 without the last frame, a Slaney
mel filterbank (librosa's formula, written here in numpy), log10 of max(mel, 1e-10), then either
max(x, max over the clip - 8) ("whisper") or max(x, -8) ("fixed_floor"), then (x + 4) / 4.
Everything is computed in float64 from the float32 samples stored in the file.

torch.stft refuses clips of at most 200 samples (the reflect padding needs n_fft / 2 + 1 samples).
For those the file holds the rule of media/mel.h instead: numpy.pad's reflect mode, which keeps
reflecting at both ends, framed and transformed with numpy; on the long clip that path is checked
against torch.stft here.

Tensors: "<clip>_samples" (f32 [n]) and "<clip>_mel<80|128>_<fixed_floor|whisper>"
(f32 [n_mels, n // 160]) for each clip.

Usage: /usr/bin/python3 tests/reference/make_mel_reference.py
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_safetensors_fixture import write_safetensors  # noqa: E402

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160


def hz_to_mel(freqs):
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    freqs = np.array(freqs, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freqs / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = freqs >= min_log_hz
    mels[log_t] = min_log_mel + np.log(freqs[log_t] / min_log_hz) / logstep
    return mels


def mel_to_hz(mels):
    """Inverse of hz_to_mel."""
    mels = np.array(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_t = mels >= min_log_mel
    freqs[log_t] = min_log_hz * np.exp(logstep * (mels[log_t] - min_log_mel))
    return freqs


def mel_filters(n_mels):
    """[n_mels, 201] triangular filters from 0 to 8 kHz with Slaney area normalisation."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_min, mel_max = hz_to_mel([0.0, SAMPLE_RATE / 2])
    edges = mel_to_hz(np.linspace(mel_min, mel_max, n_mels + 2))
    weights = np.zeros((n_mels, fft_freqs.size))
    for i in range(n_mels):
        lo, center, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (fft_freqs - lo) / (center - lo)
        falling = (hi - fft_freqs) / (hi - center)
        weights[i] = np.maximum(0, np.minimum(rising, falling)) * (2.0 / (hi - lo))
    return weights


def power_torch(samples):
    """[201, frames] power spectrum from torch.stft, the last frame dropped."""
    x = torch.from_numpy(samples.astype(np.float64))
    window = torch.hann_window(N_FFT, dtype=torch.float64)
    stft = torch.stft(x, N_FFT, HOP, window=window, center=True, pad_mode="reflect",
                      return_complex=True)
    return (stft.abs() ** 2)[..., :-1].numpy()


def power_numpy(samples):
    """The same power spectrum from numpy.pad (reflect, repeating for short clips) and rfft."""
    x = samples.astype(np.float64)
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    frames = x.size // HOP
    columns = [np.fft.rfft(padded[t * HOP:t * HOP + N_FFT] * window) for t in range(frames)]
    return np.abs(np.stack(columns, axis=1)) ** 2 if frames else np.zeros((N_FFT // 2 + 1, 0))


def log_mel(power, n_mels, clamp):
    """Whisper's log-mel of a power spectrum in either clamp mode."""
    logs = np.log10(np.maximum(mel_filters(n_mels) @ power, 1e-10))
    floor = logs.max() - 8.0 if clamp == "whisper" else -8.0
    return (np.maximum(logs, floor) + 4.0) / 4.0


def test_signals():
    """name -> float32 samples: a long clip, a short one and clips at the padding limit."""
    rng = np.random.default_rng(20240611)
    clips = {}

    # 2.5 s (+37 samples, so that the length is no multiple of the hop): a chirp from 100 Hz to
    # 6 kHz, harmonics of 220 Hz, noise, and 0.4 s of exact silence in the middle.
    n = 40037
    t = np.arange(n) / SAMPLE_RATE
    f0, f1, duration = 100.0, 6000.0, n / SAMPLE_RATE
    chirp = 0.4 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * duration)))
    harmonics = sum(0.1 / k * np.sin(2 * np.pi * 220.0 * k * t + k) for k in range(1, 8))
    long = chirp + harmonics + 0.01 * rng.standard_normal(n)
    long[16000:22400] = 0.0
    clips["long"] = long

    # 0.3 s, louder, with a decaying 3 kHz tone over noise.
    n = 4811
    t = np.arange(n) / SAMPLE_RATE
    clips["short"] = (0.8 * np.exp(-t * 8) * np.sin(2 * np.pi * 3000.0 * t)
                      + 0.05 * rng.standard_normal(n))

    # The shortest clip torch.stft takes, and clips that need the repeated reflection, down to
    # 160 samples, the shortest with a frame.
    for n in (201, 200, 170, 160):
        clips["tiny%d" % n] = 0.3 * rng.standard_normal(n)
    return {name: x.astype(np.float32) for name, x in clips.items()}


def main():
    clips = test_signals()
    tensors = {}
    for name, samples in clips.items():
        if samples.size > N_FFT // 2:
            power = power_torch(samples)
            check = power_numpy(samples)
            assert np.abs(power - check).max() <= 1e-9 * max(power.max(), 1.0), name
        else:
            power = power_numpy(samples)
        assert power.shape == (N_FFT // 2 + 1, samples.size // HOP), name
        tensors["%s_samples" % name] = ("F32", [samples.size], "f", samples.tolist())
        for n_mels in (80, 128):
            for clamp in ("fixed_floor", "whisper"):
                mel = log_mel(power, n_mels, clamp).astype(np.float32)
                tensors["%s_mel%d_%s" % (name, n_mels, clamp)] = (
                    "F32", list(mel.shape), "f", mel.ravel().tolist())

    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "media",
                       "mel_reference.safetensors")
    write_safetensors(out, tensors, {"source": "make_mel_reference.py"})


if __name__ == "__main__":
    main()
