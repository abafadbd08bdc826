#!/usr/bin/env python3
"""Mamba-2 130M's shape in Hugging Face format: our load time, prefill and decode speed against
transformers on the CPU, in one run, with the sgemm ceiling of the same run (BENCHMARKS.md).

    python3 scripts/bench_hf_mamba2.py [--build BUILD] [--threads N] [--rounds R] [--keep DIR]

Builds a Mamba2ForCausalLM with the configuration of state-spaces/mamba2-130m (24 layers,
d_model 768, d_state 128, expand 2, head_dim 64, one group, conv 4, vocabulary 50288, tied
embeddings), randomly initialised (seed 0), saves it with save_pretrained (safetensors, f32) to
a temporary directory, then alternates R rounds of

    ours          BUILD/bench/bench_hf_generate DIR (load, prefill, greedy decode, sgemm)
    transformers  the same measurements with torch in this process

with the same thread count on both sides (torch.set_num_threads and OMP_NUM_THREADS /
--threads), and prints a Markdown table of the best round of each side.

Prefill: one forward over a random prompt of 512 and of 2048 tokens (logits of every position,
as our Session::prefill computes them; the cache/state returned), after one untimed forward;
best of two. Decode: after a random prompt of 128 and of 512 tokens, one untimed greedy step,
then 64 greedy steps with the cache (transformers: a loop of forward(next_token, cache) and
argmax, no generate() overhead; generate() is timed too, for reference), mean ms per token.

Like scripts/make_hf_fixtures.py it makes a virtual environment .venv-hf with torch and
transformers from PyPI when they are not importable; any Python that has them runs it directly.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_hf_fixtures import ensure_venv  # noqa: E402

PREFILL = [512, 2048]
CONTEXTS = [128, 512]
DECODE_TOKENS = 64


def mamba2_130m_config(transformers):
    """state-spaces/mamba2-130m's shape (its vocabulary 50277 padded to a multiple of 16)."""
    return transformers.Mamba2Config(
        vocab_size=50288, hidden_size=768, num_hidden_layers=24, state_size=128, expand=2, head_dim=64,
        num_heads=24, n_groups=1, conv_kernel=4, chunk_size=256, layer_norm_epsilon=1e-5, use_bias=False,
        use_conv_bias=True, tie_word_embeddings=True, rms_norm=True, norm_before_gate=False, bos_token_id=0,
        eos_token_id=0, pad_token_id=0)


def make_model(transformers, torch, out):
    torch.manual_seed(0)
    model = transformers.Mamba2ForCausalLM(mamba2_130m_config(transformers)).float().eval()
    model.save_pretrained(out, safe_serialization=True)
    return model


def bench_ours(binary, model_dir, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    # A process that only loads, timed from outside (start-up, BLAS loading, load, exit).
    t0 = time.perf_counter()
    subprocess.run([binary, model_dir, "--threads", str(threads), "--load-reps", "0", "--load-only"], env=env,
                   check=True, capture_output=True, text=True)
    process_s = time.perf_counter() - t0
    run = subprocess.run(
        [binary, model_dir, "--threads", str(threads), "--prefill", ",".join(map(str, PREFILL)), "--contexts",
         ",".join(map(str, CONTEXTS)), "--decode-tokens", str(DECODE_TOKENS)], env=env, check=True,
        capture_output=True, text=True)
    r = json.loads(run.stdout.strip().splitlines()[-1])
    r["load_process_s"] = process_s
    return r


def bench_transformers(transformers, torch, model_dir):
    gen = torch.Generator().manual_seed(0)
    V = 50288

    def tokens(n):
        return torch.randint(0, V, (1, n), generator=gen)

    r = {}
    t0 = time.perf_counter()
    model = transformers.Mamba2ForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    r["load_s"] = time.perf_counter() - t0
    with torch.inference_mode():
        model(tokens(PREFILL[0]), use_cache=True)  # warm-up
        r["prefill_tokens_per_s"] = []
        for P in PREFILL:
            ids = tokens(P)
            best = 1e30
            for _ in range(2):
                t0 = time.perf_counter()
                out = model(ids, use_cache=True)
                best = min(best, time.perf_counter() - t0)
            assert out.logits.shape == (1, P, V)
            r["prefill_tokens_per_s"].append(P / best)
            print(f"transformers: prefill {P} tokens: {P / best:.0f} tokens/s", file=sys.stderr)
        r["decode_ms_per_token"] = []
        r["generate_ms_per_token"] = []
        for C in CONTEXTS:
            ids = tokens(C)
            out = model(ids, use_cache=True)
            cache = out.cache
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            out = model(nxt, cache=cache, use_cache=True)  # warm-up step
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            t0 = time.perf_counter()
            for _ in range(DECODE_TOKENS):
                out = model(nxt, cache=cache, use_cache=True)
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            r["decode_ms_per_token"].append((time.perf_counter() - t0) * 1e3 / DECODE_TOKENS)
            print(f"transformers: decode after {C}: {r['decode_ms_per_token'][-1]:.2f} ms/token", file=sys.stderr)
            # generate(): the same greedy decode through the generation loop; its prefill
            # (timed alone just before) is subtracted.
            t0 = time.perf_counter()
            model(ids, use_cache=True, logits_to_keep=1)
            prefill_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=DECODE_TOKENS + 1,
                           min_new_tokens=DECODE_TOKENS + 1, do_sample=False, pad_token_id=0)
            r["generate_ms_per_token"].append((time.perf_counter() - t0 - prefill_s) * 1e3 / DECODE_TOKENS)
    return r


def main():
    ensure_venv()
    import torch
    import transformers
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", help="write the model directory here instead of a temporary one")
    args = parser.parse_args()
    binary = os.path.join(args.build, "bench", "bench_hf_generate")
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: cmake --build {args.build} --target bench_hf_generate")
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)

    tmp = args.keep or tempfile.mkdtemp(prefix="mamba2-130m-shape-")
    try:
        model = make_model(transformers, torch, tmp)
        n_params = sum(p.numel() for p in model.parameters())
        del model
        print(f"model: {n_params / 1e6:.1f}M parameters in {tmp}", file=sys.stderr)
        ours, theirs = [], []
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
            ours.append(bench_ours(binary, tmp, args.threads))
            theirs.append(bench_transformers(transformers, torch, tmp))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    def best(rounds, key, i=None, lower=False):
        vals = [r[key] if i is None else r[key][i] for r in rounds]
        return min(vals) if lower else max(vals)

    sgemm = [r["sgemm_gflops"] for r in ours] + [r["sgemm_end_gflops"] for r in ours]
    print(f"Mamba-2 130M shape ({n_params / 1e6:.1f}M parameters, random f32), {args.threads} threads, "
          f"{args.rounds} alternated rounds (best per side); torch {torch.__version__}, transformers "
          f"{transformers.__version__}, Python {platform.python_version()}; our BLAS core "
          f"{ours[0]['blas_core']}; sgemm 1024³ in this run {min(sgemm):.0f}–{max(sgemm):.0f} GFLOP/s\n")
    print("| | LinearNexus | transformers | ours / theirs |")
    print("| --- | ---: | ---: | ---: |")
    lo, lt = best(ours, "load_best_s", lower=True), best(theirs, "load_s", lower=True)
    print(f"| load (in process, best) | {lo:.3f} s | {lt:.3f} s (from_pretrained) | {lt / lo:.1f}× faster |")
    print(f"| load (first of the process) | {best(ours, 'load_s', lower=True):.3f} s | | |")
    print(f"| load-only process, wall | {best(ours, 'load_process_s', lower=True):.3f} s | | |")
    for i, P in enumerate(PREFILL):
        o, t = best(ours, "prefill_tokens_per_s", i), best(theirs, "prefill_tokens_per_s", i)
        g = best(ours, "prefill_gflops", i)
        print(f"| prefill {P} tokens, tokens/s | {o:.0f} ({g:.0f} GFLOP/s, {g / max(sgemm):.2f} of sgemm) | "
              f"{t:.0f} | {o / t:.2f}× |")
    for i, C in enumerate(CONTEXTS):
        o, t = best(ours, "decode_ms_per_token", i, True), best(theirs, "decode_ms_per_token", i, True)
        gt = best(theirs, "generate_ms_per_token", i, True)
        print(f"| decode after {C}, ms/token (tokens/s) | {o:.2f} ({1e3 / o:.0f}) | {t:.2f} ({1e3 / t:.0f}); "
              f"generate(): {gt:.2f} | {t / o:.2f}× |")
    print("\nraw rounds:", json.dumps({"ours": ours, "transformers": theirs}), file=sys.stderr)


if __name__ == "__main__":
    main()
