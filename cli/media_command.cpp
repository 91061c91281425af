// nuri media mel IN --out FILE.safetensors [--whisper] [--mels 80|128]
#include "cli/commands.h"
#include "kernels/log.h"
#include "kernels/safetensors.h"
#include "media/audio.h"
#include "media/mel.h"

namespace nuri::cli {

void add_media_command(CLI::App& app) {
  auto* media = app.add_subcommand("media", "Decode media and compute features");
  media->require_subcommand(1);
  auto* mel = media->add_subcommand(
      "mel", "Write the log-mel of an audio or video file (16 kHz mono) as safetensors");
  struct Args {
    std::string input, out;
    bool whisper = false;
    int mels = 80;
    double max_seconds = 600;
  };
  auto args = std::make_shared<Args>();
  mel->add_option("input", args->input, "wav, flac, ogg, mp3, m4a, opus/webm, or a video")
      ->required();
  mel->add_option("--out", args->out, "the safetensors file to write (tensor \"mel\")")->required();
  mel->add_flag("--whisper", args->whisper,
                "clamp at the input's maximum - 8, as Whisper does (default: the fixed floor of "
                "the streaming front end)");
  mel->add_option("--mels", args->mels, "mel bins")->check(CLI::IsMember({80, 128}));
  mel->add_option("--max-seconds", args->max_seconds, "refuse longer input");
  mel->callback([args] {
    const std::vector<float> samples = load_audio(args->input, {.max_seconds = args->max_seconds});
    const Tensor features = log_mel(
        samples,
        {.n_mels = args->mels, .clamp = args->whisper ? MelClamp::whisper : MelClamp::fixed_floor});
    save_safetensors(args->out, {{"mel", features}},
                     {{"source", args->input},
                      {"sample_rate", std::to_string(kAudioSampleRate)},
                      {"clamp", args->whisper ? "whisper" : "fixed_floor"}});
    log_info(args->input, ": ", samples.size(), " samples, ", features.size(1), " frames of ",
             args->mels, " mel bins -> ", args->out);
  });
}

}  // namespace nuri::cli
