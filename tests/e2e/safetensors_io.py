"""Reads the F32 and I32 tensors of safetensors files, with the standard library only."""
import array
import json
import pathlib
import struct

DTYPES = {"F32": "f", "I32": "i"}


def read_safetensors(path: pathlib.Path) -> dict:
    """name -> (shape, flat list of values) for the F32 and I32 tensors of a safetensors file."""
    data = path.read_bytes()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size])
    start = 8 + header_size
    out = {}
    for name, entry in header.items():
        if name == "__metadata__" or entry["dtype"] not in DTYPES:
            continue
        begin, end = entry["data_offsets"]
        values = array.array(DTYPES[entry["dtype"]])
        values.frombytes(data[start + begin:start + end])
        out[name] = (entry["shape"], values.tolist())
    return out
