"""Compile generated C with gcc -std=c99 -Wall -Wextra -Werror and run it: feature frames through
`nas_push_frame`, or PCM through `nas_push_samples`, one utterance per record."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from nas.device.cproject import write_pcm_records

HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"
static nas_stream_t stream;
int main(int argc, char **argv) {
    FILE *f;
    int32_t n, i;
    int16_t *values;
    int pcm = argc == 3;
    if (argc < 2 || !(f = fopen(argv[1], "rb"))) return 2;
    while (fread(&n, sizeof n, 1, f) == 1) {
        size_t count = pcm ? (size_t)n : (size_t)n * NAS_N_INPUT;
        values = malloc(sizeof(int16_t) * (count ? count : 1));
        if (!values || fread(values, sizeof(int16_t), count, f) != count) return 3;
        nas_reset(&stream);
#ifdef NAS_FRAME_SAMPLES
        if (pcm) {
            /* uneven pieces, as audio arrives: 1, 2, 3, ... samples at a time */
            size_t at = 0, piece = 1;
            while (at < count) {
                size_t take = piece < count - at ? piece : count - at;
                nas_push_samples(&stream, values + at, (int)take);
                at += take;
                piece = piece % 97 + 1;
            }
            nas_end(&stream);
        } else
#endif
        for (i = 0; i < n; i++) nas_push_frame(&stream, values + (size_t)i * NAS_N_INPUT);
        printf("%d", nas_classify(&stream));
        for (i = 0; i < NAS_N_CLASSES; i++) printf(" %ld", (long)stream.logits[i]);
        printf(" %ld\n", (long)stream.frames);
        free(values);
    }
    printf("sizeof %lu %lu\n", (unsigned long)sizeof(nas_packed), (unsigned long)sizeof(nas_stream_t));
    return 0;
}
"""


# AddressSanitizer and UndefinedBehaviorSanitizer, stopping at the first report
SANITIZERS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")


def compile_harness(folder: Path, sanitize: bool = False) -> Path:
    (folder / "harness.c").write_text(HARNESS)
    binary = folder / "harness"
    command = ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", *(SANITIZERS if sanitize else ())]
    command += ["-o", str(binary), str(folder / "model.c"), str(folder / "harness.c")]
    compiled = subprocess.run(command, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    return binary


def parse_output(stdout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    lines = stdout.strip().splitlines()
    rows = np.array([[int(v) for v in line.split()] for line in lines[:-1]], dtype=np.int64)
    sizes = tuple(int(v) for v in lines[-1].split()[1:])
    return rows[:, 0], rows[:, 1:-1], rows[:, -1], sizes


def run_c_model(folder: Path, sequences: list[np.ndarray], pcm: bool = False, sanitize: bool = False):
    """(classes, logits, frames per utterance, (sizeof nas_packed, sizeof nas_stream_t)) from the
    compiled model.c in `folder`: Q3.12 feature frames, or int16 PCM with pcm=True; `sanitize`
    builds with ASan and UBSan, and any report fails the run."""
    binary = compile_harness(folder, sanitize)
    write_pcm_records(folder / "input.bin", sequences)  # frames (n x NAS_N_INPUT values) or PCM: the same records
    result = subprocess.run([str(binary), str(folder / "input.bin"), *(["pcm"] if pcm else [])], capture_output=True, text=True, check=True)
    return parse_output(result.stdout)
