#!/usr/bin/python3
"""Builds the Korean-first plain-text corpus from HTML documentation that Debian packages ship.

Each HTML page becomes one document: markup, scripts and navigation are stripped, whitespace is
collapsed, near-empty and already-seen paragraphs are dropped, and the text is NFC-normalized.
Paragraphs are written one per line and documents are separated by a blank line. A fixed hash of
each document's path decides whether it is held out, so reruns give byte-identical files.
Writes train.txt, valid.txt, valid-ko.txt (the held-out Korean documents alone) and stats.json
(per split: bytes, documents, characters and the share of characters that are Hangul).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass

import lxml.etree
import lxml.html


ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                      check=True).stdout.strip()


@dataclass(frozen=True)
class Source:
    """One package's documentation tree."""

    package: str
    root: str  # directory holding the package's HTML pages
    pattern: str  # regex on the path relative to root that selects the pages
    korean: bool  # a Korean translation: paragraphs without Hangul are untranslated, dropped
    family: str  # pages with the same family and split key are the same document in two languages


# The installation guide is packaged per architecture (installation-guide-amd64, -arm64, ...).
INSTALLATION_GUIDE = "/usr/share/doc/installation-guide-" + ARCH

SOURCES = [
    Source("debian-faq-ko", "/usr/share/doc/debian/FAQ/ko", r"\.ko\.html$", True, "debian-faq"),
    Source("libreoffice-help-ko", "/usr/share/libreoffice/help/ko/text", r"\.html$", True,
           "libreoffice-help"),
    Source("gimp-help-ko", "/usr/share/gimp/2.0/help/ko", r"^[^/]+\.html$", True, "gimp-help"),
    Source("installation-guide-ko", INSTALLATION_GUIDE + "/ko", r"\.html$", True,
           "installation-guide"),
    Source("debian-faq", "/usr/share/doc/debian/FAQ", r"^[^/]+\.en\.html$", False, "debian-faq"),
    Source("debian-reference-en", "/usr/share/debian-reference", r"^[^/]+\.en\.html$", False,
           "debian-reference"),
    Source("installation-guide-en", INSTALLATION_GUIDE + "/en", r"\.html$", False,
           "installation-guide"),
]

# Elements whose whole subtree is never text: code, styling, page furniture and navigation.
DROP_TAGS = ["script", "style", "noscript", "head", "header", "footer", "nav", "aside", "form",
             "button", "input", "select", "textarea", "img", "svg", "meta", "link"]
# Navigation blocks by class or id (DocBook's navheader/navfooter/toc, LibreOffice's debug footer,
# related-topics link lists and search/donation frames).
DROP_XPATH = ("//*[contains(concat(' ', normalize-space(@class), ' '), ' navheader ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' navfooter ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' toc ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' list-of-figures ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' list-of-tables ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' list-of-examples ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' relatedtopics ') or "
              "contains(concat(' ', normalize-space(@class), ' '), ' reportbug ') or "
              "@id='DEBUG' or @id='SearchFrame' or @id='DonationFrame' or @id='TopLeftHeader']")
# Elements that start a new paragraph.
BLOCK_TAGS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td", "th", "tr",
              "pre", "blockquote", "table", "ul", "ol", "dl", "br", "hr", "section", "article",
              "caption", "figcaption", "title"}

MIN_LETTERS = 3  # a paragraph with fewer letters is near-empty (numbering, symbols, stray labels)
MIN_DOC_CHARS = 64  # a page with less text left is dropped whole
VALID_PERCENT = 5

BREAK = "\u2029"  # marks block boundaries while the text is pulled out; source line wraps are spaces
SPACE = re.compile(r"\s+")
HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff]")


def paragraphs(path):
    """The paragraphs of one HTML page, whitespace-collapsed and NFC-normalized."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.strip():
        return []
    root = lxml.html.document_fromstring(data)
    for el in root.xpath(DROP_XPATH):
        el.drop_tree()
    lxml.etree.strip_elements(root, *DROP_TAGS, lxml.etree.Comment, with_tail=False)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in BLOCK_TAGS:
            el.text = BREAK + (el.text or "")
            el.tail = BREAK + (el.tail or "")
    out = []
    for line in root.text_content().split(BREAK):
        line = unicodedata.normalize("NFC", SPACE.sub(" ", line).strip())
        if sum(c.isalpha() for c in line) >= MIN_LETTERS:
            out.append(line)
    return out


def is_valid(key):
    """True when the document with split key `key` is held out (a fixed hash, about 5%)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < VALID_PERCENT


def pages(source):
    """Sorted relative paths of a source's pages."""
    pattern = re.compile(source.pattern)
    found = []
    for dirpath, _, files in os.walk(source.root):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), source.root)
            if pattern.search(rel):
                found.append(rel)
    return sorted(found)


def split_key(source, rel):
    """The document's identity across languages: family plus the path without a language tag."""
    return source.family + "/" + re.sub(r"\.(ko|en)\.html$", ".html", rel)


class Split:
    """Accumulates one output file and its statistics."""

    def __init__(self):
        self.docs = []
        self.chars = 0
        self.hangul = 0

    def add(self, text):
        self.docs.append(text)
        self.chars += len(text)
        self.hangul += len(HANGUL.findall(text))

    def text(self):
        return "\n\n".join(self.docs) + "\n"

    def stats(self):
        data = self.text().encode("utf-8")
        return {"bytes": len(data), "documents": len(self.docs), "characters": self.chars,
                "hangul_share": round(self.hangul / max(self.chars, 1), 4)}


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/corpus", help="output directory")
    args = parser.parse_args()

    start = time.monotonic()
    seen = set()  # paragraphs already written, in either split
    # valid-ko: the Korean documents of the held-out split alone, for measuring compression on
    # Korean.
    splits = {"train": Split(), "valid": Split(), "valid-ko": Split()}
    per_source = {}
    for source in SOURCES:
        if not os.path.isdir(source.root):
            sys.exit(f"make-corpus: {source.root} is missing; install {source.package} "
                     "(scripts/setup.sh --with-corpus)")
        kept_docs = kept_bytes = dropped = 0
        rels = pages(source)
        for rel in rels:
            path = os.path.join(source.root, rel)
            try:
                paras = paragraphs(path)
            except (lxml.etree.ParserError, ValueError) as e:
                sys.exit(f"make-corpus: cannot parse {path}: {e}")
            doc = []
            for para in paras:
                if para in seen or (source.korean and not HANGUL.search(para)):
                    dropped += 1
                    continue
                seen.add(para)
                doc.append(para)
            text = "\n".join(doc)
            if len(text) < MIN_DOC_CHARS:
                continue
            key = split_key(source, rel)
            held_out = is_valid(key)
            splits["valid" if held_out else "train"].add(text)
            if held_out and source.korean:
                splits["valid-ko"].add(text)
            kept_docs += 1
            kept_bytes += len(text.encode("utf-8"))
        per_source[source.package] = {"pages": len(rels), "documents": kept_docs,
                                      "bytes": kept_bytes, "paragraphs_dropped": dropped}
        print(f"make-corpus: {source.package:22s} {len(rels):5d} pages -> {kept_docs:5d} documents, "
              f"{kept_bytes / 1e6:6.2f} MB ({dropped} duplicate or untranslated paragraphs dropped)")

    os.makedirs(args.out, exist_ok=True)
    stats = {"sources": per_source}
    for name, split in splits.items():
        write_atomic(os.path.join(args.out, f"{name}.txt"), split.text())
        stats[name] = split.stats()
    korean_bytes = sum(v["bytes"] for k, v in per_source.items() if k.endswith("-ko"))
    total_bytes = sum(v["bytes"] for v in per_source.values())
    stats["english_byte_share"] = round(1 - korean_bytes / max(total_bytes, 1), 4)
    write_atomic(os.path.join(args.out, "stats.json"), json.dumps(stats, indent=2) + "\n")
    for name in splits:
        s = stats[name]
        print(f"make-corpus: {args.out}/{name}.txt: {s['bytes'] / 1e6:.2f} MB, {s['documents']} "
              f"documents, Hangul share {s['hangul_share']:.3f}")
    print(f"make-corpus: English sources are {stats['english_byte_share']:.1%} of the bytes; "
          f"done in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
