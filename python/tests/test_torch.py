"""The PyTorch bridge: tensors in and out, torch.autograd through the C++ backward."""

import numpy as np
import pytest

import linearnexus as lnx

torch = pytest.importorskip("torch")  # scripts/test_python.sh checks it is installed before pytest

MECHANISMS = lnx.ops.mechanisms()


def torch_inputs(name, dtype=torch.float64, seed=3, with_state=True, B=1, T=11, H=2, K=4, V=3):
    arrays = lnx._core.make_inputs(name, B, T, H, K, V, seed=seed, dtype="float64")
    tensors = {k: torch.from_numpy(v).to(dtype) for k, v in arrays.items()}
    if with_state and lnx.ops.describe(name)["state"].startswith("["):
        tensors["initial_state"] = torch.randn(B, H, K, V, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    return tensors


def test_tensors_in_tensors_out_without_copies():
    x = torch_inputs("gla", dtype=torch.float32)
    o, state = lnx.ops.gla(**x)
    assert isinstance(o, torch.Tensor) and o.dtype == torch.float32 and o.shape == (1, 11, 2, 3)
    assert isinstance(state, torch.Tensor) and state.shape == (1, 2, 4, 3)
    # the same numbers as the NumPy path
    o_np, _ = lnx.ops.gla(**{k: v.numpy() for k, v in x.items()})
    np.testing.assert_array_equal(o.numpy(), o_np)


@pytest.mark.parametrize("name", MECHANISMS)
def test_gradcheck_chunk_form(name):
    x = torch_inputs(name)
    names = list(x)
    leaves = [x[n].clone().requires_grad_() for n in names]

    def f(*tensors):
        o, state = getattr(lnx.ops, name)(**dict(zip(names, tensors)), form="chunk", chunk_size=4)
        return (o, state) if isinstance(state, torch.Tensor) else (o, *state.values())

    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_packed_sequences():
    x = torch_inputs("gated_delta_rule", with_state=False, T=14)
    cu = torch.tensor([0, 5, 14], dtype=torch.int32)
    state0 = torch.randn(2, 2, 4, 3, dtype=torch.float64)
    names = [*x, "initial_state"]
    leaves = [t.clone().requires_grad_() for t in [*x.values(), state0]]

    def f(*tensors):
        return lnx.ops.gated_delta_rule(**dict(zip(names, tensors)), cu_seqlens=cu, chunk_size=4)

    assert torch.autograd.gradcheck(f, leaves, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradients_equal_the_command_line_tool(cli, tmp_path):
    x = torch_inputs("kda", dtype=torch.float32, T=37, K=8, V=16)
    do = torch.randn(1, 37, 2, 16)
    dfinal = torch.randn(1, 2, 8, 16)
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    o, state = lnx.ops.kda(**leaves, chunk_size=16)
    torch.autograd.backward([o, state], [do, dfinal])
    files = {k: v.numpy() for k, v in x.items()} | {"do": do.numpy(), "dfinal_state": dfinal.numpy()}
    lnx.save_safetensors(tmp_path / "in.safetensors", files)
    cli("op", "kda", "--chunk-size", 16, "-i", tmp_path / "in.safetensors", "-o", tmp_path / "out.safetensors")
    expected, _ = lnx.load_safetensors(tmp_path / "out.safetensors")
    np.testing.assert_array_equal(o.detach().numpy(), expected["o"])
    for k, leaf in leaves.items():
        np.testing.assert_array_equal(leaf.grad.numpy(), expected["d" + k])


def test_drops_into_a_pytorch_model():
    # A PyTorch layer around the kernel: gradients reach the torch parameters through it.
    torch.manual_seed(0)
    proj = torch.nn.Linear(8, 3 * 2 * 4)
    x = torch.randn(1, 9, 8)
    q, k, v = proj(x).view(1, 9, 3, 2, 4).unbind(2)
    q, k, v = (t.contiguous() for t in (q, k, v))
    o, _ = lnx.ops.retention(q, k, v)
    o.square().sum().backward()
    assert proj.weight.grad is not None and torch.isfinite(proj.weight.grad).all()
    assert proj.weight.grad.abs().sum() > 0


def test_only_a_gradient_of_o():
    x = torch_inputs("simple_gla")
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    o, state = lnx.ops.simple_gla(**leaves)
    o.sum().backward()  # final_state unused: its gradient is None, not zeros
    ref = {k: v.clone().requires_grad_() for k, v in x.items()}
    o2, state2 = lnx.ops.simple_gla(**ref)
    (o2.sum() + 0 * state2.sum()).backward()
    for k in leaves:
        torch.testing.assert_close(leaves[k].grad, ref[k].grad, rtol=0, atol=0)


def test_torch_errors():
    x = torch_inputs("gla", dtype=torch.float32)
    with pytest.raises(ValueError, match=r"not C-contiguous"):
        lnx.ops.gla(**{**x, "q": x["q"].transpose(1, 2).contiguous().transpose(1, 2)})
    with pytest.raises(TypeError, match=r"q is bfloat16"):
        lnx.ops.gla(**{**x, "q": x["q"].to(torch.bfloat16)})
    with pytest.raises(ValueError, match=r"q is on device meta: expected the CPU"):
        lnx.ops.gla(**{**x, "q": torch.empty(1, 11, 2, 4, device="meta")})


def test_torch_tensors_cross_without_copies():
    t = torch.randn(3, 5, dtype=torch.float64)
    assert lnx._core._data_address(lnx.ops._numpy_view(t)) == t.data_ptr()
    assert lnx._core._data_address(t) == t.data_ptr()  # through DLPack too
    o, state = lnx.ops.retention(*(torch.randn(1, 8, 2, 4) for _ in range(3)))
    assert o.is_contiguous() and state.dtype == torch.float32


def test_numpy_and_torch_inputs_mixed():
    x = torch_inputs("gla")
    q = x["q"].clone().requires_grad_()
    o, state = lnx.ops.gla(q, x["k"].numpy(), x["v"].numpy(), x["g"].numpy())  # only q is a tensor
    (o.sum() + state.sum()).backward()
    assert q.grad is not None and q.grad.shape == q.shape


def test_in_place_change_before_backward_is_refused():
    x = torch_inputs("retention")
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    v = leaves["v"] * 1.0  # a non-leaf input
    o, _ = lnx.ops.retention(leaves["q"], leaves["k"], v)
    v.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        o.sum().backward()


def test_no_double_backward():
    x = torch_inputs("retention")
    q = x["q"].clone().requires_grad_()
    o, _ = lnx.ops.retention(q, x["k"], x["v"])
    (g,) = torch.autograd.grad(o.sum(), q, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
