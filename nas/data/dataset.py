"""Find, read, validate and split the Free Spoken Digit Dataset (FSDD v1.0.10).

Everything here is about files: the file-name grammar, the WAV format, the checksums and the
split rules of DESIGN.md. Feature extraction lives in `nas.features.extract`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.core.errors import NasError

SAMPLE_RATE = 8000
SAMPLE_BYTES = 2  # 16-bit PCM
AUDIO_SUFFIXES = (".wav", ".flac")  # the recordings a folder is read for (decoded by soundfile)
PCM_SCALE = 32768  # int16 samples / PCM_SCALE = audio in [-1, 1)
N_DIGITS = 10
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")  # class names on plots
FSDD_VERSION = "1.0.10"
FSDD_FILE_COUNT = 3000
DATA_ENV = "NAS_DATA_DIR"
# The project's own data folder: `nas data download` writes here, and it is the last place looked.
PROJECT_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "fsdd" / "recordings"
# Checksums of the 3,000 v1.0.10 recordings, shipped with the package so that data found
# anywhere (or downloaded) can be verified without a SHA256SUMS file beside it.
BUNDLED_CHECKSUMS = Path(__file__).resolve().parent / "fsdd-v1.0.10.sha256"

_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[a-z][a-z0-9]*)_(?P<index>[0-9]|[1-9][0-9]+)\.(wav|flac)$")

PARTS = ("train", "val", "test")  # the parts of every split
OFFICIAL = "official"  # the split FSDD defines, and the default one
# Official split (DESIGN.md): test = index 0-4, validation = index 5-9, train = index 10-49.
TEST_INDICES = range(0, 5)
VAL_INDICES = range(5, 10)


@dataclass(frozen=True, order=True)
class Recording:
    """One FSDD file, described by its name alone (nothing is read)."""

    speaker: str
    digit: int
    index: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Split:
    name: str
    train: tuple[Recording, ...]
    val: tuple[Recording, ...]
    test: tuple[Recording, ...]

    def parts(self) -> dict[str, tuple[Recording, ...]]:
        return {name: getattr(self, name) for name in PARTS}


@dataclass(frozen=True)
class Waveform:
    recording: Recording
    samples: np.ndarray  # int16, mono
    sha256: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def parse_name(name: str) -> tuple[int, str, int]:
    """`{digit}_{speaker}_{index}.wav` -> (digit, speaker, index). Raises NasError otherwise."""
    match = _NAME.match(name)
    if match is None:
        raise NasError(
            f"{name}: file name does not parse; expected '{{digit}}_{{speaker}}_{{index}}.wav' "
            "with digit 0-9, a lower-case speaker name and an index >= 0 (e.g. '3_theo_12.wav')"
        )
    return int(match["digit"]), match["speaker"], int(match["index"])


def find_data_dir(cli_value: str | os.PathLike | None = None) -> Path:
    """`--data-dir`, then `NAS_DATA_DIR`, then the project's data folder."""
    if cli_value is not None:
        source, candidate = "--data-dir", Path(cli_value)
    elif os.environ.get(DATA_ENV):
        source, candidate = DATA_ENV, Path(os.environ[DATA_ENV])
    else:
        source, candidate = "the project data folder", PROJECT_DATA_DIR
    if not candidate.is_dir():
        hint = " (run 'nas data download' or pass --data-dir)" if cli_value is None else ""
        raise NasError(f"{candidate}: data folder from {source} does not exist; expected a folder of FSDD WAV files{hint}")
    return candidate


def list_recordings(data_dir: Path) -> list[Recording]:
    """Every recording (`*.wav`, `*.flac`) in the folder, parsed and sorted. Other files are ignored."""
    paths = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise NasError(f"{data_dir}: no .wav files found; expected FSDD recordings named '{{digit}}_{{speaker}}_{{index}}.wav'")
    recordings = []
    for path in paths:
        try:
            digit, speaker, index = parse_name(path.name)
        except NasError as error:
            raise NasError(f"{path}: {str(error).split(': ', 1)[1]}") from None
        recordings.append(Recording(speaker=speaker, digit=digit, index=index, path=path))
    return sorted(recordings)


def decode_wav(path: Path, content: bytes) -> np.ndarray:
    """Decode 8 kHz mono audio (WAV in any encoding libsndfile reads: 8-, 16-, 24- or 32-bit PCM,
    float, mu-law; or FLAC) to the int16 PCM the front-end and the exported C take. 16-bit PCM is
    taken as it is; any other encoding is scaled to 16 bits and rounded.

    A WAV cut short is caught by comparing what its header declares with what the data chunk holds
    (libsndfile reads what there is and notes the difference in its log).
    """
    import soundfile

    try:
        info = soundfile.info(io.BytesIO(content))
    except (soundfile.SoundFileError, RuntimeError) as error:
        reason = str(error).split(": ", 1)[-1]
        raise NasError(f"{path}: not a readable audio file ({reason}); expected 8 kHz mono WAV or FLAC") from None
    problems = []
    if info.samplerate != SAMPLE_RATE:
        problems.append(f"sample rate {info.samplerate} Hz, expected {SAMPLE_RATE} Hz")
    if info.channels != 1:
        problems.append(f"{info.channels} channels, expected mono")
    if problems:
        raise NasError(f"{path}: " + "; ".join(problems))
    declared = _TRUNCATED.search(info.extra_info)
    if declared and info.format == "WAV" and info.subtype == "PCM_16":
        declared_frames = int(declared["declared"]) // SAMPLE_BYTES
        raise NasError(f"{path}: truncated WAV: header declares {declared_frames} samples, file holds {info.frames}")
    if info.frames == 0:
        raise NasError(f"{path}: holds no samples; expected a spoken digit")
    try:
        if info.subtype == "PCM_16":
            samples, _ = soundfile.read(io.BytesIO(content), dtype="int16")
            return samples
        scaled, _ = soundfile.read(io.BytesIO(content), dtype="float64")  # full scale is +-1.0
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise NasError(f"{path}: cannot decode ({error}); expected 8 kHz mono WAV or FLAC") from None
    return np.clip(np.round(scaled * 32768.0), -32768, 32767).astype(np.int16)


# libsndfile's log line for a data chunk shorter than its header says: "data : 9096 (should be 8595)"
_TRUNCATED = re.compile(r"^data\s*:\s*(?P<declared>\d+)\s*\(should be (?P<held>\d+)\)", re.M)


def read_wav(recording: Recording) -> Waveform:
    try:
        content = recording.path.read_bytes()
    except OSError as error:
        raise NasError(f"{recording.path}: cannot read ({error.strerror})") from None
    samples = decode_wav(recording.path, content)
    return Waveform(recording=recording, samples=samples, sha256=hashlib.sha256(content).hexdigest())


def read_all(recordings: Iterable[Recording]) -> list[Waveform]:
    return [read_wav(r) for r in recordings]


def require_all_digits(recordings: Sequence[Recording], where: str) -> None:
    present = {r.digit for r in recordings}
    missing = sorted(set(range(N_DIGITS)) - present)
    if missing:
        raise NasError(f"{where}: no recordings of digit(s) {', '.join(map(str, missing))}; expected all digits 0-9")


def speakers(recordings: Iterable[Recording]) -> list[str]:
    return sorted({r.speaker for r in recordings})


def validation_speaker(held_out: str, known: Sequence[str]) -> str:
    """`speaker:NAME`'s validation speaker: the next speaker after NAME in alphabetical order,
    the first after the last (george -> jackson -> lucas -> nicolas -> theo -> yweweler -> george).
    Never a training speaker, so validation measures what the test measures: a new voice."""
    ordered = sorted(known)
    return ordered[(ordered.index(held_out) + 1) % len(ordered)]


def fold_speakers(known: Sequence[str], count: int) -> list[str]:
    """The held-out speakers of `count` leave-one-speaker-out folds, spread evenly over the
    alphabetical order (2 of 6: george, nicolas; 3: george, lucas, theo): deterministic, and each
    fold's validation speaker (the next one) differs from every held-out one while count <= half."""
    ordered = sorted(known)
    return [ordered[(index * len(ordered)) // count] for index in range(count)]


def make_split(recordings: Sequence[Recording], split: str) -> Split:
    """Apply a split rule of DESIGN.md. Deterministic: each part is sorted."""
    ordered = sorted(recordings)
    if split == OFFICIAL:
        test = [r for r in ordered if r.index in TEST_INDICES]
        val = [r for r in ordered if r.index in VAL_INDICES]
        train = [r for r in ordered if r.index not in TEST_INDICES and r.index not in VAL_INDICES]
    elif split.startswith("speaker:"):
        held_out = split.split(":", 1)[1]
        known = speakers(ordered)
        if held_out not in known:
            raise NasError(f"--split {split}: unknown speaker '{held_out}'; expected one of {', '.join(known)}")
        if len(known) < 3:
            raise NasError(f"--split {split}: needs at least 3 speakers (test, validation, train); the data has {len(known)}")
        val_speaker = validation_speaker(held_out, known)
        test = [r for r in ordered if r.speaker == held_out]
        val = [r for r in ordered if r.speaker == val_speaker]
        train = [r for r in ordered if r.speaker not in (held_out, val_speaker)]
    else:
        raise NasError(f"--split {split}: unknown split; expected 'official' or 'speaker:NAME'")
    return Split(name=split, train=tuple(train), val=tuple(val), test=tuple(test))


def parse_split_name(value: str) -> str:
    """argparse type for --split: checks the form; the speaker is checked against the data later."""
    if value == OFFICIAL or (value.startswith("speaker:") and len(value) > len("speaker:")):
        return value
    raise NasError(f"--split {value}: expected 'official' or 'speaker:NAME'")


def read_checksums(path: Path) -> dict[str, str]:
    """`sha256sum` format: '<hex>  <file name>' per line."""
    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            raise NasError(f"{path}:{number}: not a checksum line; expected '<sha256 hex>  <file name>'")
        checksums[parts[1].lstrip("*").strip()] = parts[0]
    return checksums


def find_checksum_file(data_dir: Path) -> Path:
    """A SHA256SUMS beside the recordings (or in the folder above), else the bundled v1.0.10 list."""
    for candidate in (data_dir / "SHA256SUMS", data_dir.parent / "SHA256SUMS"):
        if candidate.is_file():
            return candidate
    return BUNDLED_CHECKSUMS


def load_split(data_dir: Path, split_name: str) -> tuple[Split, dict[str, Waveform]]:
    """Read every recording of the folder (validating each) and split it. Every digit must be
    in the data and in the train part, or no classifier of ten digits can be trained."""
    recordings = list_recordings(data_dir)
    require_all_digits(recordings, str(data_dir))
    split = make_split(recordings, split_name)
    require_all_digits(split.train, f"{data_dir} (train part of split '{split_name}')")
    waveforms = {w.recording.name: w for w in read_all(recordings)}
    return split, waveforms
