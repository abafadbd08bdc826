"""Models, generation, sessions and training from Python, over the C++ library.

    model = linearnexus.Model.load("runs/default/last")       # or Model.from_preset("hybrid-tiny")
    logits, state = model(ids)                                # ids [B, T] int32/int64 -> [B, T, V]
    logits, state = model(next_ids, state=state)              # continues every sequence
    text = model.generate("The ", max_new_tokens=100, temperature=0.8, seed=1)
    for piece in model.generate("The ", max_new_tokens=100, stream=True):
        print(piece, end="", flush=True)
    session = model.session(); session.prefill("The "); other = session.fork()
    result = linearnexus.train("configs/hybrid-tiny.yaml", {"train.steps": 20},
                               callback=lambda m: print(m["step"], m["loss"]))

Prompts are text (the model's tokenizer encodes them and the results are text) or lists of
token ids (the results are ids).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from . import _core

State = _core.State


def _sampling(
    model,
    max_new_tokens=128,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    repetition_penalty=1.0,
    seed=0,
    stop_tokens=None,
    stop_strings=(),
):
    o = _core.SamplingOptions()
    o.max_new_tokens = max_new_tokens
    o.temperature = temperature
    o.top_k = top_k
    o.top_p = top_p
    o.repetition_penalty = repetition_penalty
    o.seed = seed
    o.stop_tokens = list(model._core.stop_tokens if stop_tokens is None else stop_tokens)
    o.stop_strings = list(stop_strings)
    return o


def _text_pieces(model: "Model", tokens: Iterator[int]) -> Iterator[str]:
    """Decoded text as tokens arrive; a token that ends inside a multi-byte character waits
    for the next one (the decoded prefix only ever grows)."""
    ids: list[int] = []
    shown = ""
    for t in tokens:
        ids.append(t)
        text = model.decode(ids)
        if text.endswith("\ufffd"):
            continue
        yield text[len(shown) :]
        shown = text
    text = model.decode(ids) if ids else ""
    if len(text) > len(shown):
        yield text[len(shown) :]


def _is_batch(prompt) -> bool:
    """A list of prompts (texts or id lists), not one prompt of ids."""
    return not isinstance(prompt, str) and len(prompt) > 0 and not isinstance(prompt[0], (int, np.integer))


class Model:
    """A language model (hybrid of any registered mixers) and its tokenizer, if it has one."""

    def __init__(self, core: _core.Model):
        self._core = core

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Model":
        """A checkpoint directory (``linearnexus train``) or a Hugging Face model directory."""
        return cls(_core.Model.load(path))

    @classmethod
    def from_preset(cls, name: str, seed: int = 0) -> "Model":
        """A freshly initialised model of a preset (``linearnexus list presets``)."""
        return cls(_core.Model.from_preset(name, seed))

    @classmethod
    def from_config(cls, path: str | os.PathLike, seed: int = 0) -> "Model":
        """A freshly initialised model of a YAML model config."""
        return cls(_core.Model.from_config(path, seed))

    def __call__(self, ids, state: State | None = None, mode: str = "auto"):
        """(logits [B, T, V], state) of ids [B, T]; pass state to continue the sequences."""
        return self._core.forward(ids, state, mode)

    def loss(self, ids, targets) -> float:
        """Mean next-token cross entropy; targets of -100 are ignored."""
        return self._core.loss(ids, targets)

    def parameters(self) -> dict:
        """Every parameter by name, as NumPy arrays sharing the model's memory."""
        return self._core.parameters()

    def save(self, path: str | os.PathLike) -> None:
        """Writes a checkpoint directory (and the tokenizer), atomically."""
        self._core.save(path)

    num_parameters = property(lambda self: self._core.num_parameters)
    vocab_size = property(lambda self: self._core.vocab_size)
    config = property(lambda self: self._core.config, doc="The model config as YAML")
    has_tokenizer = property(lambda self: self._core.has_tokenizer)

    def encode(self, text: str, special_tokens: bool = False) -> list[int]:
        """Token ids of text; special_tokens=True adds what the tokenizer puts around a fresh
        sequence (Llama-3's <|begin_of_text|>, for one), as a text prompt gets."""
        return self._core.encode(text, special_tokens)

    @property
    def stop_tokens(self) -> list[int]:
        """The ids generation stops at unless stop_tokens is given (the chat format's eos)."""
        return self._core.stop_tokens

    def decode(self, ids: Sequence[int]) -> str:
        return self._core.decode(list(ids))

    def _ids(self, prompt, fresh: bool = True) -> list[int]:
        if isinstance(prompt, str):
            return self.encode(prompt, special_tokens=fresh)
        return [int(t) for t in prompt]

    def generate(self, prompt, *, stream: bool = False, **sampling):
        """The continuation of prompt: text for a text prompt, token ids for ids; for a list
        of prompts (texts, or lists of ids) a list of continuations, decoded together in one
        batch (prompt i samples with seed + i, as `linearnexus generate` does). Sampling:
        max_new_tokens=128, temperature=1.0 (0 = greedy), top_k=0, top_p=1.0,
        repetition_penalty=1.0, seed=0, stop_tokens=None (the model's stop_tokens),
        stop_strings=(). A text prompt starts with the tokenizer's special tokens (a BOS), as
        `linearnexus generate` does. With stream=True, an iterator that computes each token as
        it is pulled (text pieces or ids)."""
        options = _sampling(self, **sampling)
        if _is_batch(prompt):
            if stream:
                raise ValueError("[generate] stream=True takes one prompt, not a list of them")
            outs = self._core.generate_batch([self._ids(p) for p in prompt], options)
            return [self.decode(o) if isinstance(p, str) else o for p, o in zip(prompt, outs)]
        ids = self._ids(prompt)
        if stream:
            tokens = self._core.stream(ids, options)
            return _text_pieces(self, tokens) if isinstance(prompt, str) else tokens
        out = self._core.generate(ids, options)
        return self.decode(out) if isinstance(prompt, str) else out

    def session(self, num_sequences: int = 1) -> "Session":
        """A fresh session of num_sequences sequences (see Session)."""
        return Session(self, num_sequences)


class Session:
    """The full state of one or more sequences of one model: prefill, step, generate, then
    fork (an independent copy), save and load (one safetensors file, refused by another model).
    Generation continues from where the last call left off, sampling included."""

    def __init__(self, model: Model, num_sequences: int = 1, *, _core_session=None):
        self.model = model
        self._core = _core_session if _core_session is not None else _core.Session(model._core, num_sequences)

    num_sequences = property(lambda self: self._core.num_sequences)

    def tokens(self, seq: int = 0) -> list[int]:
        """The sequence's tokens so far, prompt and generated."""
        return self._core.tokens(seq)

    def logits(self, seq: int = 0):
        """[V] after the sequence's last token."""
        return self._core.logits(seq)

    def prefill(self, prompt):
        """Feeds the prompt (one chunked forward); returns the logits after its last token. Text
        that starts a sequence gets the tokenizer's special tokens in front (a BOS). A session
        of several sequences takes a list of prompts, one per sequence (an empty one leaves
        its sequence as it is), fed in one padded forward; logits [N, V]."""
        if self.num_sequences > 1 or _is_batch(prompt):
            ids = [self.model._ids(p, fresh=not self._core.tokens(n)) for n, p in enumerate(prompt)]
            return self._core.prefill_batch(ids)
        return self._core.prefill(self.model._ids(prompt, fresh=not self._core.tokens(0)))

    def step(self, token: int):
        """Feeds one token (one recurrent step); returns the logits after it."""
        return self._core.step(int(token))

    def generate(self, *, text: bool | None = None, **sampling):
        """Samples and feeds up to max_new_tokens tokens (the options of Model.generate); the
        new tokens, as text when text=True (default: when the model has a tokenizer). A session
        of several sequences decodes them together and returns one result per sequence."""
        options = _sampling(self.model, **sampling)
        as_text = self.model.has_tokenizer if text is None else text
        if self.num_sequences > 1:
            outs = self._core.generate_batch(options)
            return [self.model.decode(o) for o in outs] if as_text else outs
        out = self._core.generate(options)
        return self.model.decode(out) if as_text else out

    def fork(self) -> "Session":
        return Session(self.model, _core_session=self._core.fork())

    def save(self, path: str | os.PathLike) -> None:
        self._core.save(path)

    @classmethod
    def load(cls, model: Model, path: str | os.PathLike) -> "Session":
        return cls(model, _core_session=_core.Session.load(model._core, path))


@dataclasses.dataclass
class TrainResult:
    steps: int
    resumed_from: int
    last_loss: float
    val_loss: float
    best_val_loss: float
    seconds: float
    tokens: int
    out_dir: str
    model: Model | None
    val_accuracy: float | None = None


def _flatten(prefix: str, value) -> list[str]:
    if isinstance(value, Mapping):
        return [a for k, v in value.items() for a in _flatten(f"{prefix}{k}.", v)]
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        value = "[" + ", ".join(str(v) for v in value) + "]"
    return [f"{prefix[:-1]}={value}"]


def train(
    config: str | os.PathLike | None = None,
    overrides: Mapping | Sequence[str] = (),
    *,
    callback: Callable[[dict], bool | None] | None = None,
) -> TrainResult:
    """Trains as ``linearnexus train`` does: config is a YAML training config (None: the
    defaults), overrides a dict ({"train.steps": 20} or {"train": {"steps": 20}}) or a list
    of "section.key=value" strings. callback(metrics) runs after every step with step, loss,
    lr_scale, grad_norm and tokens_per_s; returning False stops the run (after saving), and an
    exception in it stops the run and is raised. SFT is data.source=sft (data.path: a JSONL file
    of prompt/completion or chat examples); GRPO and PPO are grpo() and ppo()."""
    if isinstance(overrides, Mapping):
        overrides = _flatten("", overrides)
    result, model = _core.train("" if config is None else os.fspath(config), list(overrides), callback)
    return TrainResult(model=Model(model) if model is not None else None, **result)


def sft(
    data: str | os.PathLike,
    overrides: Mapping | Sequence[str] = (),
    *,
    config: str | os.PathLike | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> TrainResult:
    """Supervised fine-tuning, as ``linearnexus train --sft DATA``: data is a JSON Lines file
    of {"prompt", "completion"} or chat {"messages"} examples, packed into batches with the
    loss on completions only. Start from a model with {"train.init_from": DIR} (or train a
    preset from scratch); the other arguments are train()'s."""
    if isinstance(overrides, Mapping):
        overrides = _flatten("", overrides)
    return train(config, ["data.source=sft", f"data.path={os.fspath(data)}", *overrides], callback=callback)


@dataclasses.dataclass
class PosttrainResult:
    steps: int
    resumed_from: int
    accuracy_before: float  # greedy, held-out prompts
    accuracy_after: float
    out_dir: str

    @property
    def model(self) -> Model:
        """The trained policy (out_dir/last)."""
        return Model.load(os.path.join(self.out_dir, "last"))


def _posttrain(run, config, overrides, callback) -> PosttrainResult:
    if isinstance(overrides, Mapping):
        overrides = _flatten("", overrides)
    return PosttrainResult(**run("" if config is None else os.fspath(config), list(overrides), callback))


def grpo(
    config: str | os.PathLike | None = None,
    overrides: Mapping | Sequence[str] = (),
    *,
    callback: Callable[[dict], bool | None] | None = None,
) -> PosttrainResult:
    """GRPO as ``linearnexus grpo`` runs it: config a YAML file, overrides {"init_from": DIR,
    "task": "arithmetic", "steps": 50, ...} or "key=value" strings (``linearnexus grpo --help``
    lists the keys). callback(metrics) gets each step's metrics.jsonl record (loss,
    reward_mean, accuracy, kl, ...); returning False stops the run after saving."""
    return _posttrain(_core.grpo, config, overrides, callback)


def ppo(
    config: str | os.PathLike | None = None,
    overrides: Mapping | Sequence[str] = (),
    *,
    callback: Callable[[dict], bool | None] | None = None,
) -> PosttrainResult:
    """PPO (a value head, GAE, adaptive KL) as ``linearnexus ppo`` runs it; the arguments of
    grpo()."""
    return _posttrain(_core.ppo, config, overrides, callback)
