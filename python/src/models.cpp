// linearnexus._core's models, generation and training: Model (an LMModel and its tokenizer),
// State (a forward's state, to continue from), SamplingOptions, Session (fork, save, load),
// TokenStream (a Python iterator over generated tokens) and train(). Every long call releases
// the GIL; callbacks into Python take it back.
#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <memory>
#include <optional>

#include "arrays.h"
#include "bindings.h"
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

// A model and, when its directory has one, its tokenizer; shared by the sessions, states and
// streams made from it, which keep it alive.
struct Model {
  std::shared_ptr<models::LMModel> model;
  std::shared_ptr<const data::Tokenizer> tokenizer;

  const data::Tokenizer& need_tokenizer(const char* op) const {
    LNX_CHECK(tokenizer, ValueError, "[{}] this model has no tokenizer: pass token ids", op);
    return *tokenizer;
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
  const auto tok = dir / "tokenizer.json";
  if (std::filesystem::exists(tok)) m->tokenizer = data::load_tokenizer(tok.string());
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

// Python's iterator protocol over a TokenStream (which holds its own Session).
struct Stream {
  std::shared_ptr<models::LMModel> model;
  std::optional<generate::TokenStream> stream;
};

// train(): the result as a dict and the trained model. The callback runs after each step with
// the step's metrics as a dict (step, loss, lr_scale, grad_norm, tokens_per_s); returning
// False stops the run (after saving). An exception in it stops the run
// too and is raised again once the trainer has returned.
nb::tuple run_train(const std::string& config, const std::vector<std::string>& overrides, nb::object callback) {
  const train::TrainConfig c = train::load_train_config(config, overrides);
  train::TrainHooks hooks;
  std::optional<nb::python_error> raised;
  if (!callback.is_none())
    hooks.after_step = [&](const train::StepMetrics& s) {
      nb::gil_scoped_acquire gil;
      try {
        nb::dict metrics;
        metrics["step"] = s.step;
        metrics["loss"] = s.loss;
        metrics["lr_scale"] = s.lr_scale;
        metrics["grad_norm"] = s.grad_norm;
        metrics["tokens_per_s"] = s.tokens_per_s;
        nb::object keep_going = callback(metrics);
        return keep_going.is_none() || nb::cast<bool>(keep_going);
      } catch (nb::python_error& e) {
        raised.emplace(std::move(e));
        return false;
      }
    };
  train::TrainResult r;
  {
    nb::gil_scoped_release release;
    r = train::train(c, hooks);
  }
  if (raised) throw std::move(*raised);
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
  auto m = std::make_shared<Model>();
  m->model = r.model;
  m->tokenizer = r.tokenizer;
  return nb::make_tuple(result, r.model ? nb::cast(m) : nb::none());
}

// grpo() / ppo(): the result as a dict. The callback gets each step's metrics line (the
// record of out_dir/metrics.jsonl) as a dict, with the same stopping and raising as train().
template <class Config, class Result>
nb::dict run_posttrain(Config (*read)(const std::vector<std::string>&, const std::string&),
                       Result (*run)(const Config&, const posttrain::RunHooks&), const std::string& config,
                       const std::vector<std::string>& overrides, nb::object callback) {
  const Config c = read(overrides, config);
  posttrain::RunHooks hooks;
  std::optional<nb::python_error> raised;
  if (!callback.is_none())
    hooks.after_step = [&](int64_t, const nlohmann::json& line) {
      nb::gil_scoped_acquire gil;
      try {
        nb::object metrics = nb::module_::import_("json").attr("loads")(line.dump());
        nb::object keep_going = callback(metrics);
        return keep_going.is_none() || nb::cast<bool>(keep_going);
      } catch (nb::python_error& e) {
        raised.emplace(std::move(e));
        return false;
      }
    };
  Result r;
  {
    nb::gil_scoped_release release;
    r = run(c, hooks);
  }
  if (raised) throw std::move(*raised);
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
          [](const Model& self, const std::string& text) { return self.need_tokenizer("encode").encode(text); },
          nb::arg("text"))
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
          "stream",
          [](const Model& self, const std::vector<int32_t>& prompt, const generate::SamplingOptions& options) {
            auto s = std::make_unique<Stream>();
            s->model = self.model;
            const auto o = with_tokenizer(options, self);
            nb::gil_scoped_release release;
            s->stream.emplace(*self.model, prompt, o);
            return s;
          },
          nb::arg("prompt"), nb::arg("options"), "An iterator over the new tokens, computed as they are pulled");

  nb::class_<Stream>(m, "TokenStream")
      .def("__iter__", [](nb::handle self) { return self; })
      .def("__next__", [](Stream& self) {
        std::optional<int32_t> t;
        {
          nb::gil_scoped_release release;
          t = self.stream->next();
        }
        if (!t) throw nb::stop_iteration();
        return *t;
      });

  nb::class_<generate::Session>(m, "Session")
      .def(
          "__init__",
          [](generate::Session* self, std::shared_ptr<Model> model, int64_t num_sequences) {
            new (self) generate::Session(*model->model, num_sequences);
          },
          nb::arg("model"), nb::arg("num_sequences") = 1, nb::keep_alive<1, 2>())
      .def_prop_ro("num_sequences", &generate::Session::num_sequences)
      .def("tokens", &generate::Session::tokens, nb::arg("seq") = 0, "Prompt and generated tokens so far")
      .def(
          "logits", [](const generate::Session& s, int64_t seq) { return array_from_tensor(s.logits(seq)); },
          nb::arg("seq") = 0, "[V] after the sequence's last token")
      .def(
          "prefill",
          [](generate::Session& s, const std::vector<int32_t>& tokens) {
            Tensor logits;
            {
              nb::gil_scoped_release release;
              logits = s.prefill(tokens);
            }
            return array_from_tensor(logits);
          },
          nb::arg("tokens"))
      .def(
          "step",
          [](generate::Session& s, int32_t token) {
            Tensor logits;
            {
              nb::gil_scoped_release release;
              logits = s.step(token);
            }
            return array_from_tensor(logits);
          },
          nb::arg("token"))
      .def(
          "generate",
          [](generate::Session& s, const generate::SamplingOptions& options) {
            generate::check_options(options);
            nb::gil_scoped_release release;
            return s.generate(options);
          },
          nb::arg("options"))
      .def("fork", &generate::Session::fork, nb::keep_alive<0, 1>(), "An independent copy of the session")
      .def(
          "save",
          [](const generate::Session& s, const std::filesystem::path& path) {
            nb::gil_scoped_release release;
            s.save(path.string());
          },
          nb::arg("path"), "Writes the whole state (atomically) to a safetensors file")
      .def_static(
          "load",
          [](std::shared_ptr<Model> model, const std::filesystem::path& path) {
            return generate::Session::load(*model->model, path.string());
          },
          nb::arg("model"), nb::arg("path"), nb::keep_alive<0, 1>(),
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
