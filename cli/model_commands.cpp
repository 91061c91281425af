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

// Length of the longest prefix of `text` that ends on a whole UTF-8 character.
size_t complete_utf8_prefix(const std::string& text) {
  size_t end = text.size();
  for (size_t back = 1; back <= 4 && back <= text.size(); ++back) {
    const auto byte = static_cast<unsigned char>(text[text.size() - back]);
    if ((byte & 0xC0) == 0x80) continue;  // a continuation byte: keep looking for the lead
    const size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xE ? 3 : 4;
    if (length > back) end = text.size() - back;
    break;
  }
  return end;
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
    size_t printed = 0;
    generate(loaded.model, prompt, args->options, [&](int32_t id) {
      if (loaded.tokenizer.is_special(id)) return true;
      generated.push_back(id);
      const std::string text = loaded.tokenizer.decode_continuation(generated);
      const size_t ready = complete_utf8_prefix(text);
      if (ready > printed) {
        std::fwrite(text.data() + printed, 1, ready - printed, stdout);
        std::fflush(stdout);
        printed = ready;
      }
      return true;
    });
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
