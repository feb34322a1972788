"""Reports of a study: the Pareto table (rich), pareto.json, pareto.csv and pareto.html (plotly)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
from rich.table import Table

from nas.memory import KB
from nas.search import front
from nas.stats import Accuracy


def trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    """Everything the reports show about one finished trial."""
    attrs = trial.user_attrs
    model, quant = attrs.get("model_config", {}), attrs.get("quant_config", {})
    val = Accuracy(attrs.get("val_correct", 0), attrs.get("val_total", 0))
    test = Accuracy(attrs.get("test_correct", 0), attrs.get("test_total", 0))
    return {
        "trial": trial.number,
        "cell": model.get("cell"),
        "layers": model.get("layers"),
        "hidden": model.get("hidden"),
        "n_mfcc": model.get("n_input"),
        "weights": quant.get("weights"),
        "weight_bits": quant.get("weight_bits"),
        "state_bits": quant.get("state_bits"),
        "total_bytes": attrs.get("total_bytes"),
        "total_kb": attrs.get("total_bytes", 0) / KB,
        "val_accuracy": val.value,
        "val_ci95": list(val.interval()),
        "test_accuracy": test.value,
        "test_ci95": list(test.interval()),
        "scored_by": attrs.get("scored_by"),
        "train_seconds": attrs.get("train_seconds"),
        "learning_rate": trial.params.get("learning_rate"),
        "checkpoint": attrs.get("checkpoint"),
    }


def _interval(value: float, interval: list[float]) -> str:
    return f"{100 * value:.2f}% [{100 * interval[0]:.1f}-{100 * interval[1]:.1f}]"


def pareto_table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in (
        "trial",
        "cell",
        "layers",
        "hidden",
        "n_mfcc",
        "scheme",
        "bits",
        "kB (bytes)",
        "val acc [95% CI]",
        "test acc [95% CI]",
        "train",
    ):
        table.add_column(column, justify="left" if column in ("cell", "scheme") else "right")
    for row in rows:
        table.add_row(
            str(row["trial"]),
            row["cell"],
            str(row["layers"]),
            str(row["hidden"]),
            str(row["n_mfcc"]),
            row["weights"],
            str(row["weight_bits"]),
            f"{row['total_kb']:.2f} ({row['total_bytes']:,})",
            _interval(row["val_accuracy"], row["val_ci95"]),
            _interval(row["test_accuracy"], row["test_ci95"]),
            f"{row['train_seconds']:.0f} s" if row["train_seconds"] is not None else "-",
        )
    return table


def write_front_files(study: optuna.Study, folder: Path, budget_bytes: int) -> list[dict]:
    """pareto.json, pareto.csv and pareto.html in the study folder; returns the front's rows."""
    rows = [trial_row(t) for t in front(study, budget_bytes)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pareto.json").write_text(
        json.dumps({"study": study.study_name, "budget_bytes": budget_bytes, "front": rows}, indent=2) + "\n"
    )
    with (folder / "pareto.csv").open("w", newline="") as handle:
        columns = [k for k in rows[0] if k not in ("val_ci95", "test_ci95")] if rows else ["trial"]
        writer = csv.DictWriter(handle, fieldnames=[*columns, "val_ci95_low", "val_ci95_high", "test_ci95_low", "test_ci95_high"])
        writer.writeheader()
        for row in rows:
            flat = {k: row[k] for k in columns}
            flat |= {"val_ci95_low": row["val_ci95"][0], "val_ci95_high": row["val_ci95"][1]}
            flat |= {"test_ci95_low": row["test_ci95"][0], "test_ci95_high": row["test_ci95"][1]}
            writer.writerow(flat)
    write_front_page(study, folder / "pareto.html", budget_bytes)
    return rows


def _hover(row: dict) -> str:
    return (
        f"trial {row['trial']}: {row['cell']} {row['layers']}x{row['hidden']}, {row['n_mfcc']} MFCC<br>"
        f"{row['weights']} {row['weight_bits']}-bit weights, {row['state_bits']}-bit state<br>"
        f"{row['total_kb']:.2f} kB ({row['total_bytes']:,} B)<br>"
        f"val {_interval(row['val_accuracy'], row['val_ci95'])}<br>test {_interval(row['test_accuracy'], row['test_ci95'])}"
    )


def write_front_page(study: optuna.Study, path: Path, budget_bytes: int) -> None:
    """Interactive plotly chart: validation accuracy against kB, the budget line, the front
    highlighted, dominated trials and over-budget trials shown apart, each point's config on hover."""
    import plotly.graph_objects as go

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    on_front = {t.number for t in front(study, budget_bytes)}
    groups = {"front": [], "dominated": [], "over budget (trained)": []}
    for trial in complete:
        row = trial_row(trial)
        key = "front" if trial.number in on_front else ("dominated" if row["total_bytes"] <= budget_bytes else "over budget (trained)")
        groups[key].append(row)
    pruned = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)) if "total_bytes" in t.user_attrs]
    figure = go.Figure()
    styles = {
        "dominated": dict(color="#9aa5b1", size=8, symbol="circle"),
        "over budget (trained)": dict(color="#d64545", size=8, symbol="x"),
        "front": dict(color="#1f6feb", size=12, symbol="diamond"),
    }
    for name in ("dominated", "over budget (trained)", "front"):
        rows = sorted(groups[name], key=lambda r: r["total_bytes"])
        if not rows and name != "front":
            continue
        figure.add_trace(
            go.Scatter(
                x=[r["total_kb"] for r in rows],
                y=[100 * r["val_accuracy"] for r in rows],
                mode="lines+markers" if name == "front" else "markers",
                line=dict(shape="hv", color="#1f6feb") if name == "front" else None,
                marker=styles[name],
                name=f"{name} ({len(rows)})",
                text=[_hover(r) for r in rows],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    if pruned:
        figure.add_trace(
            go.Scatter(
                x=[t.user_attrs["total_bytes"] / KB for t in pruned],
                y=[0] * len(pruned),
                mode="markers",
                marker=dict(color="#d64545", size=7, symbol="line-ns-open"),
                name=f"over budget, not trained ({len(pruned)})",
                text=[f"trial {t.number}: {t.params}<br>{t.user_attrs['total_bytes']:,} B" for t in pruned],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    figure.add_vline(x=budget_bytes / KB, line=dict(color="#d64545", dash="dash"), annotation_text=f"budget {budget_bytes / KB:g} kB")
    figure.update_layout(
        title=f"nas study '{study.study_name}': validation accuracy (integer engine) against memory",
        xaxis=dict(title="total memory (kB, 1 kB = 1024 B, log scale)", type="log"),
        yaxis=dict(title="validation accuracy (%)"),
        template="plotly_white",
        hovermode="closest",
    )
    figure.write_html(path, include_plotlyjs=True, full_html=True)
