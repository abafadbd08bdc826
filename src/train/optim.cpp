// Optimizer plumbing: parameter routing, config checks, the factory, and the state-dict
// helpers (copies, the all-problems-at-once reader, buffer save/load, weight decay).
#include "train/optim.h"

#include <cmath>
#include <cstring>

#include "tensor/autograd.h"
#include "tensor/ops.h"
#include "train/optim_internal.h"

namespace lnx::train {

bool Optimizer::wants_hessian(int64_t) const { return false; }
void Optimizer::update_hessian(const TensorDict&, int64_t) {}

namespace {

std::string last_component(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

void check_config(const OptimizerConfig& c) {
  auto in_unit = [](double b) { return b >= 0.0 && b < 1.0; };
  LNX_CHECK(c.name == "adamw" || c.name == "muon" || c.name == "sophia" || c.name == "sgd", ValueError,
            "[optimizer] name must be adamw, muon, sophia or sgd, got '{}'", c.name);
  LNX_CHECK(std::isfinite(c.lr) && c.lr >= 0.0, ValueError, "[optimizer] lr must be ≥ 0, got {}", c.lr);
  LNX_CHECK(std::isfinite(c.weight_decay) && c.weight_decay >= 0.0, ValueError,
            "[optimizer] weight_decay must be ≥ 0, got {}", c.weight_decay);
  LNX_CHECK(in_unit(c.beta1), ValueError, "[optimizer] beta1 must be in [0, 1), got {}", c.beta1);
  LNX_CHECK(in_unit(c.beta2), ValueError, "[optimizer] beta2 must be in [0, 1), got {}", c.beta2);
  LNX_CHECK(std::isfinite(c.eps) && c.eps > 0.0, ValueError, "[optimizer] eps must be > 0, got {}", c.eps);
  LNX_CHECK(in_unit(c.momentum), ValueError, "[optimizer] momentum must be in [0, 1), got {}", c.momentum);
  LNX_CHECK(c.ns_steps >= 1 && c.ns_steps <= 100, ValueError, "[optimizer] ns_steps must be in [1, 100], got {}",
            c.ns_steps);
  LNX_CHECK(std::isfinite(c.muon_lr) && c.muon_lr >= 0.0, ValueError, "[optimizer] muon_lr must be ≥ 0, got {}",
            c.muon_lr);
  LNX_CHECK(std::isfinite(c.rho) && c.rho > 0.0, ValueError, "[optimizer] rho must be > 0, got {}", c.rho);
  LNX_CHECK(c.hessian_interval >= 1, ValueError, "[optimizer] hessian_interval must be ≥ 1, got {}",
            c.hessian_interval);
}

void check_params(const TensorDict& params) {
  for (const auto& [name, p] : params) {
    LNX_CHECK(p.defined(), ValueError, "[optimizer] parameter '{}' is undefined", name);
    LNX_CHECK(is_floating(p.dtype()), DTypeError, "[optimizer] parameter '{}' must be f32 or f64, got {}", name,
              dtype_name(p.dtype()));
    LNX_CHECK(p.is_contiguous(), ValueError,
              "[optimizer] parameter '{}' must be contiguous (updates are written in place), got strides {}", name,
              fmt::join(p.strides(), ","));
  }
}

}  // namespace

ParamRoute route_of(const std::string& name, const Tensor& param) {
  const std::string last = last_component(name);
  if (param.dim() < 2 || last == "A_log" || last == "dt_bias" || last == "D") return ParamRoute::gain;
  if (name.find("embeddings") != std::string::npos || name.find("lm_head") != std::string::npos ||
      name.find("conv1d") != std::string::npos)
    return ParamRoute::matrix;
  return ParamRoute::muon_matrix;
}

bool is_decayed(const std::string& name, const Tensor& param) { return route_of(name, param) != ParamRoute::gain; }

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const TensorDict& params) {
  check_config(config);
  check_params(params);
  if (config.name == "adamw") return detail::make_adamw(config, params);
  if (config.name == "muon") return detail::make_muon(config, params);
  if (config.name == "sophia") return detail::make_sophia(config, params);
  return detail::make_sgd(config, params);
}

namespace detail {

std::vector<Tracked> track(const std::vector<std::pair<std::string, Tensor>>& params, size_t num_buffers) {
  std::vector<Tracked> out;
  out.reserve(params.size());
  for (const auto& [name, p] : params) {
    Tracked t{name, p, is_decayed(name, p), {}};
    for (size_t i = 0; i < num_buffers; ++i) t.buffers.push_back(zeros(p.shape(), p.dtype()));
    out.push_back(std::move(t));
  }
  return out;
}

Tensor detached_copy(const Tensor& t) {
  NoGradGuard no_grad;
  return clone(t.detach());
}

Tensor step_counter(int64_t steps) { return from_vector<int64_t>({steps}, {1}); }

Tensor grad_of(const Tensor& param) {
  const Tensor g = param.grad();
  if (!g.defined()) return g;
  NoGradGuard no_grad;
  return g.detach().contiguous();
}

StateReader::StateReader(const TensorDict& state, std::string component)
    : state_(state), component_(std::move(component)) {}

void StateReader::expect_like(const std::string& key, const Tensor& like) {
  expected_.push_back(key);
  if (!state_.contains(key)) {
    problems_.push_back(fmt::format("missing '{}'", key));
    return;
  }
  const Tensor& t = state_.at(key);
  if (!t.defined() || t.dtype() != like.dtype() || t.shape() != like.shape())
    problems_.push_back(fmt::format(
        "'{}' should be {} {} but is {}", key, dtype_name(like.dtype()), shape_str(like.shape()),
        t.defined() ? fmt::format("{} {}", dtype_name(t.dtype()), shape_str(t.shape())) : std::string("undefined")));
}

void StateReader::expect_counter(const std::string& key) {
  expected_.push_back(key);
  if (!state_.contains(key)) {
    problems_.push_back(fmt::format("missing '{}'", key));
    return;
  }
  const Tensor& t = state_.at(key);
  if (!t.defined() || t.dtype() != DType::i64 || t.numel() != 1) {
    problems_.push_back(fmt::format("'{}' should be a one-element i64 step counter", key));
    return;
  }
  if (t.to_vector<int64_t>()[0] < 0)
    problems_.push_back(fmt::format("'{}' is negative ({})", key, t.to_vector<int64_t>()[0]));
}

void StateReader::finish() {
  for (const auto& [key, t] : state_) {
    bool known = false;
    for (const auto& e : expected_) known = known || e == key;
    if (!known) problems_.push_back(fmt::format("unexpected '{}'", key));
  }
  LNX_CHECK(problems_.empty(), ValueError, "[{}] load_state: the state does not fit this optimizer ({} problems): {}",
            component_, problems_.size(), fmt::join(problems_, "; "));
}

void StateReader::copy_into(const std::string& key, const Tensor& dst) const {
  const Tensor src = state_.at(key).contiguous();
  std::memcpy(dst.raw_data(), src.raw_data(), dst.nbytes());
}

int64_t StateReader::counter(const std::string& key) const { return state_.at(key).to_vector<int64_t>()[0]; }

void save_buffers(const std::vector<Tracked>& tracked, const std::vector<std::string>& slots, const std::string& prefix,
                  TensorDict& out) {
  for (size_t s = 0; s < slots.size(); ++s)
    for (const auto& t : tracked) out.insert(prefix + slots[s] + "/" + t.name, detached_copy(t.buffers[s]));
}

void expect_buffers(const std::vector<Tracked>& tracked, const std::vector<std::string>& slots,
                    const std::string& prefix, StateReader& reader) {
  for (size_t s = 0; s < slots.size(); ++s)
    for (const auto& t : tracked) reader.expect_like(prefix + slots[s] + "/" + t.name, t.buffers[s]);
}

void load_buffers(std::vector<Tracked>& tracked, const std::vector<std::string>& slots, const std::string& prefix,
                  const StateReader& reader) {
  for (size_t s = 0; s < slots.size(); ++s)
    for (auto& t : tracked) reader.copy_into(prefix + slots[s] + "/" + t.name, t.buffers[s]);
}

TensorDict counted_buffers_state(int64_t steps, const std::vector<Tracked>& tracked,
                                 const std::vector<std::string>& slots) {
  TensorDict out;
  out.insert("step", step_counter(steps));
  save_buffers(tracked, slots, "", out);
  return out;
}

int64_t load_counted_buffers(const TensorDict& state, const std::string& optimizer, std::vector<Tracked>& tracked,
                             const std::vector<std::string>& slots) {
  StateReader reader(state, optimizer);
  reader.expect_counter("step");
  expect_buffers(tracked, slots, "", reader);
  reader.finish();
  load_buffers(tracked, slots, "", reader);
  return reader.counter("step");
}

void apply_weight_decay(const Tracked& t, double lr, double weight_decay) {
  if (!t.decay || weight_decay == 0.0 || lr == 0.0) return;
  const double factor = 1.0 - lr * weight_decay;
  dispatch_float(t.param.dtype(), "weight_decay", [&]<typename T>() {
    T* w = t.param.data<T>();
    const int64_t n = t.param.numel();
    for (int64_t i = 0; i < n; ++i) w[i] = static_cast<T>(static_cast<double>(w[i]) * factor);
  });
}

}  // namespace detail
}  // namespace lnx::train
