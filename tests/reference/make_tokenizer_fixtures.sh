#!/usr/bin/env bash
# Makes the tokenizer parity fixture in tests/data/tokenizer/: nuri trains a small tokenizer on
# tests/data/tokenizer/sample.txt, then Hugging Face's tokenizers library (npm `tokenizers`,
# installed into tests/reference/node_modules, which git ignores) encodes the test strings.
# Usage: tests/reference/make_tokenizer_fixtures.sh [path/to/nuri]   (default: build/bin/nuri)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
nuri=${1:-$root/build/bin/nuri}
data=$root/tests/data/tokenizer
reference=$root/tests/reference

if [[ ! -d $reference/node_modules/tokenizers ]]; then
  (cd "$reference" && npm install --no-save --no-package-lock tokenizers@0.23.2)
fi
"$nuri" tokenizer train --vocab 1000 --min-frequency 2 --threads 2 \
  --input "$data/sample.txt" --out "$data/tokenizer.json"
(cd "$reference" && node make_tokenizer_fixtures.js "$data")
