#include "encoders/tokenizer.h"

namespace nuri {

std::vector<std::string> default_special_tokens() {
  return {
      "<|endoftext|>",                                        // document separator, padding
      "<|im_start|>",     "<|im_end|>",                       // chat turn boundaries
      "<|system|>",       "<|user|>",       "<|assistant|>",  // chat roles
      "<|audio_start|>",  "<|audio_end|>",  "<|audio_pad|>",  // speech input spans
      "<|image_start|>",  "<|image_end|>",  "<|image_pad|>",  // image spans
      "<|video_start|>",  "<|video_end|>",  "<|video_pad|>",  // video spans
      "<|speech_start|>", "<|speech_end|>",                   // speech output spans
  };
}

}  // namespace nuri
