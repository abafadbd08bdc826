#!/usr/bin/env python3
"""Builds the Hugging Face fixtures of tests/fixtures/hf/ with transformers' own classes.

Not run by CI (CI needs no Python): run it by hand when an architecture is added, and commit
what it writes. It makes a virtual environment with torch and transformers from PyPI on
first use:

    python3 scripts/make_hf_fixtures.py            # all architectures
    python3 scripts/make_hf_fixtures.py llama      # one
    python3 scripts/make_hf_fixtures.py --check-export [BUILD_DIR]
        # export check: every fixture converted HF → LinearNexus → HF, and the tiny presets
        # HF expresses trained a few steps and converted to HF, loaded by transformers'
        # from_pretrained; its float64 logits are compared with ours (`linearnexus logits`)
        # and, for fixtures, with the fixture's. Writes tests/fixtures/hf/export_check.md.

For each architecture it builds a tiny randomly initialised model (odd sizes, 2-4 layers,
every layer type of a hybrid present, a vocabulary of a few hundred), randomises the
parameters that initialise to constants (norm weights, A_log, D, dt_bias) so that a wrong
mapping shows, saves it with save_pretrained, and writes reference.safetensors next to it:

    input_ids [2, 13] i64        a fixed batch
    logits    [2, 13, vocab] f64 transformers' logits on it, computed in float64
    prompt    [1, 7] i64         a prompt
    greedy    [1, 32] i64        transformers' greedy continuation of it (32 new tokens, f64)

plus a byte-level BPE tokenizer.json trained on a few sentences, so the directory is a
complete model directory. One fixture stores its weights in bf16 (logits are computed from
the bf16-rounded weights) to exercise the conversion.
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "hf")
VENV = os.path.join(ROOT, ".venv-hf")


def ensure_venv():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([python, "-m", "pip", "install", "--quiet", "torch", "transformers", "safetensors",
                               "tokenizers"])
    os.execv(python, [python] + sys.argv)


def randomise(model, torch, seed):
    """Norm weights, A_log, D, dt_bias and biases initialise to constants; make them random."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.split(".")[-1]
            if "norm" in name and leaf == "weight":
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            elif leaf in ("A_log",):
                p.copy_(torch.log(torch.rand(p.shape, generator=gen, dtype=p.dtype) * 3.0 + 0.5))
            elif leaf in ("D", "dt_bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            elif leaf == "bias":
                p.copy_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def architectures(transformers):
    """name → (config, bf16 weights?). Sizes are odd on purpose."""
    t = transformers
    return {
        "llama": (t.LlamaConfig(vocab_size=311, hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                                num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=256,
                                rms_norm_eps=1e-5, rope_theta=5000.0, tie_word_embeddings=False,
                                initializer_range=0.08, bos_token_id=1, eos_token_id=2, pad_token_id=0), False),
        "llama3_rope": (t.LlamaConfig(vocab_size=281, hidden_size=32, intermediate_size=56, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                      rms_norm_eps=1e-5, tie_word_embeddings=True, initializer_range=0.08,
                                      rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                       "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                       "original_max_position_embeddings": 32},
                                      bos_token_id=1, eos_token_id=2), False),
        "qwen2": (t.Qwen2Config(vocab_size=307, hidden_size=40, intermediate_size=72, num_hidden_layers=2,
                                num_attention_heads=5, num_key_value_heads=1, max_position_embeddings=256,
                                rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                                initializer_range=0.08, use_sliding_window=False, bos_token_id=1,
                                eos_token_id=2), False),
        "qwen3": (t.Qwen3Config(vocab_size=303, hidden_size=48, intermediate_size=88, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                max_position_embeddings=256, rms_norm_eps=1e-6, rope_theta=20000.0,
                                tie_word_embeddings=True, initializer_range=0.08, use_sliding_window=False,
                                bos_token_id=1, eos_token_id=2), False),
        "mamba": (t.MambaConfig(vocab_size=301, hidden_size=40, state_size=12, num_hidden_layers=2, expand=2,
                                conv_kernel=3, time_step_rank=5, layer_norm_epsilon=1e-5, use_bias=False,
                                use_conv_bias=True, initializer_range=0.08, tie_word_embeddings=True,
                                bos_token_id=1, eos_token_id=2, pad_token_id=0), False),
        "mamba2": (t.Mamba2Config(vocab_size=299, hidden_size=48, state_size=10, num_hidden_layers=3, expand=2,
                                  head_dim=12, num_heads=8, n_groups=2, conv_kernel=4, layer_norm_epsilon=1e-5,
                                  use_bias=False, use_conv_bias=True, chunk_size=8, initializer_range=0.08,
                                  tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0),
                   True),
        "bamba": (t.BambaConfig(vocab_size=297, hidden_size=48, intermediate_size=80, num_hidden_layers=4,
                                attn_layer_indices=[1, 3], num_attention_heads=6, num_key_value_heads=2,
                                mamba_n_heads=8, mamba_d_head=12, mamba_n_groups=2, mamba_d_state=10, mamba_d_conv=4,
                                mamba_expand=2, mamba_chunk_size=8, rms_norm_eps=1e-5, tie_word_embeddings=False,
                                max_position_embeddings=256, initializer_range=0.08, bos_token_id=1, eos_token_id=2,
                                pad_token_id=0), False),
        "qwen3_next": (t.Qwen3NextConfig(vocab_size=293, hidden_size=48, intermediate_size=64, num_hidden_layers=4,
                                         layer_types=["linear_attention", "full_attention", "linear_attention",
                                                      "full_attention"],
                                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                         linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                                         linear_value_head_dim=12, linear_conv_kernel_dim=4, num_experts=6,
                                         num_experts_per_tok=2, moe_intermediate_size=24,
                                         shared_expert_intermediate_size=20, decoder_sparse_step=1,
                                         mlp_only_layers=[2], norm_topk_prob=True, rms_norm_eps=1e-6,
                                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                          "partial_rotary_factor": 0.25},
                                         tie_word_embeddings=False, max_position_embeddings=256,
                                         initializer_range=0.08, bos_token_id=1, eos_token_id=2), False),
    }


def train_tokenizer(vocab_size, path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = [
        "The quick brown fox jumps over the lazy dog.",
        "A state space model keeps a fixed-size state; attention keeps every key.",
        "Linear attention, gated delta rules and Mamba mix tokens in time linear in the length.",
        "Hello world! 123 456 7890 — naïve café, 東京.",
    ] * 20
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 3, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(text, trainer)
    tok.save(path)
    return tok.get_vocab_size()


def make(name, transformers, torch):
    from safetensors.torch import save_file
    config, bf16 = architectures(transformers)[name]
    torch.manual_seed(1234)
    model = transformers.AutoModelForCausalLM.from_config(config)
    randomise(model, torch, 99)
    model.eval()
    if bf16:  # the reference is computed from the weights as stored
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.to(torch.bfloat16).to(p.dtype))
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    (model.to(torch.bfloat16) if bf16 else model).save_pretrained(out, safe_serialization=True)
    model = model.to(torch.float64)
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")  # grouped GEMMs take no float64
    gen = torch.Generator().manual_seed(7)
    ids = torch.randint(3, config.vocab_size, (2, 13), generator=gen)
    prompt = torch.randint(3, config.vocab_size, (1, 7), generator=gen)
    with torch.no_grad():
        logits = model(input_ids=ids).logits
        greedy = model.generate(prompt, max_new_tokens=32, min_new_tokens=32, do_sample=False,
                                pad_token_id=0, eos_token_id=None)[:, prompt.shape[1]:]
    save_file({"input_ids": ids.contiguous(), "logits": logits.contiguous(), "prompt": prompt.contiguous(),
               "greedy": greedy.contiguous()}, os.path.join(out, "reference.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__})
    n = train_tokenizer(config.vocab_size, os.path.join(out, "tokenizer.json"))
    assert n <= config.vocab_size, (name, n)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, vocab {config.vocab_size}, "
          f"tokenizer {n}, written to {os.path.relpath(out, ROOT)}")


def relative_rms(a, b):
    return ((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt()).item()


def transformers_logits(directory, ids, transformers, torch):
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float64).eval()
    if hasattr(model, "set_experts_implementation"):
        model.set_experts_implementation("eager")  # grouped GEMMs take no float64
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits, model.config.model_type


def our_logits(cli, directory, ids, work, torch):
    from safetensors.torch import load_file, save_file
    save_file({"input_ids": ids.contiguous()}, os.path.join(work, "ids.safetensors"))
    subprocess.run([cli, "logits", "--checkpoint", directory, "--input", os.path.join(work, "ids.safetensors"),
                    "--output", os.path.join(work, "logits.safetensors"), "--dtype", "f64"], check=True,
                   stdout=subprocess.DEVNULL)
    return load_file(os.path.join(work, "logits.safetensors"))["logits"]


def check_export(build, transformers, torch):
    """HF → ours → HF for every fixture, and our tiny presets → HF; transformers loads each."""
    import tempfile
    from safetensors.torch import load_file
    cli = os.path.join(build, "linearnexus")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        cases = []
        for name in architectures(transformers):
            ours, back = os.path.join(work, name + "-lnx"), os.path.join(work, name + "-hf")
            subprocess.run([cli, "convert", "--in", os.path.join(OUT, name), "--out", ours], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([cli, "convert", "--in", ours, "--out", back], check=True, stdout=subprocess.DEVNULL)
            cases.append((f"fixture {name} (HF → LinearNexus → HF)", ours, back,
                          load_file(os.path.join(OUT, name, "reference.safetensors"))))
        for preset in ("attention-tiny", "mamba-tiny", "mamba2-tiny", "gated_deltanet-tiny"):
            run, back = os.path.join(work, "run-" + preset), os.path.join(work, preset + "-hf")
            subprocess.run([cli, "train", "--preset", preset, "--steps", "20", "--out", run, "train.eval_every=0",
                            "train.sample_tokens=0", "train.batch_size=4", "train.seq_len=64"], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([cli, "convert", "--in", run + "/last", "--out", back], check=True,
                           stdout=subprocess.DEVNULL)
            cases.append((f"preset {preset} trained 20 steps", run + "/last", back, None))
        for label, ours_dir, hf_dir, ref in cases:
            with open(os.path.join(hf_dir, "config.json")) as f:
                vocab = json.load(f)["vocab_size"]
            ids = ref["input_ids"] if ref is not None else torch.randint(0, vocab, (2, 29),
                                                                         generator=torch.Generator().manual_seed(3))
            theirs, model_type = transformers_logits(hf_dir, ids, transformers, torch)
            ours = our_logits(cli, ours_dir, ids, work, torch)
            row = {"case": label, "model_type": model_type, "vs_ours": relative_rms(theirs, ours)}
            if ref is not None:
                row["vs_fixture"] = relative_rms(theirs, ref["logits"])
            rows.append(row)
            print(json.dumps(row))
    ok = all(r["vs_ours"] < 1e-5 and r.get("vs_fixture", 0) < 1e-5 for r in rows)
    with open(os.path.join(OUT, "export_check.md"), "w") as f:
        f.write("# Export check: transformers loads what `linearnexus convert --to hf` writes\n\n")
        f.write(f"Written by `scripts/make_hf_fixtures.py --check-export` (transformers {transformers.__version__}, "
                f"torch {torch.__version__}). Each exported directory is loaded with "
                "`AutoModelForCausalLM.from_pretrained` in float64; its logits are compared (relative RMS) "
                "with ours (`linearnexus logits --dtype f64`) on the same ids, and for fixtures with the "
                "logits transformers gave for the original directory. Errors near 1e-7 are transformers' "
                "float32 RMSNorm and RoPE frequencies inside its float64 run, near 2e-6 its float32 "
                "delta-rule kernels (Qwen3-Next).\n\n")
        f.write("| case | model_type | vs ours | vs fixture |\n| --- | --- | --- | --- |\n")
        for r in rows:
            vf = f"{r['vs_fixture']:.2e}" if "vs_fixture" in r else "—"
            f.write(f"| {r['case']} | {r['model_type']} | {r['vs_ours']:.2e} | {vf} |\n")
        f.write(f"\nResult: {'all within 1e-5' if ok else 'FAILED'}.\n")
    return ok


def main():
    ensure_venv()
    import torch
    import transformers
    torch.set_default_dtype(torch.float32)
    args = sys.argv[1:]
    if args and args[0] == "--check-export":
        build = args[1] if len(args) > 1 else os.path.join(ROOT, "build")
        sys.exit(0 if check_export(build, transformers, torch) else 1)
    names = args or list(architectures(transformers))
    for name in names:
        make(name, transformers, torch)


if __name__ == "__main__":
    main()
