#include "train/shuffled_order.h"

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

}  // namespace nuri
