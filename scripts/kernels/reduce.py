"""Families of issue 6 part C: reductions (argmax, top-k, argsort, row sum, cumsum), sampling and MoE routing.

Every op is built for each f32 / f16 / bf16 input (logits and router outputs come in the checkpoint's dtype or f32);
the float-output ops (row_sum, cumsum, moe_weighted_reduce) for every output dtype too. One file per (family, input
dtype): the CUB block sorts make these translation units slow to compile, so they are split for parallel builds.
"""
from .common import FLOATS, instance


def reduce():
    for tx, cx in FLOATS.items():
        adds = [f't.add("argmax", "{tx}", &launch_argmax<{cx}>);',
                f't.add("topk", "{tx}", &launch_topk<{cx}>);',
                f't.add("argsort", "{tx}", &launch_argsort<{cx}>);']
        for to, co in FLOATS.items():
            adds.append(f't.add("row_sum", "{tx}.{to}", &launch_row_sum<{cx}, {co}>);')
            adds.append(f't.add("cumsum", "{tx}.{to}", &launch_cumsum<{cx}, {co}>);')
        yield instance(f"reduce_{tx}.cu", f"add_reduce_{tx}", ["cuda/kernel_table.h", "cuda/reduce.cuh"], adds)


def sample():
    for tx, cx in FLOATS.items():
        yield instance(f"sample_{tx}.cu", f"add_sample_{tx}", ["cuda/kernel_table.h", "cuda/sample.cuh"],
                       [f't.add("sample", "{tx}", &launch_sample<{cx}>);'])


def moe():
    for tx, cx in FLOATS.items():
        adds = [f't.add("moe_route", "{tx}", &launch_moe_route<{cx}>);']
        for to, co in FLOATS.items():
            adds.append(f't.add("moe_weighted_reduce", "{tx}.{to}", &launch_moe_reduce<{cx}, {co}>);')
        if tx == "f32":
            adds.append('t.add("moe_expert_lists", "i32", &launch_moe_lists);')
        yield instance(f"moe_{tx}.cu", f"add_moe_{tx}", ["cuda/kernel_table.h", "cuda/moe.cuh"], adds)


FAMILIES = [reduce, sample, moe]
