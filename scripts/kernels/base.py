"""Families of the foundation and dense matmul: elementwise, same-dtype copies, decode-path matmul (rms_norm moved
to norm.py)."""
import itertools

from .common import BANNER, FLOATS, SETS


def elementwise():
    # Binary ops: every (a, b, out) mix of f32/f16/bf16 (add and mul share a launcher that dispatches on the op);
    # unary ops: every (x, out) pair; copies that convert between two float types (same-dtype copies are bit copies,
    # see copy_bits below).
    for ta in FLOATS:
        fn = f"add_elementwise_{ta}"
        lines = [BANNER, '#include "cuda/elementwise.cuh"\n#include "cuda/kernel_table.h"\n\n',
                 "namespace mlxn::cuda {\n\n", f"void {fn}(KernelTable& t) {{\n"]
        for tb, to in itertools.product(FLOATS, FLOATS):
            for op in ("add", "mul"):
                lines.append(f'  t.add("{op}", "{ta}.{tb}.{to}", '
                             f'&launch_binary<{FLOATS[ta]}, {FLOATS[tb]}, {FLOATS[to]}>);\n')
        for to in FLOATS:
            for op in ("scale", "add_scalar", "cast"):
                lines.append(f'  t.add("{op}", "{ta}.{to}", &launch_unary<{FLOATS[ta]}, {FLOATS[to]}>);\n')
            if to != ta:
                lines.append(f'  t.add("copy", "{ta}.{to}", &launch_convert_copy<{FLOATS[ta]}, {FLOATS[to]}>);\n')
        lines.append("}\n\n}  // namespace mlxn::cuda\n")
        yield f"elementwise_{ta}.cu", fn, "".join(lines), SETS


def copy_bits():
    # Same-dtype copies of every dtype, block types included: one non-templated launcher (src/cuda/elementwise.cu)
    # that moves bytes by element size, so every dtype the library knows is listed here without a list to keep.
    fn = "add_copy_bits"
    text = (BANNER + '#include "cuda/kernel_table.h"\n#include "kernels/elementwise.h"\n\n'
            "namespace mlxn::cuda {\n\n"
            "// Defined in src/cuda/elementwise.cu.\n"
            "Status launch_copy_bits(const kern::CopyParams& p, const ExecContext& ctx);\n\n"
            f"void {fn}(KernelTable& t) {{\n"
            "  for (int i = 0; i < static_cast<int>(DType::Count_); ++i) {\n"
            "    const auto d = static_cast<DType>(i);\n"
            '    t.add("copy", KernelRegistry::key({d, d}), &launch_copy_bits);\n'
            "  }\n"
            "}\n\n}  // namespace mlxn::cuda\n")
    yield "copy_bits.cpp", fn, text, SETS


def matmul():
    # Decode-path matmul (M <= 16; larger M in these dtypes goes to cuBLASLt when x and W agree): W in its
    # checkpoint dtype, x (= y) in W's dtype or f32. Keys are "w.x".
    for tw in FLOATS:
        fn = f"add_matmul_{tw}"
        lines = [BANNER, '#include "cuda/kernel_table.h"\n#include "cuda/matmul.cuh"\n\nnamespace mlxn::cuda {\n\n',
                 f"void {fn}(KernelTable& t) {{\n"]
        for tx in FLOATS:
            lines.append(f'  t.add("matmul", "{tw}.{tx}", &launch_gemv<{FLOATS[tw]}, {FLOATS[tx]}>);\n')
        lines.append("}\n\n}  // namespace mlxn::cuda\n")
        yield f"matmul_{tw}.cu", fn, "".join(lines), SETS


FAMILIES = [elementwise, copy_bits, matmul]
