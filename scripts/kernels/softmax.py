"""Softmax family: softmax and log_softmax keyed (x, y) over every pair of float dtypes (the mask dtype is a run-time
field: it is read once per element and costs no template)."""
from .common import FLOATS, instance


def softmax():
    for tx in FLOATS:
        adds = []
        for ty in FLOATS:
            launcher = f"&launch_softmax<{FLOATS[tx]}, {FLOATS[ty]}>"
            adds += [f't.add("{op}", "{tx}.{ty}", {launcher});' for op in ("softmax", "log_softmax")]
        yield instance(f"softmax_{tx}.cu", f"add_softmax_{tx}", ["cuda/kernel_table.h", "cuda/softmax.cuh"], adds)


FAMILIES = [softmax]
