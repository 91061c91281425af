// Data orders. ShuffledOrder visits every item once per epoch in a fresh permutation, the same on
// every run and every resume: position p is item order(p / size)[p % size].
#pragma once
#include <cstddef>
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

// A data order that blends groups of items (a dataset's tasks) in fixed shares, the same on every
// run and every resume. Position p goes to the group furthest below its share of the first p + 1
// positions (share_g = weight_g / sum of weights; ties to the first group), so that every prefix,
// and so every batch, is as close to the shares as whole items allow. Within a group, items
// follow a ShuffledOrder of their own, so a group visits all its items before repeating any.
class BlendedOrder {
 public:
  // groups: the item ids of each group, none empty; weights: one positive weight per group.
  BlendedOrder(std::vector<std::vector<int64_t>> groups, const std::vector<double>& weights,
               uint64_t seed);
  // The item at `position` (any non-negative position).
  int64_t at(int64_t position) const;
  // The group of the item at `position`.
  size_t group_at(int64_t position) const;

 private:
  // Extends the blend up to and including `position`.
  void extend(int64_t position) const;

  std::vector<std::vector<int64_t>> groups_;
  std::vector<double> shares_;
  std::vector<ShuffledOrder> orders_;
  mutable std::vector<uint32_t> group_of_;  // per position blended so far: its group
  mutable std::vector<int64_t> rank_of_;    // ... and how many of that group came before it
  mutable std::vector<int64_t> drawn_;      // per group: positions given to it so far
};

}  // namespace nuri
