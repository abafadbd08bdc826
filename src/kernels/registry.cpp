#include <mutex>

#include "kernels/mechanism.h"
#include "tensor/profile.h"

namespace lnx::kernels {

void register_builtin_mechanisms(std::map<std::string, Mechanism>& registry);  // register_builtin.cpp

namespace {
std::map<std::string, Mechanism>& registry() {
  static std::map<std::string, Mechanism> r;
  static std::once_flag once;
  std::call_once(once, [] { register_builtin_mechanisms(r); });
  return r;
}
}  // namespace

const char* form_name(Form form) {
  switch (form) {
    case Form::reference: return "reference";
    case Form::recurrent: return "recurrent";
    case Form::chunk: return "chunk";
  }
  return "?";
}

Form parse_form(const std::string& name) {
  for (Form f : kAllForms)
    if (name == form_name(f)) return f;
  throw ValueError(fmt::format("[mechanism] unknown form '{}'; forms are reference, recurrent, chunk", name));
}

void register_mechanism(Mechanism m) {
  auto& r = registry();
  LNX_CHECK(!r.count(m.name), ValueError, "[registry] mechanism '{}' is already registered", m.name);
  r.emplace(m.name, std::move(m));
}

std::vector<std::string> mechanism_names() {
  std::vector<std::string> names;
  for (const auto& [name, m] : registry()) names.push_back(name);
  return names;
}

const Mechanism& mechanism(const std::string& name) {
  auto& r = registry();
  auto it = r.find(name);
  LNX_CHECK(it != r.end(), ValueError, "[mechanism] unknown mechanism '{}'; registered: {}", name,
            fmt::join(mechanism_names(), ", "));
  return it->second;
}

MechanismOutputs run(const std::string& name, Form form, const TensorDict& inputs,
                     const MechanismOptions& options) {
  const Mechanism& m = mechanism(name);
  for (const auto& [input, t] : inputs) {
    bool known = false;
    for (const auto& spec : m.inputs) known = known || spec.name == input;
    LNX_CHECK(known, ValueError, "[{}] unknown input '{}'; inputs are {}", name, input, [&] {
      std::vector<std::string> names;
      for (const auto& spec : m.inputs) names.push_back(spec.name);
      return fmt::format("{}", fmt::join(names, ", "));
    }());
  }
  for (const auto& spec : m.inputs)
    LNX_CHECK(!spec.required || inputs.contains(spec.name), ValueError,
              "[{}] missing required input '{}' {}", name, spec.name, spec.shape);
  auto it = m.forms.find(form);
  LNX_CHECK(it != m.forms.end(), ValueError, "[{}] has no {} form", name, form_name(form));
  ProfileScope profile(ProfileCategory::kernel);
  return it->second(inputs, options);
}

}  // namespace lnx::kernels
