"""The device figures: the memory model's flash and RAM against what the compilers produce, and
the Cortex-M4's instructions per frame in QEMU, for the largest model the solver allows within
36 kB and for export folders given on the command line (the default search's picks).

    .venv/bin/python bench/device.py results/pow2-36kb/exports/trial-0002 results/pow2-36kb/exports/trial-0001

The solver's model (GRU, pow2 4-bit, 13 MFCC, the default front-end: 256-sample window, 40 mel
bands) gets random weights (bytes and instructions do not depend on their values) and the
normalisation of the official train split; every model runs the same 20 golden test recordings
(two of each digit) in QEMU. Needs gcc, arm-none-eabi-gcc and qemu-system-arm; writes
bench/results/device.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "device.json"
BUDGET_KB = 36


def measure(folder: Path, breakdown: dict) -> dict:
    from nas.device.firmware import build_firmware, run_firmware
    from nas.device.toolchain import ARM, HOST, compile_export

    row = {"memory": breakdown}
    for compiler in (HOST, ARM):
        compiled = compile_export(folder, compiler)
        row[compiler] = compiled.to_dict() | {
            "static_bytes": compiled.rodata_bytes + compiled.data_bytes + compiled.bss_bytes,
            "equals_model": compiled.rodata_bytes == breakdown["flash_bytes"]
            and compiled.data_bytes == 0
            and compiled.bss_bytes == breakdown["ram_bytes"] - breakdown["stack_bytes"],
            "stack_within_reserve": compiled.max_stack_bytes <= breakdown["stack_bytes"],
        }
    run = run_firmware(build_firmware(folder))
    row["qemu"] = {
        "golden_vectors": len(run.classes),
        "identical_logits": int(len(run.classes) - run.mismatches),
        "instructions_per_frame": round(run.instructions_per_frame),
        "instructions_per_tick": run.instructions_per_tick,
        "classify_instructions": int(run.classify_instructions.max()),
    }
    return row


def solver_model(work: Path) -> dict:
    import numpy as np
    import torch

    from nas.bundle.export import golden_vectors
    from nas.data.dataset import find_data_dir, list_recordings, make_split, read_all
    from nas.device.cexport import generate
    from nas.device.compute import frame_cost
    from nas.device.firmware import write_firmware
    from nas.device.memory import Budget, largest_hidden, memory_breakdown
    from nas.engine.intmodel import from_float_model
    from nas.features.extract import FeatureCache, FeatureConfig, Normaliser
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig
    from nas.model.models import RecurrentClassifier

    features, quant = FeatureConfig(), QuantConfig.make("pow2", 4)
    budget = Budget.from_kb(BUDGET_KB)
    model = ModelConfig(n_input=features.n_mfcc)
    model = model.with_hidden(largest_hidden(budget, model, quant, features))
    torch.manual_seed(0)
    engine = from_float_model(RecurrentClassifier(model), quant)
    data_dir = find_data_dir()
    train = read_all(make_split(list_recordings(data_dir), "official").train)
    normaliser = Normaliser.fit(FeatureCache().get(train, features), "global", integer=True)
    header, source = generate(engine, features, normaliser.constants())
    (work / "model.h").write_text(header)
    (work / "model.c").write_text(source)
    _, pcm, logits = golden_vectors(data_dir, "official", engine, features, normaliser)
    write_firmware(work, pcm, np.asarray(logits))
    breakdown = memory_breakdown(model, quant, features).to_dict()
    return {
        "model": f"{model.describe()}, {quant.describe()}, front-end {features.n_fft}/{features.n_mels}",
        "budget_bytes": budget.limit_bytes,
        "compute_per_frame": frame_cost(model, features).to_dict(),
    } | measure(work, breakdown)


def export_row(folder: Path) -> dict:
    description = json.loads((folder / "model.json").read_text())
    model, features = description["model_config"], description["feature_config"]
    name = f"trial {description['trial']}: {model['cell'].upper()} {model['layers']}x{model['hidden']}, {model['n_input']} MFCC, "
    name += f"pow2 {description['quant_config']['weight_bits']}-bit, front-end {features['n_fft']}/{features['n_mels']}"
    accuracy = description["accuracy"]
    return {
        "model": name,
        "export": str(folder),
        "test": f"{accuracy['test_correct']}/{accuracy['test_total']}",
        "compute_per_frame": description["compute_per_frame"],
    } | measure(folder, description["memory"])


def main(folders: list[str]) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        rows.append(solver_model(Path(work)))
    rows += [export_row(Path(folder)) for folder in folders]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    for row in rows:
        memory, arm, qemu = row["memory"], row["arm-none-eabi-gcc"], row["qemu"]
        print(
            f"{row['model']}: model {memory['total_bytes']:,} B (flash {memory['flash_bytes']:,} + RAM {memory['ram_bytes']:,}); "
            f"Cortex-M4 .rodata {arm['rodata_bytes']:,} + .bss {arm['bss_bytes']:,} + stack reserve {memory['stack_bytes']} "
            f"(deepest {arm['max_stack_bytes']}), equal: {arm['equals_model'] and row['gcc']['equals_model']}; "
            f"code {arm['text_bytes']:,} B; {qemu['identical_logits']}/{qemu['golden_vectors']} golden vectors identical in QEMU, "
            f"{qemu['instructions_per_frame']:,} instructions per frame"
        )
    return 0 if all(r["gcc"]["equals_model"] and r["arm-none-eabi-gcc"]["equals_model"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
