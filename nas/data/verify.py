"""`nas data verify`: check a folder of FSDD recordings file by file, collecting every problem."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nas.core.errors import NasError
from nas.data.dataset import (
    AUDIO_SUFFIXES,
    FSDD_FILE_COUNT,
    N_DIGITS,
    Recording,
    Waveform,
    find_checksum_file,
    parse_name,
    read_checksums,
    read_wav,
)


@dataclass
class VerifyReport:
    data_dir: Path
    checksum_file: Path
    waveforms: list[Waveform] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checksums_matched: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_data(data_dir: Path, checksum_file: Path | None = None, allow_subset: bool = False) -> VerifyReport:
    """Names, WAV format (8 kHz mono 16-bit PCM, not truncated), checksums, count, all digits."""
    checksum_file = checksum_file or find_checksum_file(data_dir)
    if not checksum_file.is_file():
        raise NasError(f"{checksum_file}: checksum file not found; expected 'sha256sum' output")
    expected = read_checksums(checksum_file)
    report = VerifyReport(data_dir=data_dir, checksum_file=checksum_file)
    paths = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise NasError(f"{data_dir}: no .wav files found; expected FSDD recordings named '{{digit}}_{{speaker}}_{{index}}.wav'")
    for path in paths:
        try:
            digit, speaker, index = parse_name(path.name)
            wave = read_wav(Recording(speaker=speaker, digit=digit, index=index, path=path))
        except NasError as error:
            message = str(error)
            report.problems.append(message if message.startswith(str(path)) else f"{path}: {message.split(': ', 1)[-1]}")
            continue
        report.waveforms.append(wave)
        if path.name not in expected:
            report.problems.append(f"{path}: not listed in {checksum_file}")
        elif expected[path.name] != wave.sha256:
            report.problems.append(f"{path}: checksum mismatch; expected sha256 {expected[path.name][:16]}..., got {wave.sha256[:16]}...")
        else:
            report.checksums_matched += 1
    present = {p.name for p in paths}
    missing = sorted(set(expected) - present)
    if missing and not allow_subset:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        report.problems.append(
            f"{data_dir}: {len(missing)} of the {len(expected)} files listed in {checksum_file} are missing ({shown}); "
            "pass --allow-subset to check a partial copy"
        )
    if not allow_subset and len(paths) != FSDD_FILE_COUNT and len(expected) == FSDD_FILE_COUNT:
        report.problems.append(f"{data_dir}: {len(paths)} WAV files, expected {FSDD_FILE_COUNT}")
    digits = Counter(w.recording.digit for w in report.waveforms)
    absent = [d for d in range(N_DIGITS) if digits[d] == 0]
    if absent:
        report.problems.append(f"{data_dir}: no recordings of digit(s) {', '.join(map(str, absent))}; expected all digits 0-9")
    return report
