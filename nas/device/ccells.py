"""The C of one recurrent layer's update per cell (GRU, LSTM, tanh RNN), statement for statement as
nas/engine/intmodel.py computes it; `nas.device.cexport` names each layer's tensors in it.
"""

# The second pass of LSTM and RNN: the new state, kept in the gate scratch, into h.
COPY_STATE = """        {
            volatile STATE_T *state = h; /* volatile: a plain copy loop becomes a call to memcpy, which a bare-metal build lacks */
            for (i = 0; i < H; i++) state[i] = (STATE_T)g[i];
        }"""

# One layer's update per cell, as in nas/engine/intmodel.py; W_IH, W_HH and the biases name the
# layer's tensors (replaced per layer by `_step`).
CELL_STEPS = {
    "gru": """        for (i = 0; i < H; i++) /* r */
            g[i] = (int16_t)sigmoid_q(sat16(preact(W_IH, i, in, IN_FRAC) + preact(W_HH, i, h, HF) + bias_value(B_RZN, i)));
        for (i = 0; i < H; i++) /* z */
            g[H + i] = (int16_t)sigmoid_q(sat16(preact(W_IH, H + i, in, IN_FRAC) + preact(W_HH, H + i, h, HF) + bias_value(B_RZN, H + i)));
        for (i = 0; i < H; i++) { /* n, over r (r[i] is read once, here) */
            int32_t hn = sat16(preact(W_HH, 2 * H + i, h, HF) + bias_value(B_HN, i));
            g[i] = (int16_t)tanh_q(sat16(preact(W_IH, 2 * H + i, in, IN_FRAC) + bias_value(B_RZN, 2 * H + i) + rshift((int64_t)g[i] * hn, GATE_FRAC)));
        }
        for (i = 0; i < H; i++) { /* second pass: every row has read h, so it changes in place */
            int32_t n = g[i], h15 = h[i] * (1 << (GATE_FRAC - HF));
            h[i] = (STATE_T)saturate(rshift(n + rshift((int64_t)g[H + i] * (h15 - n), GATE_FRAC), GATE_FRAC - HF), STATE_BITS);
        }""",
    "lstm": """        for (i = 0; i < H; i++) /* i */
            g[i] = (int16_t)sigmoid_q(sat16(preact(W_IH, i, in, IN_FRAC) + preact(W_HH, i, h, HF) + bias_value(B, i)));
        for (i = 0; i < H; i++) /* f */
            g[H + i] = (int16_t)sigmoid_q(sat16(preact(W_IH, H + i, in, IN_FRAC) + preact(W_HH, H + i, h, HF) + bias_value(B, H + i)));
        for (i = 0; i < H; i++) { /* g, and the cell state in place (no dot product reads c) */
            int32_t gg = tanh_q(sat16(preact(W_IH, 2 * H + i, in, IN_FRAC) + preact(W_HH, 2 * H + i, h, HF) + bias_value(B, 2 * H + i)));
            c[i] = (STATE_T)saturate(rshift((int64_t)g[H + i] * c[i], GATE_FRAC) + rshift((int64_t)g[i] * gg, 2 * GATE_FRAC - CF), STATE_BITS);
        }
        for (i = 0; i < H; i++) { /* o and the new state, kept over i until every row has read h */
            int32_t o = sigmoid_q(sat16(preact(W_IH, 3 * H + i, in, IN_FRAC) + preact(W_HH, 3 * H + i, h, HF) + bias_value(B, 3 * H + i)));
            int32_t h15 = rshift((int64_t)o * tanh_q(sat16(rshift(c[i], CF - PREACT_FRAC))), GATE_FRAC);
            g[i] = (int16_t)saturate(rshift(h15, GATE_FRAC - HF), STATE_BITS);
        }
""" + COPY_STATE,
    "rnn": """        for (i = 0; i < H; i++) /* the new state, kept until every row has read h */
            g[i] = (int16_t)saturate(rshift(tanh_q(sat16(preact(W_IH, i, in, IN_FRAC) + preact(W_HH, i, h, HF) + bias_value(B, i))), GATE_FRAC - HF), STATE_BITS);
""" + COPY_STATE,
}
