// linearnexus._core's models, generation and training: Model (an LMModel and its tokenizer),
// State (a forward's state, to continue from), SamplingOptions, Session (fork, save, load),
// TokenStream (a Python iterator over generated tokens), train(), grpo() and ppo(). Every long
// call releases the GIL; callbacks into Python take it back.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <yaml-cpp/yaml.h>

#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "arrays.h"
#include "bindings.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "generate/generate.h"
#include "generate/session.h"
#include "generate/token_stream.h"
#include "models/checkpoint.h"
#include "models/config.h"
#include "models/lm_model.h"
#include "models/presets.h"
#include "posttrain/grpo.h"
#include "posttrain/ppo.h"
#include "tensor/autograd.h"
#include "train/trainer.h"

namespace lnx::python {

namespace {

// A model, and when it came from a directory with one, its tokenizer (with the fingerprint
// saved states record) and the ids that end a generation (its chat format's eos). Sessions,
// states and streams made from it share it, which keeps it alive.
struct Model {
  std::shared_ptr<models::LMModel> model;
  std::shared_ptr<const data::Tokenizer> tokenizer;
  std::string tokenizer_fingerprint;  // "" without a tokenizer file
  std::vector<int32_t> stop_ids;      // as `linearnexus generate` stops

  const data::Tokenizer& need_tokenizer(const char* op) const {
    LNX_CHECK(tokenizer, ValueError, "[{}] this model has no tokenizer: pass token ids", op);
    return *tokenizer;
  }
  // The tokenizer files of dir (a checkpoint or a Hugging Face directory), if it has them.
  void read_tokenizer(const std::filesystem::path& dir) {
    const auto path = dir / "tokenizer.json";
    if (!std::filesystem::exists(path)) return;
    if (!tokenizer) tokenizer = data::load_tokenizer(path.string());
    tokenizer_fingerprint = generate::tokenizer_fingerprint(path.string());
    stop_ids = data::load_chat_format(dir.string(), tokenizer.get()).stop_ids;
  }
};

// The state after a forward: recurrent states, convolution and KV caches of every layer.
struct State {
  std::shared_ptr<models::LMModel> model;
  core::ModelState state;
};

std::shared_ptr<Model> load(const std::filesystem::path& dir) {
  auto m = std::make_shared<Model>();
  m->model = models::load_model(dir.string());
  m->read_tokenizer(dir);
  return m;
}

// ids [B, T] of int32 or int64.
Tensor ids_tensor(nb::handle array, const char* what, const char* op) {
  Tensor ids = tensor_from_array(array_argument(array, what, op), what, op);
  LNX_CHECK(ids.dtype() == DType::i32 || ids.dtype() == DType::i64, DTypeError,
            "[{}] {} is {}: expected int32 or int64", op, what, numpy_dtype_name(ids.dtype()));
  LNX_CHECK(ids.dim() == 2, ShapeError, "[{}] {} is {}: expected [B, T]", op, what, shape_str(ids.shape()));
  return ids;
}

generate::SamplingOptions with_tokenizer(generate::SamplingOptions options, const Model& m) {
  if (!options.stop_strings.empty()) options.tokenizer = &m.need_tokenizer("generate: stop_strings");
  generate::check_options(options);
  return options;
}

// A session with the model it runs (kept alive) and a lock: its methods run without the GIL,
// so two Python threads could otherwise call into one session at once.
struct SessionBox {
  std::shared_ptr<Model> owner;
  generate::Session session;
  std::mutex mutex;

  // f(session) without the GIL, under the lock (taken after the GIL is released, so a thread
  // waiting for it never holds the GIL). What f returns must not need the GIL to be made.
  template <class F> auto locked(const F& f) {
    nb::gil_scoped_release release;
    std::lock_guard lock(mutex);
    return f(session);
  }
};

// Python's iterator protocol over a TokenStream (which holds its own Session); owner keeps
// the model and the tokenizer its stop strings read.
struct Stream {
  std::shared_ptr<Model> owner;
  std::optional<generate::TokenStream> stream;
  std::mutex mutex;
};

// A Python callback called from inside a C++ loop that runs without the GIL (the trainers'
// after-step hooks). A false result stops the loop; so does an exception, which is kept and
// raised by rethrow() once the loop has returned (and saved).
class LoopCallback {
 public:
  explicit LoopCallback(nb::object fn) : fn_(std::move(fn)) {}
  bool given() const { return !fn_.is_none(); }
  template <class MakeArgument> bool operator()(const MakeArgument& make_argument) {
    nb::gil_scoped_acquire gil;
    try {
      nb::object result = fn_(make_argument());
      if (result.is_none()) return true;
      const int truth = PyObject_IsTrue(result.ptr());
      if (truth < 0) throw nb::python_error();
      return truth == 1;
    } catch (...) {
      error_ = std::current_exception();
      return false;
    }
  }
  void rethrow() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  nb::object fn_;
  std::exception_ptr error_;
};

// train(): the result as a dict and the trained model. The callback runs after each step with
// the step's metrics as a dict (step, loss, lr_scale, grad_norm, tokens_per_s).
nb::tuple run_train(const std::string& config, const std::vector<std::string>& overrides, nb::object fn) {
  const train::TrainConfig c = train::load_train_config(config, overrides);
  train::TrainHooks hooks;
  LoopCallback callback(std::move(fn));
  if (callback.given())
    hooks.after_step = [&](const train::StepMetrics& s) {
      return callback([&] {
        nb::dict metrics;
        metrics["step"] = s.step;
        metrics["loss"] = s.loss;
        metrics["lr_scale"] = s.lr_scale;
        metrics["grad_norm"] = s.grad_norm;
        metrics["tokens_per_s"] = s.tokens_per_s;
        return metrics;
      });
    };
  train::TrainResult r;
  {
    nb::gil_scoped_release release;
    r = train::train(c, hooks);
  }
  callback.rethrow();
  nb::dict result;
  result["steps"] = r.steps;
  result["resumed_from"] = r.resumed_from;
  result["last_loss"] = r.last_loss;
  result["val_loss"] = r.val_loss;
  result["best_val_loss"] = r.best_val_loss;
  if (r.val_accuracy >= 0) result["val_accuracy"] = r.val_accuracy;
  result["seconds"] = r.seconds;
  result["tokens"] = r.tokens;
  result["out_dir"] = c.train.out_dir;
  if (!r.model) return nb::make_tuple(result, nb::none());
  auto m = std::make_shared<Model>();
  m->model = r.model;
  m->tokenizer = r.tokenizer;
  m->read_tokenizer(std::filesystem::path(c.train.out_dir) / "last");
  return nb::make_tuple(result, m);
}

// grpo() / ppo(): the result as a dict. The callback gets each step's metrics line (the
// record of out_dir/metrics.jsonl) as a dict.
template <class Config, class Result>
nb::dict run_posttrain(Config (*read)(const std::vector<std::string>&, const std::string&),
                       Result (*run)(const Config&, const posttrain::RunHooks&), const std::string& config,
                       const std::vector<std::string>& overrides, nb::object fn) {
  const Config c = read(overrides, config);
  posttrain::RunHooks hooks;
  LoopCallback callback(std::move(fn));
  if (callback.given())
    hooks.after_step = [&](int64_t, const nlohmann::json& line) {
      return callback([&] { return nb::module_::import_("json").attr("loads")(line.dump()); });
    };
  Result r;
  {
    nb::gil_scoped_release release;
    r = run(c, hooks);
  }
  callback.rethrow();
  nb::dict result;
  result["steps"] = r.steps;
  result["resumed_from"] = r.resumed_from;
  result["accuracy_before"] = r.accuracy_before;
  result["accuracy_after"] = r.accuracy_after;
  result["out_dir"] = c.out_dir;
  return result;
}

}  // namespace

void bind_models(nb::module_& m) {
  nb::class_<State>(m, "State", "A model's state after a forward (recurrent states, caches); pass it to continue")
      .def_prop_ro("num_sequences", [](const State& s) { return static_cast<int64_t>(s.state.seen.size()); });

  nb::class_<generate::SamplingOptions>(m, "SamplingOptions")
      .def(nb::init<>())
      .def_rw("max_new_tokens", &generate::SamplingOptions::max_new_tokens)
      .def_rw("temperature", &generate::SamplingOptions::temperature)
      .def_rw("top_k", &generate::SamplingOptions::top_k)
      .def_rw("top_p", &generate::SamplingOptions::top_p)
      .def_rw("repetition_penalty", &generate::SamplingOptions::repetition_penalty)
      .def_rw("seed", &generate::SamplingOptions::seed)
      .def_rw("stop_tokens", &generate::SamplingOptions::stop_tokens)
      .def_rw("stop_strings", &generate::SamplingOptions::stop_strings);

  nb::class_<Model>(m, "Model")
      .def_static("load", &load, nb::arg("path"), "A checkpoint or Hugging Face directory (and its tokenizer.json)")
      .def_static(
          "from_preset",
          [](const std::string& name, uint64_t seed) {
            auto p = std::make_shared<Model>();
            p->model = std::make_shared<models::LMModel>(models::preset_config(name), seed);
            return p;
          },
          nb::arg("name"), nb::arg("seed") = 0, "A freshly initialised model of a preset")
      .def_static(
          "from_config",
          [](const std::filesystem::path& path, uint64_t seed) {
            auto p = std::make_shared<Model>();
            p->model = std::make_shared<models::LMModel>(models::load_model_config(path.string()), seed);
            return p;
          },
          nb::arg("path"), nb::arg("seed") = 0, "A freshly initialised model of a YAML model config")
      .def(
          "forward",
          [](const Model& self, nb::handle ids, const State* state, const std::string& mode) {
            const Tensor t = ids_tensor(ids, "ids", "Model.forward");
            LNX_CHECK(
                !state || state->model == self.model, ValueError,
                "[Model.forward] the state comes from another model: continue a state with the model that made it");
            models::ForwardOptions options;
            options.mode = core::parse_mode(mode);
            models::ModelOutput out;
            {
              nb::gil_scoped_release release;
              NoGradGuard no_grad;
              out = self.model->forward(t, state ? &state->state : nullptr, options);
            }
            return nb::make_tuple(array_from_tensor(out.logits), State{self.model, std::move(out.state)});
          },
          nb::arg("ids"), nb::arg("state").none() = nb::none(), nb::arg("mode") = "auto",
          "(logits [B, T, V], State) of ids [B, T], continuing state if given")
      .def(
          "loss",
          [](const Model& self, nb::handle ids, nb::handle targets) {
            const Tensor i = ids_tensor(ids, "ids", "Model.loss"), t = ids_tensor(targets, "targets", "Model.loss");
            nb::gil_scoped_release release;
            NoGradGuard no_grad;
            return self.model->loss(i, t).item();
          },
          nb::arg("ids"), nb::arg("targets"), "Mean next-token cross entropy (targets -100 are ignored)")
      .def(
          "parameters",
          [](const Model& self) {
            nb::dict out;
            for (const auto& [name, p] : self.model->parameters()) out[name.c_str()] = array_from_tensor(p);
            return out;
          },
          "Every parameter by name, as arrays sharing the model's memory")
      .def(
          "save",
          [](const Model& self, const std::filesystem::path& dir) {
            nb::gil_scoped_release release;
            models::save_model(*self.model, dir.string());
            if (self.tokenizer) self.tokenizer->save((dir / "tokenizer.json").string());
          },
          nb::arg("dir"), "Writes a checkpoint directory (and the tokenizer), atomically")
      .def_prop_ro("num_parameters", [](const Model& self) { return self.model->num_parameters(); })
      .def_prop_ro("vocab_size", [](const Model& self) { return self.model->config().vocab_size; })
      .def_prop_ro("config",
                   [](const Model& self) {
                     YAML::Emitter out;
                     out << models::model_config_to_yaml(self.model->config());
                     return std::string(out.c_str());
                   })
      .def_prop_ro("has_tokenizer", [](const Model& self) { return self.tokenizer != nullptr; })
      .def(
          "encode",
          [](const Model& self, const std::string& text, bool special_tokens) {
            const data::Tokenizer& tok = self.need_tokenizer("encode");
            return special_tokens ? tok.encode_with_special_tokens(text) : tok.encode(text);
          },
          nb::arg("text"), nb::arg("special_tokens") = false,
          "Token ids of text; special_tokens: with the ids the tokenizer puts around a fresh sequence (a BOS)")
      .def_prop_ro(
          "stop_tokens", [](const Model& self) { return self.stop_ids; },
          "The ids generation stops at by default (the chat format's eos), as `linearnexus generate`")
      .def(
          "decode",
          [](const Model& self, const std::vector<int32_t>& ids) { return self.need_tokenizer("decode").decode(ids); },
          nb::arg("ids"))
      .def(
          "generate",
          [](const Model& self, const std::vector<int32_t>& prompt, const generate::SamplingOptions& options) {
            const auto o = with_tokenizer(options, self);
            nb::gil_scoped_release release;
            return generate::generate(*self.model, prompt, o);
          },
          nb::arg("prompt"), nb::arg("options"), "The new tokens after prompt")
      .def(
          "generate_batch",
          [](const Model& self, const std::vector<std::vector<int32_t>>& prompts,
             const generate::SamplingOptions& options) {
            const auto o = with_tokenizer(options, self);
            nb::gil_scoped_release release;
            return generate::generate_batch(*self.model, prompts, o);
          },
          nb::arg("prompts"), nb::arg("options"),
          "The new tokens after each prompt, decoded together (prompt i samples with seed + i)")
      .def(
          "stream",
          [](std::shared_ptr<Model> self, const std::vector<int32_t>& prompt,
             const generate::SamplingOptions& options) {
            auto s = std::make_unique<Stream>();
            s->owner = self;
            const auto o = with_tokenizer(options, *self);
            nb::gil_scoped_release release;
            s->stream.emplace(*self->model, prompt, o);
            return s;
          },
          nb::arg("prompt"), nb::arg("options"), "An iterator over the new tokens, computed as they are pulled");

  nb::class_<Stream>(m, "TokenStream")
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", [](Stream& self) {
        std::optional<int32_t> t;
        {
          nb::gil_scoped_release release;
          std::lock_guard lock(self.mutex);
          t = self.stream->next();
        }
        if (!t) throw nb::stop_iteration();
        return *t;
      });

  // Session methods run without the GIL, one at a time per session (SessionBox::locked).
  nb::class_<SessionBox>(m, "Session")
      .def(
          "__init__",
          [](SessionBox* self, std::shared_ptr<Model> model, int64_t num_sequences) {
            new (self) SessionBox{model, generate::Session(*model->model, num_sequences), {}};
          },
          nb::arg("model"), nb::arg("num_sequences") = 1)
      .def_prop_ro("num_sequences", [](const SessionBox& b) { return b.session.num_sequences(); })
      .def(
          "tokens", [](const SessionBox& b, int64_t seq) { return b.session.tokens(seq); }, nb::arg("seq") = 0,
          "Prompt and generated tokens so far")
      .def(
          "logits", [](const SessionBox& b, int64_t seq) { return array_from_tensor(b.session.logits(seq)); },
          nb::arg("seq") = 0, "[V] after the sequence's last token")
      .def(
          "prefill",
          [](SessionBox& b, const std::vector<int32_t>& tokens) {
            return array_from_tensor(b.locked([&](generate::Session& s) { return s.prefill(tokens); }));
          },
          nb::arg("tokens"))
      .def(
          "step",
          [](SessionBox& b, int32_t token) {
            return array_from_tensor(b.locked([&](generate::Session& s) { return s.step(token); }));
          },
          nb::arg("token"))
      .def(
          "generate",
          [](SessionBox& b, const generate::SamplingOptions& options) {
            const auto o = with_tokenizer(options, *b.owner);
            return b.locked([&](generate::Session& s) { return s.generate(o); });
          },
          nb::arg("options"))
      .def(
          "prefill_batch",
          [](SessionBox& b, const std::vector<std::vector<int32_t>>& tokens) {
            return array_from_tensor(b.locked([&](generate::Session& s) { return s.prefill_batch(tokens); }));
          },
          nb::arg("tokens"), "tokens[n] for sequence n (one padded forward); logits [N, V]")
      .def(
          "generate_batch",
          [](SessionBox& b, const generate::SamplingOptions& options) {
            const auto o = with_tokenizer(options, *b.owner);
            return b.locked([&](generate::Session& s) { return s.generate_batch(o); });
          },
          nb::arg("options"), "Every sequence decoded together; the new tokens of each")
      .def(
          "fork",
          [](SessionBox& b) {
            return std::unique_ptr<SessionBox>(
                new SessionBox{b.owner, b.locked([](generate::Session& s) { return s.fork(); }), {}});
          },
          "An independent copy of the session")
      .def(
          "save",
          [](SessionBox& b, const std::filesystem::path& path) {
            b.locked([&](generate::Session& s) { s.save(path.string(), b.owner->tokenizer_fingerprint); });
          },
          nb::arg("path"), "Writes the whole state (atomically) to a safetensors file")
      .def_static(
          "load",
          [](std::shared_ptr<Model> model, const std::filesystem::path& path) {
            generate::Session s = generate::Session::load(*model->model, path.string(), model->tokenizer_fingerprint);
            return std::unique_ptr<SessionBox>(new SessionBox{model, std::move(s), {}});
          },
          nb::arg("model"), nb::arg("path"),
          "A session of model from a state file (refused if another model wrote it)");

  m.def(
      "grpo",
      [](const std::string& config, const std::vector<std::string>& overrides, nb::object callback) {
        return run_posttrain(&posttrain::grpo_config, &posttrain::grpo, config, overrides, std::move(callback));
      },
      nb::arg("config") = "", nb::arg("overrides") = std::vector<std::string>(), nb::arg("callback") = nb::none(),
      "GRPO on a verifiable task or a reward program (as `linearnexus grpo`); the result as a dict");
  m.def(
      "ppo",
      [](const std::string& config, const std::vector<std::string>& overrides, nb::object callback) {
        return run_posttrain(&posttrain::ppo_config, &posttrain::ppo, config, overrides, std::move(callback));
      },
      nb::arg("config") = "", nb::arg("overrides") = std::vector<std::string>(), nb::arg("callback") = nb::none(),
      "PPO with a value head (as `linearnexus ppo`); the result as a dict");
  m.def("train", &run_train, nb::arg("config") = "", nb::arg("overrides") = std::vector<std::string>(),
        nb::arg("callback") = nb::none(), "(result dict, trained Model) of a training run");
}

}  // namespace lnx::python
