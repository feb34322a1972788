"""The C of the inner product, `dot`: one row of W · x, exact, as nas/engine/intmodel.py specifies it.

The codes stay as weights.bin packs them (a little-endian bit stream per tensor, LSB first). The
kernel reads a row a window at a time: GROUP codes that end on a byte, so a row keeps the bit
offset of its first code (o) from start to end. A window is a few 32-bit reads at fixed byte
offsets, each shifted by o plus a fixed amount; each code is then a bit-field of one of them. The
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

from nas.device.csource import c_array
from nas.device.regions import multiplier_ctype
from nas.engine.intmodel import IntegerModel, pow2_multipliers

MAX_WINDOW_CODES = 12
MAX_WINDOW_READS = 2


@dataclass(frozen=True)
class Read:
    """One 32-bit read of a window: codes first..first+count-1, from byte `byte` of the window,
    shifted right by o + `shift`."""

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
    """Codes of b bits start at multiples of gcd(b, 8) bits, so a row's offset o is at most
    8 - gcd(b, 8). A window is a whole number of bytes and an even number of codes (the DSP
    path's pairs); its reads are greedy, each taking the codes that fit in 32 bits after the worst
    offset. The largest window of at most MAX_WINDOW_CODES codes in at most MAX_WINDOW_READS reads:
    more codes share the loop's own instructions, but more reads run out of registers
    (bench/compute.py measured 12 codes against 8 and 16)."""
    step = 8 // math.gcd(weight_bits, 8)
    if step % 2:
        step *= 2
    candidates = [_window(weight_bits, codes) for codes in range(step, MAX_WINDOW_CODES + 1, step)]
    fitting = [w for w in candidates if len(w.reads) <= MAX_WINDOW_READS] or candidates[:1]
    return fitting[-1]


def _window(weight_bits: int, codes: int) -> Window:
    worst = 8 - math.gcd(weight_bits, 8)
    reads, first = [], 0
    while first < codes:
        byte, shift = divmod(first * weight_bits, 8)
        count = min(codes - first, (32 - worst - shift) // weight_bits // 2 * 2)  # even: pairs stay in one read
        reads.append(Read(first, count, byte, shift))
        first += count
    return Window(codes, codes * weight_bits // 8, tuple(reads))


def wide_accumulator(model: IntegerModel) -> bool:
    """Whether some tensor's sums need 64 bits (then every dot product accumulates in int64)."""
    return any(weight.accumulator_bits == 64 for weight in model.weights.values())


def multiplier_table(quant) -> str:
    """pow2: the multiplier of every code (nas.engine.intmodel.pow2_multipliers), named as the
    memory model's region."""
    if quant.weights != "pow2":
        return ""
    values = pow2_multipliers(quant.weight_bits)
    return f"""
static const {multiplier_ctype(quant.weight_bits)} MULTIPLIER[{len(values)}] = {{
{c_array(values)}
}};
"""


def _code(win: Window, code: int, bits: int) -> str:
    """The C expression of a window's code (its low `bits` bits; MULT masks)."""
    for index, read in enumerate(win.reads):
        if read.first <= code < read.first + read.count:
            position = (code - read.first) * bits
            return f"w{index}" if position == 0 else f"(w{index} >> {position})"
    raise ValueError(code)


def _read(read: Read, aligned: bool) -> str:
    """One read of a window, shifted to its first code (byte codes need no shift)."""
    source = f"LOAD32(p + {read.byte})" if read.byte else "LOAD32(p)"
    if aligned:
        return source
    return f"{source} >> (o + {read.shift}u)" if read.shift else f"{source} >> o"


def kernel_code(model: IntegerModel, prefix: str) -> str:
    """LOAD32, the multiplier of a code, and `dot(offset, cols, row, x)`."""
    bits = model.quant.weight_bits
    win = window(bits)
    aligned = math.gcd(bits, 8) == 8  # byte codes: every row starts on a byte
    reads = " ".join(f"w{i} = {_read(r, aligned)};" for i, r in enumerate(win.reads))
    declare = "uint32_t " + ", ".join(f"w{i}" for i in range(len(win.reads))) + ";"
    singles = " ".join(f"TERM({_code(win, i, bits)}, {i})" for i in range(win.codes))
    pairs = " ".join(f"PAIR({_code(win, i, bits)}, {_code(win, i + 1, bits)}, {i})" for i in range(0, win.codes, 2))
    # the row's last codes, nested tests (a switch would put a jump table in .rodata on some compilers)
    tail = "".join(f"if (rest > {i}) {{ TERM({_code(win, i, bits)}, {i}) " for i in range(win.codes - 1)) + "}" * (win.codes - 1)
    fits16 = 0 if model.quant.weights == "pow2" and multiplier_ctype(bits) != "int16_t" else 1
    return f"""
/* 4 bytes from p, little-endian, at any alignment: compilers make it one load where the core allows
   (a macro, so that no compiler keeps it a call). */
#define LOAD32(p) ((uint32_t)(p)[0] | ((uint32_t)(p)[1] << 8) | ((uint32_t)(p)[2] << 16) | ((uint32_t)(p)[3] << 24))

#define ACC_WIDE {1 if wide_accumulator(model) else 0}
#define ACC_T {"int64_t" if wide_accumulator(model) else "int32_t"}
#define GROUP {win.codes} /* codes per window, {win.nbytes} bytes */
/* A code's multiplier (nas/engine/intmodel.py): pow2 from the table, fixed sign-extended from its bits. */
#if POW2
#define MULT(c) MULTIPLIER[(c) & ((1u << WEIGHT_BITS) - 1u)]
#else
#define MULT(c) ((int32_t)((uint32_t)(c) << (32 - WEIGHT_BITS)) >> (32 - WEIGHT_BITS))
#endif
#define TERM(c, i) acc += (ACC_T)MULT(c) * x[i];
#define MULT_FITS_16 {fits16} /* a multiplier fits one half of a DSP operand */
#if defined(__ARM_FEATURE_DSP) && !defined(NAS_NO_DSP) && STATE_BITS == 16 && MULT_FITS_16
#include <arm_acle.h>
/* x[i] and x[i + 1] in one load: x[i] in the low half (little-endian) */
#define XPAIR(i) ((int32_t)((uint32_t)(uint16_t)x[i] | ((uint32_t)(uint16_t)x[(i) + 1] << 16)))
#if ACC_WIDE
/* two products into the int64 accumulator: SMLALD of the multipliers' pair and the inputs' */
#define PAIR(c0, c1, i) acc = __smlald((int32_t)((uint32_t)(uint16_t)MULT(c0) | ((uint32_t)MULT(c1) << 16)), XPAIR(i), acc);
#else
/* SMLABB and SMLABT: each multiplier (bottom half) times one half of the inputs' pair */
#define PAIR(c0, c1, i) {{ int32_t xx = XPAIR(i); acc = __smlabb(MULT(c0), xx, acc); acc = __smlabt(MULT(c1), xx, acc); }}
#endif
#define CODES_OF_WINDOW {pairs}
#else
#define CODES_OF_WINDOW {singles}
#endif

/* One row of W · x, exact, in the accumulator's scale. A window may read up to {win.overrun_bytes} bytes past
   the row's last code: biases and shifts follow every tensor in {prefix}_packed. */
static ACC_T dot(uint32_t offset, int cols, int row, const STATE_T *x) {{
    uint32_t bit = (uint32_t)row * (uint32_t)cols * WEIGHT_BITS, o = bit & 7u;
    const uint8_t *p = {prefix}_packed + offset + (bit >> 3);
    int windows = cols / GROUP, rest = cols % GROUP;
    ACC_T acc = 0;
    {declare}
    (void)o;
    for (; windows > 0; windows--, p += {win.nbytes}, x += GROUP) {{
        {reads}
        CODES_OF_WINDOW
    }}
    {reads}
    {tail}
    return acc;
}}
"""
