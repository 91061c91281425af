#!/usr/bin/env bash
# nuri's tokenizer against its peers in one run: builds the corpus and nuri-bench-tokenizer, which
# trains nuri's BPE and SentencePiece BPE on data/corpus/train.txt and compares compression,
# training time and encode throughput; then Hugging Face tokenizers (Node binding) loads each
# tokenizer.json nuri saved and encodes the same held-out file, and the encode ratios are printed.
# Usage: bench/tokenizer_vs_peers.sh [VOCAB...]   (default: 8192 4096); THREADS=N overrides nproc.
set -euo pipefail
cd "$(dirname "$0")/.."
vocabs=("$@")
((${#vocabs[@]})) || vocabs=(8192 4096)
threads="${THREADS:-$(nproc)}"
# Idle OpenMP threads sleep instead of spinning: on cores shared with other work a spinning thread
# takes the core from the thread it waits for, and multi-threaded encoding falls below one thread.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
out=runs/bench-tokenizer

bash scripts/setup.sh --with-peer --with-corpus
bash scripts/make-corpus.sh
if [[ ! -d bench/tokenizer/node_modules/tokenizers ]]; then
  npm ci --prefix bench/tokenizer --no-audit --no-fund
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)" --target nuri-bench-tokenizer

mkdir -p "$out"
vocab_args=()
for v in "${vocabs[@]}"; do vocab_args+=(--vocab "$v"); done
build/bin/nuri-bench-tokenizer --train data/corpus/train.txt --heldout data/corpus/valid-ko.txt \
  --heldout data/corpus/valid.txt "${vocab_args[@]}" --threads "$threads" --out "$out" \
  --json "$out/nuri.json"

# Hugging Face tokenizers on the same tokenizer.json and file, one thread and then $threads.
node -e '
  const r = require(process.argv[1]).results
  for (const x of r) console.log(x.vocab_size, x.tokenizer_json, x.encode_file)
' "$PWD/$out/nuri.json" | while read -r vocab tokenizer file; do
  TOKENIZERS_PARALLELISM=false node bench/tokenizer/hf_encode.js "$tokenizer" "$file" \
    >"$out/hf-$vocab-1.json"
  RAYON_NUM_THREADS="$threads" node bench/tokenizer/hf_encode.js "$tokenizer" "$file" \
    >"$out/hf-$vocab-$threads.json"
done

node -e '
  const fs = require("fs")
  const [dir, threads] = process.argv.slice(1)
  const nuri = JSON.parse(fs.readFileSync(`${dir}/nuri.json`, "utf8"))
  console.log("\nencode throughput against Hugging Face tokenizers (same tokenizer.json, same file)")
  console.log("  vocab  threads   nuri MB/s     HF MB/s  nuri/HF   tokens nuri / HF")
  for (const x of nuri.results) {
    const tokens = x.heldout.find((h) => h.path === x.encode_file).nuri_tokens
    for (const [n, mbps] of [[1, x.nuri_encode_mb_per_s_1_thread], [threads, x.nuri_encode_mb_per_s_threads]]) {
      const hf = JSON.parse(fs.readFileSync(`${dir}/hf-${x.vocab_size}-${n}.json`, "utf8"))
      const same = hf.tokens === tokens ? "same" : `DIFFER: ${tokens} / ${hf.tokens}`
      console.log(`  ${String(x.vocab_size).padStart(5)}  ${String(n).padStart(7)}  ${mbps.toFixed(2).padStart(10)}  ` +
                  `${hf.mb_per_s.toFixed(2).padStart(10)}  ${(mbps / hf.mb_per_s).toFixed(3).padStart(7)}   ${same}`)
    }
  }
' "$out" "$threads"
