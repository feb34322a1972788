"""Reports: a study's summary, its front as rows, pareto.json / pareto.csv / trials.csv, and the
rich tables the command line prints. Everything is computed by `nas.study.pareto` and `nas.study.record`;
this module only lays it out."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from nas.core.stats import Accuracy
from nas.device.memory import KB, Budget, MemoryBreakdown, format_bytes
from nas.device.regions import FLASH, RAM
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
    from nas.study.optimize import load_existing_study
    from nas.study.record import read_records
    from nas.study.settings import StudyLocation

    listings = []
    for database in sorted(results_dir.glob("*/study.db")):
        location = StudyLocation(database.parent.name, None, results_dir)
        study, settings = load_existing_study(location)
        records = read_records(study)
        finished = sum(r.finished for r in records)
        best = select_best(records, settings.budget)
        listings.append(StudyListing(location.name, settings, finished, best))
    return listings


def studies_table(listings: list[StudyListing], results_dir: Path) -> Table:
    table = Table(title=f"Studies under {results_dir} ({len(listings)})")
    for column in ("study", "budget", "weights", "split", "finished trials", "best within budget", "its test"):
        table.add_column(column, justify="right" if column in ("finished trials",) else "left")
    for listing in listings:
        best, settings = listing.best, listing.settings
        selection = "val (new voices)" if settings.speaker_folds else "val"
        table.add_row(
            listing.name,
            settings.budget.describe(),
            settings.weights or "-",
            settings.split + (f", {settings.speaker_folds} speaker folds" if settings.speaker_folds else ""),
            str(listing.trials),
            f"trial {best.number}: {100 * best.score.value:.2f}% {selection} at {format_bytes(best.total_bytes)}" if best else "-",
            f"{100 * best.test.value:.2f}%" if best else "-",
        )
    return table


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


def write_front_files(summary: StudySummary, folder: Path) -> list[dict]:
    """pareto.json, pareto.csv (the front) and trials.csv (every trial) in the study folder;
    returns the front's rows. (The page is `nas.report.studypage`'s.)"""
    rows = [front_row(r) for r in summary.front]
    front_numbers = {p.record.number for p in summary.confirmed_front}
    confirmed = [confirmed_row(p, p.record.number in front_numbers) for p in sorted(summary.confirmed, key=lambda p: p.total_bytes)]
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "study": summary.name,
        "budget_bytes": summary.budget.limit_bytes,
        "budget_scope": summary.budget.scope,
        # the confirmed points (means over seeds, nas.study.confirm) when the study has any; `front` is
        # always the trials' own single-draw front
        "confirmed": confirmed,
        "front": rows,
    }
    (folder / "pareto.json").write_text(json.dumps(document, indent=2) + "\n")
    _write_csv(folder / "pareto.csv", [row for row in confirmed if row["on_confirmed_front"]] if confirmed else rows)
    _write_csv(folder / "trials.csv", [trial_row(r, summary) for r in summary.records])
    return rows


# ---------------------------------------------------------------------------------- terminal
def interval_text(accuracy: Accuracy) -> str:
    low, high = accuracy.interval()
    return f"{100 * accuracy.value:.2f}% [{100 * low:.1f}-{100 * high:.1f}]"


def mean_text(mean: tuple[float, float, float] | None) -> str:
    return "-" if mean is None else f"{mean[0]:.2f}% [{mean[1]:.1f}-{mean[2]:.1f}]"


def confirmed_table(summary: StudySummary) -> Table:
    """The confirmed front: each point's means over seeds beside the trial's own draw."""
    front = summary.confirmed_front
    seeds = sorted({len(p.runs) for p in front})
    title = (
        f"Confirmed Pareto front of '{summary.name}' within {summary.budget.describe()} ({len(front)} of {len(summary.confirmed)} "
        f"confirmed points; means over {'/'.join(map(str, seeds))} seeds, 95% t-intervals)"
    )
    table = Table(title=title)
    speakers = sorted({s for p in front for s in p.held_out_speakers})
    held = f"held-out speakers ({', '.join(speakers)})" if speakers else "held-out speakers"
    columns = ["trial", "configuration", "fft/mels", "kB (bytes)", "val mean", "official test mean", held]
    columns += ["trial's own val", "exported seed"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("configuration",) else "right")
    for point in front:
        record = point.record
        table.add_row(
            str(record.number),
            record.describe(),
            frontend_text(record),
            f"{record.total_bytes / KB:.2f} ({record.total_bytes:,})",
            mean_text(point.mean("val")),
            mean_text(point.mean("test")),
            mean_text(point.held_out()),
            f"{100 * record.score.value:.2f}%",
            str(point.export_run().seed),
        )
    return table


def front_table(summary: StudySummary) -> Table:
    title = f"Pareto front of '{summary.name}' within {summary.budget.describe()} ({len(summary.front)} points)"
    table = Table(title=title)
    columns = ["trial", "cell", "layers", "hidden", "n_mfcc", "fft/mels", "scheme", "bits", "kB (bytes)"]
    columns += ["val acc [95% CI]", "test acc [95% CI]"]
    # --speaker-folds: the objective is the folds' validation speakers; new voices' test beside the official one
    folds = any(r.speaker_val is not None for r in summary.front)
    if folds:
        columns += ["new voices: val (objective)", "new voices: held-out test"]
    for column in [*columns, "train"]:
        table.add_column(column, justify="left" if column in ("cell", "scheme") else "right")
    for record in summary.front:
        model, quant = record.model_config, record.quant_config
        table.add_row(
            str(record.number),
            model.cell,
            str(model.layers),
            str(model.hidden),
            str(model.n_input),
            frontend_text(record),
            quant.weights,
            str(quant.weight_bits),
            f"{record.total_bytes / KB:.2f} ({record.total_bytes:,})",
            interval_text(record.val),
            interval_text(record.test),
            *([interval_text(record.speaker_val), interval_text(record.speaker_test)] if folds else []),
            f"{record.train_seconds:.0f} s" if record.train_seconds is not None else "-",
        )
    return table


def breakdown_table(breakdown: MemoryBreakdown, title: str) -> Table:
    table = Table(title=title)
    for column in ("part", "item", "values", "bits", "bytes"):
        table.add_column(column, justify="left" if column in ("part", "item") else "right")
    for region in (FLASH, RAM):
        for item in breakdown.items:
            if item.region == region:
                table.add_row(f"{region}: {item.category}", item.name, f"{item.count:,}", str(item.bits), f"{item.nbytes:,}")
        table.add_section()
    for label, value in breakdown.to_dict().items():
        if label != "total_bytes":
            table.add_row(label, "", "", "", f"{value:,}", style="bold" if label in ("flash_bytes", "ram_bytes") else None)
    table.add_row("total_bytes", format_bytes(breakdown.total_bytes), "", "", f"{breakdown.total_bytes:,}", style="bold")
    return table


def crossval_table(result) -> Table:
    """Per held-out speaker: its validation speaker, test accuracy per seed and the mean."""
    plan = result.plan
    table = Table(title=f"leave-one-speaker-out: {len(plan.speakers)} folds, seeds {', '.join(map(str, plan.seeds))}")
    for column in ("held-out speaker", "validation speaker", *[f"test, seed {s}" for s in plan.seeds], "mean test", "mean val"):
        table.add_column(column, justify="left" if "speaker" in column else "right")
    for speaker in plan.speakers:
        folds = [result.fold(speaker, seed) for seed in plan.seeds]
        table.add_row(
            speaker,
            folds[0].validation_speaker,
            *[f"{100 * f.test.value:.2f}% ({f.test.correct}/{f.test.total})" for f in folds],
            f"{result.speaker_mean(speaker):.2f}%",
            f"{result.speaker_mean(speaker, 'val'):.2f}%",
        )
    table.add_section()
    means = result.seed_means()
    table.add_row("mean", "", *[f"{m:.2f}%" for m in means], f"{result.mean()[0]:.2f}%", f"{result.mean('val')[0]:.2f}%", style="bold")
    return table


def confusion_table(matrix) -> Table:
    table = Table(title="confusion matrix (rows: true digit, columns: predicted)")
    table.add_column("true")
    for digit in range(len(matrix)):
        table.add_column(str(digit), justify="right")
    for digit, row in enumerate(matrix):
        table.add_row(str(digit), *[(f"[bold]{v}[/bold]" if i == digit else (f"[red]{v}[/red]" if v else "·")) for i, v in enumerate(row)])
    return table


# ------------------------------------------------------------------------------------- data
def recordings_table(recordings, durations: dict[str, float] | None = None, title: str = "FSDD recordings") -> Table:
    """Files per speaker and digit, with durations."""
    from collections import Counter

    counts = Counter((r.speaker, r.digit) for r in recordings)
    speakers = sorted({r.speaker for r in recordings})
    table = Table(title=title)
    for column in ["speaker", *map(str, range(10)), "files", *(("min s", "mean s", "max s") if durations is not None else ())]:
        table.add_column(column, justify="left" if column == "speaker" else "right")

    def stats(rows) -> list[str]:
        values = [durations[r.name] for r in rows]
        return [f"{min(values):.2f}", f"{sum(values) / len(values):.2f}", f"{max(values):.2f}"] if values else ["-"] * 3

    for speaker in speakers:
        mine = [r for r in recordings if r.speaker == speaker]
        table.add_row(speaker, *[str(counts[(speaker, d)]) for d in range(10)], str(len(mine)), *(stats(mine) if durations else ()))
    totals = [str(sum(counts[(s, d)] for s in speakers)) for d in range(10)]
    table.add_row("all", *totals, str(len(recordings)), *(stats(recordings) if durations else ()), style="bold")
    return table


def split_table(split, where: str) -> Table:
    from collections import Counter

    table = Table(title=f"split '{split.name}' of {where}")
    for column in ("part", "files", "speakers", "indices", "files per digit"):
        table.add_column(column, justify="right" if column == "files" else "left")
    for name, part in split.parts().items():
        per_digit = Counter(r.digit for r in part)
        indices = sorted({r.index for r in part})
        index_text = f"{indices[0]}-{indices[-1]}" if indices else "-"
        gaps = indices and len(indices) != indices[-1] - indices[0] + 1
        speakers = ", ".join(sorted({r.speaker for r in part}))
        table.add_row(
            name, str(len(part)), speakers, index_text + (" (gaps)" if gaps else ""), " ".join(str(per_digit[d]) for d in range(10))
        )
    return table


def recording_table(wave, frames) -> Table:
    table = Table(title=wave.recording.name, show_header=False)
    for key, value in [
        ("digit", wave.recording.digit),
        ("speaker", wave.recording.speaker),
        ("index", wave.recording.index),
        ("samples", f"{len(wave.samples):,} ({wave.duration_s:.3f} s at 8 kHz)"),
        ("peak amplitude", f"{int(abs(wave.samples.astype(int)).max())} of 32767"),
        ("MFCC frames", f"{len(frames)} x {frames.shape[1]} (default features: the integer front-end)"),
        ("sha256", wave.sha256),
    ]:
        table.add_row(key, str(value))
    return table


# ---------------------------------------------------------------------------------- training
def seed_runs_table(outcome) -> Table:
    """One row per seed of a `nas.training.train.TrainRuns`: integer-engine scores for a quantized model."""
    plan = outcome.plan
    quantized = plan.quant.quantized
    table = Table(title=f"{plan.model_config.describe()}, {plan.quant.describe()}, split '{plan.split}'")
    columns = ["seed", "best epoch"]
    columns += (
        ["int val accuracy", "int test accuracy", "fake-quant test", "agree"]
        if quantized
        else ["val accuracy", "test accuracy", "PTQ int8 test"]
    )
    for column in [*columns, "epoch time", "checkpoint"]:
        table.add_column(column, justify="left" if column == "checkpoint" else "right")
    for run in outcome.runs:
        result = run.result
        row = [str(run.seed), f"{result.best_epoch}/{len(result.history)}"]
        if quantized:
            integer = result.integer
            row += [str(integer.val), str(integer.test), f"{100 * result.test.value:.2f}%", f"{100 * integer.test_agreement:.1f}%"]
        else:
            row += [str(result.val), str(result.test), f"{100 * result.post_training_int8.test.value:.2f}%"]
        table.add_row(*row, f"{result.mean_epoch_seconds:.2f} s", str(run.checkpoint))
    return table
