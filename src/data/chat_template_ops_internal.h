// Internal to the chat templates: the operations on template values the renderer applies
// (chat_template_ops.cpp) — Python string semantics over code points, argument checks,
// attribute and item access, the str and dict methods, the operators.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/chat_template_internal.h"

namespace lnx::data::jinja::ops {

// The longest range() and sequence repetition a template may make.
inline constexpr int64_t kMaxRange = 1 << 20;

std::u32string to_u32(std::string_view s);
std::string from_u32(std::u32string_view s);
bool is_space32(char32_t c);
char32_t ascii_upper(char32_t c);
char32_t ascii_lower(char32_t c);
bool is_alpha32(char32_t c);
std::string map_chars(const std::string& s, char32_t (*f)(char32_t));
std::string strip(const std::string& s, const std::string* chars, bool left, bool right);
std::vector<Value> split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right);
std::string replace_all(const std::string& s, const std::string& old, const std::string& with, int64_t count);
std::string title_words(const std::string& s, bool python_method);
std::vector<std::string> split_lines(const std::string& s);
std::string capitalize(const std::string& s);
const Value* find_kw(const Kwargs& kwargs, std::string_view name);
Value arg(const Args& args, const Kwargs& kwargs, size_t index, std::string_view name, Value fallback = {});
void check_arity(const std::string& what, const Args& args, const Kwargs& kwargs, size_t max_positional,
                 std::initializer_list<std::string_view> keywords);
int64_t as_int(const Value& v, const std::string& what);
const std::string& as_string(const Value& v, const std::string& what);
std::vector<Value> iterate(const Value& v);
int64_t length(const Value& v);
std::string undefined_message(const Value& v);
Value get_attr(const Value& obj, const std::string& name);
std::vector<size_t> slice_indices(int64_t n, const Value& start_v, const Value& stop_v, const Value& step_v);
Value get_item(const Value& obj, const Value& key);
Value string_method(const std::string& s, const std::string& name);
Value dict_method(const std::shared_ptr<Dict>& d, const std::string& name);
Value arithmetic(const std::string& op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace lnx::data::jinja::ops
