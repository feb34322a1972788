"""What an export is made from: the trial that --trial, --best or --max-kb chooses in a study (a
confirmed point first), or a checkpoint of `nas train`, with the integer engine's scores of that model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from nas.core.errors import NasError
from nas.device.memory import Budget, budget_bytes_from_kb
from nas.study.confirm import ConfirmedPoint, confirmed_record, select_confirmed
from nas.study.pareto import select_best
from nas.study.record import TrialRecord, read_records
from nas.training.checkpoint import load_checkpoint
from nas.training.scoring import SCORED_BY_ENGINE


def export_limit(budget: Budget, max_kb: float | None) -> Budget:
    """The study's budget, or --max-kb K within it."""
    return budget if max_kb is None else replace(budget, limit_bytes=min(budget.limit_bytes, budget_bytes_from_kb(max_kb)))


def select_record(records: list[TrialRecord], budget: Budget, trial: int | None, max_kb: float | None, study_name: str) -> TrialRecord:
    """--trial N; --best (the most accurate on validation within the budget; the smaller on a
    tie); --max-kb K (the same within K kB and the budget)."""
    if trial is not None:
        by_number = {r.number: r for r in records}
        if trial not in by_number:
            raise NasError(f"--trial {trial}: no such trial in study '{study_name}' (it has trials 0-{len(records) - 1})")
        chosen = by_number[trial]
        if not chosen.trained:
            raise NasError(f"--trial {trial}: the trial is {chosen.state}, not complete; expected a trained trial")
        return chosen
    limit = export_limit(budget, max_kb)
    best = select_best(records, limit)
    if best is None:
        if max_kb is not None:
            raise NasError(f"--max-kb {max_kb:g}: no finished trial fits within {limit.describe()}")
        raise NasError(f"study '{study_name}': no finished trial within the budget")
    return best


def select_export(
    records: list[TrialRecord], points: list[ConfirmedPoint], budget: Budget, trial: int | None, max_kb: float | None, study_name: str
) -> tuple[TrialRecord, ConfirmedPoint | None]:  # fmt: skip
    """What `nas export` writes. Once a study has confirmed points, --best and --max-kb choose
    among them on the mean validation accuracy over seeds, and a confirmed trial (also by --trial
    N) is exported as its seed closest to that mean (nas.study.confirm); before that, `select_record`.
    A --max-kb below every confirmed point still gets a model: the best unconfirmed trial within it
    (returned without a point, so the caller can say it is one draw)."""
    if trial is None and points:
        point = select_confirmed(points, export_limit(budget, max_kb))
        if point is not None:
            return confirmed_record(point), point
    record = select_record(records, budget, trial, max_kb, study_name)
    point = next((p for p in points if p.record.number == record.number), None)
    return (confirmed_record(point), point) if point is not None else (record, None)


@dataclass(frozen=True)
class StudyExport:
    """What `nas export --trial/--best/--max-kb` (and `nas.export` of a study) exports: the trial's
    record with a checkpoint on this host, its confirmed point if it has one, and every confirmed
    point of the study (so the caller can say why an unconfirmed trial was chosen)."""

    record: TrialRecord
    point: ConfirmedPoint | None
    points: list[ConfirmedPoint]

    @property
    def source(self) -> ExportSource:
        return trial_export_source(self.record)

    @property
    def confirmed(self) -> dict | None:
        return self.point.to_dict() if self.point is not None else None


def select_study_export(location, trial: int | None, max_kb: float | None, artifacts: str | None = None) -> StudyExport:
    """`select_export` on a stored study; a trial's own checkpoint is fetched from the study's
    artifact store when another host trained it (a confirmed point's runs are on this host)."""
    from nas.study.artifacts import local_checkpoint, study_store
    from nas.study.confirm import confirmed_points
    from nas.study.storage import load_existing_study

    study, settings = load_existing_study(location)
    records = read_records(study)
    points = confirmed_points(records, study.user_attrs, settings.split)
    record, point = select_export(records, points, settings.budget, trial, max_kb, location.name)
    if point is None:
        record = replace(record, checkpoint=str(local_checkpoint(record, study_store(study, artifacts), location)))
    return StudyExport(record, point, points)


def trial_export_source(record: TrialRecord) -> ExportSource:
    """A study trial as an export's source: its checkpoint and the integer engine's scores."""
    accuracy = {
        "scored_by": record.scored_by,
        "val_correct": record.val.correct,
        "val_total": record.val.total,
        "test_correct": record.test.correct,
        "test_total": record.test.total,
    }
    return ExportSource(Path(record.checkpoint or ""), accuracy, record.number, f"--trial {record.number}")


@dataclass(frozen=True)
class ExportSource:
    """What an export is made from: a checkpoint and the integer engine's scores of that model."""

    checkpoint: Path
    accuracy: dict  # scored_by, val_correct, val_total, test_correct, test_total
    trial: int | None  # the study trial, or None for a checkpoint of `nas train`
    named_by: str  # the option that chose it, for messages


def checkpoint_source(path: Path) -> ExportSource:
    """`nas export --checkpoint PATH`: a checkpoint written by `nas train` (seedN.pt), with the
    integer engine's scores that training stored in it."""
    metrics = load_checkpoint(path).get("metrics")
    if metrics is None:
        raise NasError(
            f"--checkpoint {path}: holds no final scores (its training did not finish); finish it with: nas train --resume {path}"
        )
    if "int_val_correct" not in metrics:
        raise NasError(
            f"--checkpoint {path}: a float32 model has no integer model to export; expected one trained with --weights fixed or pow2"
        )
    accuracy = {"scored_by": SCORED_BY_ENGINE}
    accuracy |= {f"{part}_{count}": metrics[f"int_{part}_{count}"] for part in ("val", "test") for count in ("correct", "total")}
    return ExportSource(path, accuracy, None, f"--checkpoint {path}")
