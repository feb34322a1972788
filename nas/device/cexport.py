"""C99 code for an integer model: model.h and model.c, a streaming classifier with no heap.

The caller owns one `nas_stream_t` (its `sizeof` is the memory model's struct bytes), feeds int16
PCM at 8 kHz with `nas_push_samples` as it arrives (each hop computes a feature frame with the
integer front-end and steps the recurrent state), or feature frames with `nas_push_frame`, and
reads the class and logits with `nas_classify` at any time. The constants are the arrays of
`nas.device.regions.flash_regions`: `nas_packed` holds exactly weights.bin; every tensor's offset, shift
offset, accumulator frac bits and width are compile-time constants (macros), so no table of them
sits in flash. Each step mirrors nas/engine/intmodel.py (and the front-end nas/features/frontend.py) line for
line; integer arithmetic is exact, so the C and the engine agree bit for bit (tested).

It assumes that `>>` on a negative signed integer is an arithmetic shift (as gcc, clang and the
usual embedded compilers define it); left shifts are written as multiplications, which C defines
for negatives.
"""

from __future__ import annotations

from itertools import groupby

from nas.device.ccells import CELL_STEPS
from nas.device.cfrontend import frontend_code
from nas.device.ckernel import kernel_code, multiplier_table
from nas.device.csource import c_array
from nas.device.regions import C_TYPES, gate_scratch_values, ram_regions
from nas.engine.intmodel import SIGMOID_TABLE, IntegerModel, pack
from nas.engine.layout import packed_layout
from nas.features.frontend import NORM_FRAC
from nas.model.formats import GATE_FRAC, PREACT_FRAC, SIGMOID_TABLE_ENTRIES, SIGMOID_TABLE_STEP_SHIFT

# Biases are read byte by byte (little-endian), so the code needs no alignment or endianness.
BIAS16 = "((int32_t)(int16_t)(uint16_t)((p)[0] | ((p)[1] << 8)))"
BIAS32 = "((int32_t)((uint32_t)(p)[0] | ((uint32_t)(p)[1] << 8) | ((uint32_t)(p)[2] << 16) | ((uint32_t)(p)[3] << 24)))"


def _struct_members(model: IntegerModel, features, prefix: str) -> str:
    """The stream struct's members, in the order and with the types of `nas.device.regions.ram_regions`."""
    config, upper = model.model_config, prefix.upper()
    lines = []
    regions = [r for r in ram_regions(config, model.quant, features) if r.symbol]
    for symbol, group in groupby(regions, key=lambda r: r.symbol):
        parts = list(group)
        first = parts[0]
        if symbol == "scratch" and features is not None:
            lines.append(
                f"    union {{ struct {{ int32_t re[{upper}_FRAME_SAMPLES / 2]; int32_t im[{upper}_FRAME_SAMPLES / 2]; "
                f"int32_t logs[{features.n_mels}]; }} fft; int16_t gates[{gate_scratch_values(config)}]; }} scratch; /* {first.name} */"
            )
        elif symbol in ("h", "c"):
            lines.append(
                f"    {first.ctype} {symbol}[{len(parts)}][{config.hidden}]; /* {'hidden' if symbol == 'h' else 'LSTM cell'} state per layer */"
            )
        else:
            lines.append(
                f"    {first.ctype} {symbol}[{first.count}]; /* {first.name} */"
                if first.count > 1 or symbol in ("logits", "x")
                else f"    {first.ctype} {symbol}; /* {first.name} */"
            )
    return "\n".join(lines)


def generate(
    model: IntegerModel, features=None, normalisation=None, prefix: str = "nas", packed: bytes | None = None
) -> tuple[str, str]:  # fmt: skip
    """(model.h, model.c). With `features` (an integer-front-end FeatureConfig) and
    `normalisation` (mean_q8, scale) the stream takes PCM; without, feature frames only.
    `packed`: the model's packed bytes (weights.bin) when the caller already has them. The source
    is written by section: tables, arithmetic, the step, the stream functions, classify."""
    data = pack(model) if packed is None else packed
    header = _header(model, features, len(data), prefix)
    source = (
        _source_tables(model, data, prefix)
        + _arithmetic(model, prefix)
        + _step(model, features, prefix)
        + _stream_functions(model, features, normalisation, prefix)
        + _classify(model, prefix)
    )
    return header, source


def _header(model: IntegerModel, features, packed_bytes: int, prefix: str) -> str:
    """model.h: the sizes, the stream struct and the API."""
    config, quant = model.model_config, model.quant
    upper = prefix.upper()
    front = features is not None
    frontend_defines = (
        f"""#define {upper}_SAMPLE_RATE 8000
#define {upper}_FRAME_SAMPLES {features.n_fft}
#define {upper}_HOP_SAMPLES {features.hop_length}
"""
        if front
        else ""
    )
    pcm_api = (
        f"""/* Feed `count` PCM samples (int16, 8 kHz, mono); each hop of {features.hop_length} samples, once {features.n_fft} have
   arrived, computes a frame and steps the model. Returns the frames completed by this call. */
int {prefix}_push_samples({prefix}_stream_t *s, const int16_t *pcm, int count);

/* End of the utterance: an utterance shorter than one window is zero-padded to one frame (as in
   training); otherwise nothing happens. Call before the final {prefix}_classify. */
void {prefix}_end({prefix}_stream_t *s);

"""
        if front
        else ""
    )
    return f"""/* Generated by nas: {config.cell.upper()} {config.layers}x{config.hidden}, {config.n_input} inputs, {quant.describe()}. */
#ifndef {upper}_MODEL_H
#define {upper}_MODEL_H

#include <stdint.h>

#define {upper}_N_INPUT {config.n_input}
#define {upper}_N_CLASSES {config.n_classes}
#define {upper}_HIDDEN {config.hidden}
#define {upper}_LAYERS {config.layers}
/* Feature frames (nas_push_frame): normalised MFCC x as round(x * 2^12) saturated to int16 (Q3.12). */
#define {upper}_FEATURE_FRAC {NORM_FRAC}
#define {upper}_PACKED_BYTES {packed_bytes}
{frontend_defines}
/* The packed weights, biases and shifts: the bytes of weights.bin. */
extern const uint8_t {prefix}_packed[{upper}_PACKED_BYTES];

/* Everything the classifier changes while it runs (docs/export.md). Members by decreasing
   alignment, so the only padding is at the end. Zero it with {prefix}_reset before an utterance. */
typedef struct {{
{_struct_members(model, features, prefix)}
}} {prefix}_stream_t;

/* Start an utterance: zero state (the initial state is zero, as in training). */
void {prefix}_reset({prefix}_stream_t *s);

{pcm_api}/* Feed one frame of {upper}_N_INPUT normalised features (Q3.12) and step the model. */
void {prefix}_push_frame({prefix}_stream_t *s, const int16_t *features);

/* The class (0-9) after the frames so far; fills s->logits (int32, Q.12). */
int {prefix}_classify({prefix}_stream_t *s);

#endif
"""


def _source_tables(model: IntegerModel, data: bytes, prefix: str) -> str:
    """model.c's constants: the format's macros, every tensor's place in the packed bytes (from
    the packed layout), the packed bytes themselves and the sigmoid table."""
    config, quant = model.model_config, model.quant
    layout = packed_layout(config, quant)
    upper = prefix.upper()
    # Each weight tensor as macro arguments: codes offset, accumulator frac bits, columns.
    tensor_defines = [
        f"#define {slot.tensor.symbol} {slot.offset}u, {model.weights[slot.tensor.name].acc_frac}, {slot.tensor.cols}"
        for slot in layout.weights
    ]
    bias_defines = [f"#define {slot.tensor.symbol} {slot.offset}u" for slot in layout.biases]
    return f"""/* Generated by nas from the integer engine (nas/engine/intmodel.py) and front-end (nas/features/frontend.py); see docs/export.md. */
#include "model.h"

#define H {config.hidden}
#define HF {quant.hidden_frac}
#define CF {quant.cell_frac}
#define STATE_T {C_TYPES[quant.state_bits]}
#define STATE_BITS {quant.state_bits}
#define GATE_FRAC {GATE_FRAC}
#define PREACT_FRAC {PREACT_FRAC}
#define WEIGHT_BITS {quant.weight_bits}
#define POW2 {1 if quant.weights == "pow2" else 0}
{chr(10).join(tensor_defines)}
{chr(10).join(bias_defines)}

const uint8_t {prefix}_packed[{upper}_PACKED_BYTES] = {{
{c_array(data)}
}};

static const int16_t SIGMOID[{SIGMOID_TABLE_ENTRIES}] = {{
{c_array(SIGMOID_TABLE)}
}};
{multiplier_table(model)}"""


def _arithmetic(model: IntegerModel, prefix: str) -> str:
    """The engine's integer operations: rounding shift, saturation, the sigmoid and tanh of the
    table, a bias, a weight code, a dot product (pure C; pow2 or fixed by macro), a pre-activation."""
    quant = model.quant
    return f"""
static int32_t rshift(int64_t v, int s) {{
    if (s > 0) return (int32_t)((v + ((int64_t)1 << (s - 1))) >> s);
    return (int32_t)(v * ((int64_t)1 << -s));
}}

/* rshift (s > 0) of a product that fits int32 with its rounding: a gate below 2^15 times a value
   below 2^16 in magnitude, or the sigmoid table's step times a fraction (below 2^15 * 2^8); the same
   integer as rshift's 64-bit one, without the 64-bit multiply and add */
#define rshift32(v, s) ((int32_t)((v) + (1 << ((s) - 1))) >> (s)) /* a macro: not every cell uses it */

static int32_t saturate(int32_t v, int bits) {{
    int32_t high = (int32_t)((1L << (bits - 1)) - 1), low = -high - 1;
    return v > high ? high : (v < low ? low : v);
}}

#if defined(__ARM_FEATURE_SAT) /* ARMv7-M and later: one SSAT (ACLE) */
#include <arm_acle.h>
static int32_t sat16(int32_t v) {{ return __ssat(v, 16); }}
#else
static int32_t sat16(int32_t v) {{ return saturate(v, 16); }}
#endif

static int32_t sigmoid_positive(int32_t a) {{
    int32_t index = a >> {SIGMOID_TABLE_STEP_SHIFT}, fraction = a & ((1 << {SIGMOID_TABLE_STEP_SHIFT}) - 1);
    if (index >= {SIGMOID_TABLE_ENTRIES - 1}) return SIGMOID[{SIGMOID_TABLE_ENTRIES - 1}];
    return SIGMOID[index] + rshift32((SIGMOID[index + 1] - SIGMOID[index]) * fraction, {SIGMOID_TABLE_STEP_SHIFT});
}}

static int32_t sigmoid_q(int32_t pre) {{
    int32_t p = sigmoid_positive(pre < 0 ? -pre : pre);
    return pre < 0 ? (1 << GATE_FRAC) - p : p;
}}

static int32_t tanh_q(int32_t pre) {{
    int32_t a = 2 * (pre < 0 ? -pre : pre);
    int32_t m;
    if (a > ({SIGMOID_TABLE_ENTRIES - 1} << {SIGMOID_TABLE_STEP_SHIFT})) a = {SIGMOID_TABLE_ENTRIES - 1} << {SIGMOID_TABLE_STEP_SHIFT};
    m = 2 * sigmoid_positive(a) - (1 << GATE_FRAC);
    return pre < 0 ? -m : m;
}}

/* a bias, little-endian at any alignment: a macro, so that each is a load or two in place rather than
   a call (every gate of every unit reads one) */
#define BIAS_AT(p) {BIAS16 if quant.bias_bits == 16 else BIAS32}
#define bias_value(offset, i) BIAS_AT({prefix}_packed + (offset) + (uint32_t)(i) * {quant.bias_bits // 8}u)

{kernel_code(model, prefix)}
"""


def _step(model: IntegerModel, features, prefix: str) -> str:
    """`step`: one frame through every layer."""
    config = model.model_config
    layers = []
    for layer in range(config.layers):
        body = CELL_STEPS[config.cell]
        for short in ("W_IH", "W_HH", "B_RZN", "B_HN"):
            body = body.replace(f"({short},", f"(LAYER{layer}_{short},")
        body = body.replace("(B,", f"(LAYER{layer}_B,")
        source_in = "s->x" if layer == 0 else f"s->h[{layer - 1}]"
        layers.append(
            f"""    {{ /* layer {layer} */
        const STATE_T *in = {source_in};
        STATE_T *h = s->h[{layer}];
{"        STATE_T *c = s->c[" + str(layer) + "];" + chr(10) if config.cell == "lstm" else ""}\
#define IN_FRAC {model.input_frac if layer == 0 else model.quant.hidden_frac}
{body}
#undef IN_FRAC
    }}"""
        )
    scratch = "s->scratch.gates" if features is not None else "s->scratch"
    return f"""
/* One frame through every layer: s->x holds the frame's inputs. */
static void step({prefix}_stream_t *s) {{
    int16_t *g = {scratch};
    int i;
{chr(10).join(layers)}
    s->frames++;
}}
"""


def _to_input(model: IntegerModel) -> str:
    """The engine's input from a Q3.12 feature q: rounded to input_frac bits, saturated to the state width."""
    in_frac = model.input_frac
    return "q" if in_frac == NORM_FRAC else f"saturate(rshift(q, {NORM_FRAC - in_frac}), {model.quant.state_bits})"


def _stream_functions(model: IntegerModel, features, normalisation, prefix: str) -> str:
    """The front-end (with features), reset, push_samples and end (with features), push_frame."""
    upper = prefix.upper()
    frontend = ""
    pcm_functions = ""
    if features is not None:
        mean_q8, scale = normalisation
        frontend = frontend_code(features, mean_q8, scale, "STATE_T", _to_input(model))
        running_args = "s->running, s->frames, " if features.normalisation == "running" else ""
        pcm_functions = f"""
int {prefix}_push_samples({prefix}_stream_t *s, const int16_t *pcm, int count) {{
    int done = 0, i;
    for (; count > 0; count--) {{
        s->audio[s->fill++] = *pcm++;
        if (s->fill == N) {{
            frontend_frame(s->audio, s->scratch.fft.re, s->scratch.fft.im, s->scratch.fft.logs, {running_args}s->x);
            step(s);
            done++;
            for (i = 0; i < N - {features.hop_length}; i++) s->audio[i] = s->audio[i + {features.hop_length}];
            s->fill = N - {features.hop_length};
        }}
    }}
    return done;
}}

void {prefix}_end({prefix}_stream_t *s) {{
    if (s->frames > 0) return;
    while (s->fill < N) s->audio[s->fill++] = 0;
    frontend_frame(s->audio, s->scratch.fft.re, s->scratch.fft.im, s->scratch.fft.logs, {running_args}s->x);
    step(s);
    s->fill = N - {features.hop_length};
}}
"""
    return f"""{frontend}
void {prefix}_reset({prefix}_stream_t *s) {{
    volatile unsigned char *p = (volatile unsigned char *)s; /* volatile: no call to memset, whose stack is unknown */
    unsigned long i;
    for (i = 0; i < sizeof *s; i++) p[i] = 0;
    (void)sigmoid_q; /* a plain RNN uses tanh only */
}}
{pcm_functions}
void {prefix}_push_frame({prefix}_stream_t *s, const int16_t *features) {{
    int i;
    for (i = 0; i < {upper}_N_INPUT; i++) {{
        int32_t q = features[i];
        s->x[i] = (STATE_T)({_to_input(model)});
    }}
    step(s);
}}
"""


def _classify(model: IntegerModel, prefix: str) -> str:
    """`classify`: the logits from the last layer's state, and their argmax."""
    upper = prefix.upper()
    return f"""
int {prefix}_classify({prefix}_stream_t *s) {{
    int i, best = 0;
    for (i = 0; i < {upper}_N_CLASSES; i += 2) {{ /* two classes per pass */
        int32_t z[2];
        int k, both = i + 1 < {upper}_N_CLASSES;
        dot2(CLASSIFIER_W, i, s->h[{model.model_config.layers - 1}], HF, both, z);
        for (k = 0; k <= both; k++) s->logits[i + k] = z[k] + bias_value(CLASSIFIER_B, i + k);
    }}
    for (i = 1; i < {upper}_N_CLASSES; i++)
        if (s->logits[i] > s->logits[best]) best = i;
    return best;
}}
"""
