#!/usr/bin/env bash
# Builds the Korean-first text corpus in data/corpus/ (train.txt, valid.txt, valid-ko.txt,
# stats.json) from the documentation that Debian packages ship: the Korean Debian FAQ, LibreOffice
# and GIMP help and installation guide, plus English Debian documentation for 20-30% of the bytes.
# Installs the packages first (scripts/setup.sh --with-corpus); reruns give byte-identical files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-corpus
/usr/bin/python3 scripts/make_corpus.py "$@"
