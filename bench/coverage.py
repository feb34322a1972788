"""Coverage of a finished search (issue 21): how its trained trials spread over the size axis.

For each study: trials per size band, the share of trained trials in the upper half of the log-size
range [smallest configuration, budget] (the done-when asks >= 25%), and whether the front has a
point above half the budget whenever a trained trial there beats every smaller one on validation.

    .venv/bin/python bench/coverage.py results/pow2-36kb/study.db [...] --out bench/results/coverage.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nas.study.pareto import pareto_front
from nas.study.record import read_records
from nas.study.settings import StudyLocation
from nas.study.sizes import upper_half_share
from nas.study.space import load_space, resolve_space_path
from nas.study.storage import load_existing_study
from nas.study.trials import search_size_range


def coverage(study_db: Path, space_name: str | None = None) -> dict:
    """The coverage of one stored study, on the size axis of its space (the default one unless named)."""
    location = StudyLocation(study_db.parent.name, None, study_db.parent.parent)
    study, settings = load_existing_study(location)
    budget = settings.budget
    sizes = search_size_range(load_space(resolve_space_path(space_name)).restricted_to(settings.weights), budget)
    records = [r for r in read_records(study) if r.finished and not r.over_budget]
    scored = [r for r in records if r.score is not None]
    front = pareto_front(scored, budget)
    best_upper = max((r.score.value for r in scored if sizes.position(r.total_bytes) >= 0.5), default=None)
    best_lower = max((r.score.value for r in scored if sizes.position(r.total_bytes) < 0.5), default=None)
    bands = [sum(sizes.band(r.total_bytes) == band for r in records) for band in range(sizes.bands)]
    return {
        "study": str(study_db),
        "trained_trials": len(records),
        "smallest_bytes": sizes.smallest_bytes,
        "upper_half_from_bytes": sizes.bytes_at(0.5),
        "trials_per_band": bands,
        "upper_half_share": upper_half_share([r.total_bytes for r in records], sizes),
        "front_bytes": [r.total_bytes for r in front],
        # the done-when: a front point above half the budget whenever a trained trial there beats every smaller one
        "upper_trial_beats_every_smaller": best_upper is not None and (best_lower is None or best_upper > best_lower),
        "front_point_in_upper_half": any(sizes.position(r.total_bytes) >= 0.5 for r in front),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path, help="study.db files of finished searches")
    parser.add_argument("--space", help="the studies' space file or name (default: the default space)")
    parser.add_argument("--out", type=Path, help="results file (JSON)")
    args = parser.parse_args()
    rows = [coverage(path, args.space) for path in args.studies]
    for row in rows:
        print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
