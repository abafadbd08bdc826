#!/usr/bin/env python3
"""Training-step time of LinearNexus against the same model in eager PyTorch, A/B in one run.

For each shape, the same model is built twice: in LinearNexus (`linearnexus bench train`, from
section.key=value overrides) and here in PyTorch, and both train on random tokens with the same
batch, sequence, optimizer (AdamW, lr 1e-3, betas 0.9/0.95, weight decay 0.1 on matrices), global
gradient-norm clip 1.0 and thread count. Prints ms/step of each and their ratio; --out appends one
JSON object per shape to a file.

Models (the LinearNexus blocks, written here from their math):
  attention: pre-norm blocks of RMSNorm → causal softmax attention (q, k, v, o projections without
    bias, RoPE on q and k, F.scaled_dot_product_attention) → residual, RMSNorm → SwiGLU MLP →
    residual; final RMSNorm; LM head tied to the embedding.
  gated_deltanet: the same blocks with Gated DeltaNet as the mixer: q, k, v projections, causal
    depthwise short convolutions (width 4) + SiLU, L2-normalised q and k, β = σ(b_proj x),
    g = −exp(A_log)·softplus(a_proj x + dt_bias), the gated delta rule in a pure-PyTorch chunked
    (WY) form, per-head RMSNorm gated by silu(g_proj x), o_proj.
  hybrid: blocks of [gated_deltanet, gated_deltanet, attention] in turn (the hybrid-small preset:
    attention with 3 key/value heads for its 6 query heads).

Not run by CI: needs PyTorch (`pip install torch`) and a built `linearnexus`.
  python3 bench/compare_pytorch.py [--linearnexus build/linearnexus] [--steps 10] [--shapes ...]
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

# name: (mixer pattern, n_layer, d_model, seq_len, batch, kv heads of attention (0 = all))
SHAPES = {
    "attention-4x128": (["attention"], 4, 128, 64, 12, 0),
    "attention-6x384": (["attention"], 6, 384, 256, 16, 0),
    "gated_deltanet-4x128": (["gated_deltanet"], 4, 128, 64, 12, 0),
    "gated_deltanet-6x384": (["gated_deltanet"], 6, 384, 256, 16, 0),
    "hybrid-small": (["gated_deltanet", "gated_deltanet", "attention"], 9, 384, 512, 8, 3),
}
HEAD_DIM = 64
GDN_CHUNK = 32
VOCAB = 256


def swiglu_hidden(d, ratio=4.0):
    multiple = 256 if d >= 256 else 32
    return int(math.ceil(2.0 / 3.0 * ratio * d / multiple)) * multiple


def linearnexus_overrides(shape, precision):
    pattern, n_layer, d, T, B, kv = SHAPES[shape]
    heads = d // HEAD_DIM
    o = [
        f"model.name={shape}", f"model.vocab_size={VOCAB}", f"model.d_model={d}", f"model.n_layer={n_layer}",
        f"model.block_pattern=[{', '.join(pattern)}]", f"train.batch_size={B}", f"train.seq_len={T}",
        "optimizer.name=adamw", "optimizer.lr=1e-3", "optimizer.beta1=0.9", "optimizer.beta2=0.95",
        "optimizer.weight_decay=0.1", "train.clip=1.0"
    ]
    if "attention" in pattern:
        o += [f"model.layers.attention.num_heads={heads}", f"model.layers.attention.head_dim={HEAD_DIM}",
              f"model.layers.attention.num_kv_heads={kv}"]
    if "gated_deltanet" in pattern:
        o += [f"model.layers.gated_deltanet.num_heads={heads}", f"model.layers.gated_deltanet.head_dim={HEAD_DIM}",
              f"model.layers.gated_deltanet.chunk_size={GDN_CHUNK}"]
    if precision != "f32":
        o.append(f"train.precision={precision}")
    return o


def run_linearnexus(binary, shape, steps, warmup, threads, precision, ceilings):
    cmd = [binary, "bench", "train", "--json", f"--steps={steps}", f"--warmup={warmup}"]
    if not ceilings:
        cmd.append("--no-sgemm")
    cmd += linearnexus_overrides(shape, precision)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# PyTorch models

def build_torch_model(shape):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    pattern, n_layer, d, T, B, kv = SHAPES[shape]
    heads = d // HEAD_DIM

    class RMSNorm(nn.Module):
        def __init__(self, dim, eps=1e-6):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight

    def rope_tables(T, dim, theta=10000.0):
        inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        angles = torch.outer(torch.arange(T, dtype=torch.float32), inv)  # [T, dim/2]
        return angles.cos(), angles.sin()

    def rotate(x, cos, sin):  # x [B, H, T, Dh], rotate-half pairs (i, i + Dh/2)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.kv_heads = kv or heads
            self.q_proj = nn.Linear(d, heads * HEAD_DIM, bias=False)
            self.k_proj = nn.Linear(d, self.kv_heads * HEAD_DIM, bias=False)
            self.v_proj = nn.Linear(d, self.kv_heads * HEAD_DIM, bias=False)
            self.o_proj = nn.Linear(heads * HEAD_DIM, d, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q = self.q_proj(x).view(b, t, heads, HEAD_DIM).transpose(1, 2)
            k = self.k_proj(x).view(b, t, self.kv_heads, HEAD_DIM).transpose(1, 2)
            v = self.v_proj(x).view(b, t, self.kv_heads, HEAD_DIM).transpose(1, 2)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
            if self.kv_heads != heads:
                r = heads // self.kv_heads
                k, v = k.repeat_interleave(r, dim=1), v.repeat_interleave(r, dim=1)
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.o_proj(o.transpose(1, 2).reshape(b, t, heads * HEAD_DIM))

    def chunk_gated_delta_rule(q, k, v, beta, g, chunk):
        # q, k [B, H, T, K] (L2-normalised), v [B, H, T, V], beta, g [B, H, T] (g = log decay ≤ 0).
        # Within a chunk of C tokens, the delta rule's C rank-one updates are one WY product:
        # U = (I + tril(diag(β) K Kᵀ ⊙ Γ, −1))⁻¹ diag(β) (V − decayed reads of the state),
        # solved as a unit lower-triangular system; across chunks the state S [K, V] is carried.
        b, h, t, dk = q.shape
        dv = v.shape[-1]
        pad = (-t) % chunk
        if pad:
            q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
            beta, g = F.pad(beta, (0, pad)), F.pad(g, (0, pad))
        n = (t + pad) // chunk
        q = q * dk ** -0.5
        q, k, v = (x.reshape(b, h, n, chunk, x.shape[-1]) for x in (q, k, v))
        beta, g = beta.reshape(b, h, n, chunk), g.reshape(b, h, n, chunk)
        gc = g.cumsum(-1)  # [B, H, N, C] cumulative log decay within the chunk
        causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
        gamma = (gc.unsqueeze(-1) - gc.unsqueeze(-2)).masked_fill(~causal, float("-inf")).exp()  # [.., C, C]
        kb = k * beta.unsqueeze(-1)
        a = (kb @ k.transpose(-1, -2) * gamma).tril(-1)
        eye = torch.eye(chunk, dtype=q.dtype, device=q.device)
        inv = torch.linalg.solve_triangular(eye + a, eye.expand_as(a), upper=False, unitriangular=True)
        w = inv @ (kb * gc.exp().unsqueeze(-1))  # [.., C, K]: decayed keys the state is read through
        u = inv @ (v * beta.unsqueeze(-1))  # [.., C, V]
        qk = q @ k.transpose(-1, -2) * gamma  # causal, decayed
        state = q.new_zeros(b, h, dk, dv)
        outs = []
        for i in range(n):
            v_new = u[:, :, i] - w[:, :, i] @ state
            o = (q[:, :, i] * gc[:, :, i].exp().unsqueeze(-1)) @ state + qk[:, :, i] @ v_new
            outs.append(o)
            last = gc[:, :, i, -1:]
            state = state * last.exp().unsqueeze(-1) + (k[:, :, i] * (last - gc[:, :, i]).exp().unsqueeze(-1)).transpose(
                -1, -2) @ v_new
        o = torch.stack(outs, dim=2).reshape(b, h, n * chunk, dv)
        return o[:, :, :t]

    class ShortConv(nn.Module):
        def __init__(self, dim, width=4):
            super().__init__()
            self.conv = nn.Conv1d(dim, dim, width, groups=dim, padding=width - 1, bias=False)

        def forward(self, x):  # [B, T, C]
            t = x.shape[1]
            return F.silu(self.conv(x.transpose(1, 2))[..., :t].transpose(1, 2))

    class GatedDeltaNet(nn.Module):
        def __init__(self):
            super().__init__()
            kdim, vdim = heads * HEAD_DIM, heads * HEAD_DIM * 2
            self.q_proj, self.k_proj = nn.Linear(d, kdim, bias=False), nn.Linear(d, kdim, bias=False)
            self.v_proj = nn.Linear(d, vdim, bias=False)
            self.q_conv, self.k_conv, self.v_conv = ShortConv(kdim), ShortConv(kdim), ShortConv(vdim)
            self.a_proj, self.b_proj = nn.Linear(d, heads, bias=False), nn.Linear(d, heads, bias=False)
            self.A_log = nn.Parameter(torch.log(torch.empty(heads).uniform_(1, 16)))
            self.dt_bias = nn.Parameter(torch.zeros(heads))
            self.g_proj = nn.Linear(d, vdim, bias=False)
            self.o_norm = RMSNorm(HEAD_DIM * 2)
            self.o_proj = nn.Linear(vdim, d, bias=False)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            q = self.q_conv(self.q_proj(x)).view(b, t, heads, HEAD_DIM)
            k = self.k_conv(self.k_proj(x)).view(b, t, heads, HEAD_DIM)
            v = self.v_conv(self.v_proj(x)).view(b, t, heads, 2 * HEAD_DIM)
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
            beta = torch.sigmoid(self.b_proj(x))  # [B, T, H]
            g = -self.A_log.exp() * F.softplus(self.a_proj(x) + self.dt_bias)
            o = chunk_gated_delta_rule(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                       beta.transpose(1, 2), g.transpose(1, 2), GDN_CHUNK).transpose(1, 2)
            o = self.o_norm(o) * F.silu(self.g_proj(x).view(b, t, heads, 2 * HEAD_DIM))
            return self.o_proj(o.reshape(b, t, -1))

    class Block(nn.Module):
        def __init__(self, mixer):
            super().__init__()
            self.attn_norm, self.mlp_norm = RMSNorm(d), RMSNorm(d)
            self.mixer = Attention() if mixer == "attention" else GatedDeltaNet()
            hidden = swiglu_hidden(d)
            self.gate_proj = nn.Linear(d, hidden, bias=False)
            self.up_proj = nn.Linear(d, hidden, bias=False)
            self.down_proj = nn.Linear(hidden, d, bias=False)

        def forward(self, x, cos, sin):
            x = x + self.mixer(self.attn_norm(x), cos, sin)
            h = self.mlp_norm(x)
            return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(VOCAB, d)
            self.blocks = nn.ModuleList(Block(pattern[i % len(pattern)]) for i in range(n_layer))
            self.norm = RMSNorm(d)
            cos, sin = rope_tables(T, HEAD_DIM)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    nn.init.normal_(p, std=0.02)

        def forward(self, ids, targets):
            x = self.embed(ids)
            for blk in self.blocks:
                x = blk(x, self.cos, self.sin)
            logits = self.norm(x) @ self.embed.weight.t()
            return F.cross_entropy(logits.view(-1, VOCAB), targets.view(-1))

    return LM(), B, T


def run_torch(shape, steps, warmup, threads, precision):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, B, T = build_torch_model(shape)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    ids = torch.randint(0, VOCAB, (B, T))
    targets = torch.randint(0, VOCAB, (B, T))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(ids, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    loss = 0.0
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    times.sort()
    params = sum(p.numel() for p in model.parameters())
    return {"median_ms": times[len(times) // 2] * 1e3, "params": params, "last_loss": loss,
            "torch": torch.__version__}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--linearnexus", default="build/linearnexus")
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--precision", default="f32", choices=["f32", "bf16"],
                    help="bf16: LinearNexus train.precision=bf16 against PyTorch's CPU autocast to bfloat16")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times per shape and keep each side's fastest median "
                         "(machines shared with others are noisy)")
    ap.add_argument("--out", help="append one JSON object per shape to this file")
    a = ap.parse_args()
    ceilings = None
    for shape in a.shapes:
        lnx = run_linearnexus(a.linearnexus, shape, a.steps, a.warmup, a.threads, a.precision, ceilings is None)
        pt = run_torch(shape, a.steps, a.warmup, a.threads, a.precision)
        for _ in range(a.rounds - 1):
            lnx = min(lnx, run_linearnexus(a.linearnexus, shape, a.steps, a.warmup, a.threads, a.precision, False),
                      key=lambda r: r["median_ms"]) | {k: lnx[k] for k in lnx if k.endswith("_gflops") and k != "gflops"}
            pt = min(pt, run_torch(shape, a.steps, a.warmup, a.threads, a.precision), key=lambda r: r["median_ms"])
        if ceilings is None:
            ceilings = {k: lnx[k] for k in ("sgemm_gflops", "peak_f32_gflops", "peak_bf16_gflops")}
            print(f"{a.threads} threads, {a.precision}; ceilings in this run: sgemm {ceilings['sgemm_gflops']:.0f} "
                  f"GFLOP/s, f32 FMA peak {ceilings['peak_f32_gflops']:.0f}, bf16 dot-product peak "
                  f"{ceilings['peak_bf16_gflops']:.0f}")
            print(f"{'shape':<22} {'params':>8} {'LNX ms':>8} {'PyTorch ms':>11} {'speed-up':>9} {'LNX GFLOP/s':>12} "
                  f"{'PT GFLOP/s':>11}  LNX shares")
        ratio = pt["median_ms"] / lnx["median_ms"]
        step_gflop = lnx["gflops"] * lnx["median_ms"] / 1e3  # 3 × forward FLOPs of the step
        pt["gflops"] = step_gflop / (pt["median_ms"] / 1e3)
        shares = " ".join(f"{k} {100 * v:.0f}%" for k, v in lnx["shares"].items())
        print(f"{shape:<22} {lnx['params'] / 1e6:7.2f}M {lnx['median_ms']:8.1f} {pt['median_ms']:11.1f} "
              f"{ratio:8.2f}x {lnx['gflops']:12.0f} {pt['gflops']:11.0f}  {shares}", flush=True)
        if pt["params"] != lnx["params"]:
            print(f"  note: parameter counts differ (PyTorch {pt['params']}, LinearNexus {lnx['params']})")
        if a.out:
            with open(a.out, "a") as f:
                f.write(json.dumps({"shape": shape, "threads": a.threads, "precision": a.precision,
                                    "steps": a.steps, "rounds": a.rounds, "ceilings": ceilings, "linearnexus": lnx, "pytorch": pt,
                                    "speedup": ratio}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
