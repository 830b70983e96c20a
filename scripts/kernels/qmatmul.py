"""Quantized matmul (decode path): every GGML block format and MLX affine bit width, for each x dtype. Keys are
"<format>.<x>" ("q4_K.bf16") and "affine<bits>.<x>". The ci set builds one x dtype, enough to compile every decoder."""
from .common import FLOATS, SETS, instance

GGML = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"]
AFFINE_BITS = [2, 3, 4, 5, 6, 8]


def _name(f):
    """The DType's name (src/core/dtype.cpp): lower case except the K of the K formats."""
    return f.lower().replace("_k", "_K")


def _sets(tx):
    return SETS if tx == "f32" else ("default", "all")


def qmatmul():
    for tx, ctype in FLOATS.items():
        adds = [f't.add("qmatmul", "{_name(f)}.{tx}", &launch_qmatmul_ggml<DType::{f}, {ctype}>);' for f in GGML]
        yield instance(f"qmatmul_ggml_{tx}.cu", f"add_qmatmul_ggml_{tx}", ["cuda/kernel_table.h", "cuda/qmatmul.cuh"],
                       adds, _sets(tx))
        adds = [f't.add("qmatmul", "affine{b}.{tx}", &launch_qmatmul_affine<{b}, {ctype}>);' for b in AFFINE_BITS]
        yield instance(f"qmatmul_affine_{tx}.cu", f"add_qmatmul_affine_{tx}",
                       ["cuda/kernel_table.h", "cuda/qmatmul.cuh"], adds, _sets(tx))


FAMILIES = [qmatmul]
