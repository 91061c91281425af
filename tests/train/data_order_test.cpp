// The training data orders: ShuffledOrder's epochs are permutations; BlendedOrder keeps every
// prefix at its shares, cycles each group through all its items before repeating one, and gives
// the same item at a position however it got there (a resume).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "kernels/error.h"
#include "train/shuffled_order.h"

namespace nuri {
namespace {

TEST(ShuffledOrder, EachEpochIsAFreshPermutation) {
  const ShuffledOrder order(10, 3);
  std::vector<int64_t> first, second;
  for (int64_t p = 0; p < 10; ++p) first.push_back(order.at(p));
  for (int64_t p = 10; p < 20; ++p) second.push_back(order.at(p));
  EXPECT_NE(first, second);
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(first[i], i);
    EXPECT_EQ(second[i], i);
  }
}

// Groups of 7, 3 and 50 items (ids offset per group) weighted 2 : 1 : 1.
BlendedOrder three_groups(uint64_t seed) {
  std::vector<std::vector<int64_t>> groups(3);
  for (int64_t i = 0; i < 7; ++i) groups[0].push_back(i);
  for (int64_t i = 0; i < 3; ++i) groups[1].push_back(100 + i);
  for (int64_t i = 0; i < 50; ++i) groups[2].push_back(200 + i);
  return BlendedOrder(std::move(groups), {2.0, 1.0, 1.0}, seed);
}

TEST(BlendedOrder, EveryPrefixHoldsTheShares) {
  const BlendedOrder order = three_groups(5);
  const double shares[3] = {0.5, 0.25, 0.25};
  int64_t counts[3] = {0, 0, 0};
  for (int64_t p = 0; p < 1000; ++p) {
    const int64_t item = order.at(p);
    const size_t group = order.group_at(p);
    EXPECT_EQ(static_cast<size_t>(item / 100), group) << "position " << p;
    ++counts[group];
    for (int g = 0; g < 3; ++g)
      EXPECT_LE(std::abs(counts[g] - shares[g] * static_cast<double>(p + 1)), 1.0)
          << "group " << g << " after " << p + 1 << " positions";
  }
}

TEST(BlendedOrder, AGroupVisitsAllItsItemsBeforeRepeating) {
  const BlendedOrder order = three_groups(5);
  std::vector<std::vector<int64_t>> seen(3);
  for (int64_t p = 0; p < 400; ++p) seen[order.group_at(p)].push_back(order.at(p));
  const size_t sizes[3] = {7, 3, 50};
  for (size_t g = 0; g < 3; ++g) {
    for (size_t start = 0; start + sizes[g] <= seen[g].size(); start += sizes[g]) {
      const std::set<int64_t> pass(seen[g].begin() + start, seen[g].begin() + start + sizes[g]);
      EXPECT_EQ(pass.size(), sizes[g]) << "group " << g << ", pass from " << start;
    }
  }
}

TEST(BlendedOrder, APositionGivesTheSameItemFromAFreshOrder) {
  const BlendedOrder walked = three_groups(9);
  std::vector<int64_t> items;
  for (int64_t p = 0; p < 300; ++p) items.push_back(walked.at(p));
  for (int64_t p : {0, 1, 57, 299}) EXPECT_EQ(three_groups(9).at(p), items[p]) << p;
  // Another seed permutes the items within groups.
  std::vector<int64_t> other;
  for (int64_t p = 0; p < 300; ++p) other.push_back(three_groups(10).at(p));
  EXPECT_NE(other, items);
}

TEST(BlendedOrder, RefusesBadGroupsAndWeights) {
  EXPECT_THROW(BlendedOrder({{1, 2}}, {1.0, 1.0}, 0), Error);
  EXPECT_THROW(BlendedOrder({{1, 2}, {}}, {1.0, 1.0}, 0), Error);
  EXPECT_THROW(BlendedOrder({{1, 2}, {3}}, {1.0, 0.0}, 0), Error);
  EXPECT_THROW(BlendedOrder({{1, 2}, {3}}, {1.0, NAN}, 0), Error);
  EXPECT_THROW(BlendedOrder({}, {}, 0), Error);
  EXPECT_THROW(BlendedOrder({{1}}, {1.0}, 0).at(-1), Error);
}

}  // namespace
}  // namespace nuri
