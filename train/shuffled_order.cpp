#include "train/shuffled_order.h"

#include <cmath>
#include <limits>
#include <utility>

#include "kernels/error.h"
#include "kernels/philox.h"

namespace nuri {

ShuffledOrder::ShuffledOrder(int64_t size, uint64_t seed) : size_(size), seed_(seed) {
  NURI_CHECK(size > 0, "data order: nothing to order");
}

int64_t ShuffledOrder::at(int64_t position) const {
  const int64_t epoch = position / size_;
  if (epoch != cached_epoch_) {
    // Fisher-Yates driven by Philox at (seed, epoch).
    order_.resize(size_);
    for (int64_t i = 0; i < size_; ++i) order_[i] = i;
    const uint64_t key = seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(epoch + 1));
    for (int64_t i = size_ - 1; i > 0; --i) {
      const auto block = philox::generate(static_cast<uint64_t>(i), key);
      const uint64_t bits = (static_cast<uint64_t>(block.v[0]) << 32) | block.v[1];
      std::swap(order_[i], order_[bits % static_cast<uint64_t>(i + 1)]);
    }
    cached_epoch_ = epoch;
  }
  return order_[position % size_];
}

BlendedOrder::BlendedOrder(std::vector<std::vector<int64_t>> groups,
                           const std::vector<double>& weights, uint64_t seed)
    : groups_(std::move(groups)), drawn_(groups_.size(), 0) {
  NURI_CHECK(!groups_.empty() && weights.size() == groups_.size(), "data order: ", weights.size(),
             " weights for ", groups_.size(), " groups");
  double total = 0;
  for (size_t g = 0; g < groups_.size(); ++g) {
    NURI_CHECK(!groups_[g].empty(), "data order: group ", g, " has no items");
    NURI_CHECK(weights[g] > 0 && std::isfinite(weights[g]), "data order: the weight of group ", g,
               " is ", weights[g], ", not a positive number");
    total += weights[g];
  }
  for (size_t g = 0; g < groups_.size(); ++g) {
    shares_.push_back(weights[g] / total);
    // Each group its own permutation stream.
    orders_.emplace_back(static_cast<int64_t>(groups_[g].size()),
                         seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(g + 1)));
  }
}

void BlendedOrder::extend(int64_t position) const {
  NURI_CHECK(position >= 0, "data order: position ", position, " is negative");
  for (auto next = static_cast<int64_t>(group_of_.size()); next <= position; ++next) {
    size_t best = 0;
    double best_deficit = -std::numeric_limits<double>::infinity();
    for (size_t g = 0; g < groups_.size(); ++g) {
      const double deficit = shares_[g] * static_cast<double>(next + 1) - drawn_[g];
      if (deficit > best_deficit) {
        best = g;
        best_deficit = deficit;
      }
    }
    group_of_.push_back(static_cast<uint32_t>(best));
    rank_of_.push_back(drawn_[best]++);
  }
}

size_t BlendedOrder::group_at(int64_t position) const {
  extend(position);
  return group_of_[position];
}

int64_t BlendedOrder::at(int64_t position) const {
  const size_t g = group_at(position);
  return groups_[g][orders_[g].at(rank_of_[position])];
}

}  // namespace nuri
