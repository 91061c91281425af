#!/usr/bin/env bash
# The staged recipe that trains the tiny omni model to the omni bars on 2 CPU cores (about 4
# hours of training; docs/benchmarks.md has the results): generates the synthetic corpus, trains
# configs/tiny-omni.json from scratch (all nine tasks), then the stages in configs/tiny-omni/
# (images, speech, video with motion context, all tasks at a low rate), each from the weights of
# the one before, and scores the test split with nuri eval. Everything lands in runs/tiny-omni/.
# Rerun after a stop: a finished stage is kept, an unfinished one resumes from its last
# checkpoint. Extra arguments go to every `nuri train` (for example --set train.threads=4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-nuri.sh
nuri=build/bin/nuri
run=runs/tiny-omni

# 600 conversations per task, more where a task needs more examples to learn, 20 and 50 per task
# held out for validation and test.
if [[ ! -f "$run/corpus/synth.json" ]]; then
  $nuri data synth --out "$run/corpus" --force --train 600 --valid 20 --test 50 \
    --train-of transcribe=20000 --train-of image_count=3000 --train-of image_shape=3000 \
    --train-of image_text=4000 --train-of spoken_image_question=3000 \
    --train-of video_direction=1500
fi

# Stage 0, then the numbered stages in name order (the omni CLI test chains them by the same rule).
stages=(configs/tiny-omni.json configs/tiny-omni/[0-9]*.json)
for config in "${stages[@]}"; do
  checkpoints=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["checkpoint"]["dir"])' \
    "$config")
  echo "== $config -> $checkpoints"
  if compgen -G "$checkpoints/step-*" > /dev/null; then
    $nuri train "$config" --resume "$checkpoints" "$@"  # a finished stage takes no step
  else
    $nuri train "$config" "$@"
  fi
done
$nuri eval --checkpoint "$checkpoints" --data "$run/corpus/test.jsonl" --out "$run/eval-test"
echo "report: $run/eval-test.md"
