"""Train a tiny hybrid from Python, plot its loss, and check a mechanism against PyTorch.

    bash scripts/setup_python.sh && .venv/bin/pip install .
    .venv/bin/python examples/train_and_compare.py [--steps 300] [--out runs/example]

1. Trains hybrid-tiny (Gated DeltaNet and attention layers) on the built-in corpus with a
   callback that records every step's loss, then draws the curve into <out>/loss.png.
2. Generates a sample from the trained model.
3. Writes the gated delta rule in plain PyTorch (the recurrence, token by token), runs it and
   LinearNexus's chunked kernel on the same random inputs, and compares outputs, final states
   and the gradients torch.autograd gets through each.
"""

import argparse
import pathlib
import time

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import linearnexus as lnx  # noqa: E402


def train_and_plot(steps: int, out: pathlib.Path) -> lnx.Model:
    losses = []
    result = lnx.train(
        None,
        {
            "model": {"preset": "hybrid-tiny"},
            "optimizer": {"lr": 3e-3},
            "schedule": {"warmup_steps": min(100, steps // 10)},
            "train": {
                "steps": steps,
                "batch_size": 8,
                "seq_len": 128,
                "eval_every": steps,
                "save_every": steps,
                "log_every": 0,
                "sample_tokens": 0,
                "out_dir": str(out),
            },
        },
        callback=lambda m: losses.append(m["loss"]),
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(losses) + 1), losses, lw=1, label="training loss")
    ax.axhline(result.val_loss, color="C1", ls="--", lw=1, label=f"validation {result.val_loss:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("cross entropy (nats/token)")
    ax.set_title(f"hybrid-tiny, {result.tokens / result.seconds / 1e3:.0f}k tokens/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=120)
    print(f"trained {result.steps} steps in {result.seconds:.1f} s: loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"validation {result.val_loss:.3f}; plot: {out / 'loss.png'}")
    return result.model


def gated_delta_rule_pytorch(q, k, v, beta, g, initial_state, scale):
    """The gated delta rule token by token, as its paper writes it (q, k: [B, T, H, K],
    v: [B, T, H, V], beta, g: [B, T, H], state [B, H, K, V]):
        S' = exp(g_t) S,  S = S' + beta_t k_t (v_t - S'^T k_t)^T,  o_t = S^T (scale q_t)."""
    S = initial_state
    outputs = []
    for t in range(q.shape[1]):
        S = S * torch.exp(g[:, t])[..., None, None]
        k_t, v_t = k[:, t], v[:, t]
        u = beta[:, t, :, None] * (v_t - torch.einsum("bhkv,bhk->bhv", S, k_t))
        S = S + torch.einsum("bhk,bhv->bhkv", k_t, u)
        outputs.append(torch.einsum("bhkv,bhk->bhv", S, scale * q[:, t]))
    return torch.stack(outputs, dim=1), S


def compare_with_pytorch(B=2, T=200, H=4, K=32, V=32):
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1)
    k = torch.nn.functional.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1)
    v = torch.randn(B, T, H, V, generator=gen)
    beta = torch.rand(B, T, H, generator=gen)
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, H, generator=gen)) / 8
    s0 = torch.randn(B, H, K, V, generator=gen)
    inputs = dict(q=q, k=k, v=v, beta=beta, g=g, initial_state=s0)

    def run(fn):
        leaves = {n: x.clone().requires_grad_() for n, x in inputs.items()}
        start = time.perf_counter()
        o, state = fn(leaves)
        (o.square().sum() + state.sum()).backward()
        return o.detach(), state.detach(), {n: x.grad for n, x in leaves.items()}, time.perf_counter() - start

    o_ref, s_ref, d_ref, t_ref = run(lambda x: gated_delta_rule_pytorch(**x, scale=K**-0.5))
    o, s, d, t = run(lambda x: lnx.ops.gated_delta_rule(**x, form="chunk", chunk_size=64))

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    print(f"\ngated_delta_rule, B={B} T={T} H={H} K={K} V={V}: LinearNexus chunk form against the PyTorch recurrence")
    print(f"  o: rel. error {rel(o, o_ref):.1e}, final state: {rel(s, s_ref):.1e}")
    print("  gradients: " + ", ".join(f"d{n} {rel(d[n], d_ref[n]):.1e}" for n in inputs))
    print(f"  forward + backward: PyTorch loop {t_ref * 1e3:.0f} ms, LinearNexus {t * 1e3:.1f} ms")
    worst = max([rel(o, o_ref), rel(s, s_ref)] + [rel(d[n], d_ref[n]) for n in inputs])
    assert worst < 1e-4, f"LinearNexus and the PyTorch reference disagree: {worst:.1e}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/example"))
    a = parser.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    model = train_and_plot(a.steps, a.out)
    print("sample: " + repr("The " + model.generate("The ", max_new_tokens=80, temperature=0.8, seed=1)))
    compare_with_pytorch()


if __name__ == "__main__":
    main()
