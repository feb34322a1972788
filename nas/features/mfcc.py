"""MFCC frames through torchaudio (the float front-end used for training today), and a
description of exactly what it computes, read off the transform object itself so that
model.json cannot drift from the code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torchaudio

from nas.data.dataset import PCM_SCALE, SAMPLE_RATE, Waveform

if TYPE_CHECKING:  # annotations only: nas.features.extract imports this module when it computes
    from nas.features.extract import FeatureConfig


def mfcc_transform(config: FeatureConfig) -> torchaudio.transforms.MFCC:
    return torchaudio.transforms.MFCC(
        sample_rate=SAMPLE_RATE,
        n_mfcc=config.n_mfcc,
        log_mels=False,  # power mel spectrogram in dB (top_db=80), then DCT-II (ortho)
        melkwargs={
            "n_fft": config.n_fft,
            "hop_length": config.hop_length,
            "n_mels": config.n_mels,
            "f_min": config.f_min,
            "f_max": config.f_max,
            "center": False,
        },
    )


def padded_audio(wave: Waveform, config: FeatureConfig) -> torch.Tensor:
    """Samples scaled to [-1, 1); a file shorter than one window is zero-padded to one window,
    so every file yields at least one frame."""
    audio = torch.from_numpy(wave.samples.astype(np.float32) / PCM_SCALE)
    if audio.numel() < config.n_fft:
        audio = torch.nn.functional.pad(audio, (0, config.n_fft - audio.numel()))
    return audio


def compute_mfcc(waveforms: list[Waveform], config: FeatureConfig) -> list[np.ndarray]:
    """One (frames, n_mfcc) float32 array per file."""
    transform = mfcc_transform(config)
    with torch.no_grad():
        return [transform(padded_audio(wave, config)).T.contiguous().numpy() for wave in waveforms]


def describe_frontend(config: FeatureConfig) -> dict:
    """What a device front-end must reproduce, from the transform that computes the features."""
    transform = mfcc_transform(config)
    mel = transform.MelSpectrogram
    spectrogram, scale = mel.spectrogram, mel.mel_scale
    window = spectrogram.window
    periodic = bool(torch.allclose(window, torch.hann_window(len(window), periodic=True)))
    return {
        "library": f"torchaudio {torchaudio.__version__}: transforms.MFCC(log_mels=False)",
        "sample_rate": SAMPLE_RATE,
        "audio_scaling": f"int16 samples / {PCM_SCALE}",
        "window": f"hann ({'periodic' if periodic else 'symmetric'}), length {spectrogram.win_length}, "
        f"hop {spectrogram.hop_length}, centre padding {'on' if spectrogram.center else 'off'}; "
        f"files shorter than {spectrogram.n_fft} samples are zero-padded to {spectrogram.n_fft}",
        "spectrum": f"|FFT_{spectrogram.n_fft}|^{spectrogram.power:g}",
        "mel": f"{scale.n_mels} {scale.mel_scale.upper()}-scale triangular filters, {scale.f_min:g}-{scale.f_max:g} Hz, norm {scale.norm}",
        "log": f"10*log10(max(mel, {transform.amplitude_to_DB.amin:g})), then clamped to (max over the file - {transform.top_db:g} dB)",
        "dct": f"type {transform.dct_type}, norm {transform.norm}, first {transform.n_mfcc} coefficients",
    }
