// Suite for adamw_step: a few consecutive steps against a float64 reference.
#include "kernels/ops/adamw.h"

#include <cmath>

#include "tests/ops/harness.h"

namespace nuri::test {
namespace {

// param, exp_avg and exp_avg_sq after steps first, first + 1, ... with grads[s] at step first + s.
std::vector<Ref> adamw_ref(const std::vector<Ref>& in, const AdamWOptions& o, int64_t first) {
  Ref p = in[0], m = in[2], v = in[3];
  const int64_t n = p.numel();
  const int64_t steps = in[1].shape[0];
  const double lr = o.lr, b1 = o.beta1, b2 = o.beta2, eps = o.eps, wd = o.weight_decay;
  for (int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(first + s);
    for (int64_t i = 0; i < n; ++i) {
      const double g = in[1][s * n + i];
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      const double m_hat = m[i] / (1 - std::pow(b1, t));
      const double v_hat = v[i] / (1 - std::pow(b2, t));
      p[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
    }
  }
  return {p, m, v};
}

NURI_OP_SUITE(OpSuite{
    "adamw",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      for (int k = 0; k < 8; ++k) {
        Shape s;
        const int rank = static_cast<int>(rng.uniform_int(1, 3));
        for (int i = 0; i < rank; ++i) s.push_back(rng.dim(9));
        if (k == 7) s = {41, 1001};  // the parallel path
        const int64_t steps = rng.uniform_int(1, 4);
        const int64_t first = k % 3 == 0 ? 1 : (k % 3 == 1 ? 6 : 1000);
        AdamWOptions o;
        if (k % 2 == 1) {
          o.lr = 3e-2f;
          o.beta1 = 0.8f;
          o.beta2 = 0.95f;
          o.eps = 1e-6f;
        }
        const float decays[] = {0.0f, 0.01f, 0.1f};
        o.weight_decay = decays[k % 3];
        Shape gs = s;
        gs.insert(gs.begin(), steps);
        // Fresh states at step 1; otherwise states as a run would have them (v >= 0).
        const bool fresh = first == 1;
        Tensor m = fresh ? Tensor::zeros(s) : rng.normal(s, 0.1f);
        Tensor v = fresh ? Tensor::zeros(s) : rng.uniform(s, 0.0f, 0.05f);
        OpCase c;
        c.label = "param" + shape_str(s) + " steps " + std::to_string(first) + ".." +
                  std::to_string(first + steps - 1) + " lr " + std::to_string(o.lr) + " wd " +
                  std::to_string(o.weight_decay);
        c.inputs = {rng.normal(s), rng.normal(gs, 0.3f), m, v};
        c.run = [o, first](const std::vector<Tensor>& in) {
          Tensor param = in[0].clone(), exp_avg = in[2].clone(), exp_avg_sq = in[3].clone();
          for (int64_t step = 0; step < in[1].size(0); ++step) {
            const Tensor grad = in[1].outer_slice(step, step + 1).view(param.shape());
            adamw_step(param, grad, exp_avg, exp_avg_sq, o, first + step);
          }
          return std::vector<Tensor>{param, exp_avg, exp_avg_sq};
        };
        c.reference = [o, first](const std::vector<Ref>& in) { return adamw_ref(in, o, first); };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      auto call = [](const Shape& ps, const Shape& gs, const Shape& ms, const Shape& vs,
                     DType grad_dtype, AdamWOptions o, int64_t step) {
        Tensor p = Tensor::zeros(ps), m = Tensor::zeros(ms), v = Tensor::zeros(vs);
        adamw_step(p, Tensor::zeros(gs, grad_dtype), m, v, o, step);
      };
      const Shape s = {3, 4};
      const DType f32 = DType::f32;
      return std::vector<Malformed>{
          {"grad of another shape",
           [=] {
             call(s, {4, 3}, s, s, f32, {}, 1);
           },
           "adamw_step: grad has shape [4, 3], expected [3, 4]"},
          {"exp_avg of another shape", [=] { call(s, s, {3}, s, f32, {}, 1); },
           "adamw_step: exp_avg has shape [3], expected [3, 4]"},
          {"exp_avg_sq of another shape",
           [=] {
             call(s, s, s, {3, 4, 1}, f32, {}, 1);
           },
           "adamw_step: exp_avg_sq has shape [3, 4, 1], expected [3, 4]"},
          {"bf16 grad", [=] { call(s, s, s, s, DType::bf16, {}, 1); },
           "adamw_step: grad must be f32, not bf16"},
          {"integer param",
           [] {
             Tensor p = Tensor::zeros({2}, DType::i32), m = Tensor::zeros({2}),
                    v = Tensor::zeros({2});
             adamw_step(p, Tensor::zeros({2}), m, v, {}, 1);
           },
           "adamw_step: param must be f32, not i32"},
          {"step 0", [=] { call(s, s, s, s, f32, {}, 0); }, "adamw_step: step 0 must be >= 1"},
          {"beta1 of 1", [=] { call(s, s, s, s, f32, {.beta1 = 1.0f}, 1); },
           "adamw_step: beta1 1 must be in [0, 1)"},
          {"negative lr", [=] { call(s, s, s, s, f32, {.lr = -1e-3f}, 1); },
           "adamw_step: lr -0.001 must be finite and >= 0"},
          {"undefined grad",
           [] {
             Tensor p = Tensor::zeros({2}), m = Tensor::zeros({2}), v = Tensor::zeros({2});
             adamw_step(p, Tensor(), m, v, {}, 1);
           },
           "adamw_step: grad is undefined"},
          {"state aliasing the parameter",
           [] {
             Tensor p = Tensor::zeros({2}), v = Tensor::zeros({2});
             adamw_step(p, Tensor::zeros({2}), p, v, {}, 1);
           },
           "adamw_step: param and exp_avg share memory"},
      };
    },
    /*differentiable=*/false});

// Several parameters of different sizes (one spanning several GPU chunks), each with its own
// learning rate and decay, clipped by one grad_scale, in one multi-tensor step.
NURI_OP_SUITE(OpSuite{
    "adamw_multi_step",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      const std::vector<std::vector<Shape>> groups = {
          {{5}, {3, 7}, {300, 301}}, {{1}}, {{2, 3}, {0}, {4}}};
      for (size_t k = 0; k < groups.size(); ++k) {
        const std::vector<Shape>& shapes = groups[k];
        const float grad_scale = k == 1 ? 1.0f : 0.37f;
        const int64_t step = k == 2 ? 1 : 12;
        AdamWOptions o{.beta1 = 0.85f, .beta2 = 0.98f, .eps = 1e-6f};
        std::vector<float> lrs, decays;
        OpCase c;
        c.label = "group " + std::to_string(k);
        for (size_t t = 0; t < shapes.size(); ++t) {
          lrs.push_back(static_cast<float>(rng.uniform_real(1e-3, 5e-2)));
          decays.push_back(t % 2 == 0 ? 0.1f : 0.0f);
          const Shape& s = shapes[t];
          c.inputs.push_back(rng.normal(s));
          c.inputs.push_back(rng.normal(s, 0.3f));
          c.inputs.push_back(step == 1 ? Tensor::zeros(s) : rng.normal(s, 0.1f));
          c.inputs.push_back(step == 1 ? Tensor::zeros(s) : rng.uniform(s, 0.0f, 0.05f));
        }
        c.run = [o, lrs, decays, grad_scale, step](const std::vector<Tensor>& in) {
          std::vector<AdamWTensors> entries;
          std::vector<Tensor> out;
          for (size_t t = 0; t < lrs.size(); ++t) {
            entries.push_back({in[4 * t].clone(), in[4 * t + 1], in[4 * t + 2].clone(),
                               in[4 * t + 3].clone(), lrs[t], decays[t]});
            out.insert(out.end(),
                       {entries.back().param, entries.back().exp_avg, entries.back().exp_avg_sq});
          }
          adamw_multi_step(entries, o, grad_scale, step);
          return out;
        };
        c.reference = [o, lrs, decays, grad_scale, step](const std::vector<Ref>& in) {
          std::vector<Ref> out;
          for (size_t t = 0; t < lrs.size(); ++t) {
            AdamWOptions own = o;
            own.lr = lrs[t];
            own.weight_decay = decays[t];
            Ref grad = in[4 * t + 1];
            grad.shape.insert(grad.shape.begin(), 1);
            for (double& g : grad.v) g *= grad_scale;
            const std::vector<Ref> r =
                adamw_ref({in[4 * t], grad, in[4 * t + 2], in[4 * t + 3]}, own, step);
            out.insert(out.end(), r.begin(), r.end());
          }
          return out;
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      const auto entry = [](float lr) {
        return AdamWTensors{Tensor::zeros({2}),
                            Tensor::zeros({2}),
                            Tensor::zeros({2}),
                            Tensor::zeros({2}),
                            lr,
                            0.0f};
      };
      return std::vector<Malformed>{
          {"negative grad_scale", [=] { adamw_multi_step({entry(1e-3f)}, {}, -1.0f, 1); },
           "adamw_multi_step: grad_scale -1 must be finite and >= 0"},
          {"an entry's lr is not finite",
           [=] {
             adamw_multi_step({entry(1e-3f), entry(NAN)}, {}, 1.0f, 1);
           },
           "adamw_multi_step: lr nan must be finite and >= 0"},
      };
    },
    /*differentiable=*/false});

// Gradient sum of squares for clipping, over tensors of any size (one spanning several chunks).
NURI_OP_SUITE(OpSuite{
    "sum_of_squares",
    [](CaseRng& rng) {
      std::vector<OpCase> cases;
      const std::vector<std::vector<Shape>> groups = {{{7}, {150001}, {0}, {3, 4}}, {{1}}, {}};
      for (const std::vector<Shape>& shapes : groups) {
        OpCase c;
        c.label = std::to_string(shapes.size()) + " tensors";
        for (const Shape& s : shapes) c.inputs.push_back(rng.normal(s));
        c.run = [](const std::vector<Tensor>& in) {
          return std::vector<Tensor>{Tensor::full({}, sum_of_squares(in))};
        };
        c.reference = [](const std::vector<Ref>& in) {
          Ref total(Shape{});
          for (const Ref& r : in) {
            for (double x : r.v) total[0] += x * x;
          }
          return std::vector<Ref>{total};
        };
        cases.push_back(std::move(c));
      }
      return cases;
    },
    [] {
      return std::vector<Malformed>{
          {"a bf16 tensor",
           [] {
             sum_of_squares({Tensor::zeros({2}), Tensor::zeros({2}, DType::bf16)});
           },
           "sum_of_squares: a tensor is bf16, expected f32"},
          {"an undefined tensor", [] { sum_of_squares({Tensor()}); },
           "sum_of_squares: a tensor is undefined"},
      };
    },
    /*differentiable=*/false});

}  // namespace
}  // namespace nuri::test
