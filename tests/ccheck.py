"""Compile generated C with gcc -std=c99 -Wall -Wextra -Werror and run it on quantized frames."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"
int main(int argc, char **argv) {
    FILE *f;
    int32_t n, i, logits[NAS_N_CLASSES];
    int16_t *frames;
    if (argc != 2 || !(f = fopen(argv[1], "rb"))) return 2;
    while (fread(&n, sizeof n, 1, f) == 1) {
        frames = malloc(sizeof(int16_t) * (size_t)n * NAS_N_INPUT);
        if (!frames || fread(frames, sizeof(int16_t), (size_t)n * NAS_N_INPUT, f) != (size_t)n * NAS_N_INPUT) return 3;
        printf("%d", nas_classify(frames, n, logits));
        for (i = 0; i < NAS_N_CLASSES; i++) printf(" %ld", (long)logits[i]);
        printf("\n");
        free(frames);
    }
    printf("sizeof %lu\n", (unsigned long)sizeof(nas_packed));
    return 0;
}
"""


def run_c_model(folder: Path, sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """(classes, logits, sizeof(nas_packed)) from the compiled model.c in `folder`."""
    (folder / "harness.c").write_text(HARNESS)
    binary = folder / "harness"
    command = [
        "gcc",
        "-std=c99",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O1",
        "-o",
        str(binary),
        str(folder / "model.c"),
        str(folder / "harness.c"),
    ]
    compiled = subprocess.run(command, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    with (folder / "frames.bin").open("wb") as handle:
        for sequence in sequences:
            handle.write(np.int32(len(sequence)).tobytes())
            handle.write(np.asarray(sequence).astype("<i2").tobytes())
    result = subprocess.run([str(binary), str(folder / "frames.bin")], capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    rows = np.array([[int(v) for v in line.split()] for line in lines[:-1]], dtype=np.int64)
    return rows[:, 0], rows[:, 1:], int(lines[-1].split()[1])
