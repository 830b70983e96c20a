"""Layout and embedding families. The layout kernels move bytes (src/cuda/layout.cu): one non-templated launcher
each, listed for every dtype like copy_bits (permute for plain types; concat, split and the row gather / scatter
for block types too). Embedding: every (table, out) pair of float types; block-type tables are listed by
dequant.py (the row dequantizer gathers them)."""
from .common import BANNER, FLOATS, SETS, instance


def layout_bits():
    fn = "add_layout_bits"
    text = (BANNER + '#include "cuda/kernel_table.h"\n#include "kernels/layout.h"\n\n'
            "namespace mlxn::cuda {\n\n"
            "// Defined in src/cuda/layout.cu.\n"
            "Status launch_transpose(const kern::TransposeParams& p, const ExecContext& ctx);\n"
            "Status launch_parts(const kern::PartsParams& p, const ExecContext& ctx);\n"
            "Status launch_gather(const kern::GatherParams& p, const ExecContext& ctx);\n\n"
            f"void {fn}(KernelTable& t) {{\n"
            "  for (int i = 0; i < static_cast<int>(DType::Count_); ++i) {\n"
            "    const auto d = static_cast<DType>(i);\n"
            "    const std::string key = KernelRegistry::key({d});\n"
            '    if (!is_quantized(d)) t.add("permute", key, &launch_transpose);\n'
            '    t.add("concat", key, &launch_parts);\n'
            '    t.add("split", key, &launch_parts);\n'
            '    t.add("gather_rows", key, &launch_gather);\n'
            '    t.add("scatter_rows", key, &launch_gather);\n'
            "  }\n"
            "}\n\n}  // namespace mlxn::cuda\n")
    yield "layout_bits.cpp", fn, text, SETS


def embedding():
    for tt in FLOATS:
        fn = f"add_embedding_{tt}"
        adds = [f't.add("embedding", "{tt}.{to}", &launch_embedding<{FLOATS[tt]}, {FLOATS[to]}>);' for to in FLOATS]
        yield instance(f"embedding_{tt}.cu", fn, ["cuda/embedding.cuh", "cuda/kernel_table.h"], adds, SETS)


FAMILIES = [layout_bits, embedding]
