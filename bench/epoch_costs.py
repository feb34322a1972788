"""What an epoch cost inside real searches: GRU against LSTM trials of similar size (issue 13).

bench/gru_speed.py times one configuration per size on a quiet machine, a few epochs each; its
smallest QAT size (1x32, pow2 4-bit) came out at 1.18x an LSTM epoch with epochs that jittered by
30%. This reads the trials that whole searches trained (bench/searches.py's studies, or any given
with --studies): each finished trial's training time over its epochs (`train_seconds /
epochs_run`: epochs with 4 waveform copies, validation, checkpoints and the final integer-engine
scoring, i.e. what a search pays), grouped by cell, depth, weight scheme and hidden size in bands
of 16, medians compared where both cells have trials.

    .venv/bin/python bench/epoch_costs.py            # writes bench/results/epoch_costs.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # sampler_surrogate beside it (which puts the package on the path)

from sampler_surrogate import stored_records  # noqa: E402

STUDIES = ["/tmp/nas-bench-studies/results/new*/study.db"]  # this tree's runs (the GRU kernel), not the old default's
BAND = 16  # hidden sizes grouped as 16-31, 32-47, ...


def epoch_seconds(patterns: list[str]) -> dict[tuple, list[float]]:
    """(cell, layers, weights, band start) -> seconds per epoch of each finished trial."""
    groups: dict[tuple, list[float]] = {}
    for _, _, record in stored_records(patterns):
        if record.state != "complete" or record.stopped or not record.epochs_run or record.train_seconds is None:
            continue
        model = record.model_config
        key = (model.cell, model.layers, record.quant_config.weights, model.hidden // BAND * BAND)
        groups.setdefault(key, []).append(record.train_seconds / record.epochs_run)
    return groups


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", nargs="+", default=STUDIES, help="study.db files (glob patterns)")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "epoch_costs.json", help="where the medians are written")
    args = parser.parse_args()
    groups = epoch_seconds(args.studies)
    rows = []
    for _, layers, weights, band in sorted(k for k in groups if k[0] == "gru"):
        gru = groups[("gru", layers, weights, band)]
        lstm = groups.get(("lstm", layers, weights, band), [])
        row = {"layers": layers, "weights": weights, "hidden": f"{band}-{band + BAND - 1}", "gru_trials": len(gru),
               "gru_epoch_s": statistics.median(gru), "lstm_trials": len(lstm),
               "lstm_epoch_s": statistics.median(lstm) if lstm else None}  # fmt: skip
        row["gru_over_lstm"] = row["gru_epoch_s"] / row["lstm_epoch_s"] if lstm else None
        rows.append(row)
        ratio = f"{row['gru_over_lstm']:.2f}x" if lstm else "no LSTM trials"
        lstm_text = f"{row['lstm_epoch_s']:.3f} s ({len(lstm)})" if lstm else "-"
        print(f"{layers}x{row['hidden']} {weights}: GRU {row['gru_epoch_s']:.3f} s ({len(gru)}), LSTM {lstm_text}: {ratio}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"studies": args.studies, "band": BAND, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
