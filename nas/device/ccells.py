"""The C of one recurrent layer's update per cell (GRU, LSTM, tanh RNN), statement for statement as
nas/engine/intmodel.py computes it; `nas.device.cexport` names each layer's tensors in it.
"""

# The second pass of LSTM and RNN: the new state, kept in the gate scratch, into h.
COPY_STATE = """        {
            volatile STATE_T *state = h; /* volatile: a plain copy loop becomes a call to memcpy, which a bare-metal build lacks */
            for (i = 0; i < H; i++) state[i] = (STATE_T)g[i];
        }"""

# One layer's update per cell, as in nas/engine/intmodel.py; W_IH, W_HH and the biases name the
# layer's tensors (replaced per layer by `_step`). Units go two per pass (`PAIRS`): each dot product
# reads its inputs once for two rows; with an odd H the last pass has one unit (both = 0).
PAIRS = """        for (i = 0; i < H; i += 2) {"""
UNITS = """            int32_t a[2], b[2];
            int k, both = i + 1 < H;"""

CELL_STEPS = {
    "gru": f"""{PAIRS} /* r */
{UNITS}
            dot2(W_IH, i, in, IN_FRAC, both, a);
            dot2(W_HH, i, h, HF, both, b);
            for (k = 0; k <= both; k++) g[i + k] = (int16_t)sigmoid_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B_RZN, i + k)));
        }}
{PAIRS} /* z */
{UNITS}
            dot2(W_IH, H + i, in, IN_FRAC, both, a);
            dot2(W_HH, H + i, h, HF, both, b);
            for (k = 0; k <= both; k++) g[H + i + k] = (int16_t)sigmoid_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B_RZN, H + i + k)));
        }}
{PAIRS} /* n, over r (r[i] is read once, here) */
{UNITS}
            dot2(W_HH, 2 * H + i, h, HF, both, b);
            dot2(W_IH, 2 * H + i, in, IN_FRAC, both, a);
            for (k = 0; k <= both; k++) {{
                int32_t hn = sat16(sat16(b[k]) + bias_value(B_HN, i + k));
                g[i + k] = (int16_t)tanh_q(sat16(sat16(a[k]) + bias_value(B_RZN, 2 * H + i + k) + rshift32(g[i + k] * hn, GATE_FRAC)));
            }}
        }}
        for (i = 0; i < H; i++) {{ /* second pass: every row has read h, so it changes in place; z < 2^15 and
                                     |h15 - n| < 2^16, so z (h15 - n) rounds in int32 */
            int32_t n = g[i], h15 = h[i] * (1 << (GATE_FRAC - HF));
            h[i] = (STATE_T)saturate(rshift(n + rshift32(g[H + i] * (h15 - n), GATE_FRAC), GATE_FRAC - HF), STATE_BITS);
        }}""",
    "lstm": f"""{PAIRS} /* i */
{UNITS}
            dot2(W_IH, i, in, IN_FRAC, both, a);
            dot2(W_HH, i, h, HF, both, b);
            for (k = 0; k <= both; k++) g[i + k] = (int16_t)sigmoid_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B, i + k)));
        }}
{PAIRS} /* f */
{UNITS}
            dot2(W_IH, H + i, in, IN_FRAC, both, a);
            dot2(W_HH, H + i, h, HF, both, b);
            for (k = 0; k <= both; k++) g[H + i + k] = (int16_t)sigmoid_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B, H + i + k)));
        }}
{PAIRS} /* g, and the cell state in place (no dot product reads c) */
{UNITS}
            dot2(W_IH, 2 * H + i, in, IN_FRAC, both, a);
            dot2(W_HH, 2 * H + i, h, HF, both, b);
            for (k = 0; k <= both; k++) {{
                int32_t gg = tanh_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B, 2 * H + i + k)));
                c[i + k] = (STATE_T)saturate(rshift32(g[H + i + k] * c[i + k], GATE_FRAC) + rshift32(g[i + k] * gg, 2 * GATE_FRAC - CF), STATE_BITS);
            }}
        }}
{PAIRS} /* o and the new state, kept over i until every row has read h */
{UNITS}
            dot2(W_IH, 3 * H + i, in, IN_FRAC, both, a);
            dot2(W_HH, 3 * H + i, h, HF, both, b);
            for (k = 0; k <= both; k++) {{
                int32_t o = sigmoid_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B, 3 * H + i + k)));
                int32_t h15 = rshift32(o * tanh_q(sat16(rshift(c[i + k], CF - PREACT_FRAC))), GATE_FRAC);
                g[i + k] = (int16_t)saturate(rshift(h15, GATE_FRAC - HF), STATE_BITS);
            }}
        }}
"""
    + COPY_STATE,
    "rnn": f"""{PAIRS} /* the new state, kept until every row has read h */
{UNITS}
            dot2(W_IH, i, in, IN_FRAC, both, a);
            dot2(W_HH, i, h, HF, both, b);
            for (k = 0; k <= both; k++)
                g[i + k] = (int16_t)saturate(rshift(tanh_q(sat16(sat16(a[k]) + sat16(b[k]) + bias_value(B, i + k))), GATE_FRAC - HF), STATE_BITS);
        }}
"""
    + COPY_STATE,
}
