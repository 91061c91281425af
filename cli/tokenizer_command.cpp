// `nuri tokenizer train|encode|decode`: learn a tokenizer from text files, and turn text lines
// into id lines and back.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "encoders/tokenizer.h"
#include "kernels/error.h"

namespace nuri::cli {

namespace {

// Parses one line of space-separated ids; errors name the bad id and the line number.
std::vector<int32_t> parse_ids(const std::string& line, size_t line_number, int32_t vocab_size) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i == line.size()) break;
    size_t end = i;
    while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r') ++end;
    const std::string word = line.substr(i, end - i);
    const auto value = parse_integer(word);
    NURI_CHECK(value && *value >= 0 && *value < vocab_size, "tokenizer decode: id '", word,
               "' on line ", line_number, " is not an id of this tokenizer (0..", vocab_size - 1,
               ")");
    ids.push_back(static_cast<int32_t>(*value));
    i = end;
  }
  return ids;
}

}  // namespace

void add_tokenizer_command(CLI::App& app) {
  CLI::App* tokenizer = app.add_subcommand("tokenizer", "Train a tokenizer, encode or decode text");
  tokenizer->require_subcommand(1);

  struct TrainArgs {
    nuri::TokenizerTrainOptions options;
    std::string out;
  };
  auto train = std::make_shared<TrainArgs>();
  CLI::App* train_cmd =
      tokenizer->add_subcommand("train", "Learn a byte-level BPE tokenizer from UTF-8 text files");
  train_cmd->add_option("--vocab", train->options.vocab_size, "Vocabulary size, specials included")
      ->required()
      ->check(CLI::PositiveNumber);
  train_cmd->add_option("--input", train->options.inputs, "UTF-8 text files")->required();
  train_cmd->add_option("--out", train->out, "tokenizer.json to write")->required();
  train_cmd
      ->add_option("--min-frequency", train->options.min_frequency,
                   "Pairs seen fewer times are not merged")
      ->capture_default_str();
  train_cmd->add_option("--threads", train->options.threads, "Threads (0: all)")
      ->capture_default_str();
  train_cmd->callback([train] {
    train->options.progress = true;
    const nuri::Tokenizer result = nuri::train_tokenizer(train->options);
    result.save(train->out);
    std::fprintf(stderr, "tokenizer: wrote %s (%d tokens)\n", train->out.c_str(),
                 result.vocab_size());
  });

  auto encode_path = std::make_shared<std::string>();
  CLI::App* encode_cmd = tokenizer->add_subcommand(
      "encode", "Read text lines on stdin, print each line's ids separated by spaces");
  encode_cmd->add_option("--tokenizer", *encode_path, "tokenizer.json")->required();
  encode_cmd->callback([encode_path] {
    const nuri::Tokenizer tok = nuri::Tokenizer::load(*encode_path);
    std::string line;
    std::string out;
    size_t line_number = 0;
    while (std::getline(std::cin, line)) {
      ++line_number;
      std::vector<int32_t> ids;
      try {
        ids = tok.encode(line);
      } catch (const nuri::Error& e) {
        nuri::fail("line ", line_number, ": ", e.what());
      }
      out.clear();
      for (size_t i = 0; i < ids.size(); ++i) {
        if (i) out += ' ';
        out += std::to_string(ids[i]);
      }
      out += '\n';
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
  });

  auto decode_path = std::make_shared<std::string>();
  CLI::App* decode_cmd = tokenizer->add_subcommand(
      "decode", "Read lines of space-separated ids on stdin, print each line's text");
  decode_cmd->add_option("--tokenizer", *decode_path, "tokenizer.json")->required();
  decode_cmd->callback([decode_path] {
    const nuri::Tokenizer tok = nuri::Tokenizer::load(*decode_path);
    std::string line;
    size_t line_number = 0;
    while (std::getline(std::cin, line)) {
      ++line_number;
      std::string text = tok.decode(parse_ids(line, line_number, tok.vocab_size()));
      text += '\n';
      std::fwrite(text.data(), 1, text.size(), stdout);
    }
  });
}

}  // namespace nuri::cli
