#!/usr/bin/env python3
"""Builds the tokenizer and chat-template fixtures of tests/fixtures/tokenizers/ with Hugging
Face's `tokenizers` and with jinja2 configured as transformers configures it.

Not run by CI (CI needs no Python): run it by hand when a tokenizer kind or a template feature
is added, and commit what it writes. Without tokenizers and jinja2 it installs them from PyPI
into the virtual environment .venv-hf (the one make_hf_fixtures.py uses) and runs there:

    python3 scripts/make_tokenizer_fixtures.py

Tokenizers (tests/fixtures/tokenizers/<kind>/): for each kind a small byte-level BPE is trained
on a fixed multilingual corpus with the normalizer, pre-tokenizer, post-processor, decoder and
added tokens of the released models' tokenizer.json:

    neox    GPT-NeoX / Pythia / Mamba: NFC, ByteLevel pre-tokenizer (GPT-2's regex), runs of
            spaces as non-special "normalized" added tokens (also in the vocab as their text)
    llama3  Llama-3: Split(Llama-3 regex, Isolated) + ByteLevel(use_regex false),
            ignore_merges, a TemplateProcessing post-processor adding <|begin_of_text|>
    qwen2   Qwen2/2.5/3: NFC, Split(Qwen2 regex) + ByteLevel, ChatML specials, non-special
            added tokens (<tool_call>, <think>)
    options GPT-2's regex as a Split, added tokens with lstrip, rstrip, single_word and
            normalized (under an NFC normalizer)

and next to each tokenizer.json an expected.json: for every test string, the ids `tokenizers`
gives without and with special tokens, and its decode of them.

Chat templates (tests/fixtures/tokenizers/chat_templates/): the *.jinja templates (written for
these tests in the style of ChatML, Llama-3, Qwen2.5 and Qwen3 templates, plus one that uses
every supported construct) rendered for several conversations; expected.json holds each
rendering, or the error message for a conversation a template rejects.

nfc.json: strings and their NFC (Python's unicodedata, the Unicode version of the generated
tables of src/data/unicode_tables.cpp).

chat_model/: a ChatML tokenizer of exactly 307 ids (the vocabulary of tests/fixtures/hf/qwen2)
with tokenizer_config.json (template, eos token) and generation_config.json (eos ids), which
the CLI test puts next to that model's weights.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizers")
VENV = os.path.join(ROOT, ".venv-hf")  # shared with make_hf_fixtures.py (git-ignored)


def ensure_venv():
    try:
        import jinja2  # noqa: F401
        import tokenizers  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.executable) == os.path.realpath(python):
        sys.exit("the virtual environment lacks tokenizers or jinja2 even after installing them")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([python, "-m", "pip", "install", "--quiet", "tokenizers", "jinja2"])
    os.execv(python, [python] + sys.argv)


GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's a sunny day, isn't it?",
    "Don't worry: we'll be there by 10:30, they've said. I'm sure you'd like it.",
    "Numbers: 0 1 2 3 42 123 2024 3.14159 1,000,000 -17 +8 1e10 0x1F",
    "def square(x):\n    return x * x\n\nfor i in range(10):\n    print(i, square(i))\n",
    "    indented line\n        more indented\n\tand a tab\n\n\nthree newlines",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m se\u00f1or \u00fcber fa\u00e7ade",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002 \u4e2d\u6587\uff0c\u6807\u70b9\u3002 "
    "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u043a\u0438\u0440\u0438\u043b\u043b\u0438\u0446\u0430 "
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u0939\u093f\u0928\u094d\u0926\u0940",
    "Emoji: \U0001F600 \U0001F44D\U0001F3FD \U0001F1EF\U0001F1F5 \u2764\ufe0f",
    "Hello, world! Hello again, world. HELLO WORLD!!! hello...world???",
    "She said \"yes\" and (quietly) left; the end -- or is it?",
    "user: what is 2+2?\nassistant: 2+2 is 4.\nuser: thanks!\n",
    "JSON {\"name\": \"value\", \"list\": [1, 2, 3], \"ok\": true}",
    "   spaces   between   words   and    tabs\t\tand\r\nwindows newlines\r\n",
]

TEST_STRINGS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "don't won't I'm they'll we've you'd she's",
    "DON'T I'M THEY'LL WE'VE YOU'D SHE'S IT'S It'S it'Ll",
    "it'\u017f the long s, 's 's' ''s 'x",
    "1234567890 12 123 1234 3.14159 2024-05-01 1,000,000",
    "\u0663\u0664\u0665\u0666 \u216b \u00b2\u00bd",
    "  leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e",
    "tabs\tand\t\tmore\t",
    "\n",
    "\n\n\n",
    "line1\nline2\r\nline3\rline4",
    "  \n  \n",
    " \n\n  x",
    "x  \n\n  y",
    "end\n",
    "\t\n \t",
    "!!!", "...?!\n\n", "(hello)", "\"quoted\"", "a.b,c;d:e",
    "x = (a + b) * c; // comment\n",
    "def f(x):\n    return x ** 2\n\n\n",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00c5ngstr\u00f6m",
    "cafe\u0301 (decomposed) A\u030a \u212b",
    "\ud55c\uad6d\uc5b4 \u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "q\u0307\u0323 \u1e0b\u0323 a\u0328\u0301",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u4e2d\u6587\uff0c\u6807\u70b9\u3002 \u6df7\u5408English\u548c\u4e2d\u6587123",
    "\U0001F600\U0001F44D\U0001F3FD \U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EF\U0001F1F5",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u043a\u0438\u0440\u0438\u043b\u043b\u0438\u0446\u0430 "
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u0939\u093f\u0928\u094d\u0926\u0940",
    "\u00a0nbsp\u3000ideographic\u2028sep \u0085nel \u200bzwsp\u200b",
    "a \u00a0 b\u3000\u3000c",
    "<|endoftext|>",
    "a<|endoftext|>b <|endoftext|> <|endoftext|><|endoftext|>",
    "<|endoftext <|endoftext|",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
    "<tool_call>\n{\"name\": \"f\"}\n</tool_call> <think>\nhmm\n</think>\n\nok",
    "x <mask> y  <mask>z", "<R>  y <R>\nz", "aword b word, wordy (word) _word_ word",
    "xabc abc ab", "cafe\u0301 caf\u00e9 <n>",
    "Mixed: The caf\u00e9 serves \u65e5\u672c\u8336 for $3.50 (\u20ac3.20) \U0001F375 \u2014 open 9-17h!\n"
    "  Tel: +1-555-0100\tEmail: x@y.z\n",
]


def train(pre_tokenizer_obj, vocab_size, specials, normalizer=None):
    """A BPE trained on CORPUS with the given pre-tokenizer (an object of tokenizers)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer_obj
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 3, trainer)
    return json.loads(tok.to_str())


def added(id_, content, special=True, normalized=None, lstrip=False, rstrip=False, single_word=False):
    return {"id": id_, "content": content, "single_word": single_word, "lstrip": lstrip, "rstrip": rstrip,
            "normalized": (not special) if normalized is None else normalized, "special": special}


def byte_level(add_prefix_space=False, trim_offsets=True, use_regex=True):
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": trim_offsets,
            "use_regex": use_regex}


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def append_added(doc, contents):
    """Added tokens, special unless given, with the ids `tokenizers` gives them: the vocab id of
    their text, else the next id after the vocab (as Llama-3's and Qwen2's specials)."""
    vocab = doc["model"]["vocab"]
    next_id = len(vocab)
    for c in contents:
        entry = c if isinstance(c, dict) else added(0, c)
        if entry["content"] in vocab:
            entry["id"] = vocab[entry["content"]]
        else:
            entry["id"] = next_id
            next_id += 1
        doc["added_tokens"].append(entry)


def kind_neox():
    from tokenizers import normalizers, pre_tokenizers
    doc = train(pre_tokenizers.ByteLevel(add_prefix_space=False), 700, ["<|endoftext|>", "<|padding|>"],
                normalizers.NFC())
    doc["normalizer"] = {"type": "NFC"}
    doc["pre_tokenizer"] = byte_level(trim_offsets=True)
    del doc["pre_tokenizer"]["use_regex"]  # as GPT-NeoX's file: use_regex absent (true)
    doc["post_processor"] = byte_level(trim_offsets=True)
    doc["decoder"] = byte_level(trim_offsets=True)
    # Runs of spaces: non-special "normalized" added tokens, longest first, which the vocab also
    # holds under their own text (not byte-level spelled), so `tokenizers` keeps their ids.
    vocab = doc["model"]["vocab"]
    for n in range(8, 1, -1):
        vocab[" " * n] = len(vocab)
        doc["added_tokens"].append(added(vocab[" " * n], " " * n, special=False, normalized=True))
    return doc


def kind_llama3():
    from tokenizers import Regex, pre_tokenizers
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    doc = train(pre, 800, [])
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX),
                                                                   byte_level(use_regex=False)]}
    doc["model"]["ignore_merges"] = True
    append_added(doc, ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                       "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                       "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"])
    bos = next(t for t in doc["added_tokens"] if t["content"] == "<|begin_of_text|>")["id"]
    doc["post_processor"] = {"type": "Sequence", "processors": [
        byte_level(add_prefix_space=True, trim_offsets=False, use_regex=True),
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}},
                  {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos],
                                                  "tokens": ["<|begin_of_text|>"]}}}]}
    doc["decoder"] = byte_level(add_prefix_space=True, trim_offsets=True, use_regex=True)
    return doc


def qwen2_doc(vocab_size, specials_in_vocab, extra_added):
    from tokenizers import Regex, normalizers, pre_tokenizers
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    doc = train(pre, vocab_size, specials_in_vocab, normalizers.NFC())
    doc["normalizer"] = {"type": "NFC"}
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        split(QWEN2_REGEX), byte_level(trim_offsets=False, use_regex=False)]}
    doc["post_processor"] = byte_level(trim_offsets=False, use_regex=False)
    doc["decoder"] = byte_level(trim_offsets=False, use_regex=False)
    append_added(doc, extra_added)
    return doc


def kind_qwen2():
    return qwen2_doc(750, [], ["<|endoftext|>", "<|im_start|>", "<|im_end|>",
                               added(0, "<tool_call>", special=False, normalized=False),
                               added(0, "</tool_call>", special=False, normalized=False),
                               added(0, "<think>", special=False, normalized=False),
                               added(0, "</think>", special=False, normalized=False)])


def kind_options():
    from tokenizers import Regex, normalizers, pre_tokenizers
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(GPT2_REGEX), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    doc = train(pre, 600, ["<|endoftext|>"], normalizers.NFC())
    doc["normalizer"] = {"type": "NFC"}
    doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split(GPT2_REGEX), byte_level(use_regex=False)]}
    doc["post_processor"] = None
    doc["decoder"] = byte_level()
    append_added(doc, [added(0, "<mask>", special=True, lstrip=True),
                       added(0, "<R>", special=False, normalized=False, rstrip=True),
                       added(0, "word", special=False, normalized=False, single_word=True),
                       added(0, "ab", special=False, normalized=False, single_word=True),
                       added(0, "bc", special=False, normalized=False),
                       added(0, "caf\u00e9", special=False, normalized=True),
                       added(0, "<n>", special=False, normalized=True)])
    return doc


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


def make_tokenizer(name, doc):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_str(json.dumps(doc))
    out = os.path.join(OUT, name)
    # Written compactly: a vocab entry or merge per line keeps the files small and diffable.
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    again = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    cases = []
    for text in TEST_STRINGS:
        ids = tok.encode(text, add_special_tokens=False).ids
        assert again.encode(text, add_special_tokens=False).ids == ids
        cases.append({"text": text, "ids": ids, "ids_with_special_tokens": tok.encode(text).ids,
                      "decoded": tok.decode(ids, skip_special_tokens=False)})
    write_json(os.path.join(out, "expected.json"), {"tokenizers_version": __import__("tokenizers").__version__,
                                                    "vocab_size": tok.get_vocab_size(), "cases": cases})
    print(f"{name}: vocab {tok.get_vocab_size()}, {len(cases)} strings")


# ---- chat templates ----

def jinja_environment():
    """jinja2 as transformers' apply_chat_template sets it up (transformers'
    chat_template_utils._compile_jinja_template): trim_blocks, lstrip_blocks, loop controls,
    a tojson without HTML escaping, raise_exception and namespace."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                         "parameters": {"type": "object", "properties": {
                                             "city": {"type": "string", "description": "the city"}},
                                             "required": ["city"]}}}

CONVERSATIONS = {
    "one_user": [{"role": "user", "content": "Hello!"}],
    "system_user": [{"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "What is 2+2?"}],
    "multi_turn": [{"role": "user", "content": "Hi there"},
                   {"role": "assistant", "content": "Hello! How can I help?"},
                   {"role": "user", "content": "  Tell me a joke.  \n"},
                   {"role": "assistant", "content": "Why did the chicken cross the road?"},
                   {"role": "user", "content": "Why?"}],
    "unicode": [{"role": "system", "content": "R\u00e9ponds en fran\u00e7ais \U0001F600"},
                {"role": "user", "content": "\u65e5\u672c\u8a9e\u3067\u300c\u3053\u3093\u306b\u3061\u306f\u300d\n"
                                            "and \"quotes\" \\ backslash"}],
    "tool_calls": [{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": "",
                    "tool_calls": [{"type": "function", "function": {"name": "get_weather",
                                                                     "arguments": {"city": "Paris"}}}]},
                   {"role": "tool", "content": "{\"temp\": 21}"},
                   {"role": "tool", "content": "sunny"},
                   {"role": "assistant", "content": "21 degrees and sunny."}],
    "thinking": [{"role": "user", "content": "Think first."},
                 {"role": "assistant", "content": "<think>\nLet me see.\n</think>\n\nDone."},
                 {"role": "user", "content": "<tool_response>x</tool_response>"},
                 {"role": "assistant", "content": "Final.", "reasoning_content": "Short thought."},
                 {"role": "user", "content": "Again?"}],
    "not_alternating": [{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    "empty": [],
}

# (template, conversation, add_generation_prompt, extra variables)
RENDERS = [
    ("chatml", c, g, {}) for c in ("one_user", "system_user", "multi_turn", "unicode") for g in (True, False)
] + [
    ("llama3", c, g, {}) for c in ("one_user", "system_user", "multi_turn", "unicode", "not_alternating")
    for g in (True, False)
] + [
    ("llama3", "system_user", True, {"date_string": "01 Jan 2025"}),
    ("qwen25", "one_user", True, {}), ("qwen25", "system_user", False, {}), ("qwen25", "multi_turn", True, {}),
    ("qwen25", "tool_calls", True, {}), ("qwen25", "tool_calls", True, {"tools": [TOOL]}),
    ("qwen25", "system_user", True, {"tools": [TOOL]}), ("qwen25", "unicode", True, {}),
    ("qwen3", "one_user", True, {}), ("qwen3", "thinking", True, {}), ("qwen3", "thinking", False, {}),
    ("qwen3", "tool_calls", True, {}), ("qwen3", "multi_turn", True, {"enable_thinking": False}),
    ("qwen3", "system_user", True, {"tools": [TOOL]}),
    ("alternation", "one_user", True, {}), ("alternation", "system_user", True, {}),
    ("alternation", "multi_turn", True, {}), ("alternation", "not_alternating", True, {}),
    ("alternation", "empty", True, {}),
    ("features", "one_user", True, {}), ("features", "multi_turn", False, {}), ("features", "unicode", True, {}),
    ("features", "tool_calls", True, {"tools": [TOOL]}), ("features", "empty", True, {}),
]

TOKENS = {"bos_token": "<s>", "eos_token": "</s>"}


def make_templates():
    env = jinja_environment()
    out = os.path.join(OUT, "chat_templates")
    try:
        from transformers.utils.chat_template_utils import _compile_jinja_template as transformers_compile
    except ImportError:
        transformers_compile = None
    cases = []
    for template, conversation, gen, extra in RENDERS:
        with open(os.path.join(out, template + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        variables = dict(TOKENS, messages=CONVERSATIONS[conversation], add_generation_prompt=gen, tools=None,
                         documents=None)
        variables.update(extra)
        case = {"template": template, "conversation": conversation, "add_generation_prompt": gen,
                "variables": extra}
        try:
            case["expected"] = env.from_string(source).render(**variables)
        except Exception as e:  # noqa: BLE001 (the message is the expectation)
            case["error"] = str(e)
        if transformers_compile is not None and "expected" in case:
            assert transformers_compile(source).render(**variables) == case["expected"], (template, conversation)
        cases.append(case)
    write_json(os.path.join(out, "expected.json"), {"conversations": CONVERSATIONS, "tokens": TOKENS,
                                                    "cases": cases})
    print(f"chat_templates: {len(cases)} renderings"
          + (" (checked against transformers)" if transformers_compile else ""))


def make_nfc_cases():
    """NFC of every canonically decomposable character given decomposed (NFD), Hangul
    syllables, and random stacks of combining marks in random order (canonical ordering and
    blocked compositions)."""
    import random
    import unicodedata
    rng = random.Random(0)
    decomposable = [chr(cp) for cp in range(0x110000)
                    if unicodedata.decomposition(chr(cp)) and not unicodedata.decomposition(chr(cp)).startswith("<")]
    texts = []
    for i in range(0, len(decomposable), 100):
        texts.append(" ".join(unicodedata.normalize("NFD", c) for c in decomposable[i:i + 100]))
        texts.append("".join(decomposable[i:i + 100]))  # the composed (and excluded) forms themselves
    texts.append("".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(50)))
    texts.append(unicodedata.normalize("NFD", texts[-1]))
    marks = [0x0300, 0x0301, 0x0302, 0x0303, 0x0308, 0x030A, 0x030C, 0x0323, 0x0327, 0x0328, 0x0331, 0x0345,
             0x05B0, 0x0653, 0x0654, 0x093C, 0x1DCE, 0x20D2, 0x302A, 0x3099]
    bases = "aeiouAEIOUnNcCsSzZyYαηωΑΙЕИاوनかハᄀ x"
    for _ in range(300):
        texts.append("".join(rng.choice(bases) + "".join(chr(rng.choice(marks)) for _ in range(rng.randrange(5)))
                             for _ in range(rng.randrange(1, 6))))
    write_json(os.path.join(OUT, "nfc.json"), {"unicode_version": unicodedata.unidata_version,
                                               "cases": [[t, unicodedata.normalize("NFC", t)] for t in texts]})
    print(f"nfc: {len(texts)} strings (Unicode {unicodedata.unidata_version})")


def make_chat_model():
    """A ChatML tokenizer of exactly 307 ids for the qwen2 model fixture."""
    from tokenizers import Tokenizer
    doc = qwen2_doc(307, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], [])
    tok = Tokenizer.from_str(json.dumps(doc))
    assert tok.get_vocab_size() == 307, tok.get_vocab_size()
    out = os.path.join(OUT, "chat_model")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(os.path.join(OUT, "chat_templates", "chatml.jinja"), encoding="utf-8") as f:
        template = f.read()
    ids = {t["content"]: t["id"] for t in doc["added_tokens"]}
    write_json(os.path.join(out, "tokenizer_config.json"), {
        "added_tokens_decoder": {str(i): {"content": c, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for c, i in ids.items()},
        "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": template,
        "model_max_length": 256, "tokenizer_class": "Qwen2Tokenizer"})
    write_json(os.path.join(out, "generation_config.json"), {
        "bos_token_id": ids["<|endoftext|>"], "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]})
    print(f"chat_model: vocab {tok.get_vocab_size()}, <|im_end|> = {ids['<|im_end|>']}")


def main():
    ensure_venv()
    make_tokenizer("neox", kind_neox())
    make_tokenizer("llama3", kind_llama3())
    make_tokenizer("qwen2", kind_qwen2())
    make_tokenizer("options", kind_options())
    make_templates()
    make_chat_model()
    make_nfc_cases()


if __name__ == "__main__":
    main()
