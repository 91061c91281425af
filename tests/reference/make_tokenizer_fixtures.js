// Encodes test strings with Hugging Face's tokenizers library (the npm package `tokenizers`) to
// make the golden ids that tests/encoders/tokenizer_parity_test.cpp compares nuri against.
// Usage: node make_tokenizer_fixtures.js DIR, where DIR holds tokenizer.json (trained by nuri).
// Writes into DIR: tokenizer_merge_strings.json (the same tokenizer with merges as "a b"
// strings, or as pairs if the input had strings), tokenizer_added.json (extra added tokens with
// lstrip/rstrip/single_word/normalized flags), tokenizer_hf_saved.json (as saved by the
// library), and expected.json with the library's ids and decodings of every test string.
"use strict";
const fs = require("fs");
const path = require("path");
const { Tokenizer } = require("tokenizers");

const dir = process.argv[2];
const base = path.join(dir, "tokenizer.json");
const json = JSON.parse(fs.readFileSync(base, "utf8"));

// The same tokenizer with the other merges format.
const other = JSON.parse(JSON.stringify(json));
const stringsIn = typeof json.model.merges[0] === "string";
other.model.merges = json.model.merges.map((m) =>
  stringsIn ? m.split(" ") : m.join(" "));
fs.writeFileSync(path.join(dir, "tokenizer_merge_strings.json"), JSON.stringify(other, null, 2) + "\n");

// Extra added tokens that exercise the added-token flags.
const added = JSON.parse(JSON.stringify(json));
let next = Object.keys(added.model.vocab).length + added.added_tokens.length;
const extra = [
  { content: "<mask>", single_word: false, lstrip: true, rstrip: false, normalized: false, special: true },
  { content: "[SEP]", single_word: false, lstrip: false, rstrip: true, normalized: false, special: true },
  { content: "cat", single_word: true, lstrip: false, rstrip: false, normalized: false, special: false },
  { content: "\u1112\u1161\u11ab\u1100\u1173\u11af", single_word: false, lstrip: false, rstrip: false, normalized: true, special: false },
];
for (const token of extra) added.added_tokens.push({ id: next++, ...token });
fs.writeFileSync(path.join(dir, "tokenizer_added.json"), JSON.stringify(added, null, 2) + "\n");

const hfSaved = path.join(dir, "tokenizer_hf_saved.json");
Tokenizer.fromFile(base).save(hfSaved, true);

const long = "가나다라마바사아자차카타파하".repeat(30);
const texts = [
  "",
  " ",
  "안녕하세요, 세계! 누리는 한국어를 먼저 생각하는 모델입니다.",
  "The quick brown fox jumps over the lazy dog.",
  "Numbers: 12345 3.14159 1234567890 007 ₩15,000 and ٣٤٥ and ①②③",
  "I'm sure they've said it'S fine, we'LL see; you'd THINK so. ſ's",
  "Emoji: 😀👍🇰🇷 👩‍💻 👨‍👩‍👧‍👦 ❤️ ☕",
  "int main() {\n  return 0;  // 끝\n}\n",
  "def f(x):\n\tif x > 0:\n\t\treturn x * 2\n    return -x\n",
  "spaces     between   words   and trailing   ",
  "   leading spaces",
  "line one\r\nline two\r\n\r\nline four\n\n\n",
  "tabs\t\tand\u000bvertical\u000cfeeds",
  "NBSP:\u00a0x, ideographic:\u3000y, em:\u2003z, NEL:\u0085w, MVS:\u180ev, LS:\u2028u, ZWSP:\u200bt",
  "Combining: cafe\u0301, A\u030a, \u212b, \u1100\u1161\u11a8, \u1112\u1161\u11ab\u1100\u1173\u11af",
  "Compatibility stays: ﬁ ① ㈜ ｶ ㎏ ＡＢＣ",
  "<|endoftext|>",
  "Hello<|endoftext|>World<|im_start|>user\n안녕<|im_end|>\n<|im_start|>assistant\n",
  "<|endoftext|><|endoftext|> <|image_start|><|image_pad|><|image_end|>",
  "<|endoftext|  <|unknown|> <|im_start",
  "Mixed 한국어와 English가 섞인 문장입니다. AI 모델은 GPU에서 학습합니다.",
  "URLs: https://example.com/path?q=1&r=2#top someone@example.com",
  "日本語のテキスト。中文。Ελληνικά. русский текст.",
  long,
  " ".repeat(300) + "x" + "\n".repeat(70),
  "a".repeat(500) + "!!!" + "1".repeat(100),
  "ㅋㅋㅋㅋㅋㅋ ㅎㅎ ㅠㅠ",
  "<mask> masked   <mask>[SEP]   next cat concatenate cat_ cat. 한글 \u1112\u1161\u11ab\u1100\u1173\u11af 한국",
];

async function main() {
  const tokenizers = {
    "tokenizer.json": Tokenizer.fromFile(base),
    "tokenizer_merge_strings.json": Tokenizer.fromFile(path.join(dir, "tokenizer_merge_strings.json")),
    "tokenizer_added.json": Tokenizer.fromFile(path.join(dir, "tokenizer_added.json")),
    "tokenizer_hf_saved.json": Tokenizer.fromFile(hfSaved),
  };
  const cases = [];
  for (const text of texts) {
    const entry = { text, ids: {}, decoded: {}, decoded_skip_special: {} };
    for (const [name, tok] of Object.entries(tokenizers)) {
      const encoding = await tok.encode(text, null, { addSpecialTokens: false });
      const ids = encoding.getIds();
      entry.ids[name] = ids;
      entry.decoded[name] = await tok.decode(ids, false);
      entry.decoded_skip_special[name] = await tok.decode(ids, true);
    }
    cases.push(entry);
  }
  const version = require("tokenizers/package.json").version;
  const out = { generator: `tokenizers (npm) ${version}`, cases };
  const lines = cases.map((c) => "  " + JSON.stringify(c));
  const text = `{"generator": ${JSON.stringify(out.generator)},\n "cases": [\n${lines.join(",\n")}\n]}\n`;
  fs.writeFileSync(path.join(dir, "expected.json"), text);
  console.log(`wrote ${cases.length} cases from tokenizers ${version}`);
}
main().catch((e) => { console.error(e); process.exit(1); });
