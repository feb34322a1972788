"""The rich tables the command line prints: a study's front and confirmed points, memory, cross-validation,
confusion, the data and training runs. Laid out only; `nas.report.report` and the library compute.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from nas.core.stats import Accuracy
from nas.device.memory import KB, MemoryBreakdown, format_bytes
from nas.device.regions import FLASH, RAM
from nas.report.report import StudyListing, StudySummary, frontend_text


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
    points = f"{len(summary.front)} points; MIPS on {summary.budget.target}"
    title = f"Pareto front of '{summary.name}' within {summary.budget.describe()} ({points})"
    table = Table(title=title)
    columns = ["trial", "cell", "layers", "hidden", "n_mfcc", "fft/mels", "scheme", "bits", "kB (bytes)", "MIPS"]
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
            "-" if record.mips_for_real_time is None else f"{record.mips_for_real_time:.1f}",
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


def seed_runs_table(outcome) -> Table:
    """One row per seed of a `nas.training.seeds.TrainRuns`: integer-engine scores for a quantized model."""
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
