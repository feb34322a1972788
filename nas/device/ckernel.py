"""The C of the inner product, `dot`: one row of W · x, exact, as nas/engine/intmodel.py specifies it.

The codes stay as weights.bin packs them (a little-endian bit stream per row, LSB first, each row
padded to a byte, so that every row starts on a byte). The kernel reads a row a window at a time:
GROUP codes that end on a byte. A window is a few 32-bit reads at fixed byte offsets, each
shifted by a fixed amount; each code is then a bit-field of one of them: no bit offset is known
only at run time, so no shift is variable and no register holds one. The
last, partial window of a row reads the same way and takes only its first codes (nested tests: a
switch would put a jump table in .rodata, outside the memory model, on some compilers).

A code becomes its multiplier with no branch: pow2 through the width's table (MULTIPLIER,
2**bits entries, counted by the memory model), fixed by sign-extending its bits. The products
accumulate exactly, in int32 or, where the shape and format need it, int64 (ACC_T).

Two paths, one result, as CMSIS-NN keeps a pure C path beside a DSP one: plain C99 for any core,
and, where the compiler defines __ARM_FEATURE_DSP (Cortex-M4/M7/M33 ...), the state is 16-bit and
the multipliers fit 16 bits (all but pow2 6-bit), the inputs read two at a time (one load for a
pair of int16), so that each product is one SMLABB or SMLABT, or a pair of them one SMLALD into
an int64 accumulator. NAS_NO_DSP builds the plain path on such a core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nas.device.csource import c_array
from nas.device.regions import PAIR_TABLE_NAME, multiplier_ctype, pair_table, weight_codes
from nas.engine.intmodel import IntegerModel, pow2_multipliers

MAX_WINDOW_CODES = 12
MAX_WINDOW_READS = 3


@dataclass(frozen=True)
class Read:
    """One 32-bit read of a window: codes first..first+count-1, from byte `byte` of the window,
    shifted right by `shift`."""

    first: int
    count: int
    byte: int
    shift: int


@dataclass(frozen=True)
class Window:
    codes: int  # GROUP
    nbytes: int  # the bytes a window advances
    reads: tuple[Read, ...]

    @property
    def overrun_bytes(self) -> int:
        """How far past a row's last code a window may read: its whole span, plus 3."""
        return self.nbytes + 3


def window(weight_bits: int) -> Window:
    """Every row starts on a byte (nas.engine.layout.row_bytes). A window is a whole number of bytes
    and an even number of codes (the DSP path's pairs); its reads are greedy, each taking the codes
    that fit in 32 bits after its first code's bit. The largest window of at most MAX_WINDOW_CODES
    codes in at most MAX_WINDOW_READS reads: more codes share the loop's own instructions, but more
    reads run out of registers (bench/compute.py measured 12 codes against 8 and 16; with rows on
    bytes, no register holds a row's bit offset, and 3 reads of 12 codes beat 2 of 8 at 6 and 8
    bits: fixed 6-bit 4.10 -> 4.05, fixed 8-bit 3.72 -> 3.59 per weight, Cortex-M4)."""
    step = 8 // math.gcd(weight_bits, 8)
    if step % 2:
        step *= 2
    candidates = [_window(weight_bits, codes) for codes in range(step, MAX_WINDOW_CODES + 1, step)]
    fitting = [w for w in candidates if len(w.reads) <= MAX_WINDOW_READS] or candidates[:1]
    return fitting[-1]


def _window(weight_bits: int, codes: int) -> Window:
    reads, first = [], 0
    while first < codes:
        byte, shift = divmod(first * weight_bits, 8)
        count = min(codes - first, (32 - shift) // weight_bits // 2 * 2)  # even: pairs stay in one read
        reads.append(Read(first, count, byte, shift))
        first += count
    return Window(codes, codes * weight_bits // 8, tuple(reads))


def wide_accumulator(model: IntegerModel) -> bool:
    """Whether some tensor's sums need 64 bits (then every dot product accumulates in int64)."""
    return any(weight.accumulator_bits == 64 for weight in model.weights.values())


def multiplier_pairs(bits: int) -> np.ndarray:
    """(2**(2*bits),) uint32: entry c0 | c1 << bits holds the multipliers of codes c0 (low half) and
    c1 (high half), each as 16 bits of two's complement."""
    halves = pow2_multipliers(bits).astype(np.int64) & 0xFFFF
    index = np.arange(1 << (2 * bits))
    return (halves[index & ((1 << bits) - 1)] | (halves[index >> bits] << 16)).astype(np.uint32)


def uses_pairs(model: IntegerModel) -> bool:
    """Whether the model's pow2 multipliers are held in pairs (nas.device.regions.pair_table)."""
    return pair_table(model.quant, weight_codes(model.model_config))


def multiplier_table(model: IntegerModel) -> str:
    """pow2: the multiplier of every code (nas.engine.intmodel.pow2_multipliers), or of every pair
    of codes (pair_table), named as the memory model's region."""
    quant = model.quant
    if quant.weights != "pow2":
        return ""
    if uses_pairs(model):
        values = multiplier_pairs(quant.weight_bits)
        return f"""
static const uint32_t {PAIR_TABLE_NAME}[{len(values)}] = {{
{c_array(values)}
}};
"""
    values = pow2_multipliers(quant.weight_bits)
    return f"""
static const {multiplier_ctype(quant.weight_bits)} MULTIPLIER[{len(values)}] = {{
{c_array(values)}
}};
"""


def _code(win: Window, code: int, bits: int, row: str = "w") -> str:
    """The C expression of a window's code (its low `bits` bits; MULT masks), in the reads of `row`
    (w: the first row of the pair, v: the second)."""
    for index, read in enumerate(win.reads):
        if read.first <= code < read.first + read.count:
            position = (code - read.first) * bits
            return f"{row}{index}" if position == 0 else f"({row}{index} >> {position})"
    raise ValueError(code)


def _read(read: Read, row: str = "w") -> str:
    """One read of a window, shifted to its first code (a fixed shift: every row starts on a byte): from
    p for the first row, q for the second."""
    pointer = "p" if row == "w" else "q"
    source = f"LOAD32({pointer} + {read.byte})" if read.byte else f"LOAD32({pointer})"
    return f"{source} >> {read.shift}" if read.shift else source


def kernel_code(model: IntegerModel, prefix: str) -> str:
    """LOAD32, the multiplier of a code, and `dot2(offset, acc_frac, cols, row, x, x_frac, both, out)`: two rows of W · x
    in one pass, each input read once for both (CMSIS-NN's kernels take rows in pairs too)."""
    bits = model.quant.weight_bits
    win = window(bits)
    # two rows per pass but with int64 accumulators: four of them and the reads do not fit the
    # registers (gcc -Os spills), so a wide kernel takes one row per pass, called twice
    two = not wide_accumulator(model)
    rows = "wv" if two else "w"
    reads = " ".join(f"{row}{i} = {_read(r, row)};" for i, r in enumerate(win.reads) for row in rows)
    declare = "uint32_t " + ", ".join(f"{row}{i}" for i in range(len(win.reads)) for row in rows) + ";"
    # fixed 8-bit codes on the DSP path: four per read, sign-extended two at a time (SXTB16)
    quads = model.quant.weights == "fixed" and bits == 8 and two and all(read.count == 4 for read in win.reads)
    # each read of both rows just before its codes: fewer words live at once (gcc -Os spills otherwise)
    singles, pairs = [], []
    for index, read in enumerate(win.reads):
        loads = " ".join(f"{row}{index} = {_read(read, row)};" for row in rows)
        codes = range(read.first, read.first + read.count)
        singles += [loads, *(f"TERM({_code(win, i, bits)}, {_code(win, i, bits, 'v')}, {i})" for i in codes)]
        if quads:  # a read is four byte codes
            pairs += [loads, f"QUAD(w{index}, v{index}, {read.first})"]
            continue
        pairs += [loads] + [
            f"PAIR({_code(win, i, bits)}, {_code(win, i + 1, bits)}, {_code(win, i, bits, 'v')}, {_code(win, i + 1, bits, 'v')}, {i})"
            for i in codes[::2]
        ]
    # the rows' last codes, nested tests (a switch would put a jump table in .rodata on some compilers)
    tail = "".join(f"if (rest > {i}) {{ TERM({_code(win, i, bits)}, {_code(win, i, bits, 'v')}, {i}) " for i in range(win.codes - 1))
    tail += "}" * (win.codes - 1)
    # pow2: the table through a local pointer, so that gcc -Os addresses it as base + index << 1 in one
    # load; named directly, it may be addressed from a section anchor plus an offset, one add per code more
    if uses_pairs(model):
        table = f"const uint32_t *pairs = {PAIR_TABLE_NAME};"
    else:
        table = f"const {multiplier_ctype(bits)} *multiplier = MULTIPLIER;" if model.quant.weights == "pow2" else ""
    return f"""
/* 4 bytes from p, little-endian, at any alignment: compilers make it one load where the core allows
   (a macro, so that no compiler keeps it a call). */
#define LOAD32(p) ((uint32_t)(p)[0] | ((uint32_t)(p)[1] << 8) | ((uint32_t)(p)[2] << 16) | ((uint32_t)(p)[3] << 24))

#define ACC_WIDE {1 if wide_accumulator(model) else 0}
#define ACC_T {"int64_t" if wide_accumulator(model) else "int32_t"}
#define GROUP {win.codes} /* codes per window, {win.nbytes} bytes */
/* gcc: no copy of the kernel specialised on one model's constants (noipa), so that every model runs the
   same kernel code, and the compute model (nas/device/compute.py) counts it the same way */
#if defined(__GNUC__) && !defined(__clang__)
#define NAS_KERNEL __attribute__((noipa))
#else
#define NAS_KERNEL
#endif

/* rshift of an accumulator in its own width (int32 unless ACC_WIDE): (v >> s) plus the bit below, the
   same rounding half up as rshift without its 64-bit addition, and without the addition's overflow */
static int32_t acc_shift(ACC_T v, int s) {{
#if ACC_WIDE
    if (s > 0) return (int32_t)((v + ((int64_t)1 << (s - 1))) >> s); /* int64: the addition cannot overflow */
#else
    if (s > 0) return (int32_t)((v >> s) + ((v >> (s - 1)) & 1));
#endif
    return (int32_t)((int64_t)v * ((int64_t)1 << -s));
}}
{_multiply_macros(model, " ".join(singles), " ".join(pairs), two, quads)}
{_two_rows(win, prefix, reads, declare, table, tail) if two else _one_row(win, prefix, reads, declare, table, tail)}"""


def _two_rows(win: Window, prefix: str, reads: str, declare: str, table: str, tail: str) -> str:
    return f"""/* Rows `row` and `row + 1` of W · x, exact, each rounded once by `shift` (acc_frac + x_frac - PREACT_FRAC: to
   Q.12, a gate's pre-activation before saturation, or a logit), into out[0] and out[1]; with `both` 0 only row
   `row` (out[1] is row's again: its codes are read twice, no further row). A window may read up to
   {win.overrun_bytes} bytes past a row's last code: biases and shifts follow every tensor in {prefix}_packed. */
NAS_KERNEL static void dot2_rows(uint32_t offset, uint32_t cols, uint32_t row, const STATE_T *x, int shift, int both, int32_t *out) {{
    uint32_t stride = (cols * WEIGHT_BITS + 7u) >> 3; /* a row's bytes: every row starts on a byte */
    const uint8_t *p = {prefix}_packed + offset + row * stride, *q = p + (both ? stride : 0u);
    int windows = (int)(cols / GROUP); /* cols unsigned: a division by a constant with no sign fix-up */
    uint32_t rest = cols % GROUP;
    ACC_T acc = 0, acc1 = 0;
    {declare}
    {table}
    for (; windows > 0; windows--, p += {win.nbytes}, q += {win.nbytes}, x += GROUP) {{
        CODES_OF_WINDOW
    }}
    {reads}
    {tail}
    out[0] = acc_shift(acc, shift);
    out[1] = acc_shift(acc1, shift);
}}

/* dot2(offset, acc_frac, cols, row, x, x_frac, both, out): a tensor's name stands for its first three (the
   macro's arguments are expanded first); the two fractions become one shift at the call. */
#define dot2(...) DOT2_ARGS(__VA_ARGS__)
#define DOT2_ARGS(offset, acc_frac, cols, row, x, x_frac, both, out) \\
    dot2_rows(offset, cols, row, x, (acc_frac) + (x_frac) - PREACT_FRAC, both, out)
"""


def _one_row(win: Window, prefix: str, reads: str, declare: str, table: str, tail: str) -> str:
    return f"""/* One row of W · x, exact, in the accumulator's scale. A window may read up to {win.overrun_bytes} bytes past
   the row's last code: biases and shifts follow every tensor in {prefix}_packed. */
NAS_KERNEL static ACC_T dot(uint32_t offset, uint32_t cols, uint32_t row, const STATE_T *x) {{
    uint32_t stride = (cols * WEIGHT_BITS + 7u) >> 3; /* a row's bytes: every row starts on a byte */
    const uint8_t *p = {prefix}_packed + offset + row * stride;
    int windows = (int)(cols / GROUP); /* cols unsigned: a division by a constant with no sign fix-up */
    uint32_t rest = cols % GROUP;
    ACC_T acc = 0;
    {declare}
    {table}
    for (; windows > 0; windows--, p += {win.nbytes}, x += GROUP) {{
        CODES_OF_WINDOW
    }}
    {reads}
    {tail}
    return acc;
}}

/* Rows `row` and `row + 1` (with `both` 0, `row` alone: out[1] is row's again), one pass each, each rounded
   once from frac acc_frac + x_frac to Q.12. A macro (its arguments expanded first: a tensor's name stands
   for three), so that the calls nest no deeper than one: a wrapper function's frame would add to the stack. */
#define dot2(...) DOT2_ROWS(__VA_ARGS__)
#define DOT2_ROWS(offset, acc_frac, cols, row, x, x_frac, both, out) do {{ \\
    (out)[0] = acc_shift(dot(offset, cols, row, x), (acc_frac) + (x_frac) - PREACT_FRAC); \\
    (out)[1] = (both) ? acc_shift(dot(offset, cols, (row) + 1, x), (acc_frac) + (x_frac) - PREACT_FRAC) : (out)[0]; \\
}} while (0)
"""


# Four byte codes of each row times x[i..i+3]: SXTB16 sign-extends codes 0 and 2 (and, shifted by a byte, 1
# and 3) into the halves of one operand, PKHBT/PKHTB pair the inputs to match, SMLAD takes two products.
QUAD = """/* the halves of two words: PKHBT (a's low, b's low) and PKHTB (b's high, a's high), one instruction each
   (gcc does not find them in the C, which stays as the fallback of other compilers) */
#if defined(__GNUC__)
static inline uint32_t low_halves(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t high_halves(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#else
#define low_halves(a, b) (((a) & 0xFFFFu) | ((b) << 16))
#define high_halves(a, b) (((b) & 0xFFFF0000u) | ((a) >> 16))
#endif
/* four byte codes of each row, two products per SMLAD: codes 0 and 2 (SXTB16), 1 and 3 (SXTB16 of the
   word a byte down), times the inputs paired to match (x0 x2 and x1 x3) */
#define QUAD(w, v, i) { \\
    uint32_t xa = (uint32_t)XPAIR(i), xb = (uint32_t)XPAIR((i) + 2); \\
    int32_t even = (int32_t)low_halves(xa, xb), odd = (int32_t)high_halves(xa, xb); \\
    acc = __smlad(__sxtb16((int32_t)(w)), even, acc); acc = __smlad(__sxtb16((int32_t)((w) >> 8)), odd, acc); \\
    acc1 = __smlad(__sxtb16((int32_t)(v)), even, acc1); acc1 = __smlad(__sxtb16((int32_t)((v) >> 8)), odd, acc1); }
"""


def _both(template: str, two: bool) -> str:
    """A macro body for the first row (acc, codes c0 c1), and with `two` again for the second (acc1, d0 d1)."""
    second = template.replace("acc", "acc1").replace("(c0", "(d0").replace("(c1", "(d1").replace("(c)", "(d)").replace("m0", "m1")
    return template + (" " + second if two else "")


def _multiply_macros(model: IntegerModel, singles: str, pairs: str, two: bool, quads: bool = False) -> str:
    """MULT (a code's multiplier), TERM (one input times a code of each row), PAIR (two inputs times
    two codes of each row) and CODES_OF_WINDOW, per path; with `two` 0 the second row's codes are
    ignored (a kernel of one row per pass)."""
    quant = model.quant
    dsp = "#if defined(__ARM_FEATURE_DSP) && !defined(NAS_NO_DSP) && STATE_BITS == 16 && MULT_FITS_16"
    xpair = """#include <arm_acle.h>
/* x[i] and x[i + 1] in one load: x[i] in the low half (little-endian) */
#define XPAIR(i) ((int32_t)((uint32_t)(uint16_t)x[i] | ((uint32_t)(uint16_t)x[(i) + 1] << 16)))"""
    term = f"#define TERM(c, d, i) {{ ACC_T xi = x[i]; {_both('acc += (ACC_T)MULT(c) * xi;', two)} }}"
    if uses_pairs(model):
        return f"""/* pow2 codes decode two at a time (nas/engine/intmodel.py gives each code's multiplier): entry c0 | c1 << b of
   {PAIR_TABLE_NAME} holds c0's multiplier in its low 16 bits and c1's in its high 16 bits; a single code's
   multiplier is the low half of its own entry (c1 = 0). */
#define PAIR_OF(c) pairs[(c) & ((1u << (2 * WEIGHT_BITS)) - 1u)]
#define LOW(m) ((int32_t)((uint32_t)(m) << 16) >> 16)
#define HIGH(m) ((int32_t)(m) >> 16)
#define MULT(c) LOW(pairs[(c) & ((1u << WEIGHT_BITS) - 1u)])
{term}
#define MULT_FITS_16 1 /* a multiplier fits one half of a DSP operand */
{dsp}
{xpair}
#if ACC_WIDE
#define DUAL __smlald /* both products of a pair in one SMLALD */
#else
#define DUAL __smlad /* both products of a pair in one SMLAD */
#endif
#define PAIR(c0, c1, d0, d1, i) {{ int32_t xx = XPAIR(i); {_both("acc = DUAL((int32_t)PAIR_OF(c0), xx, acc);", two)} }}
#else
#define PAIR(c0, c1, d0, d1, i) {{ \\
    ACC_T x0 = x[i], x1 = x[(i) + 1]; \\
    {_both("{ uint32_t m0 = PAIR_OF(c0); acc += (ACC_T)LOW(m0) * x0 + (ACC_T)HIGH(m0) * x1; }", two)} }}
#endif
#define CODES_OF_WINDOW {pairs}
"""
    fits16 = 0 if quant.weights == "pow2" and multiplier_ctype(quant.weight_bits) != "int16_t" else 1
    return f"""/* A code's multiplier (nas/engine/intmodel.py): pow2 from the table, fixed sign-extended from its bits. */
#if POW2
#define MULT(c) multiplier[(c) & ((1u << WEIGHT_BITS) - 1u)]
#else
#define MULT(c) ((int32_t)((uint32_t)(c) << (32 - WEIGHT_BITS)) >> (32 - WEIGHT_BITS))
#endif
{term}
#define MULT_FITS_16 {fits16} /* a multiplier fits one half of a DSP operand */
{dsp}
{xpair}
{QUAD if quads else ""}#if ACC_WIDE
/* two products into an int64 accumulator: SMLALD of the multipliers' pair and the inputs' */
#define PACK(c0, c1) ((int32_t)((uint32_t)(uint16_t)MULT(c0) | ((uint32_t)MULT(c1) << 16)))
#define PAIR(c0, c1, d0, d1, i) {{ int32_t xx = XPAIR(i); {_both("acc = __smlald(PACK(c0, c1), xx, acc);", two)} }}
#else
/* SMLABB and SMLABT: each multiplier (bottom half) times one half of the inputs' pair */
#define PAIR(c0, c1, d0, d1, i) {{ \\
    int32_t xx = XPAIR(i); {_both("acc = __smlabb(MULT(c0), xx, acc); acc = __smlabt(MULT(c1), xx, acc);", two)} }}
#endif
#define CODES_OF_WINDOW {pairs}
#else
#define CODES_OF_WINDOW {singles}
#endif
"""
