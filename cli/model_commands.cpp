// nuri generate and nuri logits: using a trained checkpoint.
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "decoder/sampling.h"
#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/safetensors.h"
#include "train/checkpoint.h"

namespace nuri::cli {

namespace {

// Length of the valid UTF-8 character at the start of `bytes` (RFC 3629), 0 when the bytes there
// cannot start one, or -1 when they are the start of one that is not complete yet.
int utf8_character_length(std::string_view bytes) {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = at(0);
  int length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the range of the second byte
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF)
    length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF)
    length = 3, low = lead == 0xE0 ? 0xA0 : 0x80, high = lead == 0xED ? 0x9F : 0xBF;
  else if (lead >= 0xF0 && lead <= 0xF4)
    length = 4, low = lead == 0xF0 ? 0x90 : 0x80, high = lead == 0xF4 ? 0x8F : 0xBF;
  else
    return 0;
  for (int i = 1; i < length; ++i) {
    if (static_cast<size_t>(i) >= bytes.size()) return -1;
    const unsigned char byte = at(i);
    if (i == 1 ? (byte < low || byte > high) : (byte < 0x80 || byte > 0xBF)) return 0;
  }
  return length;
}

// Removes from the front of `bytes` what can be printed now: whole characters, with U+FFFD for
// each byte that cannot start one. An unfinished character at the end waits unless `flush`.
std::string take_printable(std::string& bytes, bool flush) {
  std::string out;
  size_t i = 0;
  while (i < bytes.size()) {
    const int length = utf8_character_length(std::string_view(bytes).substr(i));
    if (length < 0 && !flush) break;
    if (length <= 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(bytes, i, length);
      i += length;
    }
  }
  bytes.erase(0, i);
  return out;
}

// Parses "1,2,3" into token ids below vocab_size.
std::vector<int32_t> parse_ids(const std::string& list, int64_t vocab_size) {
  std::vector<int32_t> ids;
  std::stringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    NURI_CHECK(used == item.size() && !item.empty(), "--tokens: '", item, "' is not an integer");
    NURI_CHECK(value >= 0 && value < vocab_size, "--tokens: id ", value,
               " is outside the vocabulary of ", vocab_size);
    ids.push_back(static_cast<int32_t>(value));
  }
  NURI_CHECK(!ids.empty(), "--tokens: no ids given");
  return ids;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* command = app.add_subcommand("generate", "Generate text from a checkpoint, streaming it");
  struct Args {
    std::string checkpoint, prompt;
    GenerateOptions options;
  };
  auto args = std::make_shared<Args>();
  args->options.max_new_tokens = 100;
  args->options.sampling.temperature = 0.8f;
  args->options.sampling.top_k = 50;
  args->options.sampling.top_p = 0.95f;
  args->options.sampling.repetition_penalty = 1.1f;
  auto& s = args->options.sampling;
  command->add_option("--checkpoint", args->checkpoint, "a step-N or run directory")->required();
  command->add_option("--prompt", args->prompt, "the text to continue")->required();
  command->add_option("--max-new-tokens", args->options.max_new_tokens, "tokens to generate")
      ->capture_default_str();
  command->add_option("--temperature", s.temperature, "0 for greedy")->capture_default_str();
  command->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: all)")
      ->capture_default_str();
  command->add_option("--top-p", s.top_p, "keep the smallest set with this mass")
      ->capture_default_str();
  command->add_option("--repetition-penalty", s.repetition_penalty, "1 disables it")
      ->capture_default_str();
  command->add_option("--seed", s.seed, "sampling seed")->capture_default_str();
  command->callback([args] {
    LoadedModel loaded = load_model(args->checkpoint);
    const std::vector<int32_t> prompt = loaded.tokenizer.encode(args->prompt);
    NURI_CHECK(!prompt.empty(), "--prompt: the prompt encodes to no tokens");
    if (loaded.model.config().eos_token_id >= 0) {
      args->options.stop_ids.push_back(static_cast<int32_t>(loaded.model.config().eos_token_id));
    }
    std::printf("%s", args->prompt.c_str());
    std::vector<int32_t> generated;
    std::string decoded, pending;  // all generated text so far; bytes not yet printed
    generate(loaded.model, prompt, args->options, [&](int32_t id) {
      if (loaded.tokenizer.is_special(id)) return true;
      generated.push_back(id);
      const std::string text = loaded.tokenizer.decode_continuation(generated);
      pending += text.substr(decoded.size());
      decoded = text;
      const std::string ready = take_printable(pending, false);
      std::fwrite(ready.data(), 1, ready.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    const std::string rest = take_printable(pending, true);
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
  });
}

void add_logits_command(CLI::App& app) {
  auto* command = app.add_subcommand("logits", "Write a checkpoint's logits for given token ids");
  struct Args {
    std::string checkpoint, tokens, out;
  };
  auto args = std::make_shared<Args>();
  command
      ->add_option("--checkpoint", args->checkpoint,
                   "a step-N or run directory, or any config.json + model.safetensors directory")
      ->required();
  command->add_option("--tokens", args->tokens, "comma-separated token ids")->required();
  command->add_option("--out", args->out, "safetensors file to write (tensor 'logits' [1, T, V])")
      ->required();
  command->callback([args] {
    const Decoder model = load_decoder(args->checkpoint);
    const auto ids = parse_ids(args->tokens, model.config().vocab_size);
    NoGradScope no_grad;
    const Tensor input = Tensor::from_data<int32_t>(ids, {1, static_cast<int64_t>(ids.size())});
    const Tensor logits = model.forward(input);
    save_safetensors(args->out, {{"logits", logits}, {"tokens", input}});
    std::printf("wrote %s: logits [1, %zu, %lld]\n", args->out.c_str(), ids.size(),
                static_cast<long long>(model.config().vocab_size));
  });
}

}  // namespace nuri::cli
