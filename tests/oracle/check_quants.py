#!/usr/bin/env python3
"""Independent oracle for the block formats: compares mlx-native's reference dequantize / quantize with the `gguf`
Python package (gguf-py, ggml's own Python implementation) on random data.

  check_quants.py TOOL [--blocks N] [--seed S]

TOOL is tests/oracle/quant_tool (mlxn_quant_tool). Dequantize: random bytes for every block format the package can
dequantize, with the f16 scale fields forced to NaN, +-inf, subnormals, +-0 and the largest half in some blocks; the
f32 outputs must be bit-identical. Quantize: Gaussian and edge-case inputs for every format the package can
quantize; the bytes must be identical. Exit status 0 only when every comparison passed.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

# gguf type -> (mlx-native dtype name, byte offsets of the f16 scale fields in a block)
TYPES = {
    T.F32: ("f32", []),
    T.F16: ("f16", []),
    T.BF16: ("bf16", []),
    T.Q4_0: ("q4_0", [0]),
    T.Q4_1: ("q4_1", [0, 2]),
    T.Q5_0: ("q5_0", [0]),
    T.Q5_1: ("q5_1", [0, 2]),
    T.Q8_0: ("q8_0", [0]),
    T.Q2_K: ("q2_K", [80, 82]),
    T.Q3_K: ("q3_K", [108]),
    T.Q4_K: ("q4_K", [0, 2]),
    T.Q5_K: ("q5_K", [0, 2]),
    T.Q6_K: ("q6_K", [208]),
    T.IQ4_NL: ("iq4_nl", [0]),
    T.IQ4_XS: ("iq4_xs", [0]),
    T.MXFP4: ("mxfp4", []),
}
# Q8_1 / Q8_K: gguf-py has no codec for them (its Q8_1 block size, 40 bytes, also predates ggml's 36-byte f16 layout).

SPECIAL_F16 = [0x7E00, 0x7C01, 0xFE00, 0x7C00, 0xFC00, 0x0001, 0x03FF, 0x8001, 0x0000, 0x8000, 0x7BFF, 0xFBFF, 0x3C00]


def run_tool(tool, mode, name, data):
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.bin"), os.path.join(d, "out.bin")
        with open(src, "wb") as f:
            f.write(data)
        r = subprocess.run([tool, mode, name, src, dst], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{tool} {mode} {name} failed: {r.stderr.strip()}")
        with open(dst, "rb") as f:
            return f.read()


def random_blocks(rng, qtype, offsets, n_blocks):
    block_elems, block_bytes = quants.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    # Force special scale values into the first blocks, one special per block and field.
    for i, bits in enumerate(SPECIAL_F16):
        for off in offsets:
            if i < n_blocks:
                raw[i, off:off + 2] = np.frombuffer(np.uint16(bits).tobytes(), dtype=np.uint8)
    if qtype == T.MXFP4:
        for i, e in enumerate([0, 1, 2, 127, 128, 253, 254, 255]):
            if i < n_blocks:
                raw[i, 0] = e
    if qtype in (T.F16, T.BF16):
        flat = raw.reshape(-1)
        specials = np.array(SPECIAL_F16 + [0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0x0080, 0x007F], dtype=np.uint16)
        flat[: 2 * len(specials)] = specials.view(np.uint8)
    return raw


def compare_dequant(tool, rng, n_blocks):
    ok = True
    for qtype, (name, offsets) in TYPES.items():
        raw = random_blocks(rng, qtype, offsets, n_blocks)
        expect = quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
        got = np.frombuffer(run_tool(tool, "dequant", name, raw.tobytes()), dtype=np.float32)
        if got.shape != expect.shape:
            print(f"dequant {name}: {got.size} values, oracle {expect.size}")
            ok = False
            continue
        gb, eb = got.view(np.uint32), expect.view(np.uint32)
        both_nan = np.isnan(got) & np.isnan(expect)
        diff_bits = int(np.count_nonzero(gb != eb))
        diff_value = int(np.count_nonzero((gb != eb) & ~both_nan))
        n_nan = int(np.count_nonzero(np.isnan(expect)))
        n_sub = int(np.count_nonzero((expect != 0) & (np.abs(expect) < np.finfo(np.float32).tiny)))
        n_inf = int(np.count_nonzero(np.isinf(expect)))
        status = "bit-exact" if diff_bits == 0 else (
            f"{diff_bits} bit differences ({diff_value} outside NaN payloads)")
        print(f"dequant {name:7s} {n_blocks} blocks, {got.size} values ({n_nan} NaN, {n_inf} inf, "
              f"{n_sub} subnormal): {status}")
        if diff_bits != 0:
            ok = False
            idx = np.flatnonzero(gb != eb)[:5]
            for i in idx:
                print(f"    [{i}] got {got[i]!r} (0x{gb[i]:08x}) oracle {expect[i]!r} (0x{eb[i]:08x})")
    return ok


def quant_inputs(rng, n_values):
    cases = {
        "gaussian": rng.standard_normal(n_values).astype(np.float32),
        "gaussian*0.02": (rng.standard_normal(n_values) * 0.02).astype(np.float32),
        "gaussian*300": (rng.standard_normal(n_values) * 300).astype(np.float32),
        "uniform": rng.uniform(-1, 1, n_values).astype(np.float32),
        "positive": rng.uniform(0.5, 2, n_values).astype(np.float32),
    }
    edge = np.zeros(n_values, dtype=np.float32)
    edge[256:512] = 1.0                      # constant block
    edge[512:768] = -3.5                     # constant negative block
    edge[768:1024] = rng.standard_normal(256).astype(np.float32) * 1e-6
    edge[1024:1280] = np.where(np.arange(256) % 7 == 0, 5.0, 0.0)   # sparse
    cases["edges"] = edge
    return cases


def compare_quant(tool, rng, n_values):
    ok = True
    for qtype, (name, _) in TYPES.items():
        if qtype == T.F32:
            continue
        for label, x in quant_inputs(rng, n_values).items():
            try:
                expect = quants.quantize(x.reshape(1, -1), qtype).reshape(-1).view(np.uint8)
            except NotImplementedError:
                break  # the package has no quantizer for this type
            got = np.frombuffer(run_tool(tool, "quant", name, x.tobytes()), dtype=np.uint8)
            if got.shape != expect.shape or not np.array_equal(got, expect):
                ok = False
                nd = int(np.count_nonzero(got != expect)) if got.shape == expect.shape else -1
                print(f"quant   {name:7s} {label}: {nd} of {expect.size} bytes differ")
            else:
                print(f"quant   {name:7s} {label}: {expect.size} bytes identical")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tool")
    ap.add_argument("--blocks", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    np.seterr(all="ignore")  # NaN / inf scales are the point of the dequantize comparison
    warnings.simplefilter("ignore", RuntimeWarning)
    print(f"oracle: gguf-py from {os.path.dirname(quants.__file__)}, numpy {np.__version__}, seed {seed}")
    rng = np.random.default_rng(seed)
    ok = compare_dequant(args.tool, rng, args.blocks)
    ok = compare_quant(args.tool, rng, 256 * 64) and ok
    print("oracle: PASS" if ok else f"oracle: FAIL (replay with --seed {seed})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
