// Training a GRU layer on the CPU: the loop over time steps and its back-propagation, with each
// step's gate arithmetic fused into one pass over (batch, hidden) (nas/gru.py says why).
// Equations: torch's nn.GRU (gate order r, z, n; the reset gate multiplies W_hn h + b_hn).
// Registered as torch operators (torch.ops.nas_gru.*): ATen and the operator registry only, which
// builds in about 10 s where torch/extension.h with pybind11 takes 30.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace {

// tanh for float as a rational function (Eigen's fast tanh: error a few units in the last place,
// checked against torch.tanh by tests/test_gru.py): unlike std::tanh it vectorizes, and the gates'
// tanh and sigmoids were most of a step's time. Double (for gradient checks) keeps std::tanh.
inline float tanh_(float v) {
  const float limit = 7.99881172180175781f;  // tanh is 1 in float beyond
  const float clamped = v < -limit ? -limit : (v > limit ? limit : v);
  const float x2 = clamped * clamped;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * clamped;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;  // near 0 this is x (1 - 1.3e-7): no special case, which would stop the vectorizer
}
inline double tanh_(double v) { return std::tanh(v); }

template <typename scalar_t>
inline scalar_t sigmoid_(scalar_t v) {
  return scalar_t(0.5) * tanh_(scalar_t(0.5) * v) + scalar_t(0.5);
}

// The gate arithmetic of one step, for all (batch, hidden) at once: plain loops over raw pointers
// that the compiler vectorizes, built for AVX-512, AVX2 and plain x86-64 and picked at load time.
#define NAS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// gi, gh: (B, 3H) input and recurrent gate parts; h_prev, out: (B, H); saved: (B, 4H) r, z, n, hn.
template <typename scalar_t>
NAS_CLONES void forward_step(const scalar_t* __restrict gi, const scalar_t* __restrict gh, const scalar_t* __restrict h_prev,
                             scalar_t* __restrict out, scalar_t* __restrict saved, int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    const scalar_t* gib = gi + b * 3 * hidden;
    const scalar_t* ghb = gh + b * 3 * hidden;
    const scalar_t* hpb = h_prev + b * hidden;
    scalar_t* ob = out + b * hidden;
    scalar_t* sb = saved + b * 4 * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      const scalar_t r = sigmoid_(gib[j] + ghb[j]);
      const scalar_t z = sigmoid_(gib[hidden + j] + ghb[hidden + j]);
      const scalar_t hn = ghb[2 * hidden + j];
      const scalar_t n = tanh_(gib[2 * hidden + j] + r * hn);
      ob[j] = n + z * (hpb[j] - n);  // h' = (1 - z) n + z h
      sb[j] = r;
      sb[hidden + j] = z;
      sb[2 * hidden + j] = n;
      sb[3 * hidden + j] = hn;
    }
  }
}

// grad_h, go: (B, H) gradient from later steps and from above; saved as forward_step's; h_prev
// (B, H). Writes the gradients of the recurrent (ggh) and input (ggi) gate parts (B, 3H) and the
// part of d loss / d h_prev through z * h_prev (through_z).
template <typename scalar_t>
NAS_CLONES void backward_step(const scalar_t* __restrict grad_h, const scalar_t* __restrict go, const scalar_t* __restrict saved,
                              const scalar_t* __restrict h_prev, scalar_t* __restrict ggh, scalar_t* __restrict ggi,
                              scalar_t* __restrict through_z, int64_t batch, int64_t hidden) {
  for (int64_t b = 0; b < batch; ++b) {
    const scalar_t* sb = saved + b * 4 * hidden;
    const scalar_t* ghb = grad_h + b * hidden;
    const scalar_t* gob = go + b * hidden;
    const scalar_t* hpb = h_prev + b * hidden;
    scalar_t* gghb = ggh + b * 3 * hidden;
    scalar_t* ggib = ggi + b * 3 * hidden;
    scalar_t* tzb = through_z + b * hidden;
    for (int64_t j = 0; j < hidden; ++j) {
      const scalar_t g = ghb[j] + gob[j];
      const scalar_t r = sb[j], z = sb[hidden + j], n = sb[2 * hidden + j], hn = sb[3 * hidden + j];
      // h' = n + z (h - n); n = tanh(n_pre), n_pre = gi_n + r hn; r and z sigmoids
      const scalar_t n_pre = g * (scalar_t(1) - z) * (scalar_t(1) - n * n);
      const scalar_t z_pre = g * (hpb[j] - n) * z * (scalar_t(1) - z);
      const scalar_t r_pre = n_pre * hn * r * (scalar_t(1) - r);
      gghb[j] = r_pre;
      gghb[hidden + j] = z_pre;
      gghb[2 * hidden + j] = n_pre * r;
      ggib[j] = r_pre;
      ggib[hidden + j] = z_pre;
      ggib[2 * hidden + j] = n_pre;
      tzb[j] = g * z;
    }
  }
}

// x (T, B, I); weights and biases as nn.GRU's; h_0 = 0. Returns every h_t (T, B, H) and, for the
// backward pass, r, z, n and W_hn h + b_hn of every step (T, B, 4H).
std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& w_ih, const at::Tensor& w_hh,
                                const at::Tensor& b_ih, const at::Tensor& b_hh) {
  const int64_t steps = x.size(0), batch = x.size(1), hidden = w_hh.size(1);
  const at::Tensor gi = at::addmm(b_ih, x.reshape({steps * batch, x.size(2)}), w_ih.t()).view({steps, batch, 3 * hidden});
  at::Tensor outputs = at::empty({steps, batch, hidden}, x.options());
  at::Tensor saved = at::empty({steps, batch, 4 * hidden}, x.options());
  const at::Tensor h0 = at::zeros({batch, hidden}, x.options());
  at::Tensor gh = at::empty({batch, 3 * hidden}, x.options());
  const at::Tensor w_hh_t = w_hh.t();
  // Step t's rows are found by pointer arithmetic: a tensor view per step and tensor (select) cost
  // about a microsecond each, a tenth of a small model's epoch; only addmm_out needs views.
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nas_gru_forward", [&] {
    const int64_t gate_step = batch * 3 * hidden, out_step = batch * hidden, saved_step = batch * 4 * hidden;
    const scalar_t* gi_data = gi.data_ptr<scalar_t>();
    scalar_t* out_data = outputs.data_ptr<scalar_t>();
    scalar_t* saved_data = saved.data_ptr<scalar_t>();
    for (int64_t t = 0; t < steps; ++t) {
      const at::Tensor h = t > 0 ? outputs.select(0, t - 1) : h0;
      at::addmm_out(gh, b_hh, h, w_hh_t);
      const scalar_t* h_data = t > 0 ? out_data + (t - 1) * out_step : h0.data_ptr<scalar_t>();
      forward_step<scalar_t>(gi_data + t * gate_step, gh.data_ptr<scalar_t>(), h_data, out_data + t * out_step,
                             saved_data + t * saved_step, batch, hidden);
    }
  });
  return {outputs, saved};
}

// grad_outputs (T, B, H): d loss / d h_t from above. Returns the gradients of x, w_ih, w_hh,
// b_ih, b_hh.
std::vector<at::Tensor> backward(const at::Tensor& grad_outputs, const at::Tensor& x, const at::Tensor& w_ih,
                                 const at::Tensor& w_hh, const at::Tensor& outputs, const at::Tensor& saved) {
  const int64_t steps = x.size(0), batch = x.size(1), hidden = w_hh.size(1);
  at::Tensor grad_gh = at::empty({steps, batch, 3 * hidden}, x.options());  // d loss / d (W_hh h + b_hh)
  at::Tensor grad_gi = at::empty({steps, batch, 3 * hidden}, x.options());  // d loss / d (W_ih x + b_ih)
  at::Tensor grad_h = at::zeros({batch, hidden}, x.options());  // d loss / d h_t through later steps
  at::Tensor through_z = at::empty({batch, hidden}, x.options());
  const at::Tensor h0 = at::zeros({batch, hidden}, x.options());
  const at::Tensor go = grad_outputs.contiguous();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "nas_gru_backward", [&] {
    const int64_t gate_step = batch * 3 * hidden, out_step = batch * hidden, saved_step = batch * 4 * hidden;
    const scalar_t* go_data = go.data_ptr<scalar_t>();
    const scalar_t* out_data = outputs.data_ptr<scalar_t>();
    const scalar_t* saved_data = saved.data_ptr<scalar_t>();
    scalar_t* grad_gh_data = grad_gh.data_ptr<scalar_t>();
    scalar_t* grad_gi_data = grad_gi.data_ptr<scalar_t>();
    for (int64_t t = steps - 1; t >= 0; --t) {
      const scalar_t* h_prev = t > 0 ? out_data + (t - 1) * out_step : h0.data_ptr<scalar_t>();
      backward_step<scalar_t>(grad_h.data_ptr<scalar_t>(), go_data + t * out_step, saved_data + t * saved_step, h_prev,
                              grad_gh_data + t * gate_step, grad_gi_data + t * gate_step, through_z.data_ptr<scalar_t>(),
                              batch, hidden);
      at::addmm_out(grad_h, through_z, grad_gh.select(0, t), w_hh);
    }
  });
  const int64_t rows = steps * batch;
  // h_0 = 0 adds nothing to W_hh's gradient: steps 1..T-1 against h_0..h_{T-2}
  at::Tensor grad_w_hh = steps > 1 ? grad_gh.narrow(0, 1, steps - 1).reshape({-1, 3 * hidden}).t().mm(
                                         outputs.narrow(0, 0, steps - 1).reshape({-1, hidden}))
                                   : at::zeros_like(w_hh);
  at::Tensor grad_b_hh = grad_gh.reshape({rows, 3 * hidden}).sum(0);
  const at::Tensor gi2 = grad_gi.reshape({rows, 3 * hidden});
  at::Tensor grad_x = gi2.mm(w_ih).view({steps, batch, x.size(2)});
  at::Tensor grad_w_ih = gi2.t().mm(x.reshape({rows, x.size(2)}));
  at::Tensor grad_b_ih = gi2.sum(0);
  return {grad_x, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

}  // namespace

TORCH_LIBRARY(nas_gru, m) {
  m.def("forward", &forward);
  m.def("backward", &backward);
}
