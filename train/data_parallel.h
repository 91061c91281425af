// Data parallelism: each rank trains on its own slice of every step's samples and all ranks take
// the same update. Gradients are reduced in buckets, filled from the last parameter back; a bucket
// starts once backward has finished its parameters and every bucket before it has started (the
// same order on every rank), so communication overlaps the rest of backward. Only a step's last
// micro-batch reduces. Parameters should come in the order their gradients complete last-first:
// a module used early in forward (an encoder) ahead of those used later. ZeRO-0: every rank gets
// the averaged gradients and keeps the whole AdamW state. ZeRO-1: the gradients are
// reduce-scattered over the flattened parameters, each rank keeps AdamW states for its shard alone
// and updates it, and the shards are all-gathered.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/autograd.h"
#include "kernels/comm/communicator.h"
#include "train/optimizer.h"

namespace nuri {

struct DataParallelOptions {
  int zero = 0;                        // 0 or 1
  int64_t bucket_elements = 25 << 18;  // f32 gradients per bucket (25 MiB)
};

class DataParallel {
 public:
  // Reduces and updates `parameters` (which must outlive this) over `communicator`'s ranks.
  // Parameter i learns at lr * lr_scales[i].
  DataParallel(Communicator& communicator, std::vector<NamedParameter>& parameters,
               const DataParallelOptions& options, const AdamWOptions& adamw, float grad_clip,
               std::vector<float> lr_scales);
  ~DataParallel();

  // For the backward of a step's last micro-batch: starts each bucket's reduction once its
  // gradients are complete. Empty when there is nothing to reduce (one rank, ZeRO-0).
  GradientReady gradient_ready();
  // Right after that backward, before any other collective: starts the buckets still waiting for
  // gradients this rank's backward never reached (they count as zero), so that every rank has
  // started the same collectives in the same order.
  void finish_backward();

  // Finishes the reductions (gradients that backward never reached count as zero) and takes
  // one AdamW step at learning rate `lr`; every rank ends with the same parameters.
  StepResult step(double lr);
  int64_t steps_taken() const { return optimizer_->steps_taken(); }
  void set_steps_taken(int64_t steps) { optimizer_->set_steps_taken(steps); }

  // Writes this rank's part of the optimizer state into checkpoint directory `dir`: with ZeRO-0
  // rank 0 writes optimizer.safetensors; with ZeRO-1 rank r of N writes
  // optimizer-rank-r-of-N.safetensors, each tensor a range of one parameter's states named in
  // the file's metadata.
  void save_optimizer(const std::string& dir) const;
  // Reads the states this rank needs from a checkpoint written by any number of ranks with
  // either ZeRO stage; a missing file or an uncovered range is an error naming it.
  void load_optimizer(const std::string& dir);

 private:
  struct Bucket {
    int64_t begin = 0, end = 0;  // its range of the flattened parameters
    int64_t parameters = 0;      // how many parameters it holds
    int64_t waiting = 0;         // of those, how many gradients are still to come this step
    std::unique_ptr<PendingCollective> work;
  };
  // A range of one parameter's elements that this rank's optimizer updates.
  struct Piece {
    size_t parameter = 0;
    int64_t begin = 0, end = 0;
  };

  void take_gradient(size_t parameter);
  void start_ready_buckets();
  void finish_reduction();  // waits for every bucket and leaves the averaged gradients
  void all_gather_parameters();

  Communicator& communicator_;
  std::vector<NamedParameter>& parameters_;
  int zero_ = 0;
  bool reducing_ = false;              // anything to communicate (more than one rank, or ZeRO-1)
  std::vector<int64_t> offsets_;       // parameter i is [offsets_[i], offsets_[i + 1]) flattened
  std::vector<int64_t> shard_counts_;  // ZeRO-1: each rank's share of the flattened parameters
  int64_t shard_begin_ = 0, shard_end_ = 0;
  std::vector<Bucket> buckets_;    // in the order backward completes them
  std::vector<size_t> bucket_of_;  // parameter -> bucket
  std::unordered_map<const GradSlot*, size_t> parameter_of_;
  std::vector<bool> taken_;  // this step's gradient already copied into flat_grad_
  size_t next_bucket_ = 0;
  Tensor flat_grad_;             // [total] this rank's gradients, then (ZeRO-0) the averaged ones
  Tensor shard_grad_;            // ZeRO-1: [shard] the averaged gradients of this rank's shard
  std::vector<float> has_grad_;  // per parameter: 1 where this rank's backward reached it
  Device device_;                // where the parameters, gradients and collectives live
  std::vector<Piece> pieces_;    // what optimizer_ updates, in its order
  std::vector<NamedParameter> shard_params_;  // ZeRO-1: views of the pieces
  std::unique_ptr<AdamW> optimizer_;
};

}  // namespace nuri
