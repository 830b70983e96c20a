"""Activation family: silu, gelu, gelu_tanh, sigmoid, softcap and the gated forms swiglu, geglu, geglu_tanh,
sigmoid_mul, keyed (x, y) over every pair of float dtypes; one launcher per pair dispatches on the function."""
from .common import FLOATS, instance

OPS = ("silu", "gelu", "gelu_tanh", "sigmoid", "softcap", "swiglu", "geglu", "geglu_tanh", "sigmoid_mul")


def activation():
    for tx in FLOATS:
        adds = []
        for ty in FLOATS:
            launcher = f"&launch_activation<{FLOATS[tx]}, {FLOATS[ty]}>"
            adds += [f't.add("{op}", "{tx}.{ty}", {launcher});' for op in OPS]
        yield instance(f"activation_{tx}.cu", f"add_activation_{tx}", ["cuda/activation.cuh", "cuda/kernel_table.h"],
                       adds)


FAMILIES = [activation]
