"""Reports: a study's summary, its front as rows, pareto.json / pareto.csv / trials.csv, and the
rich tables the command line prints. Everything is computed by `nas.study.pareto` and `nas.study.record`;
this module only lays it out."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from nas.device.memory import KB, Budget, format_bytes
from nas.study.confirm import ConfirmedPoint, confirmed_front
from nas.study.pareto import (
    front_hypervolume,
    select_best,
)
from nas.study.pareto import pareto_front as compute_front
from nas.study.record import TrialRecord
from nas.study.settings import StudySettings


@dataclass(frozen=True)
class StudySummary:
    name: str
    budget: Budget
    weights: str
    records: list[TrialRecord]
    front: list[TrialRecord]  # on the trials' own (single-draw) validation accuracy
    confirmed: tuple[ConfirmedPoint, ...] = ()  # trials retrained on seeds and folds (nas.study.confirm)

    @property
    def confirmed_front(self) -> list[ConfirmedPoint]:
        """The front on the confirmed points' seed means (empty before any confirmation)."""
        return confirmed_front(list(self.confirmed), self.budget)

    @property
    def finished(self) -> list[TrialRecord]:
        return [r for r in self.records if r.finished]

    @property
    def over_budget(self) -> list[TrialRecord]:
        return [r for r in self.finished if r.over_budget]

    @property
    def stopped(self) -> list[TrialRecord]:
        """Stopped at a rung (nas.study.rungs): trained part of the way."""
        return [r for r in self.finished if r.stopped]

    def hypervolume(self, part: str = "val") -> float:
        return front_hypervolume(self.records, self.budget, part)


def summarize_study(
    name: str, budget: Budget, weights: str, records: list[TrialRecord], confirmed: list[ConfirmedPoint] | tuple = ()
) -> StudySummary:  # fmt: skip
    return StudySummary(name, budget, weights, records, compute_front(records, budget), tuple(confirmed))


def read_summary(study, name: str, settings: StudySettings) -> StudySummary:
    """A stored study's summary: its trials and its confirmed points."""
    from nas.study.confirm import confirmed_points
    from nas.study.record import read_records

    records = read_records(study)
    confirmed = confirmed_points(records, study.user_attrs, settings.split)
    return summarize_study(name, settings.budget, settings.weights, records, confirmed)


def configuration_row(record: TrialRecord) -> dict:
    """A trial's configuration and bytes, as the front files and trials.csv show them."""
    model, quant = record.model_config, record.quant_config
    return {
        "cell": model.cell,
        "layers": model.layers,
        "hidden": model.hidden,
        "n_mfcc": model.n_input,
        "frontend": frontend_text(record),
        "weights": quant.weights,
        "weight_bits": quant.weight_bits,
        "state_bits": quant.state_bits,
        "total_bytes": record.total_bytes,
        "total_kb": record.total_bytes / KB,
        "flash_bytes": (record.memory or {}).get("flash_bytes"),
        "ram_bytes": (record.memory or {}).get("ram_bytes"),
        # the compute model's, on the study's --target (nas.device.compute); empty in studies before it
        "instructions_per_frame": None if record.instructions_per_frame is None else round(record.instructions_per_frame),
        "mips_for_real_time": None if record.mips_for_real_time is None else round(record.mips_for_real_time, 2),
    }


def front_row(record: TrialRecord) -> dict:
    """One trial as pareto.json and pareto.csv show it."""
    return (
        {"trial": record.number}
        | configuration_row(record)
        | {
            "val_accuracy": record.val.value,
            "val_ci95": list(record.val.interval()),
            "test_accuracy": record.test.value,
            "test_ci95": list(record.test.interval()),
            # with --speaker-folds: the selection score (validation speakers) and new voices' accuracy
            "speaker_val_accuracy": record.speaker_val.value if record.speaker_val else None,
            "held_out_speaker_accuracy": record.speaker_test.value if record.speaker_test else None,
            "held_out_speakers": list(record.held_out_speakers) if record.held_out_speakers else None,
            "scored_by": record.scored_by,
            "train_seconds": record.train_seconds,
            "learning_rate": record.params.get("learning_rate"),
            "checkpoint": record.checkpoint,
        }
    )


def confirmed_row(point: ConfirmedPoint, on_front: bool) -> dict:
    """A confirmed point as pareto.json / pareto.csv show it: means over seeds (percent)."""
    return (
        {"trial": point.record.number, "on_confirmed_front": on_front}
        | configuration_row(point.record)
        | point.to_dict()
        | {
            "learning_rate": point.record.params.get("learning_rate"),
            "trial_val_accuracy": point.record.val.value,
        }
    )


def stopped_text(record: TrialRecord, accuracy_name: str = "val") -> str:
    """Where and why a trial stopped at a rung, in words (its accuracy there is the fake-quantized
    model's, scored every epoch, not the integer engine's)."""
    accuracy = record.stopped_accuracy
    at = f" at {100 * accuracy:.2f}% {accuracy_name} (fake-quantized model)" if accuracy is not None else ""
    return f"stopped at epoch {record.stopped_at_epoch}{at}: trial {record.stopped_by} was no larger and more accurate there"


def frontend_text(record: TrialRecord) -> str:
    """The front-end's shape, as the front shows it: "128/20" (window samples / mel bands) for the
    integer front-end, "torchaudio" for float MFCC, "-" when unknown."""
    features = record.feature_config
    if features is None:
        return "-"
    return f"{features.n_fft}/{features.n_mels}" if features.integer else "torchaudio"


@dataclass(frozen=True)
class StudyListing:
    """One study of a results folder, as `nas studies` lists it."""

    name: str
    settings: StudySettings  # budget, weights, split, speaker folds, ... as the study stored them
    trials: int  # finished: trained, or pruned over budget
    best: TrialRecord | None  # the most accurate within the budget (the search's objective)


def list_studies(results_dir: Path) -> list[StudyListing]:
    """Every study under a results folder (a folder holding a `study.db` written by `nas search`),
    by name."""
    from nas.study.record import read_records
    from nas.study.settings import StudyLocation
    from nas.study.storage import load_existing_study

    listings = []
    for database in sorted(results_dir.glob("*/study.db")):
        location = StudyLocation(database.parent.name, None, results_dir)
        study, settings = load_existing_study(location)
        records = read_records(study)
        finished = sum(r.finished for r in records)
        best = select_best(records, settings.budget)
        listings.append(StudyListing(location.name, settings, finished, best))
    return listings


def trial_line(record: TrialRecord) -> str:
    """One finished trial in words, as the search prints it when it finishes."""
    if record.stopped:
        return (
            f"trial {record.number}: {record.describe()}, {frontend_text(record)} | {format_bytes(record.total_bytes)} | "
            + stopped_text(record)
            + (f" | {record.train_seconds:.0f} s" if record.train_seconds is not None else "")
        )
    if not record.trained:
        return f"trial {record.number}: {record.describe()} | {format_bytes(record.total_bytes)}: over the budget, not trained"
    line = f"trial {record.number}: {record.describe()}, {frontend_text(record)} | {format_bytes(record.total_bytes)} | "
    line += f"val {100 * record.val.value:.2f}%, test {100 * record.test.value:.2f}%"
    if record.speaker_val is not None:
        line += f" | new voices: val {100 * record.speaker_val.value:.2f}%, held-out {100 * record.speaker_test.value:.2f}%"
    return line + (f" | {record.train_seconds:.0f} s" if record.train_seconds is not None else "")


def trial_row(record: TrialRecord, summary: StudySummary) -> dict:
    """Any trial as trials.csv shows it: its state and where it stands against the budget and the
    front; a trial that did not train (pruned over budget, failed, running) has empty accuracies."""
    on_front = {r.number for r in summary.front}
    row = {"trial": record.number, "state": record.state, "over_budget": record.over_budget}
    row["within_budget"] = record.trained and record.within(summary.budget)
    row["on_front"] = record.number in on_front
    row |= {"stopped_at_epoch": record.stopped_at_epoch, "stopped_by": record.stopped_by, "stopped_val_accuracy": record.stopped_accuracy}
    point = next((p for p in summary.confirmed if p.record.number == record.number), None)
    row |= {"confirmed": point is not None, "on_confirmed_front": point is not None and point in summary.confirmed_front}
    if point is not None:
        values = point.to_dict()
        row |= {key: values[key] for key in ("val_mean", "test_mean", "held_out_mean", "seeds")}
    if record.trained:
        return row | front_row(record)
    if record.stopped and record.model_config is not None:  # its configuration, no final accuracies
        return row | configuration_row(record) | {"train_seconds": record.train_seconds}
    return row | {"total_bytes": record.total_bytes, "configuration": record.describe()}


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV, each 95% interval as two columns (low, high); columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    flat_columns = []
    for column in columns or ["trial"]:
        flat_columns += [f"{column}_low", f"{column}_high"] if column.endswith("_ci95") else [column]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=flat_columns)
        writer.writeheader()
        for row in rows:
            flat = {}
            for key, value in row.items():
                if key.endswith("_ci95"):
                    flat[f"{key}_low"], flat[f"{key}_high"] = value
                else:
                    flat[key] = ";".join(map(str, value)) if isinstance(value, list) else value
            writer.writerow(flat)


def front_document(summary: StudySummary) -> dict:
    """pareto.json: the study's budget, its confirmed points and its front."""
    front_numbers = {p.record.number for p in summary.confirmed_front}
    confirmed = [confirmed_row(p, p.record.number in front_numbers) for p in sorted(summary.confirmed, key=lambda p: p.total_bytes)]
    return {
        "study": summary.name,
        "budget_bytes": summary.budget.limit_bytes,
        "budget_scope": summary.budget.scope,
        # the confirmed points (means over seeds, nas.study.confirm) when the study has any; `front` is
        # always the trials' own single-draw front
        "confirmed": confirmed,
        "front": [front_row(r) for r in summary.front],
    }


def study_document(summary: StudySummary, settings: StudySettings) -> dict:
    """`nas pareto --json` and `nas search --json`: pareto.json, the study's settings and counts."""
    return front_document(summary) | {
        "settings": asdict(settings),
        "finished_trials": len(summary.finished),
        "over_budget_trials": len(summary.over_budget),
        "stopped_trials": len(summary.stopped),
        "val_hypervolume": summary.hypervolume(),
    }


def listing_document(listing: StudyListing) -> dict:
    """One study of `nas studies --json`."""
    best = listing.best
    return {"study": listing.name, "settings": asdict(listing.settings), "finished_trials": listing.trials,
            "best": front_row(best) if best is not None else None}  # fmt: skip


def write_front_files(summary: StudySummary, folder: Path) -> list[dict]:
    """pareto.json, pareto.csv (the front) and trials.csv (every trial) in the study folder;
    returns the front's rows. (The page is `nas.report.studypage`'s.)"""
    document = front_document(summary)
    rows, confirmed = document["front"], document["confirmed"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pareto.json").write_text(json.dumps(document, indent=2) + "\n")
    _write_csv(folder / "pareto.csv", [row for row in confirmed if row["on_confirmed_front"]] if confirmed else rows)
    _write_csv(folder / "trials.csv", [trial_row(r, summary) for r in summary.records])
    return rows
