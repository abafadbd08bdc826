"""Models, generation, sessions and training from Python, against the command-line tool."""

import json
import pathlib

import numpy as np
import pytest

import linearnexus as lnx

ROOT = pathlib.Path(__file__).resolve().parents[2]

TRAIN = {
    "model.preset": "hybrid-tiny",
    "train.steps": 20,
    "train.batch_size": 2,
    "train.seq_len": 32,
    "train.eval_every": 20,
    "train.save_every": 20,
    "train.log_every": 1,
    "train.sample_tokens": 0,
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 20-step run from Python, its per-step metrics, and the directory it wrote."""
    out = tmp_path_factory.mktemp("py_run")
    seen = []
    result = lnx.train(None, {**TRAIN, "train.out_dir": str(out)}, callback=seen.append)
    return result, seen, out


def test_training_from_python_matches_the_command_line(trained, cli, tmp_path):
    result, seen, _ = trained
    cli("train", *[f"{k}={v}" for k, v in TRAIN.items()], f"train.out_dir={tmp_path}")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    cli_losses = [r["loss"] for r in records if "loss" in r and "step" in r and "val_loss" not in r]
    assert [m["step"] for m in seen] == list(range(20))
    assert [m["loss"] for m in seen] == pytest.approx(cli_losses, rel=1e-6, abs=0)
    assert result.steps == 20 and result.last_loss == pytest.approx(seen[-1]["loss"], rel=1e-12)
    assert set(seen[0]) == {"step", "loss", "lr_scale", "grad_norm", "tokens_per_s"}


def test_callback_stops_the_run_and_its_errors_are_raised(tmp_path):
    seen = []
    result = lnx.train(None, {**TRAIN, "train.out_dir": str(tmp_path / "a")}, callback=lambda m: seen.append(m) or m["step"] < 3)
    assert len(seen) == 4 and result.steps == 4

    def boom(m):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        lnx.train(None, {"train": {**{k.split(".")[1]: v for k, v in TRAIN.items() if k.startswith("train.")},
                                   "out_dir": str(tmp_path / "b")}, "model": {"preset": "hybrid-tiny"}}, callback=boom)


def test_logits_equal_the_command_line(trained, cli, tmp_path):
    result, _, out = trained
    ids = np.array([result.model.encode("The quick brown fox"), result.model.encode("Once upon a time, t")], np.int64)
    logits, state = result.model(ids)
    assert logits.shape == (2, ids.shape[1], result.model.vocab_size) and state.num_sequences == 2
    lnx.save_safetensors(tmp_path / "ids.safetensors", {"input_ids": ids})
    cli("logits", "--checkpoint", out / "last", "--input", tmp_path / "ids.safetensors", "--output", tmp_path / "l.safetensors")
    expected, _ = lnx.load_safetensors(tmp_path / "l.safetensors")
    np.testing.assert_allclose(logits, expected["logits"], rtol=1e-5, atol=1e-5)


def test_continuing_from_a_state_equals_one_forward(trained):
    model = trained[0].model
    ids = np.array([model.encode("abcdefghij")], np.int32)
    whole, _ = model(ids)
    first, state = model(ids[:, :6])
    rest, _ = model(np.ascontiguousarray(ids[:, 6:]), state=state)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-4, atol=1e-4)


def test_generation_text_ids_stream_and_sessions(trained, tmp_path):
    model = lnx.Model.load(trained[2] / "last")
    sampling = dict(max_new_tokens=24, temperature=0.8, top_k=20, seed=7)
    text = model.generate("The ", **sampling)
    ids = model.generate(model.encode("The "), **sampling)
    assert isinstance(text, str) and text == model.decode(ids) and len(ids) == 24
    assert "".join(model.generate("The ", stream=True, **sampling)) == text
    assert list(model.generate(model.encode("The "), stream=True, **sampling)) == ids

    session = model.session()
    session.prefill("The ")
    fork = session.fork()
    assert session.generate(**sampling) == text
    assert fork.generate(**sampling) == text  # the fork continues independently, from the same point
    session.save(tmp_path / "s.safetensors")
    back = lnx.Session.load(model, tmp_path / "s.safetensors")
    assert back.tokens() == session.tokens()
    assert back.generate(max_new_tokens=10, seed=1) == session.generate(max_new_tokens=10, seed=1)
    np.testing.assert_array_equal(back.logits(), session.logits())


def test_presets_parameters_and_save(tmp_path):
    model = lnx.Model.from_preset("gla-tiny", seed=3)
    params = model.parameters()
    assert sum(p.size for p in params.values()) == model.num_parameters
    assert "vocab_size" in model.config and not model.has_tokenizer
    model.save(tmp_path / "ckpt")
    again = lnx.Model.load(tmp_path / "ckpt")
    for name, p in again.parameters().items():
        np.testing.assert_array_equal(p, params[name])
    ids = np.arange(12, dtype=np.int64).reshape(2, 6) % model.vocab_size
    assert model.loss(ids, ids) == pytest.approx(again.loss(ids, ids), rel=1e-12)


def test_model_errors(tmp_path):
    model = lnx.Model.from_preset("gla-tiny")
    with pytest.raises(ValueError, match=r"no tokenizer"):
        model.generate("text needs a tokenizer")
    with pytest.raises(ValueError, match=r"ids is \[6\]: expected \[B, T\]"):
        model(np.arange(6, dtype=np.int64))
    with pytest.raises(TypeError, match=r"ids is float32: expected int32 or int64"):
        model(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match=r"temperature"):
        model.generate([1, 2], temperature=-1.0)
    with pytest.raises(OSError, match=r"not a checkpoint directory"):
        lnx.Model.load(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"preset"):
        lnx.Model.from_preset("no-such-preset")


def posttrain_overrides(out):
    return {
        "init_from": str(ROOT / "tests" / "fixtures" / "hf" / "llama"),
        "out_dir": str(out),
        "steps": 3,
        "prompts_per_step": 2,
        "group_size": 4,
        "max_new_tokens": 4,
        "eval_prompts": 4,
        "eval_every": 0,
        "save_every": 0,
        "digits": 1,
        "lr": 1e-3,
        "reward_program": "awk '{ print length($0) / 100 }'",  # rewards that vary: the weights move
    }


@pytest.mark.parametrize("trainer", ["grpo", "ppo"])
def test_post_training_from_python_matches_the_command_line(trainer, cli, tmp_path):
    seen = []
    result = getattr(lnx, trainer)(None, posttrain_overrides(tmp_path / "py"), callback=seen.append)
    assert result.steps == 3 and len(seen) == 3
    cli(trainer, *[f"{k}={v}" for k, v in posttrain_overrides(tmp_path / "cli").items()])
    lines = [json.loads(line) for line in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    keys = ("loss", "reward_mean", "kl") if trainer == "grpo" else ("policy_loss", "value_loss", "reward_mean", "kl")
    for mine, theirs in zip(seen, lines):
        for key in keys:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-9), key
    assert 0 <= result.accuracy_after <= 1
    assert result.model.num_parameters > 0


def test_sft_from_python_matches_the_command_line(cli, tmp_path):
    data = tmp_path / "sft.jsonl"
    cli("task", "addition", "--examples", 40, "--out", data)
    settings = {
        "train.init_from": str(ROOT / "tests" / "fixtures" / "hf" / "llama"),
        "train.steps": 6,
        "train.batch_size": 2,
        "train.seq_len": 32,
        "train.eval_every": 0,
        "train.save_every": 6,
        "train.log_every": 1,
        "train.sample_tokens": 0,
    }
    seen = []
    result = lnx.sft(data, {**settings, "train.out_dir": str(tmp_path / "py")}, callback=seen.append)
    cli("train", "--sft", data, *[f"{k}={v}" for k, v in settings.items()], f"train.out_dir={tmp_path / 'cli'}")
    records = [json.loads(line) for line in (tmp_path / "cli" / "metrics.jsonl").read_text().splitlines()]
    cli_losses = [r["loss"] for r in records if "loss" in r and "val_loss" not in r]
    assert len(seen) == 6 and result.steps == 6
    assert [m["loss"] for m in seen] == pytest.approx(cli_losses, rel=1e-6, abs=0)
    assert result.model.has_tokenizer


def test_stop_strings_streams_and_sessions_keep_what_they_need(trained):
    import gc

    out = trained[2]
    model = lnx.Model.load(out / "last")
    prompt = model.encode("The ")
    stop = model.decode(model.generate(prompt, max_new_tokens=40, seed=2))[10]  # a character it will write
    stream = model.generate(prompt, stream=True, max_new_tokens=40, stop_strings=[stop], seed=2)
    expected = model.generate(prompt, max_new_tokens=40, stop_strings=[stop], seed=2)
    decoded = model.decode(expected)
    assert decoded.endswith(stop) and len(expected) <= 11
    del model
    gc.collect()
    assert list(stream) == expected  # the stream holds the model and the tokenizer its stop strings read

    model = lnx.Model.load(out / "last")
    session = model.session()
    session.prefill(prompt)
    assert session.generate(max_new_tokens=40, stop_strings=[stop], seed=2) == decoded
    fork = session.fork()
    del session, model
    gc.collect()
    assert isinstance(fork.generate(max_new_tokens=3), str)


def test_callback_results_are_read_as_python_truth(tmp_path):
    seen = []
    lnx.train(None, {**TRAIN, "train.out_dir": str(tmp_path)}, callback=lambda m: seen.append(m) or np.bool_(m["step"] < 1))
    assert len(seen) == 2


def test_a_state_continues_only_in_its_model(trained):
    model = trained[0].model
    ids = np.array([[1, 2, 3]], np.int64)
    _, state = model(ids)
    other = lnx.Model.from_preset("hybrid-tiny", seed=5)
    with pytest.raises(ValueError, match="another model"):
        other(ids, state=state)


def test_batched_generation_equals_one_prompt_at_a_time(trained):
    model = trained[0].model
    prompts = ["The ", "Once upon a time", "A"]
    sampling = dict(max_new_tokens=12, temperature=0.9, top_k=30, seed=11)
    batch = model.generate(prompts, **sampling)
    for i, p in enumerate(prompts):
        assert batch[i] == model.generate(p, **{**sampling, "seed": 11 + i})
    ids = [model.encode(p) for p in prompts]
    assert model.generate(ids, **sampling) == [model.encode(t) for t in batch]
    with pytest.raises(ValueError, match="one prompt"):
        model.generate(prompts, stream=True)

    session = model.session(num_sequences=3)
    logits = session.prefill(prompts)
    assert logits.shape == (3, model.vocab_size)
    assert session.generate(**sampling) == batch
