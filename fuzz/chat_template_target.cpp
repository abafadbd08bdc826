// Fuzz target: Jinja chat templates (a model directory's chat_template.jinja or
// tokenizer_config.json, data.chat_template), parsed and rendered over a fixed conversation.
#include <nlohmann/json.hpp>

#include "data/chat_template.h"
#include "fuzz_targets.h"
#include "fuzz_util_internal.h"

namespace lnx::fuzz {

bool fuzz_chat_template(const uint8_t* data, size_t size) {
  return refusals_allowed([&] {
    const data::ChatTemplate t{as_text(data, size)};
    nlohmann::ordered_json vars;
    vars["messages"] = nlohmann::ordered_json::array({{{"role", "system"}, {"content", "Be brief."}},
                                                      {{"role", "user"}, {"content", "What is 12 + 30?"}},
                                                      {{"role", "assistant"}, {"content", "<think>add</think>42"}},
                                                      {{"role", "user"}, {"content", "And 1 + 1?"}}});
    vars["add_generation_prompt"] = true;
    vars["bos_token"] = "<s>";
    vars["eos_token"] = "</s>";
    // no tools: templates differ in the shape they expect
    (void)t.render(vars);
  });
}

}  // namespace lnx::fuzz
