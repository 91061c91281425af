#!/usr/bin/env bash
# The main job on the embedded CPU default: sets up and builds nuri, generates the synthetic
# omni corpus (Korean and English speech from espeak-ng, shape images with Hangul words, moving
# shapes with a soundtrack), trains configs/quickstart-omni.json from scratch with a progress bar,
# scores the test split with nuri eval, and asks the trained model a spoken question about an
# image. Extra arguments go to `nuri train` (for example --set train.steps=100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-nuri.sh
nuri=build/bin/nuri
run=runs/quickstart
rm -rf "$run"  # the quickstart's own run: each invocation starts afresh
$nuri data synth --out "$run/corpus" --train 300 --valid 10 --test 20
$nuri train configs/quickstart-omni.json "$@"
$nuri eval --checkpoint "$run/run" --data "$run/corpus/test.jsonl" --out "$run/eval-test"

# One spoken question about an image from the test split, which the model never saw.
python3 - "$run/corpus/test.jsonl" > "$run/question.txt" <<'PY'
import json, pathlib, sys
manifest = pathlib.Path(sys.argv[1])
for line in manifest.read_text(encoding="utf-8").splitlines():
    sample = json.loads(line)
    if sample["task"] == "spoken_image_question":
        parts = {p["type"]: p["path"] for p in sample["messages"][0]["content"]}
        print(manifest.parent / parts["image"])
        print(manifest.parent / parts["input_audio"])
        print(sample["question"])
        print(sample["answer"])
        break
PY
{ read -r image; read -r audio; read -r question; read -r answer; } < "$run/question.txt"
echo
echo "image:    $image"
echo "spoken:   $audio (\"$question\")"
echo "expected: $answer"
echo -n "nuri:     "
$nuri ask --checkpoint "$run/run" --image "$image" --audio "$audio"
echo "report: $run/eval-test.md, metrics: $run/run/metrics.jsonl, loss curve: $run/run/loss.png"
