"""RoPE family: rope and the fused per-head RMS norm + rope, one launcher per dtype (x = out); the norm weight's
dtype (x's or f32) is read at run time, the layouts (Normal / Neox) and units per thread are kernel variants inside
the launcher."""
from .common import FLOATS, SETS, instance


def rope():
    for t in FLOATS:
        fn = f"add_rope_{t}"
        adds = [f't.add("rope", "{t}", &launch_rope<{FLOATS[t]}>);',
                f't.add("rope_head_norm", "{t}", &launch_rope<{FLOATS[t]}>);']
        yield instance(f"rope_{t}.cu", fn, ["cuda/kernel_table.h", "cuda/rope.cuh"], adds, SETS)


FAMILIES = [rope]
