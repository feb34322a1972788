"""What `nas data inspect --html` draws, computed apart from the drawing (`nas.report.datapage`): each
file's facts (digit, speaker, take, duration, levels, split part), every file that fails a check
and the MFCC of a few recordings.

Checks: `nas data verify`'s (name, WAV format, truncation, checksum; files of the checksum list
that are absent are not a failure here, as a subset is a normal thing to inspect) and two of the recording itself that do not stop training
but deserve a look: clipping (samples at full scale) and a recording so quiet that its peak is
below QUIET_PEAK_DBFS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.data.dataset import PCM_SCALE, Recording, Split, Waveform, make_split
from nas.data.verify import verify_data
from nas.features.extract import FeatureConfig, compute_frames

CLIPPED_SAMPLES = 3  # this many samples at full scale (|x| >= 32767) flag a recording as clipped
QUIET_PEAK_DBFS = -40.0  # a peak below 1% of full scale flags a recording as too quiet (FSDD: none; theo peaks near -32)
MFCC_EXAMPLE_DIGIT = 7  # the examples: this digit's lowest take by each speaker


def dbfs(level: float) -> float:
    """A level of int16 samples in dB relative to full scale (-inf for silence)."""
    return 20 * math.log10(level / PCM_SCALE) if level > 0 else float("-inf")


@dataclass(frozen=True)
class FileFacts:
    name: str
    digit: int
    speaker: str
    index: int
    duration_s: float
    peak_dbfs: float
    rms_dbfs: float
    clipped_samples: int
    part: str  # train | val | test of the inspected split, or "" if in none


@dataclass(frozen=True)
class MfccExample:
    name: str
    speaker: str
    frames: np.ndarray  # (frames, n_mfcc), the integer front-end's Q8 MFCC before normalisation


@dataclass(frozen=True)
class DataOverview:
    data_dir: Path
    checksum_file: Path
    split: Split
    feature_config: FeatureConfig
    files: list[FileFacts]  # the readable recordings, sorted
    failed: list[tuple[str, str]]  # (file or folder, what is wrong): files that fail a check of `nas data verify`
    flagged: list[tuple[str, str]]  # (file, why): readable recordings that are clipped or too quiet
    notes: list[str]  # folder-level facts (e.g. files of the checksum list that are absent)
    examples: list[MfccExample]


def file_facts(wave: Waveform, part: str) -> FileFacts:
    samples = wave.samples.astype(np.int64)
    recording = wave.recording
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    clipped = int(np.count_nonzero(np.abs(samples) >= PCM_SCALE - 1))
    return FileFacts(
        recording.name,
        recording.digit,
        recording.speaker,
        recording.index,
        wave.duration_s,
        dbfs(float(np.abs(samples).max())),
        dbfs(rms),
        clipped,
        part,
    )


def flags(facts: FileFacts) -> list[str]:
    reasons = []
    if facts.clipped_samples >= CLIPPED_SAMPLES:
        reasons.append(f"clipped: {facts.clipped_samples} samples at full scale")
    if facts.peak_dbfs < QUIET_PEAK_DBFS:
        reasons.append(f"quiet: peak {facts.peak_dbfs:.1f} dBFS, below {QUIET_PEAK_DBFS:g} dBFS")
    return reasons


def _split_problem(problem: str) -> tuple[str, str]:
    """`nas data verify` names the file first: "PATH: what is wrong"."""
    where, _, what = problem.partition(": ")
    return Path(where).name or where, what


def inspect_data(
    data_dir: Path, split_name: str, checksum_file: Path | None = None, feature_config: FeatureConfig | None = None
) -> DataOverview:
    report = verify_data(data_dir, checksum_file, allow_subset=True)
    waves = sorted(report.waveforms, key=lambda w: w.recording)
    recordings: list[Recording] = [w.recording for w in waves]
    split = make_split(recordings, split_name)
    part_of = {r.name: name for name, part in split.parts().items() for r in part}
    files = [file_facts(w, part_of.get(w.recording.name, "")) for w in waves]
    failed = [_split_problem(p) for p in report.problems if not p.startswith(str(data_dir) + ":")]
    notes = [p for p in report.problems if p.startswith(str(data_dir) + ":")]
    flagged = [(f.name, "; ".join(flags(f))) for f in files if flags(f)]
    config = feature_config or FeatureConfig()
    chosen = {}
    for wave in waves:  # sorted: the lowest take of the example digit per speaker comes first
        if wave.recording.digit == MFCC_EXAMPLE_DIGIT:
            chosen.setdefault(wave.recording.speaker, wave)
    example_waves = list(chosen.values())
    frames = compute_frames(example_waves, config) if example_waves else []
    examples = [MfccExample(w.recording.name, w.recording.speaker, f) for w, f in zip(example_waves, frames, strict=True)]
    return DataOverview(data_dir, report.checksum_file, split, config, files, failed, flagged, notes, examples)
