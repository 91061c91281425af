#include "train/omni_data.h"

#include <omp.h>

#include <cstring>
#include <filesystem>

#include "kernels/error.h"
#include "kernels/file_io.h"
#include "kernels/log.h"
#include "kernels/ops/ctc.h"
#include "media/audio.h"
#include "media/mel.h"
#include "media/video.h"
#include "train/files.h"
#include "train/metrics.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

constexpr int kPackVersion = 2;  // 2: media transcripts

// One media item as packed: its log-mel and its resized 8-bit frames.
struct DecodedItem {
  PartKind kind = PartKind::audio;
  Tensor mel;
  std::vector<Image> frames;
  std::vector<float> times;
};

Image resized_for(const Image& image, const ImageGrid& grid) {
  return image.height == grid.height && image.width == grid.width
             ? image
             : resize_image(image, grid.height, grid.width);
}

Tensor mel_of(const std::vector<float>& samples, const AudioEncoderConfig& audio) {
  return log_mel(samples, {.n_mels = static_cast<int>(audio.n_mels)});
}

DecodedItem decode_item(const ContentPart& part, const OmniConfig& config,
                        const MediaDecodeOptions& options) {
  DecodedItem item;
  item.kind = part.kind;
  if (part.kind == PartKind::audio) {
    NURI_CHECK(config.audio, part.path, ": audio input, but the model has no audio encoder");
    item.mel =
        mel_of(load_audio(part.path, {.max_seconds = options.max_audio_seconds}), *config.audio);
    return item;
  }
  NURI_CHECK(config.vision, part.path, ": visual input, but the model has no vision encoder");
  if (part.kind == PartKind::image) {
    const Image image = load_image(part.path);
    item.frames.push_back(resized_for(image, config.vision->image_grid(image.height, image.width)));
    return item;
  }
  const VisionEncoderConfig& vision = *config.vision;
  const Video video = load_video(part.path, {.fps = vision.video_fps,
                                             .max_seconds = options.max_video_seconds,
                                             .max_frames = vision.max_video_frames,
                                             .audio = config.audio.has_value()});
  NURI_CHECK(!video.frames.empty(), part.path, ": the video has no frames");
  const Image& first = video.frames[0].image;
  const ImageGrid grid = vision.video_grid(first.height, first.width);
  for (const VideoFrame& frame : video.frames) {
    item.frames.push_back(resized_for(frame.image, grid));
    item.times.push_back(static_cast<float>(frame.time));
  }
  if (config.audio && !video.audio.empty()) item.mel = mel_of(video.audio, *config.audio);
  return item;
}

// The model's input for a decoded item: its frames (already on the encoder's grid) normalised.
MediaInput input_of(const DecodedItem& item, const OmniConfig& config) {
  MediaInput input;
  input.kind = item.kind;
  input.mel = item.mel;
  if (!item.frames.empty())
    input.pixels = item.kind == PartKind::video ? prepare_video(item.frames, *config.vision)
                                                : prepare_image(item.frames[0], *config.vision);
  input.frame_times.assign(item.times.begin(), item.times.end());
  return input;
}

// Frames as one u8 tensor [H, W, 3] (an image) or [T, H, W, 3].
Tensor frames_u8(const std::vector<Image>& frames, bool video) {
  const int64_t h = frames[0].height, w = frames[0].width, t = static_cast<int64_t>(frames.size());
  Tensor out = video ? Tensor::empty({t, h, w, 3}, DType::u8) : Tensor::empty({h, w, 3}, DType::u8);
  for (int64_t f = 0; f < t; ++f)
    std::memcpy(out.data<uint8_t>() + f * h * w * 3, frames[f].rgb.data(), h * w * 3);
  return out;
}

std::vector<Image> frames_from_u8(const Tensor& u8) {
  const bool video = u8.dim() == 4;
  const int64_t t = video ? u8.size(0) : 1, h = u8.size(u8.dim() - 3), w = u8.size(u8.dim() - 2);
  std::vector<Image> frames(static_cast<size_t>(t));
  for (int64_t f = 0; f < t; ++f) {
    const uint8_t* src = u8.data<uint8_t>() + f * h * w * 3;
    frames[f] = {h, w, std::vector<uint8_t>(src, src + h * w * 3)};
  }
  return frames;
}

Tensor i32(const std::vector<int32_t>& values) {
  return Tensor::from_data<int32_t>(values, {static_cast<int64_t>(values.size())});
}

std::vector<int32_t> i32_values(const Tensor& t) {
  return std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + t.numel());
}

const char* kind_name(PartKind kind) {
  switch (kind) {
    case PartKind::audio:
      return "audio";
    case PartKind::image:
      return "image";
    case PartKind::video:
      return "video";
    case PartKind::text:
      return "text";
  }
  return "?";
}

PartKind kind_from(const std::string& name, const std::string& where) {
  for (PartKind k : {PartKind::audio, PartKind::image, PartKind::video})
    if (name == kind_name(k)) return k;
  fail(where, ": unknown media kind '", name, "'");
}

std::string shard_name(int64_t shard) {
  char name[48];
  std::snprintf(name, sizeof(name), "shard-%05lld.safetensors", static_cast<long long>(shard));
  return name;
}

}  // namespace

std::vector<MediaInput> decode_media(const Conversation& conversation, const OmniConfig& config,
                                     const MediaDecodeOptions& options) {
  std::vector<MediaInput> out;
  for (const ContentPart* part : conversation.media())
    out.push_back(input_of(decode_item(*part, config, options), config));
  return out;
}

std::string pack_fingerprint(const OmniConfig& config, const std::string& tokenizer_fingerprint) {
  nlohmann::json shape = {{"pack_version", kPackVersion}, {"tokenizer", tokenizer_fingerprint}};
  if (config.audio) shape["audio"] = config.audio->to_json();
  if (config.vision) shape["vision"] = config.vision->to_json();
  return fnv1a_hex(shape.dump());
}

PackSummary pack_manifest(const PackOptions& options, const OmniModel& model,
                          const ChatTemplate& chat) {
  NURI_CHECK(options.shard_samples > 0, "data pack: shard_samples must be positive");
  const std::vector<ManifestEntry> entries = load_manifest(options.manifest);
  const OmniConfig& config = model.config();
  fs::create_directories(options.out_dir);
  const fs::path dir = options.out_dir;
  // A pack is complete once its index exists; a new one starts by removing the old index, so an
  // interrupted pack never looks complete.
  fs::remove(dir / "index.json");
  for (const auto& file : fs::directory_iterator(dir))
    if (file.path().filename().string().rfind("shard-", 0) == 0) fs::remove(file.path());

  const std::string tokenizer_fingerprint = fnv1a_hex(chat.tokenizer().to_json());
  nlohmann::json samples = nlohmann::json::array(), skipped = nlohmann::json::array();
  PackSummary summary;
  const int64_t total = static_cast<int64_t>(entries.size());
  ProgressBar bar(total, 0, options.progress);
  if (options.threads > 0) omp_set_num_threads(options.threads);
  for (int64_t begin = 0; begin < total; begin += options.shard_samples) {
    const int64_t end = std::min(total, begin + options.shard_samples);
    std::vector<std::vector<DecodedItem>> decoded(static_cast<size_t>(end - begin));
    std::vector<SequenceLayout> layouts(decoded.size());
    std::vector<std::string> errors(decoded.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t i = begin; i < end; ++i) {
      try {
        std::vector<MediaInput> inputs;
        for (const ContentPart* part : entries[i].conversation.media()) {
          decoded[i - begin].push_back(decode_item(*part, config, options.media));
          inputs.push_back(input_of(decoded[i - begin].back(), config));
        }
        layouts[i - begin] = chat.layout(entries[i].conversation, model.shapes_of(inputs));
      } catch (const std::exception& e) {
        errors[i - begin] = e.what();
      }
    }
    std::vector<std::pair<std::string, Tensor>> tensors;
    const int64_t shard = summary.shards;
    int64_t in_shard = 0;
    for (int64_t i = begin; i < end; ++i) {
      const std::string& error = errors[i - begin];
      if (!error.empty()) {
        skipped.push_back({{"where", entries[i].where}, {"error", error}});
        log_warn("skipping ", entries[i].where, ": ", error);
        NURI_CHECK(static_cast<int64_t>(skipped.size()) <= options.max_bad_samples,
                   options.manifest, ": ", skipped.size(), " bad samples exceed the limit of ",
                   options.max_bad_samples, " (data.max_bad_samples); the last: ", entries[i].where,
                   ": ", error);
        continue;
      }
      const SequenceLayout& layout = layouts[i - begin];
      const std::string key = std::to_string(in_shard);
      tensors.emplace_back(key + ".ids", i32(layout.ids));
      tensors.emplace_back(key + ".targets", i32(layout.targets));
      tensors.emplace_back(key + ".positions", i32(layout.positions));
      std::vector<int32_t> slices;
      for (const MediaSlice& s : layout.slices)
        for (int64_t v : {s.media, static_cast<int64_t>(s.audio), s.first, s.count, s.start})
          slices.push_back(static_cast<int32_t>(v));
      tensors.emplace_back(key + ".slices", i32(slices));
      nlohmann::json media = nlohmann::json::array();
      const std::vector<DecodedItem>& items = decoded[i - begin];
      const std::vector<const ContentPart*> parts = entries[i].conversation.media();
      for (size_t j = 0; j < items.size(); ++j) {
        const std::string prefix = key + ".media" + std::to_string(j);
        media.push_back(kind_name(items[j].kind));
        if (parts[j]->transcript && items[j].mel.defined()) {
          const std::vector<int32_t> labels = chat.tokenizer().encode(*parts[j]->transcript);
          const int64_t tokens = config.audio->token_count(items[j].mel.size(1));
          const int64_t needed = ctc_frames_needed(std::span<const int32_t>(labels));
          if (config.audio->ctc_weight > 0 && needed > tokens)
            log_warn(entries[i].where, ": the transcript of media ", j, " needs ", needed,
                     " audio tokens for CTC and the audio gives ", tokens,
                     "; its CTC loss will be 0");
          tensors.emplace_back(prefix + ".transcript", i32(labels));
        }
        if (items[j].mel.defined()) tensors.emplace_back(prefix + ".mel", items[j].mel);
        if (!items[j].frames.empty())
          tensors.emplace_back(prefix + ".pixels",
                               frames_u8(items[j].frames, items[j].kind == PartKind::video));
        if (!items[j].times.empty())
          tensors.emplace_back(prefix + ".times",
                               Tensor::from_data<float>(
                                   items[j].times, {static_cast<int64_t>(items[j].times.size())}));
      }
      samples.push_back({{"shard", shard},
                         {"index", in_shard},
                         {"tokens", layout.size()},
                         {"media", media},
                         {"task", entries[i].task},
                         {"answer", entries[i].answer},
                         {"where", entries[i].where}});
      ++in_shard;
    }
    if (in_shard > 0) {
      const std::string path = (dir / shard_name(shard)).string();
      save_safetensors(path, tensors);
      summary.bytes += static_cast<int64_t>(fs::file_size(path));
      ++summary.shards;
    }
    summary.samples += in_shard;
    bar.update(end, cat(summary.samples, " packed, ", skipped.size(), " skipped"));
  }
  bar.finish();
  summary.skipped = static_cast<int64_t>(skipped.size());
  NURI_CHECK(summary.samples > 0, options.manifest, ": no sample could be packed");
  const nlohmann::json index = {{"version", kPackVersion},
                                {"fingerprint", pack_fingerprint(config, tokenizer_fingerprint)},
                                {"manifest", options.manifest},
                                {"shards", summary.shards},
                                {"samples", samples},
                                {"skipped", skipped}};
  write_file_atomic((dir / "index.json").string(), index.dump(1));
  return summary;
}

PackedDataset::PackedDataset(const std::string& dir, const OmniConfig& config,
                             const std::string& tokenizer_fingerprint)
    : dir_(dir), config_(config) {
  const std::string index_path = (fs::path(dir) / "index.json").string();
  const nlohmann::json index = nlohmann::json::parse(read_file(index_path), nullptr, false);
  NURI_CHECK(!index.is_discarded() && index.is_object(), index_path, ": not valid JSON");
  try {
    NURI_CHECK(index.at("version") == kPackVersion, "version ", index.at("version").dump(),
               " is not ", kPackVersion);
    NURI_CHECK(index.at("fingerprint") == pack_fingerprint(config, tokenizer_fingerprint),
               "packed for another model config or tokenizer: run nuri data pack again");
    const int64_t shards = index.at("shards").get<int64_t>();
    for (int64_t s = 0; s < shards; ++s)
      shards_.push_back(SafetensorsFile::open((fs::path(dir) / shard_name(s)).string()));
    for (const nlohmann::json& sample : index.at("samples")) {
      Entry e;
      e.shard = sample.at("shard").get<int64_t>();
      e.index = sample.at("index").get<int64_t>();
      e.tokens = sample.at("tokens").get<int64_t>();
      NURI_CHECK(e.shard >= 0 && e.shard < shards, "sample in shard ", e.shard, " of ", shards);
      for (const nlohmann::json& kind : sample.at("media"))
        e.media.push_back(kind_from(kind.get<std::string>(), index_path));
      e.task = sample.at("task").get<std::string>();
      e.answer = sample.at("answer").get<std::string>();
      e.where = sample.at("where").get<std::string>();
      entries_.push_back(std::move(e));
    }
    skipped_ = static_cast<int64_t>(index.at("skipped").size());
  } catch (const nlohmann::json::exception& e) {
    fail(index_path, ": ", e.what());
  } catch (const Error& e) {
    fail(index_path, ": ", e.what());
  }
}

SequenceLayout read_packed_layout(const SafetensorsFile& shard, const std::string& key) {
  SequenceLayout layout;
  layout.ids = i32_values(shard.tensor(key + ".ids"));
  layout.targets = i32_values(shard.tensor(key + ".targets"));
  layout.positions = i32_values(shard.tensor(key + ".positions"));
  const std::vector<int32_t> slices = i32_values(shard.tensor(key + ".slices"));
  NURI_CHECK(layout.targets.size() == layout.ids.size() &&
                 layout.positions.size() == 3 * layout.ids.size() && slices.size() % 5 == 0,
             shard.path(), ": sample ", key, " has inconsistent layout tensors");
  for (size_t s = 0; s < slices.size(); s += 5)
    layout.slices.push_back(
        {slices[s], slices[s + 1] != 0, slices[s + 2], slices[s + 3], slices[s + 4]});
  int32_t top = -1;
  for (int32_t p : layout.positions) top = std::max(top, p);
  layout.next_position = top + 1;
  return layout;
}

OmniSample PackedDataset::sample(int64_t i) const {
  const Entry& e = entries_[i];
  const SafetensorsFile& shard = shards_[e.shard];
  const std::string key = std::to_string(e.index);
  OmniSample out;
  out.task = e.task;
  out.answer = e.answer;
  out.where = e.where;
  out.layout = read_packed_layout(shard, key);
  for (size_t j = 0; j < e.media.size(); ++j) {
    const std::string prefix = key + ".media" + std::to_string(j);
    DecodedItem item;
    item.kind = e.media[j];
    if (shard.contains(prefix + ".mel")) item.mel = shard.tensor(prefix + ".mel");
    if (shard.contains(prefix + ".pixels"))
      item.frames = frames_from_u8(shard.tensor(prefix + ".pixels"));
    if (shard.contains(prefix + ".times")) {
      const Tensor t = shard.tensor(prefix + ".times");
      item.times.assign(t.data<float>(), t.data<float>() + t.numel());
    }
    MediaInput input = input_of(item, config_);
    if (shard.contains(prefix + ".transcript"))
      input.transcript = shard.tensor(prefix + ".transcript");
    out.media.push_back(std::move(input));
  }
  return out;
}

}  // namespace nuri
