// Fuzz target: tokenizer.json files; a file that loads must encode and decode.
#include "data/tokenizer.h"
#include "fuzz_targets.h"
#include "fuzz_util_internal.h"

namespace lnx::fuzz {

bool fuzz_tokenizer_json(const uint8_t* data, size_t size) {
  const std::string path = write_scratch("tokenizer.json", as_text(data, size));
  return refusals_allowed([&] {
    const auto tok = data::load_tokenizer(path);
    const std::vector<int32_t> ids = tok->encode_with_special_tokens("Hello, wörld! 12 + 30 = 42\n\t<|endoftext|>");
    (void)tok->decode(ids);
    for (int32_t id = 0; id < std::min<int64_t>(tok->vocab_size(), 300); ++id) (void)tok->decode({id});
  });
}

}  // namespace lnx::fuzz
