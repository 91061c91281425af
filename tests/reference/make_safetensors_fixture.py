#!/usr/bin/python3
"""Writes tests/data/reference.safetensors, a fixture for the safetensors reader.

The bytes follow the layout of the Hugging Face safetensors library: the data is ordered by dtype
(in the library's order, widest first: I64, F32, I32, BF16, F16, U8), then by name; the header is compact JSON with "__metadata__" first and the
tensors in data order, padded with spaces to a multiple of 8 bytes. The names are chosen so that
this order is also the sorted order of the keys. Values are packed with struct only, so the file
does not depend on nuri's own conversions.

Usage: /usr/bin/python3 tests/reference/make_safetensors_fixture.py
"""

import json
import os
import struct

# name -> (safetensors dtype, shape, struct format of one element, values)
TENSORS = {
    # I64 values beyond 2^53 check that no float conversion happens on the way.
    "a_i64": ("I64", [3], "q", [-(2**62) - 5, 0, 2**53 + 1]),
    "b_f32": ("F32", [2, 3], "f", [0.5, -1.25, 3.0, 1e-3, -7.5e10, 42.0]),
    "c_empty": ("F32", [0, 4], "f", []),
    "c_i32": ("I32", [], "i", [-123456789]),
    # BF16 bit patterns: 1.0, -2.0, 0.15625, +inf, the smallest subnormal, -0.0.
    "d_bf16": ("BF16", [2, 3], "H", [0x3F80, 0xC000, 0x3E20, 0x7F80, 0x0001, 0x8000]),
    # F16 values packed by struct's IEEE half format ("e").
    "e_f16": ("F16", [2, 2], "e", [1.0, -0.333251953125, 65504.0, 5.960464477539063e-08]),
    "f_u8": ("U8", [5], "B", [0, 1, 127, 128, 255]),
}

METADATA = {"format": "pt", "source": "make_safetensors_fixture.py"}

# Position of each dtype in the data, as the library orders them.
DTYPE_RANK = {"I64": 0, "F32": 1, "I32": 2, "BF16": 3, "F16": 4, "U8": 5}


def write_safetensors(path, tensors, metadata):
    """Writes `tensors` (name -> (safetensors dtype, shape, struct format of one element, values))
    and the `metadata` strings to `path` in the library's layout: data ordered by DTYPE_RANK, then
    by name; compact JSON header with "__metadata__" first, padded with spaces to 8 bytes."""
    order = sorted(tensors, key=lambda name: (DTYPE_RANK[tensors[name][0]], name))
    header = {"__metadata__": metadata}
    data = b""
    for name in order:
        dtype, shape, fmt, values = tensors[name]
        count = 1
        for extent in shape:
            count *= extent
        assert len(values) == count, name
        blob = struct.pack("<%d%s" % (count, fmt), *values)
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob

    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text + data)
    os.replace(path + ".tmp", path)


def main():
    order = sorted(TENSORS, key=lambda name: (DTYPE_RANK[TENSORS[name][0]], name))
    assert order == sorted(TENSORS), "names must sort in data order"
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
    write_safetensors(os.path.join(out_dir, "reference.safetensors"), TENSORS, METADATA)


if __name__ == "__main__":
    main()
