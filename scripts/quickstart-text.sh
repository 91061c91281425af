#!/usr/bin/env bash
# The text-only job: sets up, builds the Korean-first text corpus from
# Debian packages, trains configs/tiny-text.json from scratch (tokenizer first) with a progress
# bar, then generates Korean text from the trained checkpoint. Extra arguments go to `nuri train`
# (for example --set train.steps=100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-nuri.sh --with-corpus
bash scripts/make-corpus.sh
rm -rf runs/tiny-text  # the quickstart's own run: each invocation trains afresh
build/bin/nuri train configs/tiny-text.json "$@"
for prompt in "한국어는" "데비안은" "이 문서는"; do
  build/bin/nuri generate --checkpoint runs/tiny-text --prompt "$prompt" --max-new-tokens 60 --seed 1
done
echo "metrics: runs/tiny-text/metrics.jsonl, loss curve: runs/tiny-text/loss.png"
