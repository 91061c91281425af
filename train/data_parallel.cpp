#include "train/data_parallel.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "kernels/autograd.h"
#include "kernels/error.h"
#include "kernels/ops/cast.h"
#include "kernels/ops/elementwise.h"
#include "kernels/safetensors.h"

namespace nuri {

namespace fs = std::filesystem;

namespace {

// Sets every element of t (on any device) to value.
void fill(Tensor t, double value) {
  NURI_DISPATCH(t.device(), fill_elements, t, value);
}

constexpr const char* kWholeOptimizerFile = "optimizer.safetensors";
constexpr const char* kStates[] = {"exp_avg", "exp_avg_sq"};

std::string shard_file_name(int rank, int ranks) {
  return cat("optimizer-rank-", rank, "-of-", ranks, ".safetensors");
}

// The overlap of [a, b) and [c, d), empty (begin == end) when they do not meet.
std::pair<int64_t, int64_t> overlap(int64_t a, int64_t b, int64_t c, int64_t d) {
  const int64_t begin = std::max(a, c), end = std::min(b, d);
  return begin < end ? std::pair{begin, end} : std::pair{begin, begin};
}

// "begin end" as a checkpoint shard's metadata names a piece's range.
std::pair<int64_t, int64_t> parse_range(const std::string& text, const std::string& where) {
  long long begin = -1, end = -1;
  char extra = 0;
  NURI_CHECK(std::sscanf(text.c_str(), "%lld %lld %c", &begin, &end, &extra) == 2 && begin >= 0 &&
                 begin <= end,
             where, ": the range '", text, "' is not 'begin end'");
  return {begin, end};
}

}  // namespace

DataParallel::DataParallel(Communicator& communicator, std::vector<NamedParameter>& parameters,
                           const DataParallelOptions& options, const AdamWOptions& adamw,
                           float grad_clip, std::vector<float> lr_scales)
    : communicator_(communicator), parameters_(parameters), zero_(options.zero) {
  NURI_CHECK(zero_ == 0 || zero_ == 1, "data parallel: ZeRO stage ", zero_, " is not 0 or 1");
  NURI_CHECK(options.bucket_elements > 0, "data parallel: buckets must hold elements");
  if (lr_scales.empty()) lr_scales.assign(parameters.size(), 1.0f);
  NURI_CHECK(lr_scales.size() == parameters.size(), "data parallel: ", lr_scales.size(),
             " learning-rate factors for ", parameters.size(), " parameters");
  const int ranks = communicator.size(), rank = communicator.rank();
  reducing_ = ranks > 1 || zero_ == 1;
  offsets_.push_back(0);
  device_ = parameters.empty() ? Device::cpu() : parameters.front().tensor.device();
  for (const NamedParameter& p : parameters) {
    NURI_CHECK(p.tensor.dtype() == DType::f32 && p.tensor.device() == device_,
               "data parallel: parameter ", p.name, " is not an f32 tensor on ", device_);
    offsets_.push_back(offsets_.back() + p.tensor.numel());
  }
  const int64_t total = offsets_.back();
  if (zero_ == 1) {
    shard_counts_ = even_counts(total, ranks);
    for (int r = 0; r < rank; ++r) shard_begin_ += shard_counts_[r];
    shard_end_ = shard_begin_ + shard_counts_[rank];
  } else {
    shard_end_ = total;
  }

  std::vector<bool> decays;
  std::vector<float> piece_scales;
  for (size_t i = 0; i < parameters.size(); ++i) {
    const auto [begin, end] = overlap(offsets_[i], offsets_[i + 1], shard_begin_, shard_end_);
    if (begin == end && zero_ == 1) continue;  // ZeRO-0 keeps even an empty parameter
    pieces_.push_back({i, begin - offsets_[i], end - offsets_[i]});
    decays.push_back(parameters[i].tensor.dim() >= 2);
    piece_scales.push_back(lr_scales[i]);
  }
  if (zero_ == 1) {
    for (const Piece& piece : pieces_) {
      Tensor view =
          parameters[piece.parameter].tensor.view({-1}).outer_slice(piece.begin, piece.end);
      shard_params_.push_back({parameters[piece.parameter].name, view.set_requires_grad()});
    }
    optimizer_ = std::make_unique<AdamW>(shard_params_, adamw, grad_clip, piece_scales, decays);
    optimizer_->set_squares_reduction([this](double squares) {
      communicator_.sum_doubles({&squares, 1});
      return squares;
    });
  } else {
    optimizer_ = std::make_unique<AdamW>(parameters_, adamw, grad_clip, piece_scales, decays);
  }
  if (!reducing_) return;

  flat_grad_ = Tensor::zeros({total}, DType::f32, device_);
  if (zero_ == 1) shard_grad_ = Tensor::zeros({shard_end_ - shard_begin_}, DType::f32, device_);
  has_grad_.assign(parameters.size(), 0.0f);
  taken_.assign(parameters.size(), false);
  bucket_of_.assign(parameters.size(), 0);
  // Backward completes the last parameters first (when they come in forward order), so buckets
  // fill from the end.
  for (size_t i = parameters.size(); i-- > 0;) {
    if (buckets_.empty() || buckets_.back().end - buckets_.back().begin >= options.bucket_elements)
      buckets_.push_back({offsets_[i], offsets_[i + 1], 0, 0, nullptr});
    Bucket& bucket = buckets_.back();
    bucket.begin = offsets_[i];
    ++bucket.parameters;
    bucket_of_[i] = buckets_.size() - 1;
    parameter_of_[parameters[i].tensor.grad_slot().get()] = i;
  }
  for (Bucket& bucket : buckets_) bucket.waiting = bucket.parameters;
}

DataParallel::~DataParallel() = default;

GradientReady DataParallel::gradient_ready() {
  if (!reducing_) return {};
  return [this](const GradSlot& leaf) {
    const auto found = parameter_of_.find(&leaf);
    if (found != parameter_of_.end() && !taken_[found->second]) take_gradient(found->second);
    for (size_t b = 0; b < next_bucket_; ++b) {  // lets the oldest unfinished one progress
      if (!buckets_[b].work->done()) break;
    }
  };
}

void DataParallel::take_gradient(size_t parameter) {
  Tensor& tensor = parameters_[parameter].tensor;
  const Tensor grad = tensor.grad();
  Tensor out = flat_grad_.outer_slice(offsets_[parameter], offsets_[parameter + 1]);
  if (grad.defined()) {
    out.copy_from(grad.view({-1}));
    has_grad_[parameter] = 1.0f;
    tensor.clear_grad();
  } else {
    fill(out, 0.0);
    has_grad_[parameter] = 0.0f;
  }
  taken_[parameter] = true;
  --buckets_[bucket_of_[parameter]].waiting;
  start_ready_buckets();
}

void DataParallel::start_ready_buckets() {
  // Every rank starts the buckets in the same order, whatever order its gradients came in.
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].waiting == 0) {
    Bucket& bucket = buckets_[next_bucket_++];
    const Tensor grads = flat_grad_.outer_slice(bucket.begin, bucket.end);
    if (zero_ == 0) {
      bucket.work = communicator_.start_all_reduce(grads);
      continue;
    }
    std::vector<int64_t> counts;
    int64_t rank_begin = 0;
    for (int64_t count : shard_counts_) {
      const auto [begin, end] = overlap(bucket.begin, bucket.end, rank_begin, rank_begin + count);
      counts.push_back(end - begin);
      rank_begin += count;
    }
    const int64_t mine = std::clamp(bucket.begin, shard_begin_, shard_end_) - shard_begin_;
    const Tensor output = shard_grad_.outer_slice(mine, mine + counts[communicator_.rank()]);
    bucket.work = communicator_.start_reduce_scatter(grads, output, std::move(counts));
  }
}

void DataParallel::finish_backward() {
  if (!reducing_) return;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    if (!taken_[i]) take_gradient(i);
  }
}

void DataParallel::finish_reduction() {
  finish_backward();
  for (Bucket& bucket : buckets_) {
    bucket.work->wait();
    bucket.work.reset();
    bucket.waiting = bucket.parameters;
  }
  next_bucket_ = 0;
  std::fill(taken_.begin(), taken_.end(), false);
  // A parameter any rank reached has a gradient: the flags travel once, on the collectives' device.
  const Tensor flags =
      Tensor::from_data<float>(has_grad_, {static_cast<int64_t>(has_grad_.size())});
  const Tensor reduced = flags.to(device_);
  communicator_.all_reduce(reduced);

  const float mean = 1.0f / static_cast<float>(communicator_.size());
  Tensor& averaged = zero_ == 0 ? flat_grad_ : shard_grad_;
  {
    NoGradScope no_grad;
    averaged.copy_from(scale(averaged, mean));
  }
  const std::vector<float> has_grad = reduced.to_vector();
  for (size_t k = 0; k < pieces_.size(); ++k) {
    const Piece& piece = pieces_[k];
    if (has_grad[piece.parameter] == 0.0f) continue;
    const int64_t start = offsets_[piece.parameter] + piece.begin;
    if (zero_ == 0) {
      Tensor& tensor = parameters_[piece.parameter].tensor;
      tensor.set_grad(flat_grad_.outer_slice(start, start + tensor.numel()).view(tensor.shape()));
    } else {
      shard_params_[k].tensor.set_grad(shard_grad_.outer_slice(
          start - shard_begin_, start - shard_begin_ + piece.end - piece.begin));
    }
  }
}

void DataParallel::all_gather_parameters() {
  // The flattened parameters, this rank's shard filled in from its pieces.
  Tensor shard = Tensor::empty({shard_end_ - shard_begin_}, DType::f32, device_);
  for (size_t k = 0; k < pieces_.size(); ++k) {
    const int64_t start = offsets_[pieces_[k].parameter] + pieces_[k].begin - shard_begin_;
    shard.outer_slice(start, start + shard_params_[k].tensor.numel())
        .copy_from(shard_params_[k].tensor);
  }
  Tensor whole = Tensor::empty({offsets_.back()}, DType::f32, device_);
  communicator_.all_gather(shard, whole, shard_counts_);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    parameters_[i].tensor.view({-1}).copy_from(whole.outer_slice(offsets_[i], offsets_[i + 1]));
  }
}

StepResult DataParallel::step(double lr) {
  if (!reducing_) return optimizer_->step(lr);
  finish_reduction();
  const StepResult result = optimizer_->step(lr);
  if (zero_ == 1 && !result.skipped && communicator_.size() > 1) all_gather_parameters();
  return result;
}

void DataParallel::save_optimizer(const std::string& dir) const {
  const int rank = communicator_.rank(), ranks = communicator_.size();
  if (zero_ == 0) {
    if (rank == 0) {
      save_safetensors((fs::path(dir) / kWholeOptimizerFile).string(), optimizer_->state());
    }
    return;
  }
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> ranges;
  const auto state = optimizer_->state();  // "<name>.exp_avg", "<name>.exp_avg_sq" per piece
  for (size_t k = 0; k < pieces_.size(); ++k) {
    ranges[shard_params_[k].name] = cat(pieces_[k].begin, " ", pieces_[k].end);
    tensors.push_back(state[2 * k]);
    tensors.push_back(state[2 * k + 1]);
  }
  ranges["ranks"] = cat(ranks);
  save_safetensors((fs::path(dir) / shard_file_name(rank, ranks)).string(), tensors, ranges);
}

void DataParallel::load_optimizer(const std::string& dir) {
  // Each source file's tensors cover ranges of parameters' flattened states; copy what overlaps
  // this rank's pieces and count it, so that a gap is found.
  std::map<std::string, size_t> parameter_index;
  for (size_t i = 0; i < parameters_.size(); ++i) parameter_index[parameters_[i].name] = i;
  std::vector<std::vector<size_t>> pieces_of(parameters_.size());
  for (size_t k = 0; k < pieces_.size(); ++k) pieces_of[pieces_[k].parameter].push_back(k);
  std::vector<int64_t> covered(pieces_.size(), 0);

  auto take = [&](const SafetensorsFile& file, const std::string& name, int64_t begin,
                  int64_t end) {
    const auto found = parameter_index.find(name);
    NURI_CHECK(found != parameter_index.end(), file.path(), ": optimizer state of '", name,
               "', which is no trained parameter");
    const size_t i = found->second;
    NURI_CHECK(end <= offsets_[i + 1] - offsets_[i], file.path(), ": the range ", begin, "-", end,
               " of '", name, "' exceeds its ", offsets_[i + 1] - offsets_[i], " elements");
    for (int s = 0; s < 2; ++s) {  // exp_avg, then exp_avg_sq
      const std::string key = cat(name, ".", kStates[s]);
      NURI_CHECK(file.contains(key), file.path(), ": optimizer state '", key, "' is missing");
      const Tensor saved = file.tensor(key);
      NURI_CHECK(saved.dtype() == DType::f32 && saved.numel() == end - begin, file.path(),
                 ": optimizer state '", key, "' holds ", saved.numel(), " ",
                 dtype_name(saved.dtype()), " values for a range of ", end - begin, " f32");
      const Tensor from = saved.view({-1});
      for (size_t k : pieces_of[i]) {
        const auto [a, b] = overlap(begin, end, pieces_[k].begin, pieces_[k].end);
        if (a == b) continue;
        Tensor& target = s == 0 ? optimizer_->exp_avg(k) : optimizer_->exp_avg_sq(k);
        target
            .view({-1})  // the states may live on a GPU
            .outer_slice(a - pieces_[k].begin, b - pieces_[k].begin)
            .copy_from(from.outer_slice(a - begin, b - begin));
        if (s == 0) covered[k] += b - a;
      }
    }
  };

  const fs::path whole = fs::path(dir) / kWholeOptimizerFile;
  if (fs::exists(whole)) {
    const auto file = SafetensorsFile::open(whole.string());
    NURI_CHECK(file.names().size() == 2 * parameters_.size(), whole.string(), ": holds ",
               file.names().size(), " tensors, expected ", 2 * parameters_.size(),
               " optimizer states");
    for (const NamedParameter& p : parameters_) {
      const std::string key = p.name + ".exp_avg";
      NURI_CHECK(file.contains(key), whole.string(), ": optimizer state '", key, "' is missing");
      NURI_CHECK(file.entry(key).shape == p.tensor.shape(), whole.string(), ": optimizer state '",
                 key, "' has shape ", shape_str(file.entry(key).shape), ", expected ",
                 shape_str(p.tensor.shape()));
      take(file, p.name, 0, p.tensor.numel());
    }
  } else {
    // Shards of a ZeRO-1 run: every one of its ranks' files must be there.
    int ranks = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
      int r = 0, n = 0;
      if (std::sscanf(entry.path().filename().c_str(), "optimizer-rank-%d-of-%d.safetensors", &r,
                      &n) == 2) {
        ranks = n;
      }
    }
    NURI_CHECK(ranks > 0, dir, ": holds no optimizer state (", kWholeOptimizerFile, " or ",
               shard_file_name(0, 1), "...)");
    for (int r = 0; r < ranks; ++r) {
      const fs::path path = fs::path(dir) / shard_file_name(r, ranks);
      NURI_CHECK(fs::exists(path), dir, ": optimizer shard ", path.filename().string(), " of ",
                 ranks, " is missing");
      const auto file = SafetensorsFile::open(path.string());
      for (const auto& [name, range] : file.metadata()) {
        if (name == "ranks") continue;
        const auto [begin, end] = parse_range(range, cat(path.string(), " '", name, "'"));
        take(file, name, begin, end);
      }
    }
  }
  for (size_t k = 0; k < pieces_.size(); ++k) {
    NURI_CHECK(covered[k] == pieces_[k].end - pieces_[k].begin, dir, ": the optimizer state of '",
               parameters_[pieces_[k].parameter].name, "' covers ", covered[k], " of the ",
               pieces_[k].end - pieces_[k].begin, " elements this rank needs");
  }
}

}  // namespace nuri
