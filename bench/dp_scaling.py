#!/usr/bin/python3
"""Data-parallel scaling of `nuri train` on the CPU: the same run (global batch, steps) by one
rank with twice the gradient accumulation and by two ranks under mpirun, each rank with one
thread, and by one rank with two threads for reference. Prints training tokens/s and the 2-rank
scaling efficiency, tokens/s(2 ranks) / (2 x tokens/s(1 rank)).

Usage: bench/dp_scaling.py [--nuri build/bin/nuri] [--steps 30]
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def config(work: pathlib.Path, source: pathlib.Path, name: str, accum: int, threads: int,
           steps: int, zero: int) -> pathlib.Path:
    text = source / "tests/data/text"
    doc = {
        "model": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4,
                  "num_attention_heads": 4, "num_key_value_heads": 2,
                  "max_position_embeddings": 256},
        "data": {"train": [str(text / "train.txt")], "shard_dir": str(work / "shards")},
        "tokenizer": {"path": str(work / "tokenizer.json"), "vocab_size": 320},
        "train": {"steps": steps, "batch_size": 8, "seq_len": 128, "seed": 1, "threads": threads,
                  "grad_accum": accum},
        "parallel": {"zero": zero},
        "checkpoint": {"dir": str(work / name), "every": 0},
        "log": {"progress": False, "every": 1},
    }
    path = work / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def tokens_per_second(run: pathlib.Path, skip: int) -> float:
    """Tokens/s over the steps after the first `skip` (warm-up), from metrics.jsonl."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    first, last = steps[skip - 1], steps[-1]
    return (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuri", default="build/bin/nuri")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    source = pathlib.Path(__file__).resolve().parent.parent
    work = pathlib.Path(tempfile.mkdtemp(prefix="nuri-dp-scaling-"))
    runs = [("1 rank x 1 thread, accumulation 2", "one", 1, 2, 1, 0),
            ("2 ranks x 1 thread, ZeRO-0", "two", 2, 1, 1, 0),
            ("2 ranks x 1 thread, ZeRO-1", "two-zero1", 2, 1, 1, 1),
            ("1 rank x 2 threads, accumulation 2", "one-2t", 1, 2, 2, 0)]
    rates = {}
    try:
        for label, name, ranks, accum, threads, zero in runs:
            cfg = config(work, source, name, accum, threads, args.steps, zero)
            command = [args.nuri, "train", str(cfg)]
            if ranks > 1:
                command = ["mpirun", "-np", str(ranks), "--oversubscribe", *command]
            subprocess.run(command, check=True, capture_output=True, env=ENV)
            rates[name] = tokens_per_second(work / name, skip=5)
            print(f"  {label:38s} {rates[name]:10.0f} tokens/s")
        for name in ("two", "two-zero1"):
            print(f"scaling efficiency, {name}: {rates[name] / (2 * rates['one']):.2f} "
                  f"(tokens/s of 2 ranks over twice 1 rank's, one thread each)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
