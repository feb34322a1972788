"""Trial checkpoints in Optuna's artifact store, so that any host can export any trial.

A worker trains with its checkpoint in its own results folder (written every epoch, for a resume)
and, when the trial is done, uploads it to the study's artifact store; the trial keeps the
artifact's id. A study's store is fixed when the study is created (`--artifacts`, default
`<results-dir>/<study>/artifacts` of the creating host) and stored with it, so every host and every
later command finds it; a host that mounts a shared folder elsewhere passes `--artifacts` to say
where. Readers use the local checkpoint when it is there, else download the artifact once into
their own results folder.

Where: a folder (Optuna's FileSystemArtifactStore; a shared mount for several hosts),
`s3://BUCKET` (Boto3ArtifactStore, needs boto3) or `gs://BUCKET` (GCSArtifactStore, needs
google-cloud-storage).
"""

from __future__ import annotations

from pathlib import Path

from nas.core.errors import NasError
from nas.study.settings import StudyLocation

ARTIFACTS_ATTR = "artifact_store"  # the study's user attribute that holds where its artifacts are


def default_store(location: StudyLocation) -> str:
    return str((location.study_dir / "artifacts").resolve())


def open_store(where: str, create: bool = False):
    """An Optuna artifact store from a folder path, s3://BUCKET or gs://BUCKET; `create` makes the
    folder (a writer does; a reader must not hide a missing mount behind an empty folder)."""
    from optuna import artifacts

    try:
        if where.startswith("s3://"):
            return artifacts.Boto3ArtifactStore(where.removeprefix("s3://").strip("/"))
        if where.startswith("gs://"):
            return artifacts.GCSArtifactStore(where.removeprefix("gs://").strip("/"))
        if create:
            Path(where).mkdir(parents=True, exist_ok=True)
        return artifacts.FileSystemArtifactStore(Path(where))
    except (ImportError, OSError) as error:
        raise NasError(f"--artifacts {where}: cannot open the store ({error}); expected a writable folder, s3:// or gs://") from None


def study_store(study, override: str | None = None) -> str | None:
    """Where a study keeps its artifacts: this host's override, else what the study stored."""
    return override or study.user_attrs.get(ARTIFACTS_ATTR)


def upload_checkpoint(trial, path: Path, where: str) -> str:
    """Upload a finished trial's checkpoint; returns the artifact id the trial record keeps."""
    from optuna.artifacts import upload_artifact

    store = open_store(where, create=True)
    try:
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
    except Exception as error:  # the stores raise their own types (no space, no access, network)
        raise NasError(f"--artifacts {where}: cannot store trial {trial.number}'s checkpoint ({type(error).__name__}: {error})") from None


def local_checkpoint(record, where: str | None, location: StudyLocation) -> Path:
    """A trial's checkpoint on this host: the file it was trained into when this host trained it,
    else its artifact, downloaded once into this host's study folder."""
    if record.checkpoint and Path(record.checkpoint).is_file():
        return Path(record.checkpoint)
    target = location.study_dir / f"trial-{record.number:04d}" / "model.pt"
    if target.is_file():
        return target
    if record.checkpoint_artifact is None or where is None:
        raise NasError(
            f"--trial {record.number}: its checkpoint {record.checkpoint} is not on this host and the trial has no artifact "
            "(trained before checkpoints were uploaded); export it on the host that trained it"
        )
    from optuna.artifacts import download_artifact

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.unlink(missing_ok=True)
    try:
        download_artifact(artifact_store=open_store(where), file_path=str(partial), artifact_id=record.checkpoint_artifact)
    except Exception as error:  # the stores raise their own types (missing file, no access, network)
        raise NasError(f"--artifacts {where}: cannot fetch trial {record.number}'s checkpoint ({type(error).__name__}: {error})") from None
    partial.rename(target)
    return target
