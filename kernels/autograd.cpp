#include "kernels/autograd.h"

#include <unordered_set>

#include "kernels/ops/elementwise.h"

namespace nuri {

Tape*& Tape::active_slot() {
  thread_local Tape* active = nullptr;
  return active;
}

Tape* Tape::active() {
  return active_slot();
}

namespace {

// Adds `grad` into a slot. Accumulation is out of place, so a gradient that aliases another
// (add hands the same tensor to both inputs) is never modified; a leaf keeps a buffer of its own
// so that optimizers may update its gradient in place.
void accumulate(GradSlot& slot, const Shape& shape, DType dtype, Tensor& grad) {
  NoGradScope no_grad;
  NURI_CHECK(grad.shape() == shape && grad.dtype() == dtype, "autograd: gradient ", grad,
             " for a tensor of ", dtype_name(dtype), shape_str(shape));
  if (!slot.grad.defined()) {
    slot.grad = (slot.is_leaf && !grad.is_sole_owner()) ? grad.clone() : grad.detach();
  } else {
    slot.grad = add(slot.grad, grad);
  }
}

// Drops the activations a node saved and the gradients of its outputs.
void release(TapeNode& node) {
  node.backward = nullptr;
  for (auto& slot : node.outputs) {
    if (!slot->is_leaf) slot->grad = Tensor();
  }
}

}  // namespace

void Tape::backward(const Tensor& loss, const GradientReady& ready) {
  NURI_CHECK(loss.defined() && loss.numel() == 1, "backward: the loss must have one element, not ",
             loss.defined() ? shape_str(loss.shape()) : std::string("undefined"));
  backward({loss}, {Tensor::ones(loss.shape(), loss.dtype(), loss.device())}, ready);
}

void Tape::backward(const std::vector<Tensor>& outputs, const std::vector<Tensor>& grad_outputs,
                    const GradientReady& ready) {
  NURI_CHECK(outputs.size() == grad_outputs.size(), "backward: ", outputs.size(), " outputs but ",
             grad_outputs.size(), " gradients");
  NURI_CHECK(active() != this, "backward: the tape is still recording; end its TapeScope first");
  for (size_t i = 0; i < outputs.size(); ++i) {
    NURI_CHECK(outputs[i].requires_grad(), "backward: output ", i,
               " does not require grad (no recorded op produced it from a parameter)");
    NURI_CHECK(grad_outputs[i].shape() == outputs[i].shape(), "backward: gradient ", i,
               " has shape ", shape_str(grad_outputs[i].shape()), ", output has ",
               shape_str(outputs[i].shape()));
    Tensor seed = grad_outputs[i];
    NURI_CHECK(seed.device() == outputs[i].device(), "backward: gradient ", i, " is on ",
               seed.device(), ", output on ", outputs[i].device());
    accumulate(*outputs[i].grad_slot(), outputs[i].shape(), outputs[i].dtype(), seed);
  }
  NoGradScope no_grad;
  // A backward that throws leaves no half-run graph behind: the tape is cleared either way.
  struct ClearOnExit {
    std::vector<TapeNode>& nodes;
    ~ClearOnExit() {
      for (TapeNode& node : nodes) release(node);
      nodes.clear();
    }
  } clear_on_exit{nodes_};
  // The leaves whose gradient is complete once node i has run backward: those it is the
  // earliest recorded user of.
  std::vector<std::vector<const GradSlot*>> completes(ready ? nodes_.size() : 0);
  if (ready) {
    std::unordered_set<const GradSlot*> seen;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      for (const auto& input : nodes_[i].inputs) {
        if (input && input->is_leaf && seen.insert(input.get()).second) {
          completes[i].push_back(input.get());
        }
      }
    }
  }
  for (auto node = nodes_.rbegin(); node != nodes_.rend(); ++node) {
    std::vector<Tensor> grads(node->outputs.size());
    bool any = false;
    for (size_t i = 0; i < grads.size(); ++i) {
      grads[i] = node->outputs[i]->grad;
      any = any || grads[i].defined();
    }
    if (any) {
      for (size_t i = 0; i < grads.size(); ++i) {
        if (!grads[i].defined()) {
          grads[i] = Tensor::zeros(node->output_shapes[i], node->output_dtypes[i], node->device);
        }
      }
      std::vector<bool> needs(node->inputs.size());
      for (size_t i = 0; i < needs.size(); ++i) needs[i] = node->inputs[i] != nullptr;
      std::vector<Tensor> input_grads = node->backward(grads, needs);
      NURI_CHECK(input_grads.size() == node->inputs.size(), "autograd: backward of ", node->op,
                 " returned ", input_grads.size(), " gradients for ", node->inputs.size(),
                 " inputs");
      // Release what this node saved and its outputs' gradients before handing on the result,
      // so that a gradient passed straight through is not shared any more.
      grads.clear();
      release(*node);
      for (size_t i = 0; i < input_grads.size(); ++i) {
        if (node->inputs[i] && input_grads[i].defined()) {
          NURI_CHECK(input_grads[i].device() == node->device, "autograd: backward of ", node->op,
                     " returned a gradient on ", input_grads[i].device());
          accumulate(*node->inputs[i], node->input_shapes[i], node->input_dtypes[i],
                     input_grads[i]);
          input_grads[i] = Tensor();
        }
      }
    }
    release(*node);
    if (ready) {
      for (const GradSlot* leaf : completes[nodes_.rend() - node - 1]) ready(*leaf);
    }
  }
}

namespace autograd {

void record(std::string op, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            BackwardFn backward) {
  Tape* tape = Tape::active();
  if (tape == nullptr) return;
  TapeNode node;
  node.op = std::move(op);
  node.backward = std::move(backward);
  for (const Tensor& input : inputs) {
    const bool defined = input.defined();
    node.inputs.push_back(defined ? input.grad_slot() : nullptr);
    node.input_shapes.push_back(defined ? input.shape() : Shape{});
    node.input_dtypes.push_back(defined ? input.dtype() : DType::f32);
  }
  for (Tensor* output : outputs) {
    auto slot = std::make_shared<GradSlot>();
    output->set_grad_slot(slot);
    node.outputs.push_back(std::move(slot));
    node.output_shapes.push_back(output->shape());
    node.output_dtypes.push_back(output->dtype());
    node.device = output->device();
  }
  tape->push(std::move(node));
}

}  // namespace autograd
}  // namespace nuri
