"""The integer engine's versions on the same checkpoints: the exact engine (every dot product summed
exactly, one rounding per output) against the one before it (pow2 terms below the int32
accumulator's grid rounded term by term), on the official split's validation (val) and test parts.

The earlier engine is run from a git worktree of `--old-commit` (the last commit before the exact
engine), in a subprocess, so its code is the code that shipped. Fixed-point and pow2 3- and 4-bit
give identical logits in both by construction (the script checks it on what it is given);
pow2 5- and 6-bit are where they differ.

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/engine_versions.py \\
        --old-commit 1a55114 results/tasks/C/seed-*/model.pt       # writes bench/results/engine_versions.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "engine_versions.json"
ROOT = Path(__file__).resolve().parent.parent


def score(checkpoints: list[str], out: Path) -> None:
    """Both parts' integer logits of each checkpoint, with the `nas` importable here, into out (npz)."""
    import numpy as np

    from nas.data.dataset import find_data_dir, list_recordings, make_split, read_all
    from nas.engine.intmodel import from_float_model
    from nas.features.extract import FeatureCache, FeatureConfig, Normaliser, build_feature_set
    from nas.model.formats import QuantConfig
    from nas.training.checkpoint import load_checkpoint, model_from_checkpoint

    recordings = list_recordings(find_data_dir())
    split = make_split(recordings, "official")
    waves = {w.recording.name: w for w in read_all(recordings)}
    arrays = {}
    for number, path in enumerate(checkpoints):
        checkpoint = load_checkpoint(Path(path))
        config = FeatureConfig(**checkpoint["feature_config"])
        normaliser = Normaliser.from_dict(checkpoint["normaliser"])
        features = build_feature_set(split, waves, config, FeatureCache(), normaliser)
        engine = from_float_model(model_from_checkpoint(checkpoint), QuantConfig(**checkpoint["quant_config"]))
        for part in ("val", "test"):
            frames, labels = features.part(part)
            arrays[f"{number}-{part}-logits"], _ = engine.predict(frames)
            arrays[f"{number}-{part}-labels"] = labels
    np.savez(out, **arrays)


def main(argv: list[str]) -> int:
    import numpy as np

    from nas.core.stats import mean_interval

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--old-commit", required=True, help="the commit of the earlier engine")
    parser.add_argument("--score-to", type=Path, help=argparse.SUPPRESS)  # internal: score with the importable nas
    args = parser.parse_args(argv)
    if args.score_to:
        score(args.checkpoints, args.score_to)
        return 0
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        old = work / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.old_commit], check=True, capture_output=True)
        try:
            for name, tree in (("old", old), ("new", ROOT)):
                environment = os.environ | {"PYTHONPATH": str(tree)}
                command = [sys.executable, str(Path(__file__).resolve()), *args.checkpoints, "--old-commit", args.old_commit]
                subprocess.run([*command, "--score-to", str(work / f"{name}.npz")], check=True, env=environment, cwd=tree)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)
        old_scores, new_scores = np.load(work / "old.npz"), np.load(work / "new.npz")
        rows = []
        for number, path in enumerate(args.checkpoints):
            row = {"checkpoint": path}
            for part in ("val", "test"):
                labels = new_scores[f"{number}-{part}-labels"]
                old_logits, new_logits = old_scores[f"{number}-{part}-logits"], new_scores[f"{number}-{part}-logits"]
                row[part] = {
                    "old_accuracy": round(100 * float((old_logits.argmax(1) == labels).mean()), 3),
                    "new_accuracy": round(100 * float((new_logits.argmax(1) == labels).mean()), 3),
                    "files": len(labels),
                    "identical_logits": bool(np.array_equal(old_logits, new_logits)),
                    "files_whose_class_changed": int((old_logits.argmax(1) != new_logits.argmax(1)).sum()),
                    "max_logit_change": int(np.abs(old_logits - new_logits).max()),
                }
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {"command": "python bench/engine_versions.py " + " ".join(argv), "rows": rows}
    for part in ("val", "test"):
        for version in ("old", "new"):
            mean, low, high = mean_interval([r[part][f"{version}_accuracy"] for r in rows])
            summary[f"{part}_{version}_mean"] = {"mean": round(mean, 3), "interval95": [round(low, 3), round(high, 3)]}
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k.endswith("_mean")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
