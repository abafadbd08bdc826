// ChatTemplate (parse once, render many times) and the chat side of a model directory:
// template, special token strings and eos ids.
#include "data/chat_template.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/chat_template_internal.h"
#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "io/read_file.h"
#include "tensor/error.h"

namespace lnx::data {

ChatTemplate::ChatTemplate(std::string_view source)
    : source_(source), body_(std::make_shared<const jinja::Body>(jinja::parse_template(source))) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& variables) const {
  return jinja::render_template(*body_, variables);
}

std::string ChatFormat::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                               const nlohmann::ordered_json& extra) const {
  LNX_CHECK(chat_template.has_value(), ValueError, "[chat_template] the model directory has no chat template");
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  vars["messages"] = std::move(list);
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = add_generation_prompt;
  const std::pair<const char*, const std::string*> tokens[] = {
      {"bos_token", &bos_token}, {"eos_token", &eos_token}, {"unk_token", &unk_token}, {"pad_token", &pad_token}};
  for (const auto& [name, value] : tokens)
    if (!value->empty()) vars[name] = *value;
  if (extra.is_object())
    for (const auto& [key, value] : extra.items()) vars[key] = value;
  return chat_template->render(vars);
}

namespace {

namespace fs = std::filesystem;

std::string read_text(const std::string& path) { return io::read_file("chat_template", path, kMaxChatTemplateBytes); }

// A special token entry: a string, null, or {"content": ...} (an AddedToken as older files write it).
std::string token_string(const nlohmann::json& config, const char* key, const std::string& path) {
  if (!config.contains(key) || config[key].is_null()) return "";
  const nlohmann::json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  LNX_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), IOError,
            "[chat_template] '{}': \"{}\" must be a string or an object with a \"content\" string", path, key);
  return v["content"].get<std::string>();
}

// eos_token_id: an int, a list of ints, or null.
void add_ids(const nlohmann::json& config, const std::string& path, std::vector<int32_t>& ids) {
  if (!config.contains("eos_token_id") || config["eos_token_id"].is_null()) return;
  const nlohmann::json& v = config["eos_token_id"];
  const auto add = [&](const nlohmann::json& id) {
    LNX_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t{1} << 31), IOError,
              "[chat_template] '{}': eos_token_id must be a non-negative integer or a list of them, got {}", path,
              v.dump());
    const auto i = static_cast<int32_t>(id.get<int64_t>());
    if (std::find(ids.begin(), ids.end(), i) == ids.end()) ids.push_back(i);
  };
  if (v.is_array())
    for (const nlohmann::json& id : v) add(id);
  else
    add(v);
}

}  // namespace

ChatFormat load_chat_format(const std::string& dir, const Tokenizer* tokenizer) {
  ChatFormat f;
  const std::string config_path = (fs::path(dir) / "tokenizer_config.json").string();
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path)) config = detail::read_json_file(config_path);
  f.bos_token = token_string(config, "bos_token", config_path);
  f.eos_token = token_string(config, "eos_token", config_path);
  f.unk_token = token_string(config, "unk_token", config_path);
  f.pad_token = token_string(config, "pad_token", config_path);

  std::string source;
  const std::string jinja_path = (fs::path(dir) / "chat_template.jinja").string();
  if (fs::exists(jinja_path)) {
    source = read_text(jinja_path);
    f.template_origin = jinja_path;
  } else if (config.contains("chat_template") && !config["chat_template"].is_null()) {
    const nlohmann::json& t = config["chat_template"];
    f.template_origin = config_path;
    if (t.is_string()) {
      source = t.get<std::string>();
    } else {
      LNX_CHECK(t.is_array(), IOError,
                "[chat_template] '{}': \"chat_template\" must be a string or a list of {{\"name\", \"template\"}}",
                config_path);
      std::string names;
      for (const nlohmann::json& entry : t) {
        LNX_CHECK(entry.is_object() && entry.contains("name") && entry["name"].is_string() &&
                      entry.contains("template") && entry["template"].is_string(),
                  IOError, "[chat_template] '{}': each chat_template entry needs a \"name\" and a \"template\" string",
                  config_path);
        if (entry["name"] == "default") source = entry["template"].get<std::string>();
        names += (names.empty() ? "" : ", ") + entry["name"].get<std::string>();
      }
      LNX_CHECK(!source.empty(), IOError, "[chat_template] '{}': no chat template named \"default\" (it has: {})",
                config_path, names);
    }
  }
  if (!f.template_origin.empty()) {
    try {
      f.chat_template.emplace(source);
    } catch (const ValueError& e) {
      throw ValueError(fmt::format("{} (the chat template of '{}')", e.what(), f.template_origin));
    }
  }

  const std::string generation_path = (fs::path(dir) / "generation_config.json").string();
  const std::string model_config_path = (fs::path(dir) / "config.json").string();
  if (fs::exists(generation_path)) add_ids(detail::read_json_file(generation_path), generation_path, f.stop_ids);
  if (f.stop_ids.empty() && fs::exists(model_config_path))
    add_ids(detail::read_json_file(model_config_path), model_config_path, f.stop_ids);
  if (tokenizer != nullptr && !f.eos_token.empty()) {
    if (const std::optional<int32_t> id = tokenizer->special_token(f.eos_token);
        id && std::find(f.stop_ids.begin(), f.stop_ids.end(), *id) == f.stop_ids.end())
      f.stop_ids.push_back(*id);
  }
  return f;
}

}  // namespace lnx::data
