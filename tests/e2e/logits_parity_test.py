#!/usr/bin/env python3
"""`nuri logits` on the PyTorch reference models of tests/data/decoder/ writes logits that match
the golden ones (made by tests/reference/decoder_reference.py) within 1e-4 relative: the largest
absolute difference over the largest absolute golden logit.

Usage: logits_parity_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import pathlib
import subprocess
import sys

from safetensors_io import read_safetensors


def main(nuri: str, source: pathlib.Path, work: pathlib.Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    for model in ("untied", "tied"):
        model_dir = source / "tests/data/decoder" / model
        golden = read_safetensors(model_dir / "golden.safetensors")
        (batch, steps), ids = golden["ids"]
        _, reference = golden["logits"]
        vocab = len(reference) // (batch * steps)
        for row in range(batch):
            tokens = ids[row * steps:(row + 1) * steps]
            out = work / f"{model}-{row}.safetensors"
            run = subprocess.run([nuri, "logits", "--checkpoint", str(model_dir), "--tokens",
                                  ",".join(map(str, tokens)), "--out", str(out)],
                                 capture_output=True, text=True)
            assert run.returncode == 0, run.stderr
            shape, got = read_safetensors(out)["logits"]
            assert shape == [1, steps, vocab], f"{model}: logits shape {shape}"
            want = reference[row * steps * vocab:(row + 1) * steps * vocab]
            scale = max(abs(v) for v in want)
            diff = max(abs(a - b) for a, b in zip(got, want)) / scale
            print(f"{model} row {row}: max |diff| / max |ref| = {diff:.2e}")
            assert diff <= 1e-4, f"{model} row {row}: relative difference {diff:.2e} exceeds 1e-4"
    bad = subprocess.run([nuri, "logits", "--checkpoint", str(source / "tests/data/decoder/tied"),
                          "--tokens", "1,x", "--out", str(work / "bad.safetensors")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "'x' is not an integer" in bad.stderr, bad.stderr
    assert not (work / "bad.safetensors").exists()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
