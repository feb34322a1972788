from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nas.core.errors import NasError
from nas.data.dataset import (
    Recording,
    find_data_dir,
    fold_speakers,
    list_recordings,
    load_split,
    make_split,
    parse_name,
    read_checksums,
    read_wav,
    validation_speaker,
)
from nas.data.verify import verify_data
from tests.conftest import link_subset, write_wav


@pytest.mark.parametrize(
    ("name", "expected"),
    [("0_george_0.wav", (0, "george", 0)), ("9_yweweler_49.wav", (9, "yweweler", 49)), ("3_theo_12.wav", (3, "theo", 12))],
)
def test_parse_name_accepts_fsdd_names(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "10_george_0.wav",
        "a_george_0.wav",
        "0-george-0.wav",
        "0_george.wav",
        "0_george_0.mp3",
        "0_George_0.wav",
        "0_george_01.wav",
        "0__0.wav",
    ],
)
def test_parse_name_rejects_others(name):
    with pytest.raises(NasError, match="does not parse"):
        parse_name(name)


def test_official_split_counts_and_rules(fsdd_dir):
    split = make_split(list_recordings(fsdd_dir), "official")
    assert (len(split.train), len(split.val), len(split.test)) == (2400, 300, 300)
    assert {r.index for r in split.test} == set(range(5))
    assert {r.index for r in split.val} == set(range(5, 10))
    assert {r.index for r in split.train} == set(range(10, 50))
    for part in split.parts().values():
        assert Counter(r.digit for r in part) == Counter({d: len(part) // 10 for d in range(10)})


@pytest.mark.parametrize(("speaker", "validation"), [("theo", "yweweler"), ("george", "jackson"), ("yweweler", "george")])
def test_speaker_split_keeps_speakers_apart(fsdd_dir, speaker, validation):
    """Test: every file of NAME; validation: every file of the next speaker (alphabetically,
    cyclic); train: the other four. No speaker is in two parts."""
    split = make_split(list_recordings(fsdd_dir), f"speaker:{speaker}")
    assert len(split.test) == 500 and {r.speaker for r in split.test} == {speaker}
    assert len(split.val) == 500 and {r.speaker for r in split.val} == {validation}
    train_speakers = {r.speaker for r in split.train}
    assert len(split.train) == 2000 and len(train_speakers) == 4 and not train_speakers & {speaker, validation}
    assert {r.index for r in split.train} == set(range(50))


@pytest.mark.parametrize("split_name", ["official", "speaker:lucas"])
def test_splits_do_not_overlap_cover_everything_and_are_deterministic(fsdd_dir, split_name):
    recordings = list_recordings(fsdd_dir)
    split = make_split(recordings, split_name)
    names = [{r.name for r in part} for part in split.parts().values()]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert set().union(*names) == {r.name for r in recordings}
    shuffled = list(recordings)
    np.random.default_rng(1).shuffle(shuffled)
    assert make_split(shuffled, split_name) == split


def test_fold_speakers_spread_over_the_speakers():
    """--speaker-folds K holds out K speakers spread over the alphabet; while K is at most half of
    them, no fold's validation speaker is another fold's held-out speaker."""
    known = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert fold_speakers(known, 1) == ["george"]
    assert fold_speakers(known, 2) == ["george", "nicolas"]
    assert fold_speakers(known, 3) == ["george", "lucas", "theo"]
    assert fold_speakers(list(reversed(known)), 6) == known
    for count in (1, 2, 3):
        held_out = fold_speakers(known, count)
        assert not {validation_speaker(s, known) for s in held_out} & set(held_out)


def test_unknown_split_and_speaker_are_rejected(fsdd_dir):
    recordings = list_recordings(fsdd_dir)
    with pytest.raises(NasError, match="unknown speaker 'zoe'; expected one of george"):
        make_split(recordings, "speaker:zoe")
    with pytest.raises(NasError, match="unknown split"):
        make_split(recordings, "random")
    two = [r for r in recordings if r.speaker in ("theo", "george")]
    with pytest.raises(NasError, match="needs at least 3 speakers"):
        make_split(two, "speaker:theo")


def test_data_dir_precedence(tmp_path, monkeypatch):
    flag, env = tmp_path / "flag", tmp_path / "env"
    flag.mkdir()
    env.mkdir()
    monkeypatch.setenv("NAS_DATA_DIR", str(env))
    assert find_data_dir(flag) == flag
    assert find_data_dir(None) == env
    monkeypatch.delenv("NAS_DATA_DIR")
    project = tmp_path / "project" / "recordings"
    monkeypatch.setattr("nas.data.dataset.PROJECT_DATA_DIR", project)
    with pytest.raises(NasError, match=r"project data folder does not exist.*nas data download"):
        find_data_dir(None)
    project.mkdir(parents=True)
    assert find_data_dir(None) == project
    with pytest.raises(NasError, match=r"missing.*--data-dir does not exist"):
        find_data_dir(tmp_path / "missing")


def test_read_real_recording(fsdd_dir):
    wave = read_wav(Recording("theo", 3, 12, fsdd_dir / "3_theo_12.wav"))
    assert wave.samples.dtype == np.int16 and len(wave.samples) == 2061
    assert len(wave.sha256) == 64


def _recording(path):
    digit, speaker, index = parse_name(path.name)
    return Recording(speaker, digit, index, path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 16000}, "sample rate 16000 Hz, expected 8000 Hz"),
        ({"channels": 2}, "2 channels, expected mono"),
    ],
)
def test_wrong_wav_formats_are_named(tmp_path, kwargs, message):
    path = write_wav(tmp_path / "1_test_0.wav", **kwargs)
    with pytest.raises(NasError, match=message) as caught:
        read_wav(_recording(path))
    assert str(caught.value).startswith(str(path))


ENCODINGS = [("WAV", "PCM_U8", 256), ("WAV", "PCM_24", 0), ("WAV", "FLOAT", 0), ("FLAC", "PCM_16", 0)]  # tolerance: one 8-bit step


@pytest.mark.parametrize(("audio_format", "subtype", "tolerance"), ENCODINGS)
def test_other_encodings_are_read_as_16_bit_pcm(tmp_path, audio_format, subtype, tolerance):
    """soundfile reads what libsndfile reads (8-, 24-bit and float WAV, FLAC), scaled to int16;
    an 8-bit file keeps its top 8 bits only (libsndfile truncates when it writes one)."""
    import soundfile

    samples = (np.sin(np.arange(4000) / 5) * 20000).astype(np.int16)
    path = tmp_path / f"1_test_0.{audio_format.lower()}"
    soundfile.write(path, samples.astype(np.float64) / 32768, 8000, subtype=subtype, format=audio_format)
    decoded = read_wav(_recording(path)).samples
    assert decoded.dtype == np.int16 and len(decoded) == len(samples)
    assert np.abs(decoded.astype(int) - samples).max() <= tolerance


def test_sixteen_bit_pcm_is_taken_as_it_is(fsdd_dir):
    import wave

    path = fsdd_dir / "7_jackson_3.wav"
    with wave.open(str(path)) as reader:
        expected = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    assert np.array_equal(read_wav(_recording(path)).samples, expected)


def test_truncated_and_non_wav_files(tmp_path):
    whole = write_wav(tmp_path / "1_test_0.wav").read_bytes()
    cut = tmp_path / "1_test_1.wav"
    cut.write_bytes(whole[: len(whole) - 1000])
    with pytest.raises(NasError, match="truncated WAV: header declares 2000 samples, file holds 1500"):
        read_wav(_recording(cut))
    header_only = tmp_path / "1_test_2.wav"
    header_only.write_bytes(whole[:20])
    with pytest.raises(NasError, match="not a readable audio file"):
        read_wav(_recording(header_only))
    text = tmp_path / "1_test_3.wav"
    text.write_text("this is not audio\n")
    with pytest.raises(NasError, match="not a readable audio file"):
        read_wav(_recording(text))
    empty = write_wav(tmp_path / "1_test_4.wav", samples=np.zeros(0, np.int16))
    with pytest.raises(NasError, match="holds no samples"):
        read_wav(_recording(empty))


def test_listing_rejects_bad_names_and_empty_folders(tmp_path):
    with pytest.raises(NasError, match=r"no \.wav files found"):
        list_recordings(tmp_path)
    write_wav(tmp_path / "1_test_0.wav")
    write_wav(tmp_path / "recording.wav")
    with pytest.raises(NasError, match=r"recording.wav: file name does not parse"):
        list_recordings(tmp_path)


def test_missing_digit_is_an_error(fsdd_dir, tmp_path):
    subset = link_subset(fsdd_dir, tmp_path / "no7", lambda name: not name.startswith("7_"))
    with pytest.raises(NasError, match=r"no recordings of digit\(s\) 7; expected all digits 0-9"):
        load_split(subset, "official")


def test_verify_full_dataset_matches_checksums(fsdd_dir):
    report = verify_data(fsdd_dir)
    assert report.ok, report.problems
    assert report.checksums_matched == 3000 and len(report.waveforms) == 3000
    assert len(read_checksums(report.checksum_file)) == 3000


def test_verify_reports_every_problem(fsdd_dir, tmp_path):
    subset = link_subset(fsdd_dir, tmp_path / "data", lambda name: name.endswith("_1.wav"))
    (subset / "0_george_1.wav").unlink()
    (subset / "0_george_1.wav").write_bytes((fsdd_dir / "0_george_2.wav").read_bytes())  # wrong content
    write_wav(subset / "5_zed_0.wav")  # not part of FSDD
    (subset / "bad name.wav").write_bytes(b"")
    report = verify_data(subset)
    text = "\n".join(report.problems)
    assert "0_george_1.wav: checksum mismatch" in text
    assert "5_zed_0.wav: not listed in" in text
    assert "bad name.wav: file name does not parse" in text
    assert "files listed in" in text and "are missing" in text
    assert not verify_data(subset, allow_subset=True).ok  # the bad files stay bad
    clean = link_subset(fsdd_dir, tmp_path / "clean", lambda name: name.endswith("_1.wav"))
    assert verify_data(clean, allow_subset=True).ok
