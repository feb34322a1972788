"""Where the front-end's instructions go (or, with --model, the whole stream's): run its firmware
(one FSDD recording) in QEMU with every executed instruction's address logged, and count them per
function and per instruction.

    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/profile_frontend.py [--target cortex-m4] [--annotate FUNCTION]
    NAS_DATA_DIR=../shared/fsdd/recordings .venv/bin/python bench/profile_frontend.py --model gru,1,109,13,fixed,6 --annotate dot2_rows

Prints instructions per frame per function (the counts QEMU's -icount measures, by address) and,
with --annotate, the function's disassembly with each instruction's executions per frame. A
reading aid for the C of nas/device/cfrontend.py, not a benchmark: its figures are not stored.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
EXECUTED = re.compile(r"\[[0-9a-f]+/([0-9a-f]+)/")


def main(argv: list[str]) -> int:
    from compute_calibration import Runner

    from nas.data.dataset import find_data_dir, list_recordings, make_split, read_all
    from nas.device.firmware import QEMU
    from nas.device.targets import DEFAULT_TARGET, TARGETS, get_target

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=DEFAULT_TARGET, choices=sorted(TARGETS))
    parser.add_argument("--annotate", metavar="FUNCTION", help="also print this function's instructions with their counts")
    parser.add_argument("--model", metavar="CELL,LAYERS,HIDDEN,INPUTS,SCHEME,BITS", help="profile this model's whole stream")
    args = parser.parse_args(argv)
    split = make_split(list_recordings(find_data_dir()), "official")
    recordings = read_all([next(r for r in split.test if r.digit == 0)])
    runner = Runner(recordings, read_all(split.train[:200]))
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        frames, elf = (_stream if args.model else _frontend)(folder, runner, args)
        log = folder / "exec.log"
        command = [QEMU, "-M", get_target(args.target).machine, "-nographic", "-monitor", "none", "-serial", "none", "-semihosting"]
        command += ["-icount", "shift=0", "-kernel", str(elf), "-singlestep", "-d", "exec,nochain", "-D", str(log)]
        subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        executed: collections.Counter[int] = collections.Counter()
        with open(log) as lines:
            for line in lines:
                found = EXECUTED.search(line)
                if found:
                    executed[int(found.group(1), 16)] += 1
        symbols = []
        for line in subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2] in "tT":
                symbols.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
        objdump = ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(elf)]
        disassembly = subprocess.run(objdump, capture_output=True, text=True, check=True).stdout
    per_function: collections.Counter[str] = collections.Counter()
    for address, count in executed.items():
        per_function[next((name for start, size, name in symbols if start <= address < start + size), "?")] += count
    print(f"{args.target}, {args.model or 'front-end'}, {frames} frames: instructions per frame")
    for name, count in per_function.most_common():
        print(f"  {name:28s} {count / frames:10,.0f}")
    if args.annotate:
        inside = False
        for line in disassembly.splitlines():
            if re.match(r"^[0-9a-f]+ <", line):
                inside = f"<{args.annotate}>" in line
            found = re.match(r"\s+([0-9a-f]+):\s+(.*)", line) if inside else None
            if found:
                print(f"{executed.get(int(found.group(1), 16), 0) / frames:8.0f}  {found.group(1)}: {found.group(2)}")
    return 0


def _frontend(folder: Path, runner, args) -> tuple[int, Path]:
    """The front-end's own firmware at the default features: (frames, the ELF)."""
    import numpy as np

    from nas.device.cfrontend import generate_frontend
    from nas.device.firmware import build_firmware, write_frontend_firmware
    from nas.features.extract import FeatureConfig, compute_frames

    features = FeatureConfig()
    normaliser = runner.normaliser(features)
    expected = [np.round(normaliser.apply(f) * 4096).astype(np.int64) for f in compute_frames(runner.recordings, features)]
    header, source = generate_frontend(features, *normaliser.constants())
    (folder / "frontend.h").write_text(header)
    (folder / "frontend.c").write_text(source)
    write_frontend_firmware(folder, [w.samples for w in runner.recordings], expected)
    return len(expected[0]), build_firmware(folder, args.target, "frontend")


def _stream(folder: Path, runner, args) -> tuple[int, Path]:
    """The whole stream's firmware of --model, random weights (torch seed 0): (frames, the ELF)."""
    import numpy as np
    import torch

    from nas.device.cexport import generate
    from nas.device.firmware import build_firmware, write_firmware
    from nas.engine.intmodel import from_float_model
    from nas.features.extract import FeatureConfig, compute_frames
    from nas.model.architecture import ModelConfig
    from nas.model.formats import QuantConfig
    from nas.model.models import RecurrentClassifier

    cell, layers, hidden, inputs, scheme, bits = args.model.split(",")
    model = ModelConfig(cell=cell, layers=int(layers), hidden=int(hidden), n_input=int(inputs))
    features = FeatureConfig(n_mfcc=int(inputs))
    normaliser = runner.normaliser(features)
    torch.manual_seed(0)
    engine = from_float_model(RecurrentClassifier(model), QuantConfig.make(scheme, int(bits)))
    raw = compute_frames(runner.recordings, features)
    logits = np.concatenate([engine.logits([engine.quantize_frames(normaliser.apply(f))]) for f in raw])
    header, source = generate(engine, features, normaliser.constants())
    (folder / "model.h").write_text(header)
    (folder / "model.c").write_text(source)
    write_firmware(folder, [w.samples for w in runner.recordings], logits)
    return len(raw[0]), build_firmware(folder, args.target)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
