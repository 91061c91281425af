#include "kernels/ops/embedding.h"

#include "kernels/autograd.h"
#include "kernels/ops/checks.h"

namespace nuri {
namespace {

// "[1, 2]": the multi-index of flat position `flat` in `shape`.
std::string position_str(int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

// Throws for the first id outside [0, rows), naming the id, where it is, and the table size.
template <class Id>
void check_ids(const Tensor& ids, int64_t rows) {
  const Id* p = ids.data<Id>();
  const int64_t n = ids.numel();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t id = static_cast<int64_t>(p[i]);
    NURI_CHECK(id >= 0 && id < rows, "embedding: id ", id, " at position ",
               position_str(i, ids.shape()), " of ids ", shape_str(ids.shape()),
               " is out of range for a table of ", rows, " rows");
  }
}

}  // namespace

Tensor embedding(const Tensor& ids, const Tensor& table) {
  checks::integer("embedding", ids, "ids");
  checks::floating("embedding", table, "table");
  checks::rank("embedding", table, "table", 2);
  NURI_CHECK(ids.device().is_cpu() || ids.device() == table.device(), "embedding: ids are on ",
             ids.device(), " but table is on ", table.device());
  const int64_t rows = table.size(0);
  // Checked on the host before any kernel reads the table: host ids in place (uploaded after for
  // a GPU table), GPU ids copied over.
  const Tensor host_ids = ids.on(Device::cpu());
  if (ids.dtype() == DType::i32) {
    check_ids<int32_t>(host_ids, rows);
  } else {
    check_ids<int64_t>(host_ids, rows);
  }
  Shape out_shape = ids.shape();
  out_shape.push_back(table.size(1));
  Tensor out = Tensor::empty(out_shape, table.dtype(), table.device());
  NURI_DISPATCH(table.device(), embedding_forward, ids.on(table.device()), table, out);
  if (autograd::needed(table)) {
    // A host copy (the caller may refill its id buffer): the backward groups positions by id on
    // the host on either device.
    const Tensor saved_ids = host_ids.same(ids) ? ids.clone() : host_ids;
    const Shape table_shape = table.shape();
    autograd::record("embedding", {ids, table}, {&out},
                     [saved_ids, table_shape](const auto& grads, const auto& needs) {
                       const Tensor& g = grads[0];
                       Tensor grad_table;
                       if (needs[1]) {
                         grad_table = Tensor::empty(table_shape, g.dtype(), g.device());
                         NURI_DISPATCH(g.device(), embedding_backward, g, saved_ids, grad_table);
                       }
                       return std::vector<Tensor>{Tensor(), grad_table};
                     });
  }
  return out;
}

}  // namespace nuri
