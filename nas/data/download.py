"""`nas data download`: fetch the FSDD v1.0.10 tag archive and keep only `recordings/`."""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nas.core.errors import NasError
from nas.data.dataset import BUNDLED_CHECKSUMS, FSDD_FILE_COUNT
from nas.data.verify import VerifyReport, verify_data

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
# A member we keep: '<top folder>/recordings/<file>.wav', nothing deeper, nothing elsewhere.
_RECORDING_MEMBER = re.compile(r"^[^/]+/recordings/(?P<name>[A-Za-z0-9_]+\.wav)$")


def fetch(url: str, target: Path, on_progress: Callable[[int, int | None], None] | None = None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            size = response.headers.get("Content-Length")
            total = int(size) if size and size.isdigit() else None
            done = 0
            while chunk := response.read(1 << 16):
                out.write(chunk)
                done += len(chunk)
                if on_progress:
                    on_progress(done, total)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise NasError(f"{url}: download failed ({reason}); check the address and the network, or pass --url") from None


def extract_recordings(archive: Path, dest: Path, source: str) -> int:
    """Write the archive's `*/recordings/*.wav` files, flat, into `dest`. Returns the count."""
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                match = _RECORDING_MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue  # links, folders and every other part of the repository are skipped
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                with handle, (dest / match["name"]).open("wb") as out:
                    shutil.copyfileobj(handle, out)
                count += 1
    except (tarfile.TarError, EOFError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NasError(f"{source}: not a readable tar archive ({reason}); expected the FSDD v1.0.10 tag archive") from None
    if count == 0:
        raise NasError(f"{source}: archive holds no '<top>/recordings/*.wav' files; expected the FSDD v1.0.10 tag archive")
    return count


def download(
    dest: Path,
    url: str = FSDD_URL,
    force: bool = False,
    on_progress: Callable[[int, int | None], None] | None = None,
) -> VerifyReport:
    """Download, extract into a temporary folder beside `dest`, verify against the bundled
    v1.0.10 checksums, then move into place: a failed download never replaces good data."""
    if dest.is_dir() and any(dest.glob("*.wav")) and not force:
        report = verify_data(dest, BUNDLED_CHECKSUMS)
        if report.ok:
            return report
        raise NasError(f"{dest}: already holds recordings that do not verify ({report.problems[0]}); pass --force to replace them")
    try:  # before any download: a folder that cannot be written is refused at once
        dest.parent.mkdir(parents=True, exist_ok=True)
        scratch_dir = tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-")
    except OSError as error:
        raise NasError(f"--dest {dest}: cannot write beside it in {dest.parent} ({error.strerror}); expected a writable folder") from None
    with scratch_dir as scratch:
        archive = Path(scratch) / "fsdd.tar.gz"
        fetch(url, archive, on_progress)
        staged = Path(scratch) / "recordings"
        extract_recordings(archive, staged, url)
        report = verify_data(staged, BUNDLED_CHECKSUMS)
        if not report.ok:
            raise NasError(f"{url}: downloaded recordings do not verify: {report.problems[0]}")
        if len(report.waveforms) != FSDD_FILE_COUNT:
            raise NasError(f"{url}: archive holds {len(report.waveforms)} recordings, expected {FSDD_FILE_COUNT}")
        if dest.exists():
            shutil.rmtree(dest)
        staged.replace(dest)
    report.data_dir = dest
    return report
