"""The device front-end: MFCC frames from int16 PCM in integer arithmetic, frame by frame.

Each frame k covers samples [k*hop, k*hop + n_fft) and depends on nothing else: no per-file
statistic (torchaudio's dB floor "maximum of the file minus 80 dB" needs the whole file), so a
device computes each frame as soon as its samples have arrived. The same integer operations run
here (numpy, vectorised over frames) and, in a later step, in the exported C; integer arithmetic
is exact, so the two agree bit for bit by construction and by test.

Per frame (b = log2(n_fft)):
  1. window   xw[n] = round_shift(x[n] * w[n], 15 - s) with s = 15 - b: the Q15 Hann window, and
              the samples left-aligned so that the FFT below uses the whole int32 range
  2. FFT      a real FFT of n_fft samples as a complex FFT of half the length (the buffers a
              device keeps are halved): z[n] = xw[2n] + i xw[2n+1], Z = FFT_{n_fft/2}(z), radix-2,
              decimation in time, int32, Q15 twiddles, each twiddle product rounded once (round_shift
              by 15); every component of Z is at most (n_fft/2) * 2 * max|xw| <= 2^30. Then for
              k = 0..n_fft/2, with A = Z[k mod n/2], B = conj(Z[(n/2 - k) mod n/2]) and W = e^(-2 pi i k/n):
              2X[k] = (A + B) + round_shift(W * (-i)(A - B), 15)   (int64; no halving, so no rounding)
  3. power    P[k] = (re^2 + im^2) >> 15 of 2X[k], i.e. |X[k]|^2 >> 13 (int64: |2X| <= 2^31). Parseval
              bounds the sum of |X|^2 by n_fft * sum(xw^2) <= 2^60, so the weighted mel sums below stay
              under 2^63
  4. mel      E[m] = (sum_k P[k] * w_m[k]) >> 15            HTK triangles as torchaudio's, Q15
  5. log      L[m] = log2(E[m] + 2^f) in Q11: exponent + a 33-entry table of log2(1 + i/32) (Q15),
              linearly interpolated; 2^f (f = floor_bits) is the fixed floor that replaces the
              per-file one
  6. DCT      C[i] = round_shift(sum_m D[i][m] * L[m], 14 + 11 - 8): orthonormal DCT-II scaled by
              10*log10(2), so C is torchaudio's MFCC (dB-based) in Q8, but for the floor, the
              rounding and a constant gain in C[0] (the samples' scale), which normalisation removes
Normalisation (per coefficient, from the train split) happens after, in integers too
(`nas.features.extract.Normaliser` with `integer=True`, `normalise_integers` below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nas.data.dataset import SAMPLE_RATE

WINDOW_FRAC = 15
TWIDDLE_FRAC = 15
MEL_FRAC = 15
LOG_FRAC = 11
LOG_TABLE_BITS = 5  # 2**5 intervals: log2(1 + i/32), i = 0..32
LOG_TABLE_FRAC = 15
DCT_FRAC = 14
MFCC_FRAC = 8
POWER_SHIFT = 13  # see step 3: keeps every mel sum under 2^63 for any n_fft
FFT_BITS = 30  # |X| <= 2^30: the windowed samples are scaled to fill this
DB_PER_LOG2 = 10 * math.log10(2)  # 10*log10(x) = DB_PER_LOG2 * log2(x)
VTLP_BOUNDARY = 0.8  # share of the Nyquist frequency up to which VTLP scales linearly
CHUNK_FRAMES = 4096  # frames processed at once: bounds the working memory of the vectorised FFT


def round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    """(v + 2**(shift-1)) >> shift: round half up, arithmetic shift (as the C does)."""
    return (values + (1 << (shift - 1))) >> shift


def _q(values: np.ndarray, frac: int, dtype) -> np.ndarray:
    """Round to Q`frac`, saturating at the type's largest value (1.0 in Q15 becomes 32767)."""
    info = np.iinfo(dtype)
    return np.clip(np.floor(np.asarray(values, np.float64) * 2.0**frac + 0.5), info.min, info.max).astype(dtype)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def warp_frequencies(freqs: np.ndarray, warp: float) -> np.ndarray:
    """Vocal-tract-length perturbation (Jaitly and Hinton, 2013): frequencies scaled by `warp`
    up to a boundary, then linearly onto the Nyquist frequency, which stays fixed."""
    nyquist = SAMPLE_RATE / 2
    boundary = VTLP_BOUNDARY * nyquist * min(warp, 1.0) / warp
    above = nyquist - (nyquist - VTLP_BOUNDARY * nyquist * min(warp, 1.0)) / (nyquist - boundary) * (nyquist - freqs)
    return np.where(freqs <= boundary, freqs * warp, above)


def mel_filterbank(n_fft: int, n_mels: int, f_min: float, f_max: float, warp: float = 1.0) -> np.ndarray:
    """(n_fft/2 + 1, n_mels) HTK triangles without area normalisation, as torchaudio's
    `melscale_fbanks(..., norm=None, mel_scale="htk")`, in float64. A `warp` other than 1 moves
    each spectrum bin to its warped frequency first (training-time VTLP, never on the device)."""
    freqs = np.linspace(0, SAMPLE_RATE // 2, n_fft // 2 + 1)
    if warp != 1.0:
        freqs = warp_frequencies(freqs, warp)
    points = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(points)
    slopes = points[None, :] - freqs[:, None]
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return np.maximum(0.0, np.minimum(down, up))


@dataclass(frozen=True)
class FrontEndTables:
    """The constants a device holds (flash), in the integer types the C declares."""

    window: np.ndarray  # (n_fft,) int16, Q15; the device stores window[: n_fft/2 + 1]
    cos: np.ndarray  # (n_fft/2,) int16, Q15: cos(2*pi*k/n_fft)
    sin: np.ndarray  # (n_fft/2,) int16, Q15: sin(2*pi*k/n_fft) = cos[|n_fft/4 - k|]; not stored
    mel_first: np.ndarray  # (n_mels,) int16: first spectrum bin of each filter
    mel_weights: tuple[np.ndarray, ...]  # per filter, its non-zero Q15 weights (uint16) from mel_first on
    log_table: np.ndarray  # (33,) uint16, Q15: log2(1 + i/32)
    dct: np.ndarray  # (n_mfcc, n_mels) int16, Q14: orthonormal DCT-II * 10*log10(2)
    window_shift: int  # 15 - s: the right shift after the window, s = 15 - log2(n_fft)
    floor: int  # added to every mel energy before the log: 2^floor_bits

    def mel_matrix(self) -> np.ndarray:
        """The sparse filterbank as a dense (bins, n_mels) int64 matrix, for vectorised use."""
        bins = len(self.cos) + 1
        dense = np.zeros((bins, len(self.mel_first)), np.int64)
        for m, (first, weights) in enumerate(zip(self.mel_first, self.mel_weights, strict=True)):
            dense[first : first + len(weights), m] = weights
        return dense


def frontend_tables(config, warp: float = 1.0) -> FrontEndTables:
    """The tables of a FeatureConfig's integer front-end; `warp` != 1 gives a VTLP-warped
    filterbank for training copies (nas.features.augment), never exported."""
    return _tables(config.n_fft, config.n_mels, config.n_mfcc, config.f_min, config.f_max, config.floor_bits, warp)


@lru_cache(maxsize=64)
def _tables(n_fft: int, n_mels: int, n_mfcc: int, f_min: float, f_max: float, floor_bits: int, warp: float = 1.0) -> FrontEndTables:
    # Periodic Hann, as torch's: symmetric (w[n] = w[n_fft - n]), so a device stores its first
    # half (n_fft/2 + 1 values) and mirrors it; sin(2 pi k/n) = cos(2 pi |n/4 - k|/n), so it stores
    # no sine table. Both are defined here as the device reads them (the same values as computing
    # every entry directly: tested).
    half = _q(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft), WINDOW_FRAC, np.int16)
    window = np.concatenate([half, half[1 : n_fft // 2][::-1]])
    k = np.arange(n_fft // 2)
    cos = _q(np.cos(2 * np.pi * k / n_fft), TWIDDLE_FRAC, np.int16)
    sin = cos[np.abs(n_fft // 4 - k)]
    quantized = _q(mel_filterbank(n_fft, n_mels, f_min, f_max, warp), MEL_FRAC, np.uint16)
    firsts, weights = [], []
    for m in range(n_mels):
        nonzero = np.flatnonzero(quantized[:, m])
        first = int(nonzero[0]) if len(nonzero) else 0
        last = int(nonzero[-1]) + 1 if len(nonzero) else 0
        firsts.append(first)
        weights.append(quantized[first:last, m].copy())
    log_table = _q(np.log2(1 + np.arange(2**LOG_TABLE_BITS + 1) / 2**LOG_TABLE_BITS), LOG_TABLE_FRAC, np.uint16)
    i, m = np.arange(n_mfcc)[:, None], np.arange(n_mels)[None, :]
    dct = np.cos(np.pi / n_mels * (m + 0.5) * i) * np.where(i == 0, math.sqrt(1 / n_mels), math.sqrt(2 / n_mels))
    return FrontEndTables(
        window=window,
        cos=cos,
        sin=sin,
        mel_first=np.array(firsts, np.int16),
        mel_weights=tuple(weights),
        log_table=log_table,
        dct=_q(dct * DB_PER_LOG2, DCT_FRAC, np.int16),
        window_shift=WINDOW_FRAC - (FFT_BITS - 15 - int(math.log2(n_fft))),
        floor=1 << floor_bits,
    )


def frame_samples(samples: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, n_fft) int64 windows of the PCM; a file shorter than one window is zero-padded."""
    samples = np.asarray(samples, np.int64)
    if len(samples) < n_fft:
        samples = np.pad(samples, (0, n_fft - len(samples)))
    count = 1 + (len(samples) - n_fft) // hop
    return np.lib.stride_tricks.sliding_window_view(samples, n_fft)[::hop][:count]


def _bit_reversed(n: int) -> np.ndarray:
    bits = int(math.log2(n))
    index = np.arange(n)
    reversed_index = np.zeros(n, np.int64)
    for bit in range(bits):
        reversed_index |= ((index >> bit) & 1) << (bits - 1 - bit)
    return reversed_index


def fft_power(windowed: np.ndarray, tables: FrontEndTables) -> np.ndarray:
    """(frames, n_fft/2 + 1) int64 power spectrum |X|^2 >> POWER_SHIFT of windowed frames
    (|values| <= 2^30 / n_fft), by a complex FFT of half the length (step 2 of the module's
    docstring). Iterative radix-2 FFT in integers: each butterfly b' = a - t, a' = a + t with
    t = round_shift(W * b, 15) (complex), W = exp(-2*pi*i*k/n_fft) from the Q15 tables."""
    n = windowed.shape[1]
    h = n // 2
    order = _bit_reversed(h)
    re = windowed[:, 0::2][:, order].astype(np.int64)  # even samples: the real parts
    im = windowed[:, 1::2][:, order].astype(np.int64)  # odd samples: the imaginary parts
    span = 2
    while span <= h:
        half = span // 2
        index = np.arange(half) * (n // span)  # W_{n/2}^(j (n/2)/span) = W_n^(j n/span)
        w_re, w_im = tables.cos[index].astype(np.int64), -tables.sin[index].astype(np.int64)
        re, im = re.reshape(len(re), h // span, span), im.reshape(len(im), h // span, span)
        a_re, a_im = re[..., :half], im[..., :half]
        b_re, b_im = re[..., half:], im[..., half:]
        t_re = round_shift(w_re * b_re - w_im * b_im, TWIDDLE_FRAC)
        t_im = round_shift(w_re * b_im + w_im * b_re, TWIDDLE_FRAC)
        re = np.concatenate([a_re + t_re, a_re - t_re], axis=-1).reshape(len(re), h)
        im = np.concatenate([a_im + t_im, a_im - t_im], axis=-1).reshape(len(im), h)
        span *= 2
    k = np.arange(h + 1)
    a_re, a_im = re[:, k % h], im[:, k % h]
    b_re, b_im = re[:, (h - k) % h], -im[:, (h - k) % h]  # conj(Z[(n/2 - k) mod n/2])
    v_re, v_im = a_im - b_im, b_re - a_re  # -i (A - B)
    w_re = np.append(tables.cos, -(1 << TWIDDLE_FRAC)).astype(np.int64)  # k = n/2: W = -1, exact in Q15
    w_im = -np.append(tables.sin, 0).astype(np.int64)
    x2_re = a_re + b_re + round_shift(w_re * v_re - w_im * v_im, TWIDDLE_FRAC)
    x2_im = a_im + b_im + round_shift(w_re * v_im + w_im * v_re, TWIDDLE_FRAC)
    return (x2_re**2 + x2_im**2) >> (POWER_SHIFT + 2)  # (2X)^2 / 4


def log2_q(values: np.ndarray, tables: FrontEndTables) -> np.ndarray:
    """log2(v) in Q11 for integers v >= 1: exponent plus the table, linearly interpolated."""
    values = np.asarray(values, np.int64)
    _, exponent = np.frexp(values.astype(np.float64))  # exact: v < 2^53, so the exponent is exact
    exponent = exponent.astype(np.int64) - 1  # v in [2^e, 2^(e+1))
    # the mantissa's 16 fraction bits: v / 2^e - 1, in Q16 (truncated)
    fraction = np.where(exponent >= 16, values >> np.maximum(exponent - 16, 0), values << np.maximum(16 - exponent, 0)) - (1 << 16)
    index = fraction >> (16 - LOG_TABLE_BITS)
    rest = fraction & ((1 << (16 - LOG_TABLE_BITS)) - 1)
    table = tables.log_table.astype(np.int64)
    step = table[index + 1] - table[index]  # index <= 31: the table has 33 entries
    mantissa = table[index] + round_shift(step * rest, 16 - LOG_TABLE_BITS)  # Q15
    return (exponent << LOG_FRAC) + round_shift(mantissa, LOG_TABLE_FRAC - LOG_FRAC)


def mfcc_from_power(power: np.ndarray, tables: FrontEndTables) -> np.ndarray:
    """Mel energies, their integer log and the DCT: (frames, n_mfcc) int32 MFCC in Q8 (dB)."""
    energies = (power @ tables.mel_matrix()) >> MEL_FRAC  # int64 matmul: exact
    logs = log2_q(energies + tables.floor, tables)
    mfcc = round_shift(logs @ tables.dct.astype(np.int64).T, DCT_FRAC + LOG_FRAC - MFCC_FRAC)
    return mfcc.astype(np.int32)


def integer_mfcc_frames(frames: np.ndarray, tables: FrontEndTables) -> np.ndarray:
    """(frames, n_fft) int PCM windows -> (frames, n_mfcc) int32 MFCC, in chunks."""
    out = []
    for start in range(0, len(frames), CHUNK_FRAMES):
        chunk = frames[start : start + CHUNK_FRAMES]
        windowed = round_shift(chunk * tables.window.astype(np.int64), tables.window_shift)
        out.append(mfcc_from_power(fft_power(windowed, tables), tables))
    return np.concatenate(out) if out else np.zeros((0, tables.dct.shape[0]), np.int32)


def integer_mfcc(samples_per_file: list[np.ndarray], n_fft: int, hop: int, tables: FrontEndTables) -> list[np.ndarray]:
    """One (frames, n_mfcc) int32 array per file; all files' frames go through together."""
    framed = [frame_samples(samples, n_fft, hop) for samples in samples_per_file]
    if not framed:
        return []
    values = integer_mfcc_frames(np.concatenate(framed), tables)
    return np.split(values, np.cumsum([len(f) for f in framed])[:-1])


# ------------------------------------------------------------------------------ normalisation
NORM_SHIFT = 16
NORM_FRAC = 12  # output: Q3.12, the integer engine's input at 16-bit state (saturated to int16)
INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def mean_constant(mean: np.ndarray) -> np.ndarray:
    """The train mean as the device stores it: Q8 integers (int64 here), rounded half up."""
    return np.floor(np.asarray(mean, np.float64) + 0.5).astype(np.int64)


def normalisation_constants(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coefficient integers for MFCC in Q8: the mean (int32, Q8) and the scale (int32) such
    that round_shift((c - mean) * scale, 16) is (c - mean) / std in Q3.12."""
    mean_q = mean_constant(mean)
    scale_q = np.floor(2.0 ** (NORM_SHIFT + NORM_FRAC) / np.asarray(std, np.float64) + 0.5).astype(np.int64)
    if scale_q.max(initial=0) >= 2**31:
        raise ValueError("a coefficient's spread is too small for an int32 normalisation scale")
    return mean_q.astype(np.int32), scale_q.astype(np.int32)


def normalise_integers(mfcc: np.ndarray, mean_q: np.ndarray, scale_q: np.ndarray, running: bool = False) -> np.ndarray:
    """(frames, n_mfcc) int MFCC (Q8) of one utterance -> the engine's int16 input, Q3.12,
    saturated; `running` also subtracts the utterance's running mean (running_centre_integers).
    (utterances, frames, n_mfcc): each utterance on its own."""
    centred = np.asarray(mfcc, np.int64) - mean_q.astype(np.int64)
    if running:
        centred = running_centre_integers(centred)
    return np.clip(round_shift(centred * scale_q.astype(np.int64), NORM_SHIFT), INT16_MIN, INT16_MAX).astype(np.int16)


# "running" normalisation: a streaming per-utterance mean, subtracted after the train mean. The
# mean of an utterance's frames so far, as if PRIOR frames of the train mean came first; after
# MAX frames it becomes a moving average over about MAX frames, so a stream never overflows.
RUNNING_PRIOR_FRAMES = 8
RUNNING_MAX_FRAMES = 128
RUNNING_FRAC = 8  # the running mean is kept in Q8 + 8 fraction bits (int32)


def divide_round(values: np.ndarray, divisor: int) -> np.ndarray:
    """values / divisor rounded half away from zero, as the C writes it with truncating division:
    v >= 0 ? (v + d/2) / d : -((-v + d/2) / d)."""
    values = np.asarray(values, np.int64)
    return np.sign(values) * ((np.abs(values) + divisor // 2) // divisor)


def running_count(frame: int) -> int:
    """The divisor of frame `frame` (0 = the first after a reset)."""
    return min(frame + 1 + RUNNING_PRIOR_FRAMES, RUNNING_MAX_FRAMES)


def running_centre_integers(centred: np.ndarray) -> np.ndarray:
    """(frames, n) int MFCC minus the train mean (Q8) -> minus the utterance's running mean too.
    m <- m + round((c << 8) - m) / count), out = c - round_shift(m, 8); m starts at 0 (the train mean).
    Also (utterances, frames, n): each utterance on its own, all stepped through time together
    (one numpy step per frame, not per frame and utterance: nas.features.extract.Normaliser.apply_all)."""
    centred = np.asarray(centred, np.int64)
    running = np.zeros(centred.shape[:-2] + centred.shape[-1:], np.int64)
    out = np.empty_like(centred)
    for t in range(centred.shape[-2]):
        frame = centred[..., t, :]
        running = running + divide_round((frame << RUNNING_FRAC) - running, running_count(t))
        out[..., t, :] = frame - round_shift(running, RUNNING_FRAC)
    return out


def running_centre_float(centred: np.ndarray) -> np.ndarray:
    """The same running mean in floating point, for torchaudio features; (frames, n) or
    (utterances, frames, n) as running_centre_integers."""
    centred = np.asarray(centred, np.float64)
    running = np.zeros(centred.shape[:-2] + centred.shape[-1:], np.float64)
    out = np.empty(centred.shape, np.float64)
    for t in range(centred.shape[-2]):
        running += (centred[..., t, :] - running) / running_count(t)
        out[..., t, :] = centred[..., t, :] - running
    return out


def describe(config) -> dict:
    """model.json's front_end block for the integer front-end: the steps and the tables' sizes."""
    tables = frontend_tables(config)
    return {
        "kind": "nas integer front-end (nas/features/frontend.py)",
        "sample_rate": SAMPLE_RATE,
        "frame": f"samples [k*{config.hop_length}, k*{config.hop_length} + {config.n_fft}); a file shorter than one window is zero-padded",
        "window": f"periodic Hann, Q{WINDOW_FRAC} int16; xw = round_shift(x * w, {tables.window_shift})",
        "fft": f"real FFT as a {config.n_fft // 2}-point complex FFT of (even, odd) samples: radix-2 DIT, int32, "
        f"Q{TWIDDLE_FRAC} twiddles, one rounding per twiddle product; 2X[k] = (A + B) + round_shift(W^k (-i)(A - B), 15)",
        "power": f"|2X|^2 >> {POWER_SHIFT + 2} = |X|^2 >> {POWER_SHIFT}, bins 0..{config.n_fft // 2}",
        "mel": f"{config.n_mels} HTK triangles {config.f_min:g}-{config.f_max:g} Hz, Q{MEL_FRAC}; E = sum(P * w) >> {MEL_FRAC}",
        "log": f"log2(E + 2^{config.floor_bits}) in Q{LOG_FRAC}: exponent + interpolated table of log2(1 + i/{2**LOG_TABLE_BITS})",
        "dct": f"orthonormal DCT-II * 10*log10(2), Q{DCT_FRAC}; MFCC in Q{MFCC_FRAC} (dB)",
        "normalisation": f"per coefficient, integers: see normaliser.integer (Q{NORM_FRAC} out)",
        "table_values": {
            "window (first half)": len(tables.window) // 2 + 1,
            "twiddles (cos)": len(tables.cos),
            "mel_weights": sum(len(w) for w in tables.mel_weights),
            "log_table": len(tables.log_table),
            "dct": int(tables.dct.size),
        },
    }
