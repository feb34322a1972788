"""Instructions per frame on the device, measured in QEMU, the model apart from the front-end.

For the largest GRU within 36 kB (device memory, one layer, 13 MFCC, the default front-end:
256-sample window, 40 mel bands, 10 ms hop) in every weight scheme and width of the default space
(pow2 3/4/5, fixed 4/6/8), on each target of `nas.device.targets`:
- the whole stream (PCM in, `nas_push_samples`), instructions per frame;
- the front-end alone (frontend.c, the same recordings, frame by frame);
- the model: the stream less the front-end, and that per weight (the recurrent weights a frame
  steps through; the classifier runs once per utterance, apart);
- what the compute model (nas.device.compute) predicts, and its error;
- the bytes per target: the memory model's flash and RAM, and the ARM objects' `.text`,
  `.rodata` (= flash) and `.bss` (= RAM less the stack reserve).
Random weights (instructions do not depend on their values, but for the branches the kernel
takes on zero codes, which random weights hit as often as trained ones do) and the normalisation
of the official train split; 10 test recordings, one of each digit, whose logits and features
must equal the Python engine's. Needs arm-none-eabi-gcc and qemu-system-arm.

    .venv/bin/python bench/compute.py --label after     # writes bench/results/compute.json

The file keeps one list of rows per label, so "before" (the reference kernel) and "after" sit side
by side; a label measured again replaces its rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "compute.json"
BUDGET_KB = 36
WEIGHTS = (("pow2", 3), ("pow2", 4), ("pow2", 5), ("fixed", 4), ("fixed", 6), ("fixed", 8))
RECORDINGS_PER_DIGIT = 1


def configurations():
    from nas.device.memory import Budget, largest_hidden
    from nas.features.extract import FeatureConfig
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig

    features = FeatureConfig()
    for scheme, bits in WEIGHTS:
        quant = QuantConfig.make(scheme, bits)
        model = ModelConfig(n_input=features.n_mfcc)
        yield model.with_hidden(largest_hidden(Budget.from_kb(BUDGET_KB), model, quant, features)), quant, features


def measure(model, quant, features, recordings, normaliser, targets) -> list[dict]:
    import numpy as np
    import torch

    from nas.device.cexport import generate
    from nas.device.cfrontend import generate_frontend
    from nas.device.compute import frame_cost, predict_instructions
    from nas.device.firmware import (
        build_firmware,
        run_firmware,
        run_frontend_firmware,
        write_firmware,
        write_frontend_firmware,
    )
    from nas.device.memory import memory_breakdown
    from nas.device.toolchain import ARM, compile_export
    from nas.engine.intmodel import from_float_model
    from nas.features.extract import compute_frames
    from nas.model.models import RecurrentClassifier

    torch.manual_seed(0)
    engine = from_float_model(RecurrentClassifier(model), quant)
    raw = compute_frames(recordings, features)
    normalised = [normaliser.apply(frames) for frames in raw]
    logits = np.concatenate([engine.logits([engine.quantize_frames(f)]) for f in normalised])
    pcm = [np.pad(w.samples, (0, max(0, features.n_fft - len(w.samples)))) for w in recordings]
    cost = frame_cost(model, features)
    breakdown = memory_breakdown(model, quant, features)
    predicted = {target: predict_instructions(model, quant, features, target) for target in targets}
    rows = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        header, source = generate(engine, features, normaliser.constants())
        (folder / "model.h").write_text(header)
        (folder / "model.c").write_text(source)
        front_header, front_source = generate_frontend(features, *normaliser.constants())
        (folder / "frontend.h").write_text(front_header)
        (folder / "frontend.c").write_text(front_source)
        write_firmware(folder, pcm, logits)
        q12 = [np.clip(np.floor(f * 4096 + 0.5), -32768, 32767).astype(np.int64) for f in normalised]
        write_frontend_firmware(folder, pcm, q12)
        for target in targets:
            started = time.time()
            compiled = compile_export(folder, ARM, folder / f"build-{target}", target)
            stream = run_firmware(build_firmware(folder, target), target=target)
            front = run_frontend_firmware(build_firmware(folder, target, "frontend"), target=target)
            model_per_frame = stream.instructions_per_frame - front.instructions_per_frame
            rows.append(
                {
                    "target": target,
                    "model": f"{model.describe()}, {quant.describe()}, front-end {features.n_fft}/{features.n_mels}",
                    "weights": quant.weights,
                    "weight_bits": quant.weight_bits,
                    "hidden": model.hidden,
                    "weights_per_frame": cost.model_macs,
                    "stream_instructions_per_frame": round(stream.instructions_per_frame),
                    "frontend_instructions_per_frame": round(front.instructions_per_frame),
                    "model_instructions_per_frame": round(model_per_frame),
                    "model_instructions_per_weight": round(model_per_frame / cost.model_macs, 2),
                    "classify_instructions": int(stream.classify_instructions.max()),
                    "flash_bytes": breakdown.flash_bytes,
                    "ram_bytes": breakdown.ram_bytes,
                    "text_bytes": compiled.text_bytes,
                    "rodata_bytes": compiled.rodata_bytes,
                    "bss_bytes": compiled.bss_bytes,
                    "rodata_is_flash": compiled.rodata_bytes == breakdown.flash_bytes,
                    "predicted_instructions_per_frame": round(predicted[target].per_frame),
                    "prediction_error": round(predicted[target].per_frame / stream.instructions_per_frame - 1, 4),
                    "identical_logits": f"{len(stream.classes) - stream.mismatches}/{len(stream.classes)}",
                    "identical_features": f"{len(front.frames) - front.mismatches}/{len(front.frames)}",
                    "qemu_seconds": round(time.time() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str]) -> int:
    from nas.data.dataset import find_data_dir, list_recordings, make_split, read_all
    from nas.device.targets import TARGETS
    from nas.features.extract import FeatureCache, Normaliser

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="the rows' name in the results file, e.g. before, after")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    data_dir = find_data_dir()
    split = make_split(list_recordings(data_dir), "official")
    chosen = [r for digit in range(10) for r in [r for r in split.test if r.digit == digit][:RECORDINGS_PER_DIGIT]]
    recordings = read_all(chosen)
    train = read_all(split.train)
    rows, normalisers = [], {}
    for model, quant, features in configurations():
        if features not in normalisers:
            normalisers[features] = Normaliser.fit(FeatureCache().get(train, features), features.normalisation, integer=True)
        rows += measure(model, quant, features, recordings, normalisers[features], targets)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = {"command": "python bench/compute.py " + " ".join(argv), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["identical_logits"].split("/")[0] == r["identical_logits"].split("/")[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
