#!/usr/bin/env python3
"""Two training runs' loss curves side by side (e.g. train.precision f32 against bf16 on the same
data, seed and schedule): the relative gap of their mean training loss per window of steps and of
their validation losses, from each run's out_dir/metrics.jsonl (or a .jsonl file of it).

  python3 bench/compare_loss_curves.py RUN_A RUN_B [--window 100]
"""
import argparse
import json
import sys


def read(run):
    train, val = {}, {}
    with open(run if run.endswith(".jsonl") else f"{run}/metrics.jsonl") as f:
        for line in f:
            r = json.loads(line)
            if "loss" in r:
                train[r["step"]] = r["loss"]
            if "val_loss" in r:
                val[r["step"]] = r["val_loss"]
    return train, val


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_a")
    ap.add_argument("run_b")
    ap.add_argument("--window", type=int, default=100)
    a = ap.parse_args()
    (ta, va), (tb, vb) = read(a.run_a), read(a.run_b)
    steps = sorted(set(ta) & set(tb))
    if not steps:
        sys.exit("no common logged steps")
    worst = 0.0
    print(f"{'steps':>13} {'loss A':>9} {'loss B':>9} {'gap':>8}")
    for start in range(0, steps[-1] + 1, a.window):
        w = [s for s in steps if start <= s < start + a.window]
        if not w:
            continue
        ma = sum(ta[s] for s in w) / len(w)
        mb = sum(tb[s] for s in w) / len(w)
        gap = (mb - ma) / ma
        worst = max(worst, abs(gap))
        print(f"{start:>6}-{start + a.window - 1:<6} {ma:9.4f} {mb:9.4f} {100 * gap:+7.2f}%")
    for s in sorted(set(va) & set(vb)):
        print(f"validation at step {s}: {va[s]:.4f} vs {vb[s]:.4f} ({100 * (vb[s] - va[s]) / va[s]:+.2f}%)")
    print(f"largest gap of the windowed training loss: {100 * worst:.2f}%")


if __name__ == "__main__":
    main()
