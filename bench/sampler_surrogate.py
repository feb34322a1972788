"""Samplers and their settings compared on a surrogate of measured trials (issue 13).

A real default search takes about 4 minutes on this 2-core machine and its validation
hypervolume varies by about 0.01 between seeds, so comparing sampler settings on real searches
with 3 seeds each cannot tell apart differences of 0.005. This benchmark answers the narrower
question "which sampler setting finds a better front in 30 trials" on many seeds, cheaply:

- Data: every trial that the measured searches trained (bench/searches.py's studies and others
  given with --studies; the current default recipe only: running normalisation, pow2 weights).
  Each holds its configuration, its validation accuracy at the rungs (epochs 5, 10, 20) and, when
  it trained to the end, its final validation accuracy (the integer engine's).
- Surrogate: one random forest per fidelity (rungs and final) from configuration (cell, layers,
  log hidden, MFCCs, weight bits, mels, FFT size, log learning rate) to accuracy; a simulated
  trial takes prediction + z_f * (that forest's out-of-bag error) at fidelity f, where the z_f
  are standard normals correlated as the measured trials' out-of-bag residuals are (a trial
  ahead of its configuration's mean at epoch 5 tends to stay ahead, but not fully: the first
  version drew one z for all fidelities, which made every early stop look safe).
- Simulation: the real `nas.study.trials.sample_candidate` (the real space, budget and memory model,
  so byte counts are exact), the real rung rule (`nas.study.rungs.RungRule`), one worker; a stopped
  trial ends PRUNED as in a search. The score is the validation hypervolume of the trained trials
  (`nas.study.pareto.hypervolume`), as bench/searches.py reports it.

The surrogate is checked against the real searches before it is trusted: `check` prints its
hypervolume for the conditions that bench/searches.py measured (TPE, NSGA-II, GP at 30 trials,
random search at 30 and 60). A choice made here is then confirmed by real searches.
`defaults` compares the default search before issue 13 (TPE, 30 trials, every trial trained to
the end) with today's (its trial count and rung rule), the comparison of bench/searches.py
compare on many more seeds than real searches allow.

    .venv/bin/python bench/sampler_surrogate.py check --seeds 50
    .venv/bin/python bench/sampler_surrogate.py variants --seeds 50
    .venv/bin/python bench/sampler_surrogate.py defaults --seeds 50
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from nas.device.memory import Budget  # noqa: E402
from nas.study.pareto import hypervolume  # noqa: E402
from nas.study.record import TrialRecord, read_records  # noqa: E402
from nas.study.rungs import RungResult  # noqa: E402
from nas.study.settings import DEFAULT_TRIALS  # noqa: E402
from nas.study.space import DEFAULT_SPACE, load_space  # noqa: E402
from nas.study.trials import OverBudget, make_sampler, sample_candidate  # noqa: E402

RESULTS = BENCH / "results" / "sampler_surrogate.json"
STUDIES = ["/tmp/nas-bench-studies/results/*/study.db"]
BUDGET_KB = 36
FINAL = "final"


def features_of(record: TrialRecord, learning_rate: float) -> list[float]:
    model, quant, front = record.model_config, record.quant_config, record.feature_config
    return [
        float(model.cell == "gru"),
        model.layers,
        math.log2(model.hidden),
        front.n_mfcc,
        quant.weight_bits,
        front.n_mels,
        front.n_fft,
        math.log(learning_rate),
    ]


def stored_records(patterns: list[str]) -> Iterator[tuple[str, str, TrialRecord]]:
    """(study.db path, study name, record) of every trial in the studies the glob patterns match."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        url = f"sqlite:///{path}"
        for summary in optuna.get_all_study_summaries(url):
            for record in read_records(optuna.load_study(study_name=summary.study_name, storage=url)):
                yield path, summary.study_name, record


def gather(patterns: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, list]]:
    """Per fidelity ("5", "10", "20", FINAL): configurations, validation accuracies and which
    trial each came from (to pair one trial's residuals across fidelities)."""
    data: dict[str, tuple[list, list, list]] = {}
    for path, study_name, record in stored_records(patterns):
        if record.model_config is None or record.feature_config.normalisation != "running" or record.quant_config.weights != "pow2":
            continue
        row = features_of(record, record.params["learning_rate"])
        key = (path, study_name, record.number)
        readings = dict(record.rung_accuracy or {})
        if record.state == "complete" and not record.stopped:
            readings[FINAL] = record.val.value
        for fidelity, accuracy in readings.items():
            rows, values, keys = data.setdefault(fidelity, ([], [], []))
            rows.append(row)
            values.append(accuracy)
            keys.append(key)
    return {fidelity: (np.array(rows), np.array(values), keys) for fidelity, (rows, values, keys) in data.items()}


@dataclass
class Surrogate:
    forests: dict  # fidelity -> fitted forest
    errors: dict  # fidelity -> out-of-bag RMS error
    fidelities: list[str]  # the order of the rows and columns of `correlation`
    correlation: np.ndarray  # of the out-of-bag residuals between fidelities, over trials that have both

    def accuracy(self, fidelity: str, row: list[float], z: float) -> float:
        predicted = float(self.forests[fidelity].predict(np.array([row]))[0])
        return min(1.0, max(0.0, predicted + z * self.errors[fidelity]))

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """One simulated trial's luck: a correlated standard normal per fidelity."""
        z = rng.multivariate_normal(np.zeros(len(self.fidelities)), self.correlation)
        return dict(zip(self.fidelities, map(float, z), strict=True))


def residual_correlation(residuals: dict[str, dict]) -> tuple[list[str], np.ndarray]:
    """Pearson correlation of each pair of fidelities' residuals over the trials measured at both,
    made a valid correlation matrix (pairwise estimates from different trials need not be: its
    negative eigenvalues are clipped and the diagonal set back to 1)."""
    fidelities = sorted(residuals, key=lambda f: (f == FINAL, f.zfill(3)))
    matrix = np.eye(len(fidelities))
    for i, a in enumerate(fidelities):
        for j, b in enumerate(fidelities[:i]):
            shared = sorted(set(residuals[a]) & set(residuals[b]))
            if len(shared) >= 10:
                matrix[i, j] = matrix[j, i] = np.corrcoef([residuals[a][k] for k in shared], [residuals[b][k] for k in shared])[0, 1]
    values, vectors = np.linalg.eigh(matrix)
    matrix = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(matrix))
    return fidelities, matrix / np.outer(scale, scale)


def fit(data) -> Surrogate:
    from sklearn.ensemble import RandomForestRegressor

    forests, errors, residuals = {}, {}, {}
    for fidelity, (rows, values, keys) in data.items():
        forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, oob_score=True, random_state=0).fit(rows, values)
        forests[fidelity] = forest
        errors[fidelity] = float(np.sqrt(np.mean((forest.oob_prediction_ - values) ** 2)))
        residuals[fidelity] = dict(zip(keys, values - forest.oob_prediction_, strict=True))
    fidelities, correlation = residual_correlation(residuals)
    return Surrogate(forests, errors, fidelities, correlation)


def simulate(surrogate: Surrogate, sampler: optuna.samplers.BaseSampler, trials: int, seed: int, rungs_on: bool = True) -> list[float]:
    """A search of `trials` finished trials; the hypervolume after each one. `rungs_on` False:
    every trial trains to the end (the default before issue 13)."""
    space = load_space(DEFAULT_SPACE).restricted_to("pow2")  # `--weights pow2`, the default search's
    budget = Budget(BUDGET_KB * 1024)
    rule = space.rung_rule()
    rungs = sorted(e for e in rule.epochs if e < space.epochs) if rungs_on else []
    noise = np.random.default_rng(seed + 10_000)
    reached: dict[int, list[RungResult]] = {e: [] for e in rungs}
    points: list[tuple[float, int]] = []
    curve: list[float] = []

    def objective(trial: optuna.Trial):
        try:
            candidate = sample_candidate(trial, space, budget)
        except OverBudget:
            raise optuna.TrialPruned() from None
        record = TrialRecord(model_config=candidate.model, quant_config=candidate.quant, feature_config=candidate.features)
        row = features_of(record, candidate.learning_rate)
        z = surrogate.draw(noise)
        for epoch in rungs:
            accuracy = surrogate.accuracy(str(epoch), row, z[str(epoch)])
            leader = rule.beaten_by(epoch, accuracy, candidate.total_bytes, reached[epoch])
            reached[epoch].append(RungResult(trial.number, accuracy, candidate.total_bytes))
            if leader is not None:
                raise optuna.TrialPruned()
        accuracy = round(300 * surrogate.accuracy(FINAL, row, z[FINAL])) / 300  # the official validation part: 300 files
        points.append((accuracy, candidate.total_bytes))
        return accuracy, float(candidate.total_bytes)

    def after(study, trial) -> None:
        curve.append(hypervolume(points, budget.limit_bytes))

    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    study.optimize(objective, n_trials=trials, callbacks=[after])
    return curve


def tpe(seed: int, startup: int = 10, **settings) -> optuna.samplers.BaseSampler:
    options = {"n_startup_trials": startup, "multivariate": True, "group": True, "constant_liar": True} | settings
    return optuna.samplers.TPESampler(seed=seed, **options)


# name -> (trials, sampler for a seed, rungs on). "default" is what nas.study.trials.make_sampler builds today.
CHECKS = {
    "default (tpe)": (30, lambda seed: make_sampler(seed, "tpe"), True),
    "nsga2": (30, lambda seed: make_sampler(seed, "nsga2"), True),
    "gp": (30, lambda seed: make_sampler(seed, "gp"), True),
    "random": (60, lambda seed: make_sampler(seed, "random"), True),
}
VARIANTS = {  # run to 45 trials, read at 30 and 45 (a default search could afford 45 in 8 minutes)
    "tpe startup 10": (45, lambda seed: tpe(seed, 10), True),
    "tpe startup 5": (45, lambda seed: tpe(seed, 5), True),
    "tpe startup 3": (45, lambda seed: tpe(seed, 3), True),
    "tpe startup 10, independent": (45, lambda seed: tpe(seed, 10, multivariate=False, group=False), True),
    "tpe startup 3, 48 candidates": (45, lambda seed: tpe(seed, 3, n_ei_candidates=48), True),
    "random": (60, lambda seed: make_sampler(seed, "random"), True),
}


# the default search before issue 13 (every trial to the end) and today's, on the same seeds
DEFAULTS = {
    "old default (tpe, 30 trials, no rungs)": (30, lambda seed: make_sampler(seed, "tpe"), False),
    f"new default (tpe, {DEFAULT_TRIALS} trials, rungs)": (DEFAULT_TRIALS, lambda seed: make_sampler(seed, "tpe"), True),
    "random, 60 trials, rungs": (60, lambda seed: make_sampler(seed, "random"), True),
}


def summarise(curves: list[list[float]], at: int) -> dict:
    values = [curve[at - 1] for curve in curves]
    mean = statistics.fmean(values)
    half = 1.96 * statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return {"trials": at, "mean": mean, "ci95": [mean - half, mean + half], "seeds": len(values)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["check", "variants", "defaults"])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--studies", nargs="+", default=STUDIES, help="study.db files (glob patterns)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = gather(args.studies)
    surrogate = fit(data)
    for fidelity, (rows, _, _) in sorted(data.items(), key=lambda item: (item[0] == FINAL, item[0].zfill(3))):
        print(f"fidelity {fidelity:>5}: {len(rows):4d} trials, out-of-bag RMS error {100 * surrogate.errors[fidelity]:.2f} points")
    print(f"residual correlation ({', '.join(surrogate.fidelities)}):\n{surrogate.correlation.round(2)}")
    conditions = {"check": CHECKS, "variants": VARIANTS, "defaults": DEFAULTS}[args.what]
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    section = results.setdefault(args.what, {})
    for name, (trials, make, rungs_on) in conditions.items():
        curves = [simulate(surrogate, make(seed), trials, seed, rungs_on) for seed in range(args.seeds)]
        rows = [summarise(curves, at) for at in sorted({30, 45, trials}) if at <= trials]
        section[name] = rows
        readings = [f"{r['trials']} trials {r['mean']:.4f} [{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}]" for r in rows]
        print(f"{name}: {'; '.join(readings)}", flush=True)
        results["surrogate"] = {f: {"trials": len(data[f][0]), "oob_rms_error": e} for f, e in surrogate.errors.items()}
        correlation = surrogate.correlation.round(3).tolist()
        results["surrogate"]["residual_correlation"] = {"fidelities": surrogate.fidelities, "matrix": correlation}
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")  # after each condition: GP's 50 seeds take over 20 minutes
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
