// nuri-bench-tokenizer: trains nuri's byte-level BPE and SentencePiece BPE on the same text with
// the same vocabulary size and thread count, then compares compression on held-out text, training
// time and encode throughput, printing each figure with its nuri/SentencePiece ratio. --json
// writes the figures for bench/tokenizer_vs_peers.sh, which adds Hugging Face tokenizers.
#include <omp.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/timing.h"
#include "encoders/tokenizer.h"
#include "kernels/error.h"
#include "kernels/file_io.h"

namespace nuri::bench {
namespace {

// SentencePiece keeps the characters that cover this share of the training text as pieces; rarer
// ones fall back to bytes. 0.9995 is SentencePiece's recommendation for large character sets.
constexpr const char* kCharacterCoverage = "0.9995";

// Non-empty lines of a text file (paragraphs of the corpus), with their UTF-8 byte and character
// counts. Both tokenizers encode line by line, so neither sees the newlines.
struct Lines {
  std::string path;
  std::vector<std::string> lines;
  size_t bytes = 0, chars = 0;
};

Lines read_lines(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  NURI_CHECK(file.good(), "cannot read ", path);
  Lines out{path, {}, 0, 0};
  std::string line;
  while (std::getline(file, line)) {
    if (line.empty()) continue;
    out.bytes += line.size();
    for (unsigned char c : line) out.chars += (c & 0xC0) != 0x80;
    out.lines.push_back(std::move(line));
  }
  NURI_CHECK(!out.lines.empty(), path, " has no text");
  return out;
}

using Encoder = std::function<std::vector<int32_t>(const std::string&)>;

// Tokens for all lines, encoded on `threads` threads.
size_t count_tokens(const Lines& text, const Encoder& encode, int threads) {
  const auto n = static_cast<int64_t>(text.lines.size());
  size_t tokens = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16) reduction(+ : tokens)
  for (int64_t i = 0; i < n; ++i) tokens += encode(text.lines[i]).size();
  return tokens;
}

// Lines whose decoded tokens differ from the line: zero for a lossless tokenizer.
size_t lossy_lines(const Lines& text, const Encoder& encode,
                   const std::function<std::string(const std::vector<int32_t>&)>& decode) {
  size_t lossy = 0;
  for (const std::string& line : text.lines) lossy += decode(encode(line)) != line;
  return lossy;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One line of the table: a figure for each tokenizer and nuri / SentencePiece (`ratio` where
// given, else nuri / sp).
void row(nlohmann::json& rows, const std::string& name, const std::string& unit, double nuri,
         double sp, const char* better, double ratio = 0) {
  if (ratio == 0) ratio = nuri / sp;
  std::printf("  %-40s %12.3f %14.3f %10.3f   (%s is better)\n", (name + " [" + unit + "]").c_str(),
              nuri, sp, ratio, better);
  std::fflush(stdout);
  rows.push_back(
      {{"name", name}, {"unit", unit}, {"nuri", nuri}, {"sentencepiece", sp}, {"ratio", ratio}});
}

struct Options {
  std::vector<std::string> train, heldout;
  std::vector<int> vocab_sizes;
  int threads = 0, rounds = 9;
  std::string out_dir, json_path;
};

nlohmann::json run(const Options& opt, int vocab_size, const std::vector<Lines>& heldout) {
  std::printf(
      "\nvocab %d, %d threads for training and for the multi-threaded encode; SentencePiece "
      "BPE with byte_fallback, character_coverage %s, identity normalization\n",
      vocab_size, opt.threads, kCharacterCoverage);
  std::printf("  %-40s %12s %14s %10s\n", "figure [unit]", "nuri", "SentencePiece", "nuri/SP");
  nlohmann::json result = {{"vocab_size", vocab_size}, {"rows", nlohmann::json::array()}};
  nlohmann::json& rows = result["rows"];

  // Training, once each, on the same files.
  TokenizerTrainOptions train_options;
  train_options.inputs = opt.train;
  train_options.vocab_size = vocab_size;
  train_options.threads = opt.threads;
  auto start = std::chrono::steady_clock::now();
  const Tokenizer nuri = train_tokenizer(train_options);
  const double nuri_train_s = seconds_since(start);
  const std::string nuri_path = cat(opt.out_dir, "/nuri-", vocab_size, ".json");
  nuri.save(nuri_path);

  // Same total vocabulary: nuri's special tokens become SentencePiece control symbols, and both
  // keep every byte (byte-level base alphabet; byte_fallback) so that neither has unknown tokens.
  // Identity normalization and kept whitespace match nuri's lossless NFC-only encoding.
  const std::string sp_prefix = cat(opt.out_dir, "/sentencepiece-", vocab_size);
  const std::unordered_map<std::string, std::string> sp_args = {
      {"input", join(opt.train, ",")},
      {"model_prefix", sp_prefix},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", kCharacterCoverage},
      {"num_threads", std::to_string(opt.threads)},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"control_symbols", join(train_options.special_tokens, ",")},
      {"input_sentence_size", "0"},
      {"max_sentence_length", "1048576"},
      {"minloglevel", "2"},
  };
  start = std::chrono::steady_clock::now();
  const auto status = sentencepiece::SentencePieceTrainer::Train(sp_args);
  const double sp_train_s = seconds_since(start);
  NURI_CHECK(status.ok(), "SentencePiece training failed: ", status.ToString());
  sentencepiece::SentencePieceProcessor sp;
  const auto load = sp.Load(sp_prefix + ".model");
  NURI_CHECK(load.ok(), "cannot load ", sp_prefix, ".model: ", load.ToString());
  if (nuri.vocab_size() != sp.GetPieceSize()) {
    std::printf("  note: vocab sizes differ: nuri %d, SentencePiece %d\n", nuri.vocab_size(),
                sp.GetPieceSize());
  }

  const Encoder nuri_encode = [&](const std::string& s) { return nuri.encode(s); };
  const Encoder sp_encode = [&](const std::string& s) {
    std::vector<int> ids;
    const auto st = sp.Encode(s, &ids);
    NURI_CHECK(st.ok(), "SentencePiece encode failed: ", st.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  };

  row(rows, "training time", "s", nuri_train_s, sp_train_s, "lower");
  for (const Lines& text : heldout) {
    const std::string name = std::filesystem::path(text.path).filename().string();
    const size_t nuri_tokens = count_tokens(text, nuri_encode, opt.threads);
    const size_t sp_tokens = count_tokens(text, sp_encode, opt.threads);
    row(rows, name + " chars/token", "chars", static_cast<double>(text.chars) / nuri_tokens,
        static_cast<double>(text.chars) / sp_tokens, "higher");
    row(rows, name + " bytes/token", "bytes", static_cast<double>(text.bytes) / nuri_tokens,
        static_cast<double>(text.bytes) / sp_tokens, "higher");
    size_t sp_unknown = 0;
    for (const std::string& line : text.lines) {
      for (int32_t id : sp_encode(line)) sp_unknown += id == sp.unk_id();
    }
    const size_t nuri_lossy = lossy_lines(
        text, nuri_encode, [&](const std::vector<int32_t>& ids) { return nuri.decode(ids); });
    const size_t sp_lossy = lossy_lines(text, sp_encode, [&](const std::vector<int32_t>& ids) {
      std::string s;
      const auto st = sp.Decode(std::vector<int>(ids.begin(), ids.end()), &s);
      NURI_CHECK(st.ok(), "SentencePiece decode failed: ", st.ToString());
      return s;
    });
    std::printf(
        "  %s: %zu lines, %zu tokens (nuri) vs %zu (SentencePiece); lines not restored by "
        "decode: nuri %zu, SentencePiece %zu; SentencePiece unknown tokens: %zu\n",
        name.c_str(), text.lines.size(), nuri_tokens, sp_tokens, nuri_lossy, sp_lossy, sp_unknown);
    result["heldout"].push_back({{"path", text.path},
                                 {"lines", text.lines.size()},
                                 {"bytes", text.bytes},
                                 {"nuri_tokens", nuri_tokens},
                                 {"sentencepiece_tokens", sp_tokens}});
  }

  // Encode throughput on the first held-out file, the two tokenizers timed in alternation; the
  // ratio is the median of the per-round ratios.
  const Lines& text = heldout.front();
  const double mb = static_cast<double>(text.bytes) / 1e6;
  for (int threads : {1, opt.threads}) {
    const Paired t =
        paired_seconds_per_call([&] { count_tokens(text, nuri_encode, threads); },
                                [&] { count_tokens(text, sp_encode, threads); }, opt.rounds);
    row(rows, cat("encode ", threads, threads == 1 ? " thread" : " threads"), "MB/s",
        mb / t.a_seconds, mb / t.b_seconds, "higher", t.b_over_a);
    if (threads == 1) result["nuri_encode_mb_per_s_1_thread"] = mb / t.a_seconds;
    if (threads == opt.threads) result["nuri_encode_mb_per_s_threads"] = mb / t.a_seconds;
    if (opt.threads == 1) break;
  }
  result["tokenizer_json"] = nuri_path;
  result["encode_file"] = text.path;
  return result;
}

}  // namespace
}  // namespace nuri::bench

int main(int argc, char** argv) {
  using namespace nuri::bench;
  CLI::App app{"nuri's tokenizer against SentencePiece BPE", "nuri-bench-tokenizer"};
  Options opt;
  opt.threads = omp_get_max_threads();
  app.add_option("--train", opt.train, "Training text files")->required()->check(CLI::ExistingFile);
  app.add_option("--heldout", opt.heldout,
                 "Held-out text files for compression; the first is also timed for encoding")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--vocab", opt.vocab_sizes, "Vocabulary sizes, special tokens included")
      ->required()
      ->check(CLI::Range(512, 1 << 20));
  app.add_option("--threads", opt.threads, "Threads for training and the multi-threaded encode")
      ->check(CLI::PositiveNumber);
  app.add_option("--rounds", opt.rounds, "Paired timing rounds per encode figure")
      ->check(CLI::PositiveNumber);
  app.add_option("--out", opt.out_dir, "Directory for the trained tokenizers")->required();
  app.add_option("--json", opt.json_path, "Also write the figures to this JSON file");
  CLI11_PARSE(app, argc, argv);
  try {
    std::filesystem::create_directories(opt.out_dir);
    std::vector<Lines> heldout;
    for (const std::string& path : opt.heldout) heldout.push_back(read_lines(path));
    nlohmann::json out = {{"threads", opt.threads}, {"results", nlohmann::json::array()}};
    for (int vocab_size : opt.vocab_sizes) out["results"].push_back(run(opt, vocab_size, heldout));
    if (!opt.json_path.empty()) {
      nuri::write_file_atomic(opt.json_path, out.dump(2) + "\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nuri-bench-tokenizer: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
