"""Plotly figures of a study and of an evaluation: drawing only. What they draw is computed
elsewhere (`nas.study.pareto`'s plot data, `nas.study.record`'s trials, `nas.report.datainspect`'s overview), as
Optuna's visualization separates its `_get_*_info` functions from plotly.

Every axis names its quantity and unit, every trace's hover text is words, and titles name the
study, its budget and weight scheme (the caller passes that label: `study_label`).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nas.core.stats import Accuracy
from nas.data.dataset import DIGIT_NAMES
from nas.device.memory import KB, MEMORY_PARTS, Budget, format_bytes
from nas.device.regions import FLASH
from nas.report.report import frontend_text, stopped_text
from nas.study.pareto import (
    COMPUTE_FRONT,
    COMPUTE_OTHER,
    DOMINATED,
    FRONT,
    GROUPS,
    OVER_PRUNED,
    OVER_TRAINED,
    STOPPED,
    ComputePlotData,
    FrontPlotData,
    HistoryPlotData,
    log10_range,
    log_ticks,
)
from nas.study.record import TrialRecord

TEMPLATE = "plotly_white"
BUDGET_COLOUR = "#d64545"
STYLES = {
    DOMINATED: dict(color="#9aa5b1", size=8, symbol="circle"),
    OVER_TRAINED: dict(color=BUDGET_COLOUR, size=8, symbol="x"),
    FRONT: dict(color="#1f6feb", size=12, symbol="diamond"),
    OVER_PRUNED: dict(color=BUDGET_COLOUR, size=7, symbol="line-ns-open"),
    STOPPED: dict(color="#c5ccd3", size=7, symbol="circle-open"),
    COMPUTE_FRONT: dict(color="#1f6feb", size=12, symbol="diamond"),
    COMPUTE_OTHER: dict(color="#9aa5b1", size=8, symbol="circle"),
}
# flash parts in blues, RAM parts in oranges, in MEMORY_PARTS order
PART_COLOURS = ("#08519c", "#3182bd", "#6baed6", "#9ecae1", "#c6dbef", "#a63603", "#e6550d", "#fd8d3c", "#fdae6b", "#fdd0a2")


def study_label(name: str, weights: str, budget: Budget) -> str:
    """What every title of a study says: its name, weight scheme and budget."""
    return f"study '{name}' ({weights or 'any'} weights, budget {budget.limit_bytes / KB:g} kB {budget.scope})"


def percent_text(accuracy: Accuracy) -> str:
    low, high = accuracy.interval()
    return f"{100 * accuracy.value:.2f}% (95% interval {100 * low:.1f}-{100 * high:.1f}%, {accuracy.correct} of {accuracy.total} files)"


def hover_text(record: TrialRecord) -> str:
    """What a trial's point says on hover, in words."""
    size = f"{format_bytes(record.total_bytes)} in total"
    if record.memory and "flash_bytes" in record.memory:
        size += f" (flash {record.memory['flash_bytes']:,} B, RAM {record.memory['ram_bytes']:,} B; front-end {frontend_text(record)})"
    if record.stopped:
        return f"trial {record.number}: {record.describe()}<br>{size}<br>{stopped_text(record, 'validation accuracy')}"
    if not record.trained:
        return f"trial {record.number}: {record.describe()}<br>{size}: over the budget, pruned before training"
    text = f"trial {record.number}: {record.describe()}<br>{size}<br>{compute_text(record)}"
    text += f"validation accuracy {percent_text(record.val)}<br>test accuracy {percent_text(record.test)}"
    if record.speaker_val is not None:
        text += (
            f"<br>new voices (folds {', '.join(record.held_out_speakers or ())}): validation speakers {percent_text(record.speaker_val)}, "
            f"held-out speakers {percent_text(record.speaker_test)}"
        )
    return text


def compute_text(record: TrialRecord) -> str:
    """The compute model's figures of a trial and a line break, or nothing for a study before it."""
    if record.instructions_per_frame is None or record.mips_for_real_time is None:
        return ""
    per_frame = f"{record.instructions_per_frame:,.0f} instructions per frame (compute model)"
    return f"{per_frame}, {record.mips_for_real_time:.1f} MIPS for real time<br>"


def _budget_label(budget_kb: float, scope: str) -> str:
    return f"budget {budget_kb:g} kB ({scope})"


def _trials_trace(name: str, rows: list[TrialRecord], x: list[float], y: list[float], front: bool) -> go.Scatter:
    """One group of trials as markers (a front: a step line through them), hover text in words."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines+markers" if front else "markers",
        line=dict(shape="hv", color=STYLES[name]["color"]) if front else None,
        marker=STYLES[name],
        name=f"{name} ({len(rows)})",
        text=[hover_text(r) for r in rows],
        hovertemplate="%{text}<extra></extra>",
    )


def front_figure(data: FrontPlotData, title: str, objective: str = "validation accuracy") -> go.Figure:
    """Accuracy (the objective) against total kB on a log axis: the front as a step line, dominated
    trials in grey, trained trials over the budget as crosses, pruned ones as ticks at 0%, trials
    stopped at a rung as open circles at their accuracy there."""
    figure = go.Figure()
    for name in GROUPS:
        rows = data.groups[name]
        if not rows and name != FRONT:
            continue
        y = [100 * r.score.value if r.trained else 100 * (r.stopped_accuracy or 0.0) for r in rows]
        figure.add_trace(_trials_trace(name, rows, [r.total_bytes / KB for r in rows], y, front=name == FRONT))
    # The budget line is a shape (data units), its label an annotation: on a log axis plotly
    # places annotations in log10 units, so the label's x is log10 of the budget in kB.
    budget_kb = data.budget_kb
    figure.add_vline(x=budget_kb, line=dict(color=BUDGET_COLOUR, dash="dash"))
    figure.add_annotation(
        x=math.log10(budget_kb),
        xref="x",
        y=1,
        yref="paper",
        text=_budget_label(budget_kb, data.budget.scope),
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )
    figure.update_layout(
        title=title,
        xaxis=dict(
            title="memory on the device, total_bytes (kB, 1 kB = 1024 B, log scale)",
            type="log",
            range=log10_range(data.x_range_kb),
            tickvals=log_ticks(data.x_range_kb),
            ticktext=[f"{t:g} kB" for t in log_ticks(data.x_range_kb)],
        ),
        yaxis=dict(title=f"{objective} (the objective), integer engine (%)"),
        template=TEMPLATE,
        hovermode="closest",
        legend=dict(title="trials"),
    )
    return figure


def compute_figure(data: ComputePlotData, title: str, objective: str = "validation accuracy") -> go.Figure:
    """Accuracy (the objective) against the MIPS a frame needs in real time: the accuracy-MIPS front as
    a step line, the other trained trials within the budget in grey, --mcu-mhz as a dashed line."""
    figure = go.Figure()
    for name in (COMPUTE_OTHER, COMPUTE_FRONT):
        rows = data.groups[name]
        x, y = [r.mips_for_real_time for r in rows], [100 * r.score.value for r in rows]
        figure.add_trace(_trials_trace(name, rows, x, y, front=name == COMPUTE_FRONT))
    if data.mcu_mhz is not None:
        figure.add_vline(x=data.mcu_mhz, line=dict(color=BUDGET_COLOUR, dash="dash"))
        label = f"--mcu-mhz {data.mcu_mhz:g}"
        figure.add_annotation(x=data.mcu_mhz, xref="x", y=1, yref="paper", text=label, showarrow=False, xanchor="right", yanchor="bottom")
    figure.update_layout(
        title=title,
        xaxis=dict(title="compute for real time, mips_for_real_time (million instructions per second, compute model)", rangemode="tozero"),
        yaxis=dict(title=f"{objective} (the objective), integer engine (%)"),
        template=TEMPLATE,
        hovermode="closest",
        legend=dict(title="trials"),
    )
    return figure


def history_figure(data: HistoryPlotData, title: str, objective: str = "validation accuracy") -> go.Figure:
    """Best accuracy within the budget and hypervolume after each finished trial."""
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"best {objective} within the budget so far", "hypervolume of the front so far"),
        horizontal_spacing=0.1,
    )
    best_text = [
        f"after trial {n}: best within the budget is trial {t}, {100 * s:.2f}% {objective}"
        if s is not None
        else f"after trial {n}: no trained trial within the budget yet"
        for n, s, t in zip(data.trial_numbers, data.best_score, data.best_trial, strict=True)
    ]
    figure.add_trace(
        go.Scatter(
            x=data.trial_numbers,
            y=[None if s is None else 100 * s for s in data.best_score],
            mode="lines+markers",
            line=dict(shape="hv", color=STYLES[FRONT]["color"]),
            name=f"best {objective}",
            text=best_text,
            hovertemplate="%{text}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=data.trial_numbers,
            y=data.hypervolume,
            mode="lines+markers",
            line=dict(shape="hv", color="#2f855a"),
            name="hypervolume",
            text=[f"after trial {n}: hypervolume {v:.4f}" for n, v in zip(data.trial_numbers, data.hypervolume, strict=True)],
            hovertemplate="%{text}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    figure.update_xaxes(title_text="trial number (finished trials, in order)")
    figure.update_yaxes(title_text=f"{objective}, integer engine (%)", row=1, col=1)
    figure.update_yaxes(title_text="hypervolume (1 = 100% at 0 B)", row=1, col=2)
    figure.update_layout(title=title, template=TEMPLATE, showlegend=False, margin=dict(t=110))
    return figure


def memory_figure(front: list[TrialRecord], budget: Budget, title: str) -> go.Figure:
    """The memory model's parts of each front point as a stacked bar (flash parts in blue, RAM in
    orange), with the budget as a line."""
    labels = [f"trial {r.number}<br>{r.describe().split(',')[0]}" for r in front]
    figure = go.Figure()
    for (key, region, category), colour in zip(MEMORY_PARTS, PART_COLOURS, strict=True):
        values = [(r.memory or {}).get(key, 0) for r in front]
        if not any(values):
            continue
        where = "flash" if region == FLASH else "RAM"
        figure.add_trace(
            go.Bar(
                x=labels,
                y=[v / KB for v in values],
                name=f"{where}: {category}",
                marker_color=colour,
                text=[
                    f"trial {r.number}: {where} {category} {v:,} B of {r.total_bytes:,} B in total"
                    for r, v in zip(front, values, strict=True)
                ],
                hovertemplate="%{text}<extra></extra>",
                textposition="none",
            )
        )
    budget_kb = budget.limit_bytes / KB
    figure.add_hline(y=budget_kb, line=dict(color=BUDGET_COLOUR, dash="dash"))
    figure.add_annotation(
        x=1,
        xref="paper",
        y=budget_kb,
        yref="y",
        text=_budget_label(budget_kb, budget.scope),
        showarrow=False,
        xanchor="right",
        yanchor="bottom",
    )
    figure.update_layout(
        title=title,
        barmode="stack",
        template=TEMPLATE,
        xaxis=dict(title="front point (smallest first)"),
        yaxis=dict(
            title="bytes on the device (kB, 1 kB = 1024 B)", range=[0, 1.1 * max([budget_kb, *(r.total_bytes / KB for r in front)])]
        ),
        legend=dict(title="part of the memory model"),
    )
    return figure


def confusion_figure(matrices: dict[str, list[list[int]]], title: str) -> go.Figure:
    """One heatmap per part ("validation part": matrix, ...), rows the spoken digit, columns the
    predicted one, each cell's count written in it."""
    names = list(DIGIT_NAMES)
    figure = make_subplots(rows=1, cols=len(matrices), subplot_titles=list(matrices), horizontal_spacing=0.12)
    for column, (part, matrix) in enumerate(matrices.items(), start=1):
        total = sum(map(sum, matrix))
        correct = sum(matrix[d][d] for d in range(len(matrix)))
        words = [
            [f"{part}: spoken '{names[s]}', predicted '{names[p]}': {matrix[s][p]} of {sum(matrix[s])} files" for p in range(len(matrix))]
            for s in range(len(matrix))
        ]
        figure.add_trace(
            go.Heatmap(
                z=matrix,
                x=names,
                y=names,
                colorscale="Blues",
                showscale=False,
                text=matrix,
                texttemplate="%{text}",
                customdata=words,
                hovertemplate="%{customdata}<extra></extra>",
                name=f"{part} ({correct} of {total} correct)",
            ),
            row=1,
            col=column,
        )
        figure.update_xaxes(title_text="predicted digit", row=1, col=column)
        figure.update_yaxes(title_text="spoken digit", autorange="reversed", row=1, col=column)
    figure.update_layout(title=title, template=TEMPLATE)
    return figure
