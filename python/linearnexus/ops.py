"""Every registered mechanism as a function: ``linearnexus.ops.<mechanism>``.

The functions are generated at import from the C++ registry (``linearnexus list mechanisms``),
so a mechanism registered in C++ appears here with no Python written for it. Each takes the
mechanism's inputs (required ones positionally, in the registry's order; optional ones by
keyword), the common options and the mechanism's own, and returns ``(o, final_state)``:

    o, state = linearnexus.ops.gated_delta_rule(q, k, v, beta, g, initial_state=None,
                                                cu_seqlens=None, form="chunk", chunk_size=64)

Arrays are NumPy arrays or PyTorch tensors (float32 or float64, C-contiguous, on the CPU),
shared with the C++ kernels without copies. Outputs are of the inputs' kind. PyTorch tensors
that require gradients make the call a node of ``torch.autograd`` whose backward is the
mechanism's own C++ backward. A mechanism without an ``[N, H, K, V]`` state
(``softmax_attention``) returns its resumable state, a dict ``{"k_cache", "v_cache"}``, in
place of ``final_state``.
"""

from __future__ import annotations

import json
import keyword
import sys

from . import _core

_COMMON = ("cu_seqlens", "form", "chunk_size", "scale", "output_final_state")


def _registry():
    return {m["name"]: m for m in json.loads(_core.mechanisms_json())}


def _torch():
    """The torch module if the program imported it (this package never imports it itself)."""
    return sys.modules.get("torch")


def _numpy_view(x):
    """A PyTorch tensor as a NumPy array over its memory when it is one the kernels take (CPU;
    float32, float64, int32, int64): a third of the cost of torch's DLPack export. Anything
    else goes on as it is, for the C++ side's error message."""
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor) and x.is_cpu and x.dtype in _torch_dtypes(torch):
        return (x.detach() if x.requires_grad else x).numpy()
    return x


def _torch_dtypes(torch, cache={}):  # noqa: B006 (a cache on purpose)
    if not cache:
        cache["dtypes"] = frozenset((torch.float32, torch.float64, torch.int32, torch.int64))
    return cache["dtypes"]


def _autograd_function():
    """The torch.autograd.Function over a recorded C++ call (made once torch is imported)."""
    global _MechanismFunction
    if _MechanismFunction is not None:
        return _MechanismFunction
    torch = _torch()

    from torch.autograd.function import once_differentiable

    class MechanismFunction(torch.autograd.Function):
        # forward(ctx, call, names, extra_names, *tensors) -> (o, *states): the tensors are
        # there for autograd to track, call holds what _core.record_mechanism is given; states
        # are final_state (if any), then the extra state in the order of the names forward
        # appends to extra_names.
        @staticmethod
        def forward(ctx, call, names, extra_names, *tensors):
            # call: record_mechanism's other arguments, the inputs' NumPy views among them
            name, form, views, cu_seqlens, scale, chunk_size, output_final_state, options = call
            o, final_state, extra, recorded = _core.record_mechanism(
                name, form, views, cu_seqlens, scale, chunk_size, output_final_state, options
            )
            ctx.recorded = recorded
            ctx.has_final = final_state is not None
            ctx.extra_names = sorted(extra)
            ctx.input_names = names
            ctx.set_materialize_grads(False)
            extra_names.extend(ctx.extra_names)
            states = ([final_state] if final_state is not None else []) + [extra[n] for n in ctx.extra_names]
            outputs = tuple(torch.from_numpy(a) for a in [o, *states])
            # The C++ graph reads these tensors' memory in backward: saving them lets torch
            # refuse a backward after one of them was modified in place.
            ctx.save_for_backward(*(t for t in tensors if isinstance(t, torch.Tensor)), *outputs)
            return outputs

        @staticmethod
        @once_differentiable  # the C++ backward is not itself differentiable: no double backward
        def backward(ctx, d_o, *d_states):
            ctx.saved_tensors  # noqa: B018 (raises if an input or output changed in place)
            d_states = list(d_states)
            d_final = d_states.pop(0) if ctx.has_final else None
            view = lambda g: None if g is None else _numpy_view(g.contiguous())  # noqa: E731
            d_extra = {n: view(g) for n, g in zip(ctx.extra_names, d_states) if g is not None}
            grads = ctx.recorded.backward(view(d_o), view(d_final), d_extra)
            wanted = ctx.needs_input_grad[3:]  # after call, names, extra_names
            return (
                None,
                None,
                None,
                *(torch.from_numpy(grads[n]) if want else None for n, want in zip(ctx.input_names, wanted)),
            )

    _MechanismFunction = MechanismFunction
    return MechanismFunction


_MechanismFunction = None


def _call(name, has_state, arrays, cu_seqlens, form, chunk_size, scale, output_final_state, options):
    arrays = {k: v for k, v in arrays.items() if v is not None}
    torch = _torch()
    if torch is None or not any(isinstance(a, torch.Tensor) for a in arrays.values()):
        o, final_state, extra, _ = _core.run_mechanism(
            name, form, arrays, cu_seqlens, scale, chunk_size, output_final_state, options
        )
        return o, final_state if has_state else (extra if output_final_state else None)

    # One pass over the arguments: the tensors' NumPy views, and whether one wants gradients.
    Tensor, dtypes, views, wants_grad = torch.Tensor, _torch_dtypes(torch), {}, False
    for k, v in arrays.items():
        if isinstance(v, Tensor):
            if v.requires_grad:
                wants_grad = True
                v = v.detach()
            if v.is_cpu and v.dtype in dtypes:
                v = v.numpy()
        views[k] = v
    cu_seqlens = _numpy_view(cu_seqlens)
    if wants_grad and torch.is_grad_enabled():
        extra_names = []
        call = (name, form, views, cu_seqlens, scale, chunk_size, output_final_state, options)
        outs = _autograd_function().apply(call, tuple(arrays), extra_names, *arrays.values())
        o, states = outs[0], list(outs[1:])
        if not output_final_state:
            return o, None
        return o, states[0] if has_state else dict(zip(extra_names, states))

    o, final_state, extra, _ = _core.run_mechanism(
        name, form, views, cu_seqlens, scale, chunk_size, output_final_state, options
    )
    o = torch.from_numpy(o)
    if has_state:
        return o, None if final_state is None else torch.from_numpy(final_state)
    return o, {k: torch.from_numpy(v) for k, v in extra.items()} if output_final_state else None


def _make(mechanism: dict):
    """The function of one mechanism, compiled from its declaration so that a call costs what
    a plain Python call does (binding arguments through inspect.Signature took 20 µs)."""
    name = mechanism["name"]
    inputs = mechanism["inputs"]
    own = [o["name"] for o in mechanism["options"]]
    for n in [name] + [i["name"] for i in inputs] + own:
        if not n.isidentifier() or keyword.iskeyword(n) or n in _COMMON:
            raise ValueError(f"[linearnexus.ops] {name}: '{n}' cannot be a Python argument name")
    required = [i["name"] for i in inputs if i["required"]]
    optional = [i["name"] for i in inputs if not i["required"]]
    params = required + ["*"] + [f"{n}=None" for n in optional]
    params += ["cu_seqlens=None", "form='chunk'", "chunk_size=64", "scale=None", "output_final_state=True"]
    params += [f"{o}=None" for o in own]
    arrays = ", ".join(f"{n!r}: {n}" for n in required + optional)
    options = ", ".join(f"({o!r}, {o})" for o in own)
    source = (
        f"def {name}({', '.join(params)}):\n"
        f"    return _call({name!r}, {mechanism['state'].startswith('[')}, {{{arrays}}}, cu_seqlens, form,\n"
        f"                 chunk_size, scale, output_final_state, {{k: v for k, v in ({options}{',' if own else ''}) if v is not None}})\n"
    )
    namespace = {"_call": _call}
    exec(compile(source, f"<linearnexus.ops.{name}>", "exec"), namespace)
    op = namespace[name]
    op.__module__ = __name__
    lines = [mechanism["description"] + ".", "", "    " + mechanism["equation"], "", "Inputs:"]
    lines += [
        f"    {i['name']} {i['shape']}{'' if i['required'] else ' (optional)'}: {i['description']}" for i in inputs
    ]
    lines += ["", f"Forms: {', '.join(mechanism['forms'])}. State: {mechanism['state']}."]
    if mechanism["options"]:
        lines += ["", "Own options (None: the default):"]
        lines += [f"    {o['name']} ({o['type']}, default {o['default']}): {o['help']}" for o in mechanism["options"]]
    lines += ["", "Returns (o [B,T,H,V], final_state)."]
    op.__doc__ = "\n".join(lines)
    return op


def mechanisms() -> list[str]:
    """Names of the registered mechanisms."""
    return sorted(_registry())


def describe(name: str) -> dict:
    """A mechanism's declaration: forms, inputs with shapes, options, state."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"[linearnexus.ops] no mechanism '{name}'; registered: {', '.join(sorted(registry))}")
    return registry[name]


for _m in _registry().values():
    globals()[_m["name"]] = _make(_m)
del _m

__all__ = ["mechanisms", "describe", *mechanisms()]
