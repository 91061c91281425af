#!/usr/bin/env python3
"""`nuri media mel` on the golden clips of tests/data/media/mel_reference.safetensors (written as
32-bit float wav files, so the samples are exact) matches the torch.stft reference within 1e-3
in both clamp modes and with 80 and 128 bins; bad input gets an error naming the file.

Usage: media_mel_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import array
import pathlib
import struct
import subprocess
import sys

from safetensors_io import read_safetensors


def write_float_wav(path: pathlib.Path, samples: list, rate: int = 16000) -> None:
    """A mono IEEE-float wav (format tag 3)."""
    data = array.array("f", samples).tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32)
    path.write_bytes(header + b"data" + struct.pack("<I", len(data)) + data)


def main(nuri: str, source: pathlib.Path, work: pathlib.Path) -> int:
    work.mkdir(parents=True, exist_ok=True)
    golden = read_safetensors(source / "tests/data/media/mel_reference.safetensors")
    failures = 0
    for clip in ("long", "short"):
        wav = work / f"{clip}.wav"
        write_float_wav(wav, golden[f"{clip}_samples"][1])
        for mels in (80, 128):
            for mode in ("fixed_floor", "whisper"):
                out = work / f"{clip}_{mels}_{mode}.safetensors"
                command = [nuri, "media", "mel", str(wav), "--out", str(out), "--mels", str(mels)]
                if mode == "whisper":
                    command.append("--whisper")
                subprocess.run(command, check=True, capture_output=True)
                shape, got = read_safetensors(out)["mel"]
                want_shape, want = golden[f"{clip}_mel{mels}_{mode}"]
                diff = max(abs(a - b) for a, b in zip(got, want)) if shape == want_shape else None
                ok = diff is not None and diff < 1e-3
                failures += not ok
                print(f"{clip} {mels} {mode}: shape {shape}, max abs diff {diff}"
                      f" {'ok' if ok else 'FAIL'}")
    # Bad input: an image, a missing file, a bin count other than 80 or 128.
    image = source / "tests/data/media/pattern.png"
    for command, words in (
        ([str(image)], [str(image), "no audio stream"]),
        ([str(work / "missing.wav")], ["missing.wav"]),
        ([str(work / "long.wav"), "--mels", "81"], ["81"]),
    ):
        result = subprocess.run([nuri, "media", "mel", *command, "--out", str(work / "bad.st")],
                                capture_output=True, text=True)
        ok = result.returncode != 0 and all(w in result.stderr for w in words)
        ok = ok and not (work / "bad.st").exists()
        failures += not ok
        print(f"bad input {command[-1]}: exit {result.returncode}, {result.stderr.strip()!r}"
              f" {'ok' if ok else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
