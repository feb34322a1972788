"""`nas data inspect --html`: a page of the dataset drawn from `nas.report.datainspect`'s overview:
durations per digit and per speaker, files per digit x speaker, levels, the split's parts, the
MFCC of one word by each speaker, and every file that fails a check (none hidden)."""

from __future__ import annotations

from collections import Counter

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from nas.data.dataset import DIGIT_NAMES, PARTS
from nas.report.datainspect import CLIPPED_SAMPLES, MFCC_EXAMPLE_DIGIT, QUIET_PEAK_DBFS, DataOverview, FileFacts
from nas.report.figures import TEMPLATE
from nas.report.htmlpage import Cell, Page

PART_COLOURS = {"train": "#3182bd", "val": "#31a354", "test": "#e6550d", "": "#9aa5b1"}


def _speakers(files: list[FileFacts]) -> list[str]:
    return sorted({f.speaker for f in files})


def _box_trace(files: list[FileFacts], name: str, value: str, label: str, unit: str) -> go.Box:
    """The files of one digit or speaker as a box; outlying files as points named on hover."""
    return go.Box(
        y=[getattr(f, value) for f in files],
        name=name,
        boxpoints="outliers",
        text=[f"{f.name}: {label} {getattr(f, value):.2f} {unit}" for f in files],
        hovertemplate="%{text}<extra></extra>",
        marker_color="#3182bd",
        showlegend=False,
    )


def _box(files: list[FileFacts], group: str, value: str, label: str, unit: str, names: list[str]) -> go.Figure:
    """One box per digit or speaker."""
    figure = go.Figure()
    for name in names:
        mine = [f for f in files if (DIGIT_NAMES[f.digit] if group == "digit" else f.speaker) == name]
        figure.add_trace(_box_trace(mine, name, value, label, unit))
    figure.update_layout(template=TEMPLATE, xaxis_title=f"spoken {group}" if group == "digit" else group, yaxis_title=f"{label} ({unit})")
    return figure


def duration_figures(overview: DataOverview, title: str) -> tuple[go.Figure, go.Figure]:
    files = overview.files
    by_digit = _box(files, "digit", "duration_s", "duration", "s", [DIGIT_NAMES[d] for d in sorted({f.digit for f in files})])
    by_speaker = _box(files, "speaker", "duration_s", "duration", "s", _speakers(files))
    by_digit.update_layout(title=f"{title}: duration per spoken digit")
    by_speaker.update_layout(title=f"{title}: duration per speaker")
    return by_digit, by_speaker


def count_figure(overview: DataOverview, title: str) -> go.Figure:
    counts = Counter((f.speaker, f.digit) for f in overview.files)
    speakers = _speakers(overview.files)
    matrix = [[counts[(s, d)] for d in range(len(DIGIT_NAMES))] for s in speakers]
    words = [[f"{s} says '{DIGIT_NAMES[d]}' in {counts[(s, d)]} files" for d in range(len(DIGIT_NAMES))] for s in speakers]
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(DIGIT_NAMES),
            y=speakers,
            text=matrix,
            texttemplate="%{text}",
            customdata=words,
            hovertemplate="%{customdata}<extra></extra>",
            colorscale="Blues",
            zmin=0,
            colorbar=dict(title="files"),
        )
    )
    figure.update_layout(title=f"{title}: files per speaker and digit", template=TEMPLATE, xaxis_title="spoken digit")
    figure.update_layout(yaxis_title="speaker")
    return figure


def level_figure(overview: DataOverview, title: str) -> go.Figure:
    figure = make_subplots(rows=1, cols=2, subplot_titles=("peak level per file", "RMS level per file"))
    speakers = _speakers(overview.files)
    for column, (value, label) in enumerate((("peak_dbfs", "peak"), ("rms_dbfs", "RMS")), start=1):
        for speaker in speakers:
            mine = [f for f in overview.files if f.speaker == speaker]
            figure.add_trace(_box_trace(mine, speaker, value, label, "dBFS"), row=1, col=column)
        figure.update_yaxes(title_text=f"{label} level (dB relative to full scale, dBFS)", row=1, col=column)
        figure.update_xaxes(title_text="speaker", row=1, col=column)
    figure.add_hline(y=QUIET_PEAK_DBFS, line=dict(color="#d64545", dash="dash"), row=1, col=1)
    figure.add_annotation(
        x=0, xref="x domain", y=QUIET_PEAK_DBFS, yref="y", text=f"quiet below {QUIET_PEAK_DBFS:g} dBFS", showarrow=False, yanchor="bottom"
    )
    figure.update_layout(title=f"{title}: recording levels", template=TEMPLATE)
    return figure


def split_figure(overview: DataOverview, title: str) -> go.Figure:
    speakers = _speakers(overview.files)
    figure = go.Figure()
    for part in [*PARTS, ""]:
        counts = Counter(f.speaker for f in overview.files if f.part == part)
        if not counts:
            continue
        name = part or "in no part"
        figure.add_trace(
            go.Bar(
                x=speakers,
                y=[counts[s] for s in speakers],
                name=name,
                marker_color=PART_COLOURS[part],
                text=[f"{s}: {counts[s]} files in {name}" for s in speakers],
                hovertemplate="%{text}<extra></extra>",
                textposition="none",
            )
        )
    figure.update_layout(
        title=f"{title}: parts of split '{overview.split.name}' per speaker",
        barmode="stack",
        template=TEMPLATE,
        xaxis_title="speaker",
        yaxis_title="files",
        legend=dict(title="part"),
    )
    return figure


def mfcc_figure(overview: DataOverview, title: str) -> go.Figure:
    examples = overview.examples
    columns = 3
    rows = max(1, -(-len(examples) // columns))
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[e.name for e in examples], vertical_spacing=0.18)
    config = overview.feature_config
    hop_ms = 1000 * config.hop_length / 8000
    for index, example in enumerate(examples):
        row, column = index // columns + 1, index % columns + 1
        # each coefficient standardised within the recording: c0 (the level) would otherwise take the whole colour scale
        frames = example.frames.T.astype(float)
        values = (frames - frames.mean(axis=1, keepdims=True)) / (frames.std(axis=1, keepdims=True) + 1e-9)
        figure.add_trace(
            go.Heatmap(
                z=values,
                colorscale="RdBu_r",
                zmid=0,
                showscale=index == 0,
                colorbar=dict(title="standardised<br>value"),
                customdata=[
                    [f"{example.name}: coefficient {c}, frame {t} ({t * hop_ms:.0f} ms)" for t in range(values.shape[1])]
                    for c in range(values.shape[0])
                ],
                hovertemplate="%{customdata}: %{z:.2f} standard deviations from its mean<extra></extra>",
            ),
            row=row,
            col=column,
        )
        figure.update_xaxes(title_text=f"frame ({hop_ms:g} ms hop)", row=row, col=column)
        figure.update_yaxes(title_text="MFCC coefficient", row=row, col=column)
    shape = f"{config.n_mfcc} MFCC of the integer front-end, {config.n_fft}-sample window, {config.n_mels} mel bands; each row standardised"
    figure.update_layout(title=f"{title}: '{DIGIT_NAMES[MFCC_EXAMPLE_DIGIT]}' by each speaker ({shape})", template=TEMPLATE)
    return figure


def data_page(overview: DataOverview) -> Page:
    title = f"FSDD at {overview.data_dir}"
    page = Page(f"nas data inspect: {title}")
    files = overview.files
    durations = [f.duration_s for f in files]
    page.facts(
        [
            ("files", f"{len(files)} readable recordings, {len(overview.failed)} failing a check, {len(overview.flagged)} flagged"),
            ("speakers", ", ".join(_speakers(files))),
            ("durations", f"{min(durations):.2f}-{max(durations):.2f} s, {sum(durations) / 60:.1f} min in all" if files else "-"),
            ("checksums", str(overview.checksum_file)),
            ("split", f"'{overview.split.name}': " + ", ".join(f"{name} {len(part)}" for name, part in overview.split.parts().items())),
        ]
    )
    page.heading(f"Files that fail a check ({len(overview.failed)})")
    page.note("Name, WAV format (8 kHz mono 16-bit PCM), truncation and checksum, as 'nas data verify' checks them; training refuses "
              "these files.")  # fmt: skip
    if overview.failed:
        page.table("failed", ["file", "what is wrong"], [[Cell(name), Cell(what)] for name, what in overview.failed])
    else:
        page.note("None: every file passes.")
    for note in overview.notes:
        page.note(note)
    page.heading(f"Recordings flagged for a listen ({len(overview.flagged)})")
    page.note(f"Readable but worth a listen: {CLIPPED_SAMPLES} or more samples at full scale (clipped), or a peak below "
              f"{QUIET_PEAK_DBFS:g} dBFS (quiet).")  # fmt: skip
    if overview.flagged:
        page.table("flagged", ["file", "why"], [[Cell(name), Cell(why)] for name, why in overview.flagged])
    else:
        page.note("None.")
    if not files:
        page.note("No readable recording: nothing to draw.")
        return page
    by_digit, by_speaker = duration_figures(overview, title)
    page.heading("Durations")
    page.figure(by_digit, "duration-digit", 420)
    page.figure(by_speaker, "duration-speaker", 420)
    page.heading("Files per speaker and digit")
    page.figure(count_figure(overview, title), "counts", 420)
    page.heading("Levels")
    page.figure(level_figure(overview, title), "levels", 440)
    page.heading("The split")
    page.figure(split_figure(overview, title), "split", 420)
    page.heading("MFCC images")
    page.figure(mfcc_figure(overview, title), "mfcc", 640)
    return page
