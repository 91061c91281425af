"""The tiny text-model run that the training end-to-end tests share, and its logged losses."""
import json
import pathlib


def tiny_text_config(work: pathlib.Path, source: pathlib.Path, name: str, steps: int, every: int,
                     keep: int, warmup: int, **sections) -> pathlib.Path:
    """Writes WORK/NAME.json: a 2-layer, 32-wide model on tests/data/text, one thread, a
    checkpoint and a one-batch evaluation every `every` steps into WORK/NAME. Each keyword
    argument updates that section (for example train={"grad_accum": 2})."""
    text = source / "tests/data/text"
    doc = {
        "model": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                  "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 64},
        "data": {"train": [str(text / "train.txt")], "valid": [str(text / "valid.txt")],
                 "shard_dir": str(work / "shards")},
        "tokenizer": {"path": str(work / "tokenizer.json"), "vocab_size": 320},
        "optim": {"lr": 0.003},
        "schedule": {"warmup_steps": warmup},
        "train": {"steps": steps, "batch_size": 4, "seq_len": 16, "seed": 3, "threads": 1},
        "checkpoint": {"dir": str(work / name), "every": every, "keep": keep},
        "eval": {"every": every, "batches": 1},
        "log": {"progress": False, "every": 1},
    }
    for section, values in sections.items():
        doc.setdefault(section, {}).update(values)
    path = work / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def losses(run: pathlib.Path) -> dict:
    """Step -> training loss from RUN/metrics.jsonl; a step logged twice is an error."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            assert record["step"] not in out, f"step {record['step']} logged twice in {run}"
            out[record["step"]] = record["loss"]
    return out
