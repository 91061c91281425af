// Parity with an independent PyTorch implementation of the omni model
// (tests/reference/omni_reference.py): the loss of a small random model (the block-causal audio
// encoder with its CTC head; the vision encoder's convolutional stem, grid context and ViT; both
// projectors; the M-RoPE decoder with a tied head) on a padded batch of two sequences, one with an
// image and one with an image and a transcribed clip of audio of three chunks (the last one
// partial) spliced into its text, and the gradient of every parameter. The loss is the decoder's
// plus the weighted CTC loss (torch's ctc_loss on the reference side).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fusion/omni_model.h"
#include "kernels/autograd.h"
#include "kernels/safetensors.h"
#include "train/omni_data.h"

namespace nuri {
namespace {

std::string golden_dir() {
  return std::string(NURI_SOURCE_DIR) + "/tests/data/omni/";
}

OmniConfig read_config(const std::string& path) {
  std::ifstream in(path);
  NURI_CHECK(in.good(), "cannot read ", path);
  return OmniConfig::from_json(nlohmann::json::parse(in));
}

// |a - b| / |b| (Euclidean norms over every element).
double relative_norm_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    diff += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    scale += static_cast<double>(y[i]) * y[i];
  }
  return std::sqrt(diff / scale);
}

// Metrics: the loss within 1e-5 relative; per parameter, |grad - reference| / |reference| at most
// 1e-4 (norms over the tensor), the worst parameter named.
TEST(OmniParity, LossAndGradientsMatchPyTorch) {
  const std::string dir = golden_dir();
  OmniModel model(read_config(dir + "config.json"));
  model.load(dir + "model.safetensors");
  const SafetensorsFile golden = SafetensorsFile::open(dir + "golden.safetensors");

  std::vector<SequenceLayout> layouts;
  std::vector<std::vector<MediaInput>> media;
  for (int b = 0; b < 2; ++b) {
    layouts.push_back(read_packed_layout(golden, std::to_string(b)));  // the pack's layout keys
    std::vector<MediaInput> inputs;
    for (int n = 0;; ++n) {  // b.mediaN.pixels (an image) or b.mediaN.mel (audio)
      const std::string prefix = std::to_string(b) + ".media" + std::to_string(n);
      MediaInput input;
      if (golden.contains(prefix + ".pixels")) {
        input.kind = PartKind::image;
        input.pixels = golden.tensor(prefix + ".pixels");
      } else if (golden.contains(prefix + ".mel")) {
        input.kind = PartKind::audio;
        input.mel = golden.tensor(prefix + ".mel");
        if (golden.contains(prefix + ".transcript"))
          input.transcript = golden.tensor(prefix + ".transcript");
      } else {
        break;
      }
      inputs.push_back(input);
    }
    media.push_back(inputs);
  }
  ASSERT_EQ(media[1].size(), 2u);
  ASSERT_EQ(media[1][1].kind, PartKind::audio) << "the batch must exercise the audio path";
  ASSERT_TRUE(media[1][1].transcript.defined()) << "the batch must exercise the CTC loss";
  ASSERT_NE(layouts[0].size(), layouts[1].size()) << "the batch must exercise padding";
  std::vector<const SequenceLayout*> layout_ptrs;
  std::vector<const std::vector<MediaInput>*> media_ptrs;
  for (int b = 0; b < 2; ++b) {
    layout_ptrs.push_back(&layouts[b]);
    media_ptrs.push_back(&media[b]);
  }

  Tape tape;
  Tensor loss;
  {
    TapeScope scope(tape);
    loss = model.loss(layout_ptrs, media_ptrs);
  }
  tape.backward(loss);
  const float expected_loss = golden.tensor("loss").item();
  EXPECT_NEAR(loss.item(), expected_loss, 1e-5 * expected_loss);

  const std::vector<NamedParameter> parameters = model.parameters();
  int64_t references = 0;
  for (const std::string& name : golden.names()) references += name.starts_with("grad.");
  EXPECT_EQ(references, static_cast<int64_t>(parameters.size()))
      << "the golden file and the model disagree on the parameters";
  double worst = 0;
  std::string worst_name;
  for (const NamedParameter& p : parameters) {
    ASSERT_TRUE(golden.contains("grad." + p.name)) << "no reference gradient for " << p.name;
    ASSERT_TRUE(p.tensor.grad().defined()) << "no gradient for " << p.name;
    double diff = relative_norm_diff(p.tensor.grad(), golden.tensor("grad." + p.name));
    if (std::isnan(diff)) diff = INFINITY;
    if (diff > worst) {
      worst = diff;
      worst_name = p.name;
    }
  }
  EXPECT_LT(worst, 1e-4) << "worst gradient: " << worst_name;
}

}  // namespace
}  // namespace nuri
