"""`nas data download` against local archives that the tests build: no network."""

from __future__ import annotations

import io
import tarfile

import pytest

from nas.cli.main import main
from nas.core.errors import NasError
from nas.data.download import download

TOP = "free-spoken-digit-dataset-1.0.10"


def build_archive(fsdd_dir, path, skip=(), extra=True):
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        for wav in sorted(fsdd_dir.glob("*.wav")):
            if wav.name not in skip:
                tar.add(wav, arcname=f"{TOP}/recordings/{wav.name}")
        if extra:
            for name, content in [(f"{TOP}/README.md", b"# FSDD\n"), (f"{TOP}/utils/x.py", b"pass\n"), ("../evil.wav", b"x")]:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture(scope="module")
def archive(fsdd_dir, tmp_path_factory):
    return build_archive(fsdd_dir, tmp_path_factory.mktemp("archive") / "v1.0.10.tar.gz")


def test_download_extracts_only_recordings_and_verifies(archive, tmp_path, capsys):
    dest = tmp_path / "data" / "recordings"
    assert main(["data", "download", "--url", archive.as_uri(), "--dest", str(dest)]) == 0
    files = sorted(p.name for p in dest.iterdir())
    assert len(files) == 3000 and all(name.endswith(".wav") for name in files)
    assert not (tmp_path / "evil.wav").exists() and not (tmp_path / "data" / "evil.wav").exists()
    assert "3000 recordings verified" in capsys.readouterr().out
    # Running it again finds the verified data and downloads nothing.
    assert download(dest, url=(tmp_path / "nothing-here.tar.gz").as_uri()).ok


def test_incomplete_archive_is_rejected_and_keeps_nothing(fsdd_dir, tmp_path):
    partial = build_archive(fsdd_dir, tmp_path / "partial.tar.gz", skip={"0_george_0.wav"}, extra=False)
    dest = tmp_path / "recordings"
    with pytest.raises(NasError, match="do not verify"):
        download(dest, url=partial.as_uri())
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".download-")] == []


def test_not_an_archive_and_unreachable_url_exit_2(tmp_path, capsys):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar file at all")
    assert main(["data", "download", "--url", junk.as_uri(), "--dest", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "junk.tar.gz: not a readable tar archive" in err and len(err.strip().splitlines()) == 1
    assert main(["data", "download", "--url", (tmp_path / "missing.tar.gz").as_uri(), "--dest", str(tmp_path / "b")]) == 2
    assert "download failed" in capsys.readouterr().err
