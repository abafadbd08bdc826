// `linearnexus generate` (streamed text from a checkpoint, optionally from and to a state
// file), `linearnexus chat` (an interactive loop that keeps the model state between turns, so
// the history is never prefilled again) and `linearnexus bench generate` (prefill and decode
// speed against context length).
//
// A model directory with a chat template (chat_template.jinja or tokenizer_config.json, e.g. a
// Hugging Face directory) makes chat render the conversation through it each turn and feed
// only the text past what the session has already consumed; replies (and `generate`) end at
// the directory's eos ids (generation_config.json, config.json, the template's eos_token),
// which are not printed. A fresh `generate` prompt gets the tokenizer's post-processor tokens
// (e.g. Llama-3's <|begin_of_text|>).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "generate/generate.h"
#include "generate/session.h"
#include "models/checkpoint.h"
#include "models/presets.h"
#include "tensor/cpu/blas.h"
#include "tensor/cpu/packed_weight.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/profile.h"

namespace lnx::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct SamplingFlags {
  int64_t max_tokens = 200;
  double temperature = 0.8, top_p = 1.0, repetition_penalty = 1.0;
  int64_t top_k = 0;
  uint64_t seed = 0;
  bool greedy = false;
  std::vector<std::string> stop;
};

void add_sampling_flags(CLI::App* cmd, SamplingFlags& f) {
  cmd->add_option("--max-tokens", f.max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", f.temperature, "sampling temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--top-k", f.top_k, "sample among the k most likely tokens (0 = all)")->capture_default_str();
  cmd->add_option("--top-p", f.top_p, "nucleus sampling mass")->capture_default_str();
  cmd->add_option("--repetition-penalty", f.repetition_penalty, "penalty of tokens already in the text (1 = none)")
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "random seed (same seed, same text)")->capture_default_str();
  cmd->add_flag("--greedy", f.greedy, "always the most likely token");
  cmd->add_option("--stop", f.stop, "stop when the text contains this string (repeatable)");
}

generate::SamplingOptions sampling_options(const SamplingFlags& f, const data::Tokenizer& tok) {
  generate::SamplingOptions o;
  o.max_new_tokens = f.max_tokens;
  o.temperature = f.greedy ? 0.0 : f.temperature;
  o.top_k = f.top_k;
  o.top_p = f.top_p;
  o.repetition_penalty = f.repetition_penalty;
  o.seed = f.seed;
  o.stop_strings = f.stop;
  o.tokenizer = &tok;
  generate::check_options(o);
  return o;
}

std::unique_ptr<data::Tokenizer> checkpoint_tokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  LNX_CHECK(std::filesystem::exists(path), ValueError,
            "[generate] '{}' has no tokenizer.json (a checkpoint of `linearnexus train` on text has one)", dir);
  return data::load_tokenizer(path);
}

// The fingerprint saved states record for the checkpoint's tokenizer.
std::string checkpoint_tokenizer_fingerprint(const std::string& dir) {
  return generate::tokenizer_fingerprint(dir + "/tokenizer.json");
}

struct Streamed {
  std::string text;             // printed text (without stop tokens)
  std::vector<int32_t> tokens;  // every generated token, a final stop token included
};

bool is_stop_token(const generate::SamplingOptions& o, int32_t token) {
  return std::find(o.stop_tokens.begin(), o.stop_tokens.end(), token) != o.stop_tokens.end();
}

// Generates from the session, printing text as complete characters arrive; a stop token
// (o.stop_tokens) ends generation unprinted, and stop(text) ends it early.
Streamed stream(generate::Session& session, const generate::SamplingOptions& o, const data::Tokenizer& tok,
                const std::function<bool(const std::string&)>& stop = {}) {
  data::StreamDecoder decoder(tok);
  Streamed out;
  session.generate(o, [&](int32_t token) {
    out.tokens.push_back(token);
    if (is_stop_token(o, token)) return false;
    const std::string piece = decoder.push(token);
    out.text += piece;
    fmt::print("{}", piece);
    std::fflush(stdout);
    return !(stop && stop(out.text));
  });
  const std::string rest = decoder.flush();
  fmt::print("{}", rest);
  out.text += rest;
  return out;
}

struct GenerateOptions {
  std::string checkpoint, prompt, state_in, state_out, weights = "f32";
  SamplingFlags sampling;
};

int run_generate(const GenerateOptions& g) {
  const WeightFormat weights = parse_weight_format(g.weights);
  auto model = models::load_model(g.checkpoint);
  model->set_weight_format(weights);
  auto tok = checkpoint_tokenizer(g.checkpoint);
  generate::SamplingOptions o = sampling_options(g.sampling, *tok);
  o.stop_tokens = data::load_chat_format(g.checkpoint, tok.get()).stop_ids;
  const std::string tokenizer = checkpoint_tokenizer_fingerprint(g.checkpoint);
  generate::Session session =
      g.state_in.empty() ? generate::Session(*model) : generate::Session::load(*model, g.state_in, tokenizer);
  // A fresh sequence starts as the tokenizer's post-processor says (a BOS for Llama-3).
  const std::vector<int32_t> prompt =
      g.state_in.empty() ? tok->encode_with_special_tokens(g.prompt) : tok->encode(g.prompt);
  LNX_CHECK(!prompt.empty() || !g.state_in.empty(), ValueError,
            "[generate] give a non-empty --prompt (or --state-in to continue a saved state)");
  if (!prompt.empty()) session.prefill(prompt);
  fmt::print("{}", g.prompt);
  stream(session, o, *tok);
  fmt::print("\n");
  if (!g.state_out.empty()) {
    session.save(g.state_out, tokenizer);
    fmt::print(stderr, "state saved to {} ({} tokens)\n", g.state_out, session.tokens().size());
  }
  return 0;
}

struct ChatOptions {
  std::string checkpoint, system, weights = "f32";
  bool no_template = false, show_prompt = false;
  SamplingFlags sampling;
};

// Chat through the directory's template: each turn the whole conversation is rendered (with
// add_generation_prompt), and only the text past what the session has consumed (the earlier
// renderings and the generated replies, stop tokens included) is fed. A template that renders
// the earlier turns differently (one that drops past reasoning, say) gets the whole rendering
// prefilled again in a fresh session.
// "/save FILE" in a chat: saves the session's state. A save that cannot be made (nothing to save,
// no name, an unwritable path) is reported and the chat goes on. False: line is not a /save.
bool save_command(const std::string& line, const generate::Session& session, bool started,
                  const std::string& checkpoint) {
  if (line != "/save" && line.rfind("/save ", 0) != 0) return false;
  const size_t start = line.find_first_not_of(' ', 5);
  const std::string path = start == std::string::npos ? "" : line.substr(start);
  try {
    LNX_CHECK(!path.empty(), ValueError, "[chat] /save needs a file name: /save FILE");
    LNX_CHECK(started, ValueError, "[chat] nothing to save yet");
    session.save(path, checkpoint_tokenizer_fingerprint(checkpoint));
    fmt::print("saved {}\n", path);
  } catch (const Error& e) {
    fmt::print(stderr, "error: {} (the chat goes on)\n", e.what());
  }
  return true;
}

int run_template_chat(const ChatOptions& c, const models::LMModel& model, const data::Tokenizer& tok,
                      const data::ChatFormat& format, const generate::SamplingOptions& o) {
  std::vector<data::ChatMessage> messages;
  if (!c.system.empty()) messages.push_back({"system", c.system});
  const size_t first_turn = messages.size();
  generate::Session session(model);
  std::string consumed;  // the text the session has seen
  bool started = false;
  fmt::print(
      "chat with {} ({} parameters) through the chat template of {}; replies end at eos id {}. /reset "
      "starts over, /save FILE saves the state, an empty line or end of input quits.\n",
      model.config().name, model.num_parameters(), format.template_origin,
      o.stop_tokens.empty() ? std::string("(none: --max-tokens)") : fmt::format("{}", fmt::join(o.stop_tokens, ", ")));
  std::string line;
  while (true) {
    fmt::print("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    if (line == "/reset") {
      messages.resize(first_turn);
      session = generate::Session(model);
      consumed.clear();
      started = false;
      continue;
    }
    if (save_command(line, session, started, c.checkpoint)) continue;
    messages.push_back({"user", line});
    std::string rendered;
    try {
      rendered = format.render(messages, /*add_generation_prompt=*/true);
    } catch (const ValueError& e) {
      fmt::print(stderr, "error: {}\n", e.what());
      messages.pop_back();
      continue;
    }
    std::string fed;
    if (started && rendered.compare(0, consumed.size(), consumed) == 0) {
      fed = rendered.substr(consumed.size());
    } else {
      if (started) {
        fmt::print(stderr,
                   "(the template renders the earlier turns differently: the conversation is prefilled again)\n");
        session = generate::Session(model);
        consumed.clear();
        started = false;
      }
      fed = rendered;
    }
    if (c.show_prompt)
      fmt::print("fed: {}\n", nlohmann::json(fed).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    const std::vector<int32_t> ids = tok.encode(fed);
    if (!started)
      session.prefill(ids);
    else
      for (int32_t t : ids) session.step(t);  // only the new text is fed: no re-prefill
    started = !ids.empty() || started;
    consumed += fed;
    const Streamed reply = stream(session, o, tok);
    consumed += tok.decode(reply.tokens);
    messages.push_back({"assistant", generate::trim_at_stop_string(reply.text, o.stop_strings)});
    if (reply.text.empty() || reply.text.back() != '\n') fmt::print("\n");
  }
  return 0;
}

int run_chat(ChatOptions c) {
  const WeightFormat weights = parse_weight_format(c.weights);
  auto model = models::load_model(c.checkpoint);
  model->set_weight_format(weights);
  auto tok = checkpoint_tokenizer(c.checkpoint);
  generate::SamplingOptions o = sampling_options(c.sampling, *tok);
  const data::ChatFormat format = data::load_chat_format(c.checkpoint, tok.get());
  o.stop_tokens = format.stop_ids;
  if (format.chat_template && !c.no_template) return run_template_chat(c, *model, *tok, format, o);
  LNX_CHECK(c.system.empty(), ValueError, "[chat] --system needs a chat template (the model directory has none)");
  // A reply ends at the end of its first non-empty line (or at a --stop string).
  auto end_of_line = [](const std::string& text) {
    const size_t content = text.find_first_not_of(" \n");
    return content != std::string::npos && text.find('\n', content) != std::string::npos;
  };
  generate::Session session(*model);
  fmt::print(
      "chat with {} ({} parameters); the state carries the whole conversation. /reset starts over, "
      "/save FILE saves the state, an empty line or end of input quits.\n",
      model->config().name, model->num_parameters());
  std::string line;
  bool started = false;
  while (true) {
    fmt::print("> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    if (line == "/reset") {
      session = generate::Session(*model);
      started = false;
      continue;
    }
    if (save_command(line, session, started, c.checkpoint)) continue;
    const std::vector<int32_t> turn = tok->encode(line + "\n");
    if (turn.empty()) continue;
    if (!started)
      session.prefill(turn);
    else
      for (int32_t t : turn) session.step(t);  // only the new turn is fed: no re-prefill
    started = true;
    const std::string reply = stream(session, o, *tok, end_of_line).text;
    if (reply.empty() || reply.back() != '\n') fmt::print("\n");
  }
  return 0;
}

struct BenchOptions {
  std::string preset = "gated_deltanet-small", checkpoint, config, weights = "f32";
  std::vector<int64_t> contexts = {128, 512, 2048, 8192};
  int64_t prefill = 2048, decode_tokens = 32;
  int64_t group = 8, group_prompt = 256;  // the rollout comparison (0: skipped)
};

void validate(const BenchOptions& b) {
  // Timing needs a warm-up step and at least one timed one; sizes stay within what a benchmark
  // means (and what memory holds).
  constexpr int64_t kMax = int64_t{1} << 20;
  auto check = [](const char* flag, int64_t v, int64_t lo, int64_t hi) {
    LNX_CHECK(v >= lo && v <= hi, ValueError, "[bench generate] {} must be {} … {}, got {}", flag, lo, hi, v);
  };
  check("--prefill", b.prefill, 2, kMax);
  check("--decode-tokens", b.decode_tokens, 2, kMax);
  check("--group", b.group, 0, 4096);
  check("--group-prompt", b.group_prompt, 1, kMax);
  LNX_CHECK(!b.contexts.empty(), ValueError, "[bench generate] --contexts needs at least one context");
  for (int64_t c : b.contexts) check("--contexts", c, 1, kMax);
}

int run_bench_generate(const BenchOptions& b) {
  validate(b);
  const WeightFormat weights = parse_weight_format(b.weights);
  std::unique_ptr<models::LMModel> owned;
  if (!b.checkpoint.empty())
    owned = models::load_model(b.checkpoint);
  else if (!b.config.empty())
    owned = std::make_unique<models::LMModel>(models::load_model_config(b.config));
  else
    owned = std::make_unique<models::LMModel>(models::preset_config(b.preset));
  owned->set_weight_format(weights);
  const models::LMModel& model = *owned;
  const int64_t V = model.config().vocab_size;
  Generator gen(0);
  auto tokens = [&](int64_t n) {
    const std::vector<int64_t> v = randint({n}, 0, V, gen, DType::i64).to_vector<int64_t>();
    return std::vector<int32_t>(v.begin(), v.end());
  };
  const double sgemm = measure_sgemm_gflops(), read_gbps = measure_read_gbps();
  const double weight_bytes = static_cast<double>(model.weight_bytes_per_token());
  // Decoding reads every weight once per token: bytes per token over the read bandwidth.
  const double roofline = read_gbps * 1e9 / weight_bytes;
  fmt::print(
      "model {} ({:.1f}M parameters, {} weights: {:.1f} MB read per token), sgemm {:.0f} GFLOP/s and memory read "
      "{:.1f} GB/s in this run: weight-bytes roofline {:.1f} tokens/s\n",
      model.config().name, static_cast<double>(model.num_parameters()) / 1e6, weight_format_name(weights),
      weight_bytes / 1e6, sgemm, read_gbps, roofline);
  // Prefill: one chunk-mode call against feeding the same prompt token by token.
  const std::vector<int32_t> prompt = tokens(b.prefill);
  generate::Session chunked(model);
  auto t0 = Clock::now();
  chunked.prefill(prompt);
  const double chunk_s = std::chrono::duration<double>(Clock::now() - t0).count();
  generate::Session stepped(model);
  t0 = Clock::now();
  stepped.prefill({prompt[0]});
  for (size_t i = 1; i < prompt.size(); ++i) stepped.step(prompt[i]);
  const double step_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const double flops = model.flops_per_token(b.prefill) * static_cast<double>(b.prefill);
  fmt::print(
      "prefill {} tokens: chunk {:.0f} tokens/s ({:.0f} GFLOP/s, {:.2f} of sgemm), token by token {:.0f} "
      "tokens/s: {:.1f}x\n",
      b.prefill, static_cast<double>(b.prefill) / chunk_s, flops / chunk_s / 1e9, flops / chunk_s / 1e9 / sgemm,
      static_cast<double>(b.prefill) / step_s, step_s / chunk_s);
  // Where a token's time goes (tensor/profile.h): the weight products (packed or GEMM), the
  // mechanisms' state kernels, and the rest (norms, convolutions, gates, glue, and every
  // allocation, those inside the products and kernels included).
  fmt::print("{:>8}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}\n", "context", "ms/token", "tokens/s",
             "of roofline", "products ms", "kernels ms", "rest ms");
  for (int64_t context : b.contexts) {
    generate::Session s(model);
    s.prefill(tokens(context));
    const std::vector<int32_t> next = tokens(b.decode_tokens);
    s.step(next[0]);  // warm-up
    ProfileTotals p;
    t0 = Clock::now();
    {
      ProfileSession profiling;
      for (int64_t i = 1; i < b.decode_tokens; ++i) s.step(next[static_cast<size_t>(i)]);
      p = profile_totals();
    }
    const double n = static_cast<double>(b.decode_tokens - 1);
    const double per = std::chrono::duration<double>(Clock::now() - t0).count() / n;
    const double products = p.gemm_seconds / n, kernels = p.kernel_seconds / n;
    fmt::print("{:>8}  {:>12.2f}  {:>12.1f}  {:>12.2f}  {:>12.2f}  {:>12.2f}  {:>12.2f}\n", context, per * 1e3,
               1.0 / per, 1.0 / per / roofline, products * 1e3, kernels * 1e3, (per - products - kernels) * 1e3);
  }
  if (b.group > 0) {
    // Post-training rollouts: `group` samples of one prompt, its state forked after one
    // prefill against a prefill per sample (decoding is the same batched loop in both).
    generate::SamplingOptions o;
    o.temperature = 1.0;
    o.max_new_tokens = b.decode_tokens;
    const std::vector<std::vector<int32_t>> prompts = {tokens(b.group_prompt)};
    double seconds[2];
    for (int fork = 1; fork >= 0; --fork) {
      t0 = Clock::now();
      generate::generate_groups(model, prompts, b.group, o, fork == 1);
      seconds[fork] = std::chrono::duration<double>(Clock::now() - t0).count();
    }
    const double sampled = static_cast<double>(b.group * b.decode_tokens);
    fmt::print(
        "rollout: {} samples of {} tokens after a {}-token prompt: forked prompt state {:.1f} tokens/s ({:.2f} s), "
        "a prefill per sample {:.1f} tokens/s ({:.2f} s): {:.2f}x\n",
        b.group, b.decode_tokens, b.group_prompt, sampled / seconds[1], seconds[1], sampled / seconds[0], seconds[0],
        seconds[0] / seconds[1]);
  }
  return 0;
}

}  // namespace

void add_generate_commands(CLI::App& app, Action& action) {
  auto g = std::make_shared<GenerateOptions>();
  auto* gen = app.add_subcommand("generate", "Generate text from a checkpoint, streamed as it comes");
  gen->add_option("--checkpoint", g->checkpoint, "checkpoint directory (e.g. runs/default/best)")->required();
  gen->add_option("--prompt,-p", g->prompt, "the text to continue");
  gen->add_option("--state-in", g->state_in, "continue from a state file saved by --state-out");
  gen->add_option("--state-out", g->state_out, "save the sequence's full model state to this file");
  gen->add_option("--weights", g->weights, "weights for generation: f32, bf16 or int8 (per-row scales)")
      ->capture_default_str();
  add_sampling_flags(gen, g->sampling);
  gen->callback([g, &action] { action = [g] { return run_generate(*g); }; });

  auto c = std::make_shared<ChatOptions>();
  auto* chat = app.add_subcommand("chat", "Talk to a checkpoint line by line; the model state is kept between turns");
  chat->add_option("--checkpoint", c->checkpoint, "checkpoint or Hugging Face model directory")->required();
  chat->add_option("--system", c->system, "a system message opening the conversation (with a chat template)");
  chat->add_flag("--no-template", c->no_template, "ignore the directory's chat template: plain lines in and out");
  chat->add_flag("--show-prompt", c->show_prompt, "print the text fed to the model each turn (JSON-quoted)");
  chat->add_option("--weights", c->weights, "weights for generation: f32, bf16 or int8 (per-row scales)")
      ->capture_default_str();
  add_sampling_flags(chat, c->sampling);
  chat->callback([c, &action] { action = [c] { return run_chat(*c); }; });

  auto b = std::make_shared<BenchOptions>();
  auto* bench = app.add_subcommand("bench", "Benchmarks run from the CLI");
  auto* bg = bench->add_subcommand("generate", "Prefill and decode speed against context length");
  auto* preset = bg->add_option("--preset", b->preset, "a preset (random weights)")->capture_default_str();
  auto* checkpoint = bg->add_option("--checkpoint", b->checkpoint, "or a checkpoint")->excludes(preset);
  bg->add_option("--config", b->config, "or a model config YAML (random weights)")
      ->excludes(preset)
      ->excludes(checkpoint);
  bg->add_option("--weights", b->weights, "weights: f32, bf16 or int8")->capture_default_str();
  bg->add_option("--contexts", b->contexts, "decode contexts")->delimiter(',');
  bg->add_option("--prefill", b->prefill, "prompt length of the prefill comparison")->capture_default_str();
  bg->add_option("--decode-tokens", b->decode_tokens, "tokens timed per context")->capture_default_str();
  bg->add_option("--group", b->group, "samples per prompt of the rollout comparison (0 = skip it)")
      ->capture_default_str();
  bg->add_option("--group-prompt", b->group_prompt, "prompt length of the rollout comparison")->capture_default_str();
  add_bench_train_command(*bench, action);
  bench->require_subcommand(1);
  bg->callback([b, &action] { action = [b] { return run_bench_generate(*b); }; });
}

}  // namespace lnx::cli
