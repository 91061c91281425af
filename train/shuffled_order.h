// A data order that visits every item once per epoch in a fresh permutation, the same on every run
// and every resume: position p is item order(p / size)[p % size].
#pragma once
#include <cstdint>
#include <vector>

namespace nuri {

class ShuffledOrder {
 public:
  ShuffledOrder(int64_t size, uint64_t seed);
  int64_t size() const { return size_; }
  // The item at `position` (any non-negative position; epochs follow one another).
  int64_t at(int64_t position) const;

 private:
  int64_t size_;
  uint64_t seed_;
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> order_;
};

}  // namespace nuri
