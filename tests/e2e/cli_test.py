#!/usr/bin/env python3
"""The `nuri` command end to end: tokenizer train, encode and decode round trip through pipes;
a short training run then streaming generation from its checkpoint; and bad input (an unknown
config key, a bad token id, a missing checkpoint) answered by an error that names it, exit code 1.

Usage: cli_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import json
import pathlib
import shutil
import subprocess
import sys


def nuri(binary: str, *args: str, stdin: str = "", ok: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=300)
    if ok:
        assert run.returncode == 0, f"nuri {' '.join(args)} failed:\n{run.stderr}"
    else:
        assert run.returncode == 1, f"nuri {' '.join(args)}: exit {run.returncode}, expected 1\n{run.stderr}"
    return run


def main(binary: str, source: pathlib.Path, work: pathlib.Path) -> int:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    text = source / "tests/data/text"
    tokenizer = work / "tokenizer.json"

    nuri(binary, "tokenizer", "train", "--vocab", "400", "--input", str(text / "train.txt"), "--out",
         str(tokenizer))
    assert json.loads(tokenizer.read_text())["model"]["type"] == "BPE"
    lines = ["누리는 한국어를 먼저 배웁니다.", "Mixed 한글 and English, 2026!", "", "  spaces  kept  "]
    encoded = nuri(binary, "tokenizer", "encode", "--tokenizer", str(tokenizer),
                   stdin="\n".join(lines) + "\n").stdout.splitlines()
    assert len(encoded) == len(lines), encoded
    assert all(item.split() for item, line in zip(encoded, lines) if line), encoded
    decoded = nuri(binary, "tokenizer", "decode", "--tokenizer", str(tokenizer),
                   stdin="\n".join(encoded) + "\n").stdout.splitlines()
    assert decoded == lines, decoded
    bad = nuri(binary, "tokenizer", "decode", "--tokenizer", str(tokenizer), stdin="1 2\n99999\n", ok=False)
    assert "99999" in bad.stderr and "line 2" in bad.stderr, bad.stderr

    config = {
        "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 128},
        "data": {"train": [str(text / "train.txt")], "valid": [str(text / "valid.txt")]},
        "tokenizer": {"path": str(tokenizer)},
        "train": {"steps": 20, "batch_size": 4, "seq_len": 16},
        "checkpoint": {"dir": str(work / "run")},
        "log": {"progress": False},
    }
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    nuri(binary, "train", str(config_path))
    prompt = "한국어는"
    out = nuri(binary, "generate", "--checkpoint", str(work / "run"), "--prompt", prompt,
               "--max-new-tokens", "12", "--seed", "3").stdout
    assert out.startswith(prompt) and len(out.strip()) > len(prompt), out
    again = nuri(binary, "generate", "--checkpoint", str(work / "run" / "step-20"), "--prompt", prompt,
                 "--max-new-tokens", "12", "--seed", "3").stdout
    assert again == out, "the same seed must give the same text"

    config["optim"] = {"learning_rate": 0.1}
    config_path.write_text(json.dumps(config))
    bad = nuri(binary, "train", str(config_path), ok=False)
    assert "unknown key 'optim.learning_rate'" in bad.stderr, bad.stderr
    bad = nuri(binary, "train", str(config_path), "--set", "optim={}", "--set", "train.batch_size=many", ok=False)
    assert "'train.batch_size' must be an integer" in bad.stderr, bad.stderr
    bad = nuri(binary, "generate", "--checkpoint", str(work / "missing"), "--prompt", "x", ok=False)
    assert "missing" in bad.stderr and "not a directory" in bad.stderr, bad.stderr
    print("tokenizer round trip, training, generation and error messages all behave")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
