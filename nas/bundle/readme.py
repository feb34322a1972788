"""The README.md of an export folder: what each file is, how to call the C, every byte line of
the memory model beside the compiler's figures, the compute per frame and what a port must
reproduce. Generated Markdown, from model.json's content."""

from __future__ import annotations

from nas.data.dataset import SAMPLE_RATE
from nas.device.toolchain import ARM, HOST


def confirmed_lines(confirmed: dict | None) -> list[str]:
    """What a confirmed point's export says first: the mean over seeds, of which this is one run."""
    if not confirmed:
        return []

    def mean(key: str) -> str:
        low, high = confirmed[f"{key}_ci95"]
        return f"{confirmed[key]:.2f}% [95% CI {low:.1f}-{high:.1f}]"

    seeds = confirmed["seeds"]
    line = (
        f"**Confirmed** over seeds {', '.join(map(str, seeds))} (the study's top-fidelity recipe, nas docs/search.md): mean validation {mean('val_mean')}, "
        f"mean official test {mean('test_mean')}"
    )
    if confirmed.get("held_out_mean") is not None:
        line += f", held-out speakers {', '.join(confirmed['held_out_speakers'])} {mean('held_out_mean')}"
    line += (
        f". These files are seed {confirmed['exported_seed']}'s training, the seed closest to the mean on validation; "
        "its own figures are above. Quote the means."
    )
    return ["", line]


def folder_readme(description: dict) -> str:
    model, quant, memory = description["model_config"], description["quant_config"], description["memory"]
    accuracy, features = description["accuracy"], description["feature_config"]
    streaming = features["frontend"] == "integer"
    lines = [
        f"# nas export: trial {description['trial']}" if description["trial"] is not None else "# nas export: a nas train checkpoint",
        "",
        f"{model['cell'].upper()} {model['layers']}x{model['hidden']}, {model['n_input']} MFCC, {quant['weights']} {quant['weight_bits']}-bit weights, "
        f"{quant['state_bits']}-bit state"
        + (
            f"; integer front-end: {features['n_fft']}-sample window, hop {features['hop_length']}, {features['n_mels']} mel bands."
            if streaming
            else "."
        ),
        f"Device memory: **{memory['total_bytes']:,} B** = flash {memory['flash_bytes']:,} B + RAM {memory['ram_bytes']:,} B (memory model; "
        "the compiler's figures below). Integer-engine accuracy on split "
        f"'{description['split']}': validation {accuracy['val_correct']}/{accuracy['val_total']}, test {accuracy['test_correct']}/{accuracy['test_total']}.",
        *confirmed_lines(description.get("confirmed")),
        "",
        "| file | what it is |",
        "| --- | --- |",
        "| `model.h`, `model.c` | C99, integer arithmetic only, no heap, no library: the classifier"
        + (" and its front-end, fed PCM |" if streaming else ", fed feature frames |"),
        "| `weights.bin` | the packed weights, biases and shifts: the bytes of `nas_packed` (layout: nas docs/export.md) |",
        "| `model.json` | configs, front-end, normalisation constants, memory lines, compute, compiler figures, accuracy, versions |",
        "| `model.pt` | torch checkpoint (`torch.load(..., weights_only=True)`) |",
    ]
    if streaming:
        lines += [
            "| `Makefile` | `make example`, `make check` (golden vectors), `make size`; `make arm`, `make qemu` (Cortex-M4) |",
            "| `example.c` | reads a WAV (8 kHz, mono, 16-bit) and prints the digit: `make example && ./example recording.wav` |",
            "| `check.c`, `vectors.h` | golden vectors: PCM of test recordings and the logits the Python engine gives them |",
            "| `main.c`, `startup.c`, `measure.h`, `link.ld` | the same vectors on a bare Cortex-M4 (QEMU `mps2-an386`, semihosting), instructions counted with SysTick |",
            "",
            "## Use",
            "",
            "```c",
            '#include "model.h"',
            "static nas_stream_t stream;                 /* all the RAM it needs but the stack */",
            "nas_reset(&stream);                         /* zero state: the initial state is zero */",
            "nas_push_samples(&stream, pcm, count);      /* as audio arrives: int16, 8 kHz, any piece size */",
            "nas_end(&stream);                           /* an utterance shorter than one window is zero-padded */",
            "int digit = nas_classify(&stream);          /* any time; stream.logits holds 10 int32 logits (Q.12) */",
            "```",
        ]
    return "\n".join(lines + _memory_lines(description) + _compute_lines(description) + PORT_LINES) + "\n"


def _memory_lines(description: dict) -> list[str]:
    """Every byte of flash and RAM, beside what the compilers measured."""
    memory = description["memory"]
    lines = [
        "",
        "## Memory (bytes)",
        "",
        "| region | part | what | C symbol | values x bits | bytes |",
        "| --- | --- | --- | --- | --- | ---: |",
    ]
    for item in description["memory_items"]:
        lines.append(
            f"| {item['region']} | {item['category']} | {item['name']} | `{item['symbol']}` | {item['count']:,} x {item['bits']} | {item['bytes']:,} |"
        )
    lines.append(f"| | | **flash {memory['flash_bytes']:,} + RAM {memory['ram_bytes']:,}** | | | **{memory['total_bytes']:,}** |")
    compiled = description.get("compiled") or {}
    builds = [(name, compiled[name]) for name in (HOST, ARM) if name in compiled]
    if builds:
        lines += [
            "",
            "Measured on this export (`-Os -fdata-sections -ffunction-sections`; `size -A`, `nm -S`, `-fstack-usage`):",
            "",
            "| compiler | .rodata (flash) | .data | .bss (one `nas_stream_t`) | deepest stack | code (.text) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, figures in builds:
            lines.append(
                f"| {name} | {figures['rodata_bytes']:,} | {figures['data_bytes']:,} | {figures['bss_bytes']:,} | {figures['max_stack_bytes']:,} | {figures['text_bytes']:,} |"
            )
        lines.append(
            f"\nThe model's flash lines sum to {memory['flash_bytes']:,} B and its struct to {memory['ram_bytes'] - memory['stack_bytes']:,} B; "
            f"the stack reserve is {memory['stack_bytes']} B. Code (.text) is not part of the budget."
        )
    return lines


def _compute_lines(description: dict) -> list[str]:
    """The compute model's operations per frame, and QEMU's instructions when it ran."""
    cost, quant = description.get("compute_per_frame") or {}, description["quant_config"]
    compiled = description.get("compiled") or {}
    lines: list[str] = []
    if cost:
        lines += [
            "",
            "## Compute per frame (one hop)",
            "",
            f"- front-end: {cost['frontend_macs']:,} multiply-accumulates, {cost['frontend_lookups']} log-table lookups, {cost['samples_moved']} samples moved",
            f"- model: {cost['model_macs']:,} weight terms ({'shift-adds: power-of-two weights' if quant['weights'] == 'pow2' else 'multiply-accumulates'}), "
            f"{cost['model_lookups']:,} sigmoid-table lookups",
            f"- classifier, once per utterance: {cost['classifier_macs']:,} weight terms",
        ]
        hop_seconds = description["feature_config"]["hop_length"] / SAMPLE_RATE
        for target, predicted in (description.get("instructions_predicted") or {}).items():
            lines.append(
                f"- {target}, predicted by the compute model: about {predicted['instructions_per_frame']:,} instructions per frame "
                f"(front-end {predicted['frontend_instructions_per_frame']:,}), "
                f"{predicted['instructions_per_frame'] / hop_seconds / 1e6:.1f} MIPS for real time; {predicted['classify_instructions']:,} for classify"
            )
        if "qemu" in compiled:
            q = compiled["qemu"]
            lines.append(
                f"- Cortex-M4 (QEMU {q['machine']}), measured: about {q['instructions_per_frame']:,} instructions per frame; "
                f"{q['golden_vectors_matching']}/{q['golden_vectors']} golden vectors give identical logits"
            )
    return lines


# what any reimplementation of the C must do alike (docs/export.md has the details)
PORT_LINES = [
    "",
    "## What a port must reproduce",
    "",
    "- The initial state is zero (`nas_reset`), and frames are samples [k*hop, k*hop + n_fft): no centre padding.",
    "- Normalisation is integer: q = clamp(round_shift((mfcc_q8 - mean_q8) * scale, 16), int16), constants in `model.json` "
    "→ `normaliser.integer` (and in `model.c`). round_shift(v, s) = (v + 2^(s-1)) >> s, an arithmetic shift.",
    "- With `running` normalisation (`model.json` → `normaliser.running`), mfcc_q8 - mean_q8 also loses the utterance's "
    "running mean before the scale: for frame t since `nas_reset`, count = min(t + 1 + prior_frames, max_frames), "
    "m += div_round((c << 8) - m, count) (m int32, zero at reset; div_round rounds half away from zero), c -= round_shift(m, 8).",
    "- The sigmoid table (129 int16 entries, Q0.15) is entry i = min(floor(32768 / (1 + exp(-i/16)) + 0.5), 32767); "
    "tanh(x) = 2 sigmoid(2x) - 1 from the same table; between entries, linear interpolation rounded half up.",
    "- `>>` on negative values must be an arithmetic shift (gcc, clang, armcc and IAR do so).",
    "- Check a port with `make check` (host) or `make qemu`: every golden vector's logits must be identical.",
]
