"""Row dequantizer (src/cuda/dequant.cuh): every GGML weight format and MLX affine bit width to each float output
dtype, keys "<format>.<out>" ("q4_K.bf16") and "affine<bits>.<out>"; the same decoders serve the embedding lookup of
block-type tables (keys "<format>.<out>" of op "embedding"). The ci set builds f32 (the bit-exact tests) and bf16
(the prefill matmul's scratch dtype)."""
from .common import FLOATS, instance
from .qmatmul import AFFINE_BITS, GGML, _name


def _sets(to):
    return ("ci", "default", "all") if to in ("f32", "bf16") else ("default", "all")


def dequant():
    for to, ctype in FLOATS.items():
        adds = [f't.add("dequantize", "{_name(f)}.{to}", &launch_dequant_ggml<DType::{f}, {ctype}>);' for f in GGML]
        adds += [f't.add("dequantize", "affine{b}.{to}", &launch_dequant_affine<{b}, {ctype}>);' for b in AFFINE_BITS]
        adds += [f't.add("embedding", "{_name(f)}.{to}", &launch_embedding_ggml<DType::{f}, {ctype}>);' for f in GGML]
        yield instance(f"dequant_{to}.cu", f"add_dequant_{to}", ["cuda/dequant.cuh", "cuda/kernel_table.h"], adds,
                       _sets(to))


FAMILIES = [dequant]
