// Autograd: a tape of ops recorded during forward, replayed in reverse by backward().
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/tensor.h"

namespace nuri {

// Where a tensor's gradient accumulates. A leaf (a parameter) keeps its gradient across
// backward passes; a slot of an op's output holds its gradient only during backward.
struct GradSlot {
  Tensor grad;
  bool is_leaf = false;
};

// Computes the gradients of an op's inputs from the gradients of its outputs. Entries of the
// result may be undefined for inputs that need no gradient. It must not modify grad_outputs.
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs,
                                                     const std::vector<bool>& needs_input_grad)>;

// One recorded op.
struct TapeNode {
  std::string op;
  std::vector<std::shared_ptr<GradSlot>> inputs;  // null where the input needs no gradient
  std::vector<Shape> input_shapes;                // what each input's gradient must match
  std::vector<DType> input_dtypes;
  std::vector<std::shared_ptr<GradSlot>> outputs;
  std::vector<Shape> output_shapes;  // to zero-fill outputs that got no gradient
  std::vector<DType> output_dtypes;
  Device device;
  BackwardFn backward;
};

// Called during backward with a leaf whose gradient is complete: no op still to be run backward
// adds to it (data parallelism starts reducing it while backward goes on).
using GradientReady = std::function<void(const GradSlot& leaf)>;

// Records the ops run on this thread while a TapeScope names it, and runs them backward.
class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Back-propagates from a one-element loss (seeded with 1) into every leaf, then clears the tape.
  // `ready`, when given, hears of each leaf as soon as its gradient is complete.
  void backward(const Tensor& loss, const GradientReady& ready = {});
  // Back-propagates from several outputs, each seeded with the matching gradient.
  void backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                const GradientReady& ready = {});
  // Forgets every recorded op and the activations they saved.
  void clear() { nodes_.clear(); }
  size_t size() const { return nodes_.size(); }
  void push(TapeNode node) { nodes_.push_back(std::move(node)); }

  // The tape recording on this thread, or null.
  static Tape* active();

 private:
  friend class TapeScope;
  friend class NoGradScope;
  static Tape*& active_slot();
  std::vector<TapeNode> nodes_;
};

// Makes `tape` record the ops that this thread runs until the scope ends.
class TapeScope {
 public:
  explicit TapeScope(Tape& tape) : previous_(Tape::active_slot()) { Tape::active_slot() = &tape; }
  ~TapeScope() { Tape::active_slot() = previous_; }
  TapeScope(const TapeScope&) = delete;
  TapeScope& operator=(const TapeScope&) = delete;

 private:
  Tape* previous_;
};

// Suspends recording on this thread until the scope ends (inference, optimizer updates).
class NoGradScope {
 public:
  NoGradScope() : previous_(Tape::active_slot()) { Tape::active_slot() = nullptr; }
  ~NoGradScope() { Tape::active_slot() = previous_; }
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;

 private:
  Tape* previous_;
};

namespace autograd {

// True when a tape is recording and any of the tensors requires grad.
template <class... Tensors>
bool needed(const Tensors&... tensors) {
  return Tape::active() != nullptr && (tensors.requires_grad() || ...);
}

// Records an op on the active tape: the outputs get fresh slots, so they require grad.
void record(std::string op, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            BackwardFn backward);

}  // namespace autograd
}  // namespace nuri
