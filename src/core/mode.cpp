#include "core/mode.h"

#include "tensor/error.h"

namespace lnx::core {

const char* mode_name(Mode mode) {
  switch (mode) {
    case Mode::automatic:
      return "auto";
    case Mode::chunk:
      return "chunk";
    case Mode::recurrent:
      return "recurrent";
  }
  return "?";
}

Mode parse_mode(const std::string& name) {
  if (name == "auto") return Mode::automatic;
  if (name == "chunk") return Mode::chunk;
  if (name == "recurrent") return Mode::recurrent;
  throw ValueError("[mode] unknown mode '" + name + "'; expected one of: auto, chunk, recurrent");
}

Mode select_mode(Mode requested, int64_t max_len, bool recording_gradients) {
  if (requested != Mode::automatic) return requested;
  return max_len <= kRecurrentMaxTokens && !recording_gradients ? Mode::recurrent : Mode::chunk;
}

}  // namespace lnx::core
