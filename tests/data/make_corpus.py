#!/usr/bin/env python3
"""Writes the corpus of broken GGUF and safetensors files in tests/data/{gguf,safetensors}/ (checked in; rerun after
changing a case). Every file must be rejected with a FormatError by the readers (tests Gguf*/Safetensors* Corpus) and
seeds the fuzzers (tests/fuzz). Deterministic: no randomness."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def gstr(s): b = s if isinstance(s, bytes) else s.encode(); return u64(len(b)) + b


def ghead(n_t, n_kv, version=3): return b"GGUF" + u32(version) + u64(n_t) + u64(n_kv)
def pad(b, a=32): return b + b"\0" * ((-len(b)) % a)
def tinfo(name, ne, typ, off): return gstr(name) + u32(len(ne)) + b"".join(u64(d) for d in ne) + u32(typ) + u64(off)


def valid_gguf():
    kv = gstr("general.architecture") + u32(8) + gstr("llama")
    kv += gstr("llama.block_count") + u32(4) + u32(2)
    kv += gstr("tokenizer.ggml.tokens") + u32(9) + u32(8) + u64(3) + gstr("a") + gstr("b") + gstr("c")
    info = tinfo("a.weight", [64, 2], 0, 0) + tinfo("b.weight", [32], 8, 512)
    return pad(ghead(2, 3) + kv + info) + b"\1" * 512 + pad(b"\2" * 34)


GGUF = {
    "empty": b"",
    "magic_only": b"GGUF",
    "bad_magic": b"GGML" + u32(3) + u64(0) + u64(0),
    "version1": ghead(0, 0, 1),
    "version_big_endian": ghead(0, 0, 0x03000000),
    "version_99": ghead(0, 0, 99),
    "truncated_header": ghead(0, 0)[:15],
    "huge_tensor_count": ghead(2**62, 0),
    "huge_kv_count": ghead(0, 2**64 - 1),
    "truncated_key_length": ghead(0, 1) + b"\5\0\0",
    "huge_key_length": ghead(0, 1) + u64(2**64 - 1) + b"x" * 16,
    "key_past_end": ghead(0, 1) + u64(100) + b"general.archi" + b"\0" * 8,
    "empty_key": ghead(0, 1) + gstr("") + u32(4) + u32(1),
    "bad_utf8_key": ghead(0, 1) + gstr(b"bad\xc0\xafkey") + u32(4) + u32(1),
    "unknown_value_type": ghead(0, 1) + gstr("k") + u32(13) + u32(1),
    "truncated_value": ghead(0, 1) + gstr("k") + u32(10) + b"\1\2\3",
    "huge_string_value": ghead(0, 1) + gstr("k") + u32(8) + u64(2**63) + b"x" * 8,
    "huge_array_count": ghead(0, 1) + gstr("k") + u32(9) + u32(6) + u64(2**61) + b"\0" * 16,
    "huge_string_array": ghead(0, 1) + gstr("k") + u32(9) + u32(8) + u64(2**40) + gstr("x"),
    "unknown_array_type": ghead(0, 1) + gstr("k") + u32(9) + u32(99) + u64(1) + b"\0" * 8,
    "deep_nested_arrays": ghead(0, 1) + gstr("k") + u32(9) + (u32(9) + u64(1)) * 64 + u32(4) + u64(0),
    "truncated_array": ghead(0, 1) + gstr("k") + u32(9) + u32(4) + u64(4) + u32(1) + u32(2),
    "duplicate_key": ghead(0, 2) + (gstr("k") + u32(4) + u32(1)) * 2,
    "alignment_not_pow2": ghead(0, 1) + gstr("general.alignment") + u32(4) + u32(48),
    "alignment_zero": ghead(0, 1) + gstr("general.alignment") + u32(4) + u32(0),
    "alignment_wrong_type": ghead(0, 1) + gstr("general.alignment") + u32(8) + gstr("32"),
    "truncated_tensor_info": ghead(1, 0) + gstr("w") + u32(2) + u64(64),
    "too_many_dims": pad(ghead(1, 0) + tinfo("w", [1, 1, 1, 1, 1], 0, 0)) + b"\0" * 32,
    "negative_dim": pad(ghead(1, 0) + tinfo("w", [2**64 - 1], 0, 0)) + b"\0" * 32,
    "dim_product_overflow": pad(ghead(1, 0) + tinfo("w", [2**40, 2**40], 0, 0)) + b"\0" * 32,
    "byte_size_overflow": pad(ghead(1, 0) + tinfo("w", [2**61], 28, 0)) + b"\0" * 32,
    "unknown_ggml_type": pad(ghead(1, 0) + tinfo("w", [64], 4, 0)) + b"\0" * 256,
    "unknown_ggml_type_big": pad(ghead(1, 0) + tinfo("w", [64], 2**31, 0)) + b"\0" * 256,
    "partial_block": pad(ghead(1, 0) + tinfo("w", [16], 2, 0)) + b"\0" * 32,
    "empty_tensor_name": pad(ghead(1, 0) + tinfo("", [8], 0, 0)) + b"\0" * 32,
    "bad_utf8_tensor_name": pad(ghead(1, 0) + tinfo(b"w\xed\xa0\x80", [8], 0, 0)) + b"\0" * 32,
    "duplicate_tensor": pad(ghead(2, 0) + tinfo("w", [8], 0, 0) + tinfo("w", [8], 0, 32)) + b"\0" * 64,
    "offset_past_end": pad(ghead(1, 0) + tinfo("w", [64], 0, 1 << 20)) + b"\0" * 256,
    "offset_wraps": pad(ghead(1, 0) + tinfo("w", [64], 0, 2**64 - 32)) + b"\0" * 256,
    "data_truncated": pad(ghead(1, 0) + tinfo("w", [64], 0, 0)) + b"\0" * 255,
    "misaligned_offset": pad(ghead(1, 0) + tinfo("w", [8], 0, 4)) + b"\0" * 64,
    "overlapping_tensors": pad(ghead(2, 0) + tinfo("a", [64], 0, 0) + tinfo("b", [8], 0, 64)) + b"\0" * 256,
}
v = valid_gguf()
for cut in (4, 8, 16, 24, 40, 60, 90, 130, 170, 200, len(v) - 600, len(v) - 40):
    GGUF[f"valid_cut_at_{cut}"] = v[:cut]


def st(header, data=b"", raw=False):
    h = header if raw else json.dumps(header, separators=(",", ":")).encode()
    return u64(len(h)) + h + data


def ent(dtype, shape, b, e): return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


SAFETENSORS = {
    "empty": b"",
    "short_length": b"\x10\0\0\0",
    "huge_header_length": u64(2**63) + b"{}",
    "header_past_end": u64(1000) + b"{}",
    "header_not_json": st(b"{not json", raw=True),
    "header_array": st(b"[1,2,3]  ", raw=True),
    "header_bad_utf8": st(b'{"a\xff":1}', raw=True),
    "header_truncated_json": st(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]', raw=True) + b"\0" * 4,
    "deep_nesting": st(b'{"a":' + b"[" * 20000 + b"]" * 20000 + b"}", raw=True),
    "unknown_dtype": st({"a": ent("F128", [1], 0, 16)}, b"\0" * 16),
    "dtype_not_string": st({"a": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "negative_dim": st({"a": ent("F32", [-1], 0, 4)}, b"\0" * 4),
    "float_dim": st({"a": ent("F32", [1.5], 0, 4)}, b"\0" * 4),
    "huge_dims": st({"a": ent("F32", [2**32, 2**32], 0, 4)}, b"\0" * 4),
    "byte_size_overflow": st({"a": ent("F64", [2**62], 0, 8)}, b"\0" * 8),
    "too_many_dims": st({"a": ent("F32", [1] * 9, 0, 4)}, b"\0" * 4),
    "offsets_past_end": st({"a": ent("F32", [4], 0, 16)}, b"\0" * 8),
    "offsets_reversed": st({"a": ent("F32", [0], 8, 0)}, b"\0" * 8),
    "offsets_huge": st({"a": ent("F32", [4], 2**64 - 16, 2**64 - 1)}, b"\0" * 16),
    "size_mismatch": st({"a": ent("F32", [3], 0, 16)}, b"\0" * 16),
    "offsets_not_pair": st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}, b"\0" * 4),
    "missing_shape": st({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, b"\0" * 4),
    "unknown_field": st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}}, b"\0" * 4),
    "entry_not_object": st({"a": 5}),
    "overlap": st({"a": ent("U8", [16], 0, 16), "b": ent("U8", [4], 8, 12)}, b"\0" * 16),
    "duplicate_name": st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                         b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', raw=True) + b"\0\0",
    "metadata_not_strings": st({"__metadata__": {"k": 1}}),
    "metadata_not_object": st({"__metadata__": [1]}),
    "f4_odd_elements": st({"a": ent("F4", [3], 0, 2)}, b"\0\0"),
    "empty_name": st({"": ent("U8", [1], 0, 1)}, b"\0"),
}


def main():
    for sub, cases, ext in (("gguf", GGUF, "gguf"), ("safetensors", SAFETENSORS, "safetensors")):
        d = os.path.join(HERE, sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.endswith("." + ext):
                os.remove(os.path.join(d, f))
        for name, data in cases.items():
            with open(os.path.join(d, f"{name}.{ext}"), "wb") as f:
                f.write(data)
    print(f"wrote {len(GGUF)} GGUF and {len(SAFETENSORS)} safetensors files")


if __name__ == "__main__":
    main()
