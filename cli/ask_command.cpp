// nuri ask --checkpoint DIR [--audio F] [--image F] [--video F] [--text T]
#include <iostream>

#include "cli/commands.h"
#include "encoders/tokenizer.h"
#include "kernels/error.h"
#include "train/checkpoint.h"
#include "train/omni_data.h"

namespace nuri::cli {

void add_ask_command(CLI::App& app) {
  auto* command = app.add_subcommand(
      "ask", "Ask an omni checkpoint one question about audio, an image or a video");
  struct Args {
    std::string checkpoint, audio, image, video, text, device = "cpu";
    int64_t max_new_tokens = 48;
  };
  auto args = std::make_shared<Args>();
  command->add_option("--checkpoint", args->checkpoint, "a step-N or run directory")->required();
  command->add_option("--audio", args->audio, "speech (any audio file): spoken question or input");
  command->add_option("--image", args->image, "an image file");
  command->add_option("--video", args->video, "a video file (frames and soundtrack)");
  command->add_option("--text", args->text, "the question as text");
  command->add_option("--max-new-tokens", args->max_new_tokens, "longest reply");
  command->add_option("--device", args->device, "where the model runs: cpu, cuda or cuda:N")
      ->capture_default_str();
  command->callback([args] {
    Conversation conversation;
    Message& question = conversation.messages.emplace_back();
    for (const auto& [kind, path] : {std::pair{PartKind::audio, args->audio},
                                     {PartKind::image, args->image},
                                     {PartKind::video, args->video}})
      if (!path.empty()) question.content.push_back({kind, "", path, std::nullopt});
    if (!args->text.empty())
      question.content.push_back({PartKind::text, args->text, "", std::nullopt});
    NURI_CHECK(!question.content.empty(), "ask: give --audio, --image, --video or --text");
    const Device device = usable_device(args->device);
    const std::string dir = resolve_checkpoint(args->checkpoint);
    OmniModel model = load_omni_model(dir);
    model.to(device);
    const Tokenizer tokenizer = Tokenizer::load(dir + "/tokenizer.json");
    const ChatTemplate chat(tokenizer);
    const std::vector<MediaInput> media = decode_media(conversation, model.config(), {});
    const SequenceLayout prompt = chat.layout(conversation, model.shapes_of(media), true);
    const std::vector<int32_t> reply =
        model.reply(prompt, media, args->max_new_tokens, chat.end_of_turn());
    std::cout << tokenizer.decode(reply, true) << std::endl;
  });
}

}  // namespace nuri::cli
