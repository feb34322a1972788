"""Calibrate the compute model (nas.device.compute) of each target against QEMU: a designed set of
configurations, each built and run in QEMU (the stream and the front-end's own program), and one
least-squares fit of the counts' coefficients, weighted so that every configuration's relative
error counts alike. Writes nas/device/costs/<target>.json (the coefficients, the fit's worst
relative errors and the tools' versions); the tests then hold the prediction within 5% of QEMU on
every configuration they run.

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/compute_calibration.py [--targets cortex-m4,cortex-m3]

Random weights (the instruction count does not depend on their values but for a few
data-dependent branches: saturation, the sigmoid table's end), four test recordings (digits 0-3).
Run it again whenever the generated C changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = [("pow2", bits) for bits in range(3, 7)] + [("fixed", bits) for bits in range(2, 9)]
# cell, layers, hidden, inputs, bias bits: every cell, both depths and bias widths, hidden sizes to 131
MODELS = [
    ("gru", 1, 8, 13, 16), ("gru", 2, 21, 10, 32), ("lstm", 1, 30, 16, 16),
    ("rnn", 2, 45, 13, 16), ("gru", 1, 64, 13, 16), ("gru", 1, 131, 13, 16),
]  # fmt: skip
# pow2 4-bit models large enough for the multiplier pairs (nas.device.regions.pair_table: 32,768
# codes or more), so that the paired kernel's variant has runs of its own beside MODELS' 1x131
# (one-layer GRUs and LSTMs with 16-bit biases: the shared coefficients of depth, bias width and
# the RNN cell stay MODELS' to fit; with a one-layer RNN 1x180 here they ran away, layers 12,425
# and step -12,278, and a 1x45 RNN outside the fit was predicted 5% low)
# Rows that end on a whole window (1x132, 1x96: no last codes) beside rows that do not: a row's last
# codes cost about twice a window's, and without both kinds the fit cannot tell them apart (the
# 36 kB GRU 1x132 was predicted 8.8% high)
PAIRED_MODELS = [
    ("gru", 1, 100, 13, 16), ("gru", 1, 118, 10, 16), ("gru", 1, 132, 13, 16),
    ("lstm", 1, 90, 13, 16), ("lstm", 1, 104, 10, 16), ("lstm", 1, 96, 10, 16),
]  # fmt: skip
# Outside the fit: odd hidden sizes, a second layer of them, 16 inputs, in the default space's formats.
# Their errors (written beside the fit's) show how the model does on shapes it was not fitted to:
# a kernel specialised by the compiler on one model's constants once put a GRU 1x55 7% above its
# prediction (docs/compute-model.md).
HELD_OUT_MODELS = [("gru", 1, 55, 13, 16), ("gru", 2, 55, 16, 16), ("lstm", 1, 47, 10, 16)]
HELD_OUT_FORMATS = [("pow2", 3), ("pow2", 4), ("pow2", 5), ("fixed", 4), ("fixed", 6), ("fixed", 8)]
# n_fft, n_mels, hop, n_mfcc: the stream's own work per hop (samples taken, the window slid)
FRONTENDS = [
    (64, 20, 32, 10), (128, 20, 64, 13), (512, 64, 160, 20), (1024, 40, 256, 13), (256, 40, 40, 13), (256, 40, 128, 13), (256, 40, 200, 13)
]  # fmt: skip
FRONTEND_SHAPES = [(n, mels, mfcc) for n in (64, 128, 256, 512, 1024) for mels, mfcc in ((20, 10), (40, 13), (64, 20))]


class Runner:
    def __init__(self, recordings, train):
        self.recordings, self.train, self.normalisers, self.frontends = recordings, train, {}, {}

    def normaliser(self, features):
        from nas.features.extract import FeatureCache, Normaliser

        if features not in self.normalisers:
            self.normalisers[features] = Normaliser.fit(FeatureCache().get(self.train, features), features.normalisation, integer=True)
        return self.normalisers[features]

    def frontend(self, features, target: str) -> float:
        """The front-end's own program: instructions per frame."""
        import numpy as np

        from nas.device.cfrontend import generate_frontend
        from nas.device.firmware import build_firmware, run_frontend_firmware, write_frontend_firmware
        from nas.features.extract import compute_frames

        key = (features, target)
        if key not in self.frontends:
            normaliser = self.normaliser(features)
            raw = compute_frames(self.recordings, features)
            expected = [np.round(normaliser.apply(f) * 4096).astype(np.int64) for f in raw]
            with tempfile.TemporaryDirectory() as work:
                folder = Path(work)
                header, source = generate_frontend(features, *normaliser.constants())
                (folder / "frontend.h").write_text(header)
                (folder / "frontend.c").write_text(source)
                write_frontend_firmware(folder, [w.samples for w in self.recordings], expected)
                run = run_frontend_firmware(build_firmware(folder, target, "frontend"), target=target)
            if run.mismatches:
                raise SystemExit(f"front-end {features}: QEMU's features differ from Python's")
            self.frontends[key] = run.instructions_per_frame
        return self.frontends[key]

    def stream(self, model, quant, features, target: str) -> tuple[float, float]:
        """(instructions per frame, instructions of nas_classify) of the whole stream."""
        import numpy as np
        import torch

        from nas.device.cexport import generate
        from nas.device.firmware import build_firmware, run_firmware, write_firmware
        from nas.engine.intmodel import from_float_model
        from nas.features.extract import compute_frames
        from nas.model.models import RecurrentClassifier

        normaliser = self.normaliser(features)
        torch.manual_seed(model.hidden)
        engine = from_float_model(RecurrentClassifier(model), quant)
        raw = compute_frames(self.recordings, features)
        logits = np.concatenate([engine.logits([engine.quantize_frames(normaliser.apply(f))]) for f in raw])
        with tempfile.TemporaryDirectory() as work:
            folder = Path(work)
            header, source = generate(engine, features, normaliser.constants())
            (folder / "model.h").write_text(header)
            (folder / "model.c").write_text(source)
            write_firmware(folder, [w.samples for w in self.recordings], logits)
            run = run_firmware(build_firmware(folder, target), target=target)
        if run.mismatches:
            raise SystemExit(f"{model} {quant}: QEMU's logits differ from the engine's")
        return run.instructions_per_frame, float(run.classify_instructions.mean())


def fit(rows: list[tuple[dict, float]]) -> tuple[dict[str, float], float]:
    """Least squares of measured ~ sum(coefficient * count), each row divided by its measurement
    (relative errors); (coefficients, the worst relative error of the fit)."""
    import numpy as np

    names = sorted({name for counts, _ in rows for name in counts})
    a = np.array([[counts.get(name, 0.0) for name in names] for counts, _ in rows])
    b = np.array([measured for _, measured in rows])
    solution = np.linalg.lstsq(a / b[:, None], np.ones(len(b)), rcond=None)[0]
    worst = float(np.abs(a @ solution / b - 1).max())
    return dict(zip(names, (float(v) for v in solution), strict=True)), worst


def _predicted(counts: dict, costs: dict) -> float:
    return sum(costs.get(name, 0.0) * value for name, value in counts.items())


def versions() -> dict:
    def first_line(command: list[str]) -> str:
        return subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0]

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "nas"], capture_output=True, text=True).stdout.strip()
    commit += " with uncommitted changes to nas/" if changed else ""
    return {"commit": commit, "gcc": first_line(["arm-none-eabi-gcc", "--version"]), "qemu": first_line(["qemu-system-arm", "--version"])}


def calibrate(target: str, runner: Runner) -> dict:
    from nas.device.compute import classify_counts, frontend_counts, model_counts
    from nas.features.extract import FeatureConfig
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig

    front_rows = []
    for n_fft, mels, mfcc in FRONTEND_SHAPES:
        for normalisation in ("running", "global"):
            features = FeatureConfig(n_fft=n_fft, n_mels=mels, n_mfcc=mfcc, hop_length=n_fft // 2, normalisation=normalisation)
            front_rows.append((frontend_counts(features), runner.frontend(features, target)))
    front_costs, front_worst = fit(front_rows)
    model_rows, classify_rows = [], []
    cases = [
        (ModelConfig(cell=cell, layers=layers, hidden=hidden, n_input=inputs),
         QuantConfig.make(scheme, bits, bias_bits=bias, state_bits=state), FeatureConfig(n_mfcc=inputs))
        for scheme, bits in FORMATS for state in (16, 8) for cell, layers, hidden, inputs, bias in MODELS
    ]  # fmt: skip
    cases += [
        (ModelConfig(cell=cell, layers=layers, hidden=hidden, n_input=inputs),
         QuantConfig.make("pow2", 4, bias_bits=bias, state_bits=state), FeatureConfig(n_mfcc=inputs))
        for state in (16, 8) for cell, layers, hidden, inputs, bias in PAIRED_MODELS
    ]  # fmt: skip
    for n_fft, mels, hop, mfcc in FRONTENDS:
        features = FeatureConfig(n_fft=n_fft, n_mels=mels, hop_length=hop, n_mfcc=mfcc)
        cases.append((ModelConfig(hidden=16, n_input=mfcc), QuantConfig.make("pow2", 4), features))
    streams = []
    for model, quant, features in cases:
        per_frame, classify = runner.stream(model, quant, features, target)
        model_rows.append((model_counts(model, quant, features), per_frame - runner.frontend(features, target)))
        classify_rows.append((model, quant, classify))
        streams.append((model, quant, features, per_frame))
        print(target, model.describe(), quant.describe(), round(per_frame), flush=True)
    model_costs, model_worst = fit(model_rows)
    costs = front_costs | model_costs
    errors = sorted(
        (abs(_predicted(frontend_counts(f) | model_counts(m, q, f), costs) / measured - 1), f"{m.describe()}, {q.describe()}")
        for m, q, f, measured in streams
    )
    classify_costs, classify_worst = fit([(classify_counts(model, quant), classify) for model, quant, classify in classify_rows])
    held_out = []
    for scheme, bits in HELD_OUT_FORMATS:
        for cell, layers, hidden, inputs, bias in HELD_OUT_MODELS:
            model = ModelConfig(cell=cell, layers=layers, hidden=hidden, n_input=inputs)
            quant, features = QuantConfig.make(scheme, bits, bias_bits=bias), FeatureConfig(n_mfcc=inputs)
            measured, _ = runner.stream(model, quant, features, target)
            predicted = _predicted(frontend_counts(features) | model_counts(model, quant, features), costs)
            held_out.append((abs(predicted / measured - 1), f"{model.describe()}, {quant.describe()}"))
    held_out.sort()
    return {
        "target": target,
        "calibrated_with": versions(),
        "command": "python bench/compute_calibration.py",
        "runs": {"frontend": len(front_rows), "stream": len(model_rows), "held_out": len(held_out)},
        "worst_relative_error_of_the_fit": {
            "frontend": round(front_worst, 4),
            "model": round(model_worst, 4),
            "classify": round(classify_worst, 4),
            "stream": round(errors[-1][0], 4),
            "worst_streams": [f"{error:.4f} {name}" for error, name in errors[-3:]],
            "held_out": round(held_out[-1][0], 4),
            "worst_held_out": [f"{error:.4f} {name}" for error, name in held_out[-3:]],
        },
        "coefficients": front_costs | model_costs | classify_costs,
    }


def main(argv: list[str]) -> int:
    from nas.data.dataset import find_data_dir, list_recordings, make_split, read_all
    from nas.device.compute import COSTS
    from nas.device.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    args = parser.parse_args(argv)
    split = make_split(list_recordings(find_data_dir()), "official")
    recordings = read_all([next(r for r in split.test if r.digit == digit) for digit in range(4)])
    runner = Runner(recordings, read_all(split.train))
    COSTS.mkdir(exist_ok=True)
    for target in args.targets.split(","):
        result = calibrate(target, runner)
        (COSTS / f"{target}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(target, result["worst_relative_error_of_the_fit"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
