// TensorDict: named tensors in insertion order ("blocks.3.mixer.in_proj.weight" → Tensor).
// The parameter collection of value_and_grad, optimizers and checkpoints, and what
// safetensors files hold.
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace lnx {

class TensorDict {
 public:
  using Item = std::pair<std::string, Tensor>;

  TensorDict() = default;
  TensorDict(std::initializer_list<Item> items) {
    for (const auto& [k, v] : items) insert(k, v);
  }

  // Adds a new name; throws ValueError if it is already there.
  void insert(const std::string& name, const Tensor& t) {
    LNX_CHECK(index_.find(name) == index_.end(), ValueError, "[TensorDict] name '{}' is already present", name);
    index_[name] = items_.size();
    items_.emplace_back(name, t);
  }
  // Adds or replaces.
  void set(const std::string& name, const Tensor& t) {
    auto it = index_.find(name);
    if (it == index_.end())
      insert(name, t);
    else
      items_[it->second].second = t;
  }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const Tensor& at(const std::string& name) const {
    auto it = index_.find(name);
    LNX_CHECK(it != index_.end(), ValueError, "[TensorDict] no tensor named '{}'", name);
    return items_[it->second].second;
  }
  const Tensor& operator[](const std::string& name) const { return at(name); }
  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }
  const std::vector<Item>& items() const { return items_; }

 private:
  std::vector<Item> items_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace lnx
