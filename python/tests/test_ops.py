"""linearnexus.ops: generated from the registry, equal to the command-line tool, errors."""

import json

import numpy as np
import pytest

import linearnexus as lnx

MECHANISMS = lnx.ops.mechanisms()
SIZES = dict(B=2, T=37, H=2, K=8, V=16)


def inputs_of(name, dtype="float32", seed=1, with_state=True, **sizes):
    s = {**SIZES, **sizes}
    arrays = lnx._core.make_inputs(name, s["B"], s["T"], s["H"], s["K"], s["V"], seed=seed, dtype=dtype)
    if with_state and lnx.ops.describe(name)["state"].startswith("["):
        rng = np.random.default_rng(seed)
        arrays["initial_state"] = rng.standard_normal((s["B"], s["H"], s["K"], s["V"])).astype(dtype)
    return arrays


def call(name, arrays, **kwargs):
    return getattr(lnx.ops, name)(**arrays, **kwargs)


def test_one_function_per_registered_mechanism(cli):
    listed = [m["name"] for m in json.loads(cli("list", "mechanisms", "--format", "json"))["mechanisms"]]
    assert sorted(listed) == MECHANISMS
    for name in listed:
        assert callable(getattr(lnx.ops, name))


def test_signature_follows_the_declaration():
    import inspect

    params = inspect.signature(lnx.ops.mamba).parameters
    # required inputs first and positional, in the registry's order; optional ones by keyword
    assert list(params)[:5] == ["x", "dt", "A_log", "B", "C"]
    assert params["dt_bias"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["form"].default == "chunk" and params["chunk_size"].default == 64
    assert "use_qk_l2norm" in inspect.signature(lnx.ops.gated_delta_rule).parameters
    assert "A = -exp(A_log)" in lnx.ops.mamba2.__doc__


@pytest.mark.parametrize("form", ["chunk", "recurrent"])
@pytest.mark.parametrize("name", MECHANISMS)
def test_outputs_equal_the_command_line_tool(name, form, cli, tmp_path):
    arrays = inputs_of(name)
    o, state = call(name, arrays, form=form, chunk_size=16)
    lnx.save_safetensors(tmp_path / "in.safetensors", arrays)
    cli("op", name, "--form", form, "--chunk-size", 16, "-i", tmp_path / "in.safetensors", "-o", tmp_path / "out.safetensors")
    expected, _ = lnx.load_safetensors(tmp_path / "out.safetensors")
    np.testing.assert_array_equal(o, expected["o"])
    if "final_state" in expected:
        np.testing.assert_array_equal(state, expected["final_state"])
    else:
        assert sorted(state) == sorted(k for k in expected if k != "o")
        for k, v in state.items():
            np.testing.assert_array_equal(v, expected[k])


def test_packed_sequences_equal_separate_calls():
    arrays = inputs_of("gated_delta_rule", dtype="float64", with_state=False, B=1, T=40)
    cu = np.array([0, 13, 40], dtype=np.int64)
    o, state = lnx.ops.gated_delta_rule(**arrays, cu_seqlens=cu)
    assert state.shape == (2, 2, 8, 16)
    for n, (a, b) in enumerate(zip(cu[:-1], cu[1:])):
        part = {k: np.ascontiguousarray(v[:, a:b]) for k, v in arrays.items()}
        o_n, s_n = lnx.ops.gated_delta_rule(**part)
        np.testing.assert_allclose(o[:, a:b], o_n, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(state[n], s_n[0], rtol=1e-12, atol=1e-12)


def test_split_and_resume_equals_one_call():
    arrays = inputs_of("gla", dtype="float64")
    o, state = lnx.ops.gla(**arrays)
    first = {k: np.ascontiguousarray(v[:, :20]) if k != "initial_state" else v for k, v in arrays.items()}
    rest = {k: np.ascontiguousarray(v[:, 20:]) for k, v in arrays.items() if k != "initial_state"}
    o1, s1 = lnx.ops.gla(**first)
    o2, s2 = lnx.ops.gla(**rest, initial_state=s1)
    np.testing.assert_allclose(np.concatenate([o1, o2], axis=1), o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s2, state, rtol=1e-10, atol=1e-12)


def test_own_options_and_scale_reach_the_kernel():
    arrays = inputs_of("delta_rule", dtype="float64")
    plain, _ = lnx.ops.delta_rule(**arrays)
    normed, _ = lnx.ops.delta_rule(**arrays, use_qk_l2norm=True)
    scaled, _ = lnx.ops.delta_rule(**arrays, scale=0.5)
    assert not np.allclose(plain, normed)
    assert not np.allclose(plain, scaled)
    o, state = lnx.ops.delta_rule(**arrays, output_final_state=False)
    assert state is None
    np.testing.assert_array_equal(o, plain)


def test_outputs_outlive_everything_else():
    arrays = inputs_of("retention")
    o, state = lnx.ops.retention(**arrays)
    copy = o.copy()
    del arrays
    import gc

    gc.collect()
    np.testing.assert_array_equal(o, copy)
    assert o.flags["C_CONTIGUOUS"] and o.dtype == np.float32


# ---- errors: Python exceptions carrying the library's message ----


def test_wrong_dtype_names_the_input():
    arrays = inputs_of("gla")
    arrays["q"] = arrays["q"].astype(np.float16)
    with pytest.raises(TypeError, match=r"q is float16: expected float32"):
        lnx.ops.gla(**arrays)
    assert issubclass(lnx.DTypeError, TypeError)


def test_non_contiguous_input_is_refused():
    arrays = inputs_of("gla")
    arrays["v"] = np.asfortranarray(arrays["v"])
    with pytest.raises(ValueError, match=r"v \[2,37,2,16\] is not C-contiguous"):
        lnx.ops.gla(**arrays)


def test_shape_mismatch_is_a_shape_error():
    arrays = inputs_of("gla")
    arrays["k"] = np.ascontiguousarray(arrays["k"][:, :30])
    with pytest.raises(lnx.ShapeError, match=r"k"):
        lnx.ops.gla(**arrays)
    assert issubclass(lnx.ShapeError, ValueError)


def test_bad_arguments():
    arrays = inputs_of("gla")
    with pytest.raises(ValueError, match=r"form"):
        lnx.ops.gla(**arrays, form="fast")
    with pytest.raises(ValueError, match=r"chunk"):
        lnx.ops.gla(**arrays, chunk_size=24)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'window'"):
        lnx.ops.gla(**arrays, window=4)
    with pytest.raises(TypeError, match=r"missing 1 required positional argument: 'g'"):
        lnx.ops.gla(arrays["q"], arrays["k"], arrays["v"])
    with pytest.raises(ValueError, match=r"q is a list: expected a NumPy array or a PyTorch tensor"):
        lnx.ops.gla(**{**arrays, "q": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"no mechanism 'nope'"):
        lnx.ops.describe("nope")


def test_safetensors_round_trip_and_io_error(tmp_path):
    data = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": np.ones((4,), np.float64)}
    lnx.save_safetensors(tmp_path / "t.safetensors", data, {"kind": "test"})
    back, meta = lnx.load_safetensors(tmp_path / "t.safetensors")
    assert meta == {"kind": "test"}
    for k in data:
        np.testing.assert_array_equal(back[k], data[k])
        assert back[k].dtype == data[k].dtype
    with pytest.raises(OSError, match=r"missing\.safetensors"):
        lnx.load_safetensors(tmp_path / "missing.safetensors")


def test_arrays_cross_without_copies():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    assert lnx._core._data_address(x) == x.ctypes.data
    view = x[1]  # a contiguous view at an offset: still no copy
    assert lnx._core._data_address(view) == view.ctypes.data
    # outputs share the library's memory: a model's parameters, written through NumPy
    model = lnx.Model.from_preset("gla-tiny")
    ids = np.arange(8, dtype=np.int64).reshape(1, 8)
    before = model.loss(ids, ids)
    model.parameters()["embeddings.weight"][:] = 0
    assert model.loss(ids, ids) != before


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_every_supported_dtype_crosses(dtype, tmp_path):
    x = (np.arange(6) * 3).astype(dtype).reshape(2, 3)
    assert lnx._core._data_address(x) == x.ctypes.data
    lnx.save_safetensors(tmp_path / "x.safetensors", {"x": x})
    back, _ = lnx.load_safetensors(tmp_path / "x.safetensors")
    assert back["x"].dtype == x.dtype
    np.testing.assert_array_equal(back["x"], x)


def test_outputs_never_alias_the_inputs():
    # softmax_attention's KV cache starts as k and v themselves: the arrays returned are copies
    arrays = inputs_of("softmax_attention")
    for a in arrays.values():
        a.flags.writeable = False  # read-only inputs are taken (never written)
    o, cache = lnx.ops.softmax_attention(**arrays)
    cache["k_cache"][:] = 0
    assert np.abs(arrays["k"]).sum() > 0


def test_empty_arrays_cross():
    e = np.zeros((2, 0, 3), np.float32)
    assert lnx._core._data_address(e) is not None


def test_library_errors_are_one_family():
    for cls in (lnx.ShapeError, lnx.DTypeError, lnx.ValueError, lnx.IOError, lnx.AutogradError):
        assert issubclass(cls, lnx.Error)
    with pytest.raises(lnx.Error):
        lnx.ops.gla(**{**inputs_of("gla"), "form": "fast"})
