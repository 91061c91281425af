#!/usr/bin/env python3
"""The omni path through the `nuri` command: `nuri data synth` a small corpus, `nuri data pack`
it, `nuri train` a tiny omni model for a few steps, `nuri eval` the test split (JSON and Markdown
with every task, CER/WER for transcription), `nuri ask` a spoken question about an image, and the
errors for bad input (a corrupt image, a non-omni config, a manifest line that is not JSON).
Then the staged recipe of scripts/train-tiny-omni.sh: the committed stage configs, shrunk, chained
by `train.init_from` from the first to the last.

Usage: omni_cli_test.py NURI_BINARY SOURCE_DIR WORK_DIR
"""
import json
import pathlib
import shutil
import subprocess
import sys

TASKS = {"transcribe", "image_color", "image_shape", "image_count", "image_text",
         "video_direction", "video_object", "video_speech", "spoken_image_question"}


def run(*command: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr}")
    return result


def expect_error(command: list, words: list) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    missing = [w for w in words if w not in result.stderr]
    if result.returncode == 0 or missing or "Traceback" in result.stderr:
        raise SystemExit(f"{' '.join(command)}: exit {result.returncode}, expected {missing} in "
                         f"{result.stderr!r}")
    print(f"error as expected: {result.stderr.strip()}")


def shrink(config: dict, work: pathlib.Path) -> dict:
    """A committed omni config made seconds-small: narrow encoders and decoder, a 400-token
    tokenizer, 4 steps of 4 conversations, and its logs plain."""
    config["model"].update({"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 1,
                            "num_attention_heads": 2, "num_key_value_heads": 1,
                            "mrope_section": [4, 4, 4]})
    config["model"]["audio"].update({"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                     "intermediate_size": 64})
    config["model"]["vision"].update({"hidden_size": 32, "num_layers": 1, "num_heads": 2,
                                      "intermediate_size": 64})
    config["tokenizer"] = {"path": str(work / "tokenizer.json"), "vocab_size": 400}
    config["train"].update({"steps": 4, "batch_size": 4})
    config["eval"] = {"every": 2, "batches": 1}
    config["log"] = {"every": 1, "progress": False}
    return config


def check_staged_recipe(nuri: str, source: pathlib.Path, work: pathlib.Path,
                        corpus: pathlib.Path) -> None:
    """Trains each stage config from the weights of the one before, as the recipe does: the
    stages agree on every weight, and the video stage adds the motion context's."""
    work.mkdir()
    # Stage 0, then the numbered stages in name order: the rule scripts/train-tiny-omni.sh follows.
    stages = [source / "configs/tiny-omni.json"]
    stages += sorted((source / "configs/tiny-omni").glob("[0-9]*.json"))
    assert len(stages) == 5, stages
    previous = ""  # the checkpoint directory of the stage before
    for number, stage in enumerate(stages):
        name = stage.name
        text = stage.read_text()
        text = text.replace('"runs/tiny-omni/corpus/', f'"{corpus}/')
        text = text.replace('"runs/tiny-omni/', f'"{work}/')
        config = shrink(json.loads(text), work)
        assert config["train"].get("init_from", "") == previous, name
        previous = config["checkpoint"]["dir"]
        path = work / f"stage{number}.json"
        path.write_text(json.dumps(config))
        log = run(nuri, "train", str(path)).stderr
        fresh = "lacks these parameters, which start as initialised: vision_projector.motion.weight"
        assert (fresh in log) == (name == "3-video.json"), f"{name}:\n{log}"
        assert number == 0 or "with a fresh optimizer and schedule" in log, f"{name}:\n{log}"
        print(f"{name}: trained 4 steps")
    last = json.loads((work / "4-all/step-4/config.json").read_text())
    assert last["vision_config"]["motion_context"] is True, last["vision_config"]


def main(nuri: str, source: pathlib.Path, work: pathlib.Path) -> int:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpus = work / "corpus"
    run(nuri, "data", "synth", "--out", str(corpus), "--train", "3", "--valid", "1", "--test",
        "2", "--seed", "5")
    config = shrink(json.loads((source / "configs/tiny-omni.json").read_text()), work)
    config["data"].update({"train_manifest": str(corpus / "train.jsonl"),
                           "valid_manifest": str(corpus / "valid.jsonl"),
                           "pack_dir": str(work / "pack")})
    config["checkpoint"] = {"dir": str(work / "run"), "every": 2, "keep": 2}
    config_path = work / "omni.json"
    config_path.write_text(json.dumps(config))

    packed = run(nuri, "data", "pack", str(config_path))
    assert (work / "pack/train/index.json").exists() and (work / "pack/valid/index.json").exists()
    print(packed.stderr.strip())
    run(nuri, "train", str(config_path))
    for artifact in ("model.safetensors", "optimizer.safetensors", "config.json",
                     "tokenizer.json", "trainer_state.json"):
        assert (work / "run/step-4" / artifact).exists(), artifact
    saved = json.loads((work / "run/step-4/config.json").read_text())
    assert saved["rope_scaling"]["type"] == "mrope" and "audio_config" in saved, saved

    out = work / "eval"
    result = run(nuri, "eval", "--checkpoint", str(work / "run"), "--data",
                 str(corpus / "test.jsonl"), "--out", str(out))
    report = json.loads(out.with_suffix(".json").read_text())
    assert set(report["tasks"]) == TASKS, report["tasks"].keys()
    assert report["samples"] == 18, report["samples"]
    assert "cer" in report["tasks"]["transcribe"] and "wer" in report["tasks"]["transcribe"]
    assert {"audio", "image", "video", "audio+image"} <= set(report["modalities"])
    assert "| transcribe |" in result.stdout and out.with_suffix(".md").exists()

    line = next(json.loads(l) for l in (corpus / "test.jsonl").read_text().splitlines()
                if json.loads(l)["task"] == "spoken_image_question")
    parts = {p["type"]: corpus / p["path"] for p in line["messages"][0]["content"]}
    answer = run(nuri, "ask", "--checkpoint", str(work / "run"), "--image", str(parts["image"]),
                 "--audio", str(parts["input_audio"]), "--max-new-tokens", "4")
    print(f"ask: {answer.stdout.strip()!r}")

    broken = work / "broken.png"
    broken.write_bytes(parts["image"].read_bytes()[:100])
    expect_error([nuri, "ask", "--checkpoint", str(work / "run"), "--image", str(broken)],
                 [str(broken)])
    expect_error([nuri, "data", "pack", str(source / "configs/tiny-text.json")],
                 ["tiny-text.json", "not \"omni\""])
    bad_manifest = work / "bad.jsonl"
    bad_manifest.write_text((corpus / "test.jsonl").read_text().splitlines()[0] + "\n{oops\n")
    expect_error([nuri, "eval", "--checkpoint", str(work / "run"), "--data", str(bad_manifest)],
                 ["bad.jsonl:2", "not valid JSON"])

    check_staged_recipe(nuri, source, work / "recipe", corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])))
