"""Norm family: rms_norm and the general row normalisation (add_rms_norm, rms_norm_add, group_rms_norm, layer_norm,
l2_norm)."""
from .common import BANNER, FLOATS, SETS, instance


def rms_norm():
    # Weight in x's dtype (the checkpoint's) or f32 (kept in full precision by some engines); every output dtype.
    for tx in FLOATS:
        fn = f"add_rms_norm_{tx}"
        lines = [BANNER, '#include "cuda/kernel_table.h"\n#include "cuda/norm.cuh"\n\nnamespace mlxn::cuda {\n\n',
                 f"void {fn}(KernelTable& t) {{\n"]
        for tw in sorted({tx, "f32"}):
            for ty in FLOATS:
                lines.append(f'  t.add("rms_norm", "{tx}.{tw}.{ty}", '
                             f'&launch_rms_norm<{FLOATS[tx]}, {FLOATS[tw]}, {FLOATS[ty]}>);\n')
        lines.append("}\n\n}  // namespace mlxn::cuda\n")
        yield f"rms_norm_{tx}.cu", fn, "".join(lines), SETS


# Ops of the general kernel keyed (x, w, y); l2_norm has no weight and is keyed (x, y). One launcher per dtype
# triple serves them all (the kind and the residual mode are run-time fields of the params).
WEIGHTED = ("add_rms_norm", "rms_norm_add", "group_rms_norm", "layer_norm")


def norm():
    # Same dtype rule as rms_norm: w (and b) in x's dtype or f32; every output dtype. r and h take x's dtype.
    for tx in FLOATS:
        adds = []
        for tw in sorted({tx, "f32"}):
            for ty in FLOATS:
                launcher = f"&launch_norm<{FLOATS[tx]}, {FLOATS[tw]}, {FLOATS[ty]}>"
                adds += [f't.add("{op}", "{tx}.{tw}.{ty}", {launcher});' for op in WEIGHTED]
                if tw == tx:
                    adds.append(f't.add("l2_norm", "{tx}.{ty}", {launcher});')
        yield instance(f"norm_{tx}.cu", f"add_norm_{tx}", ["cuda/kernel_table.h", "cuda/norm.cuh"], adds)


def add_rms_norm_wide_r():
    # add_rms_norm of an f16 / bf16 block output r into an f32 residual stream (x, h f32; w f32, the models' norm
    # weights): keyed (x, w, y, r). A separate file so the same-dtype instances above are compiled unchanged.
    adds = []
    for tr in ("f16", "bf16"):
        for ty in FLOATS:
            adds.append(f't.add("add_rms_norm", "f32.f32.{ty}.{tr}", '
                        f'&launch_norm<float, float, {FLOATS[ty]}, {FLOATS[tr]}>);')
    yield instance("norm_f32_wide_r.cu", "add_norm_f32_wide_r", ["cuda/kernel_table.h", "cuda/norm.cuh"], adds)


FAMILIES = [rms_norm, norm, add_rms_norm_wide_r]
