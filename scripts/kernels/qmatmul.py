"""Quantized matmul (decode path): every GGML block format and MLX affine bit width, for each x dtype, and the
expert-routed matmul. Keys are "<format>.<x>" ("q4_K.bf16") and "affine<bits>.<x>"; matmul_experts keys are
"<w>.<x>" with w a GGML format or a float type.

The int8 kernel (src/cuda/qgemv.cuh) does not depend on x's dtype (it converts x at run time while quantizing it), so
it is instantiated once per weight format in qgemv_<format>.cu and declared extern in the per-x-dtype launcher files;
those instantiate only the tensor-core kernel (qmatmul.cuh) that still takes M > 4. The ci set builds one x dtype,
enough to compile every decoder of both kernels."""
from .common import BANNER, FLOATS, SETS

GGML = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL", "IQ4_XS", "MXFP4"]
AFFINE_BITS = [2, 3, 4, 5, 6, 8]
SCALES = ["float", "__half", "__nv_bfloat16"]


def _name(f):
    """The DType's name (src/core/dtype.cpp): lower case except the K of the K formats."""
    return f.lower().replace("_k", "_K")


def _sets(tx):
    return SETS if tx == "f32" else ("default", "all")


def _ggml_t(f):
    return f"qgv::Ggml<DType::{f}>"


def _affine_t(b, ts):
    return f"qgv::Affine<{b}, {ts}>"


def _launch(ftype, extern):
    return (f"{'extern ' if extern else ''}template Status qgv::launch<{ftype}>(const kern::QMatmulParams&, "
            f"const {ftype}&, cudaStream_t);")


def _file(fn, body_top, adds):
    text = [BANNER, '#include "cuda/kernel_table.h"\n#include "cuda/qgemv.cuh"\n\nnamespace mlxn::cuda {\n\n']
    text += [f"{line}\n" for line in body_top]
    if body_top:
        text.append("\n")
    text.append(f"void {fn}(KernelTable&{' t' if adds else ''}) {{\n")
    text += [f"  {a}\n" for a in adds]
    text.append("}\n\n}  // namespace mlxn::cuda\n")
    return "".join(text)


def qmatmul():
    for tx, ctype in FLOATS.items():
        fn = f"add_qmatmul_ggml_{tx}"
        adds = [f't.add("qmatmul", "{_name(f)}.{tx}", &launch_qmatmul_ggml<DType::{f}, {ctype}>);' for f in GGML]
        yield f"qmatmul_ggml_{tx}.cu", fn, _file(fn, [_launch(_ggml_t(f), True) for f in GGML], adds), _sets(tx)
        fn = f"add_qmatmul_affine_{tx}"
        adds = [f't.add("qmatmul", "affine{b}.{tx}", &launch_qmatmul_affine<{b}, {ctype}>);' for b in AFFINE_BITS]
        externs = [_launch(_affine_t(b, ts), True) for b in AFFINE_BITS for ts in SCALES]
        yield f"qmatmul_affine_{tx}.cu", fn, _file(fn, externs, adds), _sets(tx)


def qgemv():
    # One file per weight format (they build in parallel); each also registers the expert-routed matmul of its
    # format for every x dtype (one launcher: the kernel converts x at run time).
    for f in GGML:
        fn = f"add_qgemv_{f.lower()}"
        adds = [f't.add("matmul_experts", "{_name(f)}.{tx}", &launch_experts_ggml<DType::{f}>);' for tx in FLOATS]
        yield f"qgemv_{f.lower()}.cu", fn, _file(fn, [_launch(_ggml_t(f), False)], adds), SETS
    for b in AFFINE_BITS:
        fn = f"add_qgemv_affine{b}"
        yield (f"qgemv_affine{b}.cu", fn, _file(fn, [_launch(_affine_t(b, ts), False) for ts in SCALES], []), SETS)
    # Expert-routed matmul with float weights, every (w, x) pair.
    fn = "add_matmul_experts_dense"
    adds = [f't.add("matmul_experts", "{tw}.{tx}", &launch_experts_dense<{FLOATS[tw]}, {FLOATS[tx]}>);'
            for tw in FLOATS for tx in FLOATS]
    yield "matmul_experts_dense.cu", fn, _file(fn, [], adds), SETS


def qgemm_i8():
    # The int8 tensor-core kernel for 5 <= M <= 16 (src/cuda/qgemm_i8.cuh): like the int8 kernel above it does not
    # depend on x's dtype. One file per weight format, called from the launchers of qmatmul_*.cu; the add function is
    # empty (nothing to register) but keeps the file in the kernel table's list like the others.
    def launch(ftype):
        return (f"template Status qg8::launch<{ftype}>(const kern::QMatmulParams&, const {ftype}&, "
                f"cudaStream_t);")

    def text(fn, body):
        return "".join([BANNER, '#include "cuda/kernel_table.h"\n#include "cuda/qgemm_i8.cuh"\n\n'
                        "namespace mlxn::cuda {\n\n"] + [f"{line}\n" for line in body] +
                       [f"\nvoid {fn}(KernelTable&) {{}}\n\n}}  // namespace mlxn::cuda\n"])

    for f in GGML:
        fn = f"add_qgemm_i8_{f.lower()}"
        yield f"qgemm_i8_{f.lower()}.cu", fn, text(fn, [launch(_ggml_t(f))]), SETS
    for b in AFFINE_BITS:
        fn = f"add_qgemm_i8_affine{b}"
        yield f"qgemm_i8_affine{b}.cu", fn, text(fn, [launch(_affine_t(b, ts)) for ts in SCALES]), SETS


FAMILIES = [qmatmul, qgemv, qgemm_i8]
