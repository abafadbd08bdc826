"""What a call from Python adds over the C++ call (issue 17's < 20 µs point).

Times linearnexus.ops.<mechanism> from Python against the same kernels::run on the same
inputs timed inside C++ (linearnexus._core.time_mechanism), alternated, best of rounds (as
timeit does: the least disturbed run): NumPy arrays in, PyTorch tensors in, and PyTorch
tensors that record a torch.autograd node (against the C++ call that records its graph).
Run with the package installed (scripts/test_python.sh installs it into .venv):

    .venv/bin/python bench/python_overhead.py [--mechanism gla] [--T 16]
"""

import argparse
import time

import linearnexus as lnx


def per_call(fn, repeats):
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mechanism", default="gla")
    parser.add_argument("--form", default="chunk")
    parser.add_argument("--T", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    a = parser.parse_args()

    arrays = lnx._core.make_inputs(a.mechanism, 1, a.T, 1, 16, 16, seed=0, dtype="float32")
    op = getattr(lnx.ops, a.mechanism)
    cases = {"numpy": lambda: op(**arrays, form=a.form)}
    try:
        import torch

        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        leaves = {k: v.clone().requires_grad_() for k, v in tensors.items()}
        cases["torch"] = lambda: op(**tensors, form=a.form)
        cases["torch, autograd node"] = lambda: op(**leaves, form=a.form)
    except ImportError:
        pass

    rows = {name: [] for name in cases}
    cpp, cpp_recorded = [], []
    for _ in range(a.rounds):
        cpp.append(lnx._core.time_mechanism(a.mechanism, a.form, arrays, repeats=a.repeats))
        cpp_recorded.append(lnx._core.time_mechanism(a.mechanism, a.form, arrays, repeats=a.repeats, record=True))
        for name, fn in cases.items():
            rows[name].append(per_call(fn, a.repeats))
    c, c_recorded = min(cpp), min(cpp_recorded)
    print(f"{a.mechanism} {a.form}, B=1 T={a.T} H=1 K=V=16, {lnx.num_threads()} threads, best of {a.rounds} rounds")
    print(f"  C++ kernels::run alone: {c * 1e6:8.2f} µs per call; recording the autodiff graph: {c_recorded * 1e6:8.2f}")
    for name, times in rows.items():
        m = min(times)
        base = c_recorded if "autograd" in name else c  # against the C++ call doing the same work
        print(f"  from Python, {name:22s}: {m * 1e6:8.2f} µs per call, overhead {(m - base) * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
