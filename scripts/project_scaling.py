#!/usr/bin/env python3
"""Projects data-parallel step times from bench/data_parallel.sh's measurements (docs/scaling.md).

Usage: scripts/project_scaling.py BENCH_JSONL...   (standard library only; prints Markdown; the
all-reduce fit of the last file that has one is used)

The cost model (docs/scaling.md, "The model"):
  * a bucket of s bytes all-reduced by a ring over p ranks takes
        t(s) = 2(p-1)·alpha + 2(p-1)/p · s / bandwidth;
  * the backward pass (2/3 of a step's compute) finishes gradients at an even rate, last layers
    first; a bucket starts when its gradients are final and the previous bucket is done; what
    runs past the end of the backward is exposed: step = compute + exposed;
  * ZeRO-1: a reduce-scatter (half of t) per bucket during the backward, then an all-gather of
    every parameter (the other half) after the optimizer step, not hidden.
"""
import json
import sys

BUCKET = 4 << 20  # train.bucket_mb default
BACKWARD_SHARE = 2.0 / 3.0
NETWORKS = [  # name, bandwidth (bytes/s), per-message latency (s)
    ("25 Gb/s Ethernet (TCP)", 25e9 / 8, 25e-6),
    ("100 Gb/s InfiniBand (RDMA)", 100e9 / 8, 3e-6),
]
RANKS = [8, 64, 512]
# Each rank this machine (2 cores), or a node this many times faster (e.g. 64 cores with AVX-512):
# communication matters in proportion to how short the compute is.
SPEEDUPS = [1, 30]


def ring(s, p, alpha, bw):
    return 2 * (p - 1) * alpha + 2 * (p - 1) / p * s / bw


def buckets_of(grad_bytes):
    n = max(1, round(grad_bytes / BUCKET))
    return [grad_bytes / n] * n


def step_time(compute, grad_bytes, p, alpha, bw, zero1=False):
    """(step seconds, exposed seconds) of one rank."""
    if p == 1:
        return compute, 0.0
    forward = compute * (1 - BACKWARD_SHARE)  # with the optimizer's small share
    backward = compute * BACKWARD_SHARE
    ready, done, total = forward, 0.0, 0.0
    for s in buckets_of(grad_bytes):
        ready += backward * s / grad_bytes
        cost = ring(s, p, alpha, bw) / (2 if zero1 else 1)
        done = max(done, ready) + cost
    exposed = max(0.0, done - (forward + backward))
    if zero1:  # the all-gather of every bucket's parameters after the step
        exposed += (p - 1) * alpha * len(buckets_of(grad_bytes)) + (p - 1) / p * grad_bytes / bw
    return compute + exposed, exposed


def main(paths):
    rows, fit = [], None
    for line in (l for path in paths for l in open(path)):
        line = line.strip()
        if not line.startswith("{"):
            continue
        j = json.loads(line)
        if "fit" in j:
            fit = j
        elif "preset" in j and j["ranks"] == 1 and j["threads"] == 2:
            rows.append(j)
        elif "preset" in j and j["ranks"] == 2:
            rows.append(j)
    # The model against loopback: 2 ranks with the fitted alpha and beta.
    print("### The model against this machine's loopback (2 ranks)\n")
    print(f"Fit of the all-reduce times: alpha = {fit['alpha_s'] * 1e6:.1f} µs, "
          f"beta = {fit['beta_s_per_byte'] * 1e9:.3f} ns/byte.\n")
    print("| preset | gradients | buckets | all-reduce, model | measured | exposed, model | measured |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for j in rows:
        if j["ranks"] != 2:
            continue
        g = j["grad_MB"] * 1e6
        bw = 2 * (2 - 1) / 2 / fit["beta_s_per_byte"]  # ring bandwidth implied by beta
        model_comm = sum(ring(s, 2, fit["alpha_s"], bw) for s in [g / j["buckets"]] * j["buckets"])
        _, exposed = step_time(j["compute_s"], g, 2, fit["alpha_s"], bw)
        print(f"| {j['preset']} | {j['grad_MB']:.1f} MB | {j['buckets']} | {model_comm * 1e3:.0f} ms | "
              f"{j['comm_s'] * 1e3:.0f} ms | {exposed * 1e3:.0f} ms | {j['exposed_s'] * 1e3:.0f} ms |")
    print()
    # Projections: each rank a machine like this one (2 cores) with the measured compute time
    # of its per-rank batch (1 rank × 2 threads).
    per_rank = [j for j in rows if j["ranks"] == 1]
    tokens = per_rank[0]["B"] * per_rank[0]["T"] if per_rank else 0
    sgemm = per_rank[0]["sgemm_gflops"] if per_rank else 0
    # 1B parameters: 6·N FLOPs per token at the small presets' share of the sgemm rate.
    share = 0.65
    one_b = {"preset": "1B (projected)", "params_M": 1000.0, "grad_MB": 4000.0,
             "step_s": 6 * 1e9 * 8 * 2048 / (sgemm * 1e9 * share), "B": 8, "T": 2048}
    for speedup in SPEEDUPS:
        who = "this machine" if speedup == 1 else f"a node {speedup}× faster than this machine"
        print(f"### Projected step time and efficiency: each rank {who} "
              f"(per-rank batch {tokens} tokens; 1B: 8 × 2048)\n")
        header = "| model | compute/step | " + " | ".join(
            f"{n.split(' (')[0]}, {p} ranks" for n, _, _ in NETWORKS for p in RANKS) + " |"
        print(header)
        print("|---|---:|" + "---:|" * (len(NETWORKS) * len(RANKS)))
        for j in per_rank + [one_b]:
            g = j["grad_MB"] * 1e6
            compute = j["step_s"] / speedup
            cells = []
            for _, bw, alpha in NETWORKS:
                for p in RANKS:
                    step, _ = step_time(compute, g, p, alpha, bw)
                    cells.append(f"{step:.3g} s ({100 * compute / step:.0f}%)")
            print(f"| {j['preset']} ({j['params_M']:.0f}M) | {compute:.3g} s | " + " | ".join(cells) + " |")
        print()
    print(f"ZeRO-1 at 512 ranks (the all-gather after the step is not hidden), each rank a node "
          f"{SPEEDUPS[-1]}× faster than this machine:\n")
    print("| model | " + " | ".join(n for n, _, _ in NETWORKS) + " |")
    print("|---|" + "---:|" * len(NETWORKS))
    for j in per_rank + [one_b]:
        g = j["grad_MB"] * 1e6
        compute = j["step_s"] / SPEEDUPS[-1]
        cells = []
        for _, bw, alpha in NETWORKS:
            step, _ = step_time(compute, g, 512, alpha, bw, zero1=True)
            cells.append(f"{step:.3g} s ({100 * compute / step:.0f}%)")
        print(f"| {j['preset']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
