"""`nas report`: one self-contained page of a study. The Pareto chart, the search's history, the
memory of each front point, the confusion matrices of the most accurate trial within the budget
and a sortable table of every trial; all read from the study's storage (no data, no training).
"""

from __future__ import annotations

from nas.core.stats import Accuracy
from nas.device.memory import KB, format_bytes
from nas.report.figures import compute_figure, confusion_figure, front_figure, history_figure, memory_figure, study_label
from nas.report.htmlpage import Cell, Page
from nas.report.report import StudySummary, frontend_text
from nas.study.pareto import FRONT, GROUPS, classify, compute_plot_data, front_plot_data, history_plot_data, select_best
from nas.study.record import TrialRecord
from nas.study.settings import StudySettings

TRIAL_COLUMNS = [
    "trial",
    "state",
    "where",
    "cell",
    "layers",
    "hidden",
    "MFCC",
    "front-end",
    "weights",
    "bits",
    "flash (B)",
    "RAM (B)",
    "total (kB)",
    "MIPS",
    "val accuracy (%)",
    "val 95% interval",
    "test accuracy (%)",
    "test 95% interval",
    "new voices: val speakers (%)",
    "new voices: held-out speakers (%)",
    "epochs (best/run)",
    "train time (s)",
]


def objective_name(settings: StudySettings) -> str:
    return "validation-speaker accuracy (new voices)" if settings.speaker_folds else "validation accuracy"


def _accuracy_cells(accuracy: Accuracy | None) -> list[Cell]:
    if accuracy is None:
        return [Cell("", float("nan")), Cell("")]
    low, high = accuracy.interval()
    return [Cell(f"{100 * accuracy.value:.2f}", 100 * accuracy.value), Cell(f"{100 * low:.1f}-{100 * high:.1f}")]


def _number(value: float | int | None, text: str | None = None) -> Cell:
    return Cell("" if value is None else (text or f"{value:,}"), float("nan") if value is None else float(value))


def trial_cells(record: TrialRecord, where: str) -> list[Cell]:
    """One trial as a row of the table (TRIAL_COLUMNS)."""
    model, quant, memory = record.model_config, record.quant_config, record.memory or {}
    new_voices = _accuracy_cells(record.speaker_val)[:1] + _accuracy_cells(record.speaker_test)[:1]
    epochs = f"{record.best_epoch}/{record.epochs_run}" if record.epochs_run is not None else ""
    return [
        _number(record.number, str(record.number)),
        Cell(record.state),
        Cell(where),
        Cell(model.cell if model else ""),
        _number(model.layers if model else None),
        _number(model.hidden if model else None),
        _number(model.n_input if model else None),
        Cell(frontend_text(record)),
        Cell(quant.weights if quant else ""),
        _number(quant.weight_bits if quant else None),
        _number(memory.get("flash_bytes")),
        _number(memory.get("ram_bytes")),
        _number(None if record.total_bytes is None else record.total_bytes / KB, f"{(record.total_bytes or 0) / KB:.2f}"),
        _number(record.mips_for_real_time, None if record.mips_for_real_time is None else f"{record.mips_for_real_time:.1f}"),
        *_accuracy_cells(record.val),
        *_accuracy_cells(record.test),
        *new_voices,
        _number(record.epochs_run, epochs),
        _number(record.train_seconds, None if record.train_seconds is None else f"{record.train_seconds:.0f}"),
    ]


def _where(records: list[TrialRecord], groups: dict[str, list[TrialRecord]]) -> dict[int, str]:
    where = {r.number: r.state for r in records}  # failed, running, pruned for another reason
    for name in GROUPS:
        where |= {r.number: name for r in groups[name]}
    return where


CONFIRMED_COLUMNS = ["trial", "configuration", "kB", "seeds", "val mean", "val 95% CI", "official test mean", "test 95% CI",
                     "held-out speakers mean", "held-out 95% CI", "trial's own val", "exported seed", "on confirmed front"]  # fmt: skip


def _mean_cells(mean: tuple[float, float, float] | None) -> list[Cell]:
    if mean is None:
        return [Cell("-"), Cell("-")]
    return [_number(mean[0], f"{mean[0]:.2f}%"), Cell(f"{mean[1]:.1f}-{mean[2]:.1f}")]


def confirmed_section(page: Page, summary: StudySummary) -> None:
    """The confirmed points (nas.study.confirm): means over seeds, official test and held-out speakers side by side."""
    page.heading("Confirmed points (means over seeds)")
    if not summary.confirmed:
        page.note("Not confirmed: each point below is one training, a single draw. 'nas pareto --confirm' retrains the front's "
                  "candidates on seeds and speaker folds.")  # fmt: skip
        return
    speakers = sorted({s for p in summary.confirmed for s in p.held_out_speakers})
    page.note("Each point retrained with the full recipe on seeds 0..N-1 (the 95% t-interval is over seeds) and on leave-one-speaker-out "
              f"folds holding out {', '.join(speakers) or 'no speaker'}; the confirmed front is computed on the validation means. "
              "Export takes the seed closest to the mean on validation.")  # fmt: skip
    front = {p.record.number for p in summary.confirmed_front}
    rows = []
    for point in sorted(summary.confirmed, key=lambda p: p.total_bytes):
        record = point.record
        rows.append([
            _number(record.number, str(record.number)),
            Cell(record.describe()),
            _number(record.total_bytes / KB, f"{record.total_bytes / KB:.2f}"),
            _number(len(point.runs)),
            *_mean_cells(point.mean("val")),
            *_mean_cells(point.mean("test")),
            *_mean_cells(point.held_out()),
            _number(100 * record.score.value, f"{100 * record.score.value:.2f}%"),
            _number(point.export_run().seed),
            Cell("yes" if record.number in front else "no"),
        ])  # fmt: skip
    page.table(
        "confirmed",
        CONFIRMED_COLUMNS,
        rows,
        ["front" if p.record.number in front else "" for p in sorted(summary.confirmed, key=lambda p: p.total_bytes)],
    )


def study_page(summary: StudySummary, settings: StudySettings) -> Page:
    records, budget = summary.records, summary.budget
    label = study_label(summary.name, summary.weights, budget)
    objective = objective_name(settings)
    page = Page(f"nas report: {label}")
    finished = summary.finished
    best = select_best(records, budget)
    failed, running, over = (sum(r.state == "fail" for r in records), sum(r.state == "running" for r in records), len(summary.over_budget))
    stopped = len(summary.stopped)
    trials = (
        f"{len(finished)} finished: {len(finished) - over - stopped} trained, {stopped} stopped early at a rung, "
        f"{over} over the budget (pruned before training)"
    )
    facts = [
        ("trials", f"{trials}; {failed} failed, {running} running"),
        ("budget", budget.describe()),
        ("searched", f"weights {summary.weights or 'any'}, split '{settings.split}', sampler {settings.sampler}, seed {settings.seed}"),
        ("objective", f"{objective}, integer engine" + (f" ({settings.speaker_folds} speaker folds)" if settings.speaker_folds else "")),
        ("front", f"{len(summary.front)} points; hypervolume of the objective {summary.hypervolume('score'):.4f}"),
    ]
    if best is not None:
        scores = f"{objective} {100 * best.score.value:.2f}%, test {100 * best.test.value:.2f}% (only reported)"
        where = f"trial {best.number}: {best.describe()}, {format_bytes(best.total_bytes)}"
        facts.append(("most accurate within the budget", f"{where}; {scores}"))
    confirmed_best = max(summary.confirmed_front, key=lambda p: p.val_mean, default=None)
    if confirmed_best is not None:
        val, test = confirmed_best.mean("val"), confirmed_best.mean("test")
        facts.append((
            "most accurate confirmed point",
            f"trial {confirmed_best.record.number}: {confirmed_best.record.describe()}, {format_bytes(confirmed_best.total_bytes)}; "
            f"mean val {val[0]:.2f}%, mean test {test[0]:.2f}% over {len(confirmed_best.runs)} seeds",
        ))  # fmt: skip
    page.facts(facts)

    confirmed_section(page, summary)

    page.heading("Accuracy against memory")
    page.note("Each point is a trial; hover for its configuration. The front: no other trial within the budget is as accurate and "
              "smaller. Crosses trained but ended over the budget; ticks at 0% were over the budget and never trained.")  # fmt: skip
    page.figure(front_figure(front_plot_data(records, budget), f"{label}: {objective} against memory", objective), "front", 560)

    page.heading("Accuracy against compute")
    compute = compute_plot_data(records, budget)
    if any(compute.groups.values()):
        page.note("The MIPS each trained trial within the budget needs for one frame per hop, by the compute model on the "
                  f"study's target ({budget.target}; docs/compute-model.md). The front: no other trial is as accurate for fewer MIPS."
                  + (f" The dashed line is --mcu-mhz {budget.mcu_mhz:g}." if budget.mcu_mhz is not None else ""))  # fmt: skip
        page.figure(compute_figure(compute, f"{label}: {objective} against compute", objective), "compute", 480)
    else:
        page.note("No trained trial within the budget has a compute prediction (a study from before the compute model has none).")

    page.heading("How the search progressed")
    page.figure(history_figure(history_plot_data(records, budget), f"{label}: progress over trials", objective), "history", 420)

    page.heading("Memory of each front point")
    page.note("The analytic memory model's parts (flash: packed weights, biases, shifts, activation table, front-end tables; "
              "RAM: state, buffers, scratch, padding, stack reserve); the compiler's sections equal them.")  # fmt: skip
    if summary.front:
        page.figure(memory_figure(summary.front, budget, f"{label}: bytes of each front point"), "memory", 480)
    else:
        page.note("No trial within the budget has finished training yet.")

    page.heading("Confusion matrices of the most accurate trial within the budget")
    if best is None:
        page.note("No trial within the budget has finished training yet.")
    elif best.val_confusion is None or best.test_confusion is None:
        page.note(f"Trial {best.number} was trained before nas stored confusion matrices with each trial; "
                  f"'nas export --trial {best.number}' then 'nas evaluate EXPORT --html FILE' draws it.")  # fmt: skip
    else:
        matrices = {
            f"validation part ({best.val.correct} of {best.val.total} correct)": best.val_confusion,
            f"test part, only reported ({best.test.correct} of {best.test.total} correct)": best.test_confusion,
        }
        title = f"{label}<br>trial {best.number}: {best.describe()}, scored by the {best.scored_by}"
        page.figure(confusion_figure(matrices, title), "confusion", 520)

    page.heading(f"All trials ({len(records)})")
    page.note("Click a column's header to sort by it; front points are shaded. Accuracies by the integer engine for quantized trials, "
              "with 95% Wilson intervals.")  # fmt: skip
    where = _where(records, classify(records, budget))
    columns = TRIAL_COLUMNS if any(r.speaker_val is not None for r in records) else [c for c in TRIAL_COLUMNS if "new voices" not in c]
    keep = [TRIAL_COLUMNS.index(c) for c in columns]
    rows = [[trial_cells(r, where[r.number])[i] for i in keep] for r in records]
    page.table("trials", columns, rows, ["front" if where[r.number] == FRONT else "" for r in records])
    return page
