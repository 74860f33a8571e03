#pragma once

#include "computeapi.h"

#include <QString>

#include <memory>
#include <vector>

template <typename T>
class QPromise;

namespace ckpt {

struct Document;
struct NamedTensor;

// The statistics of one row of the tensor table, or why there are none.
struct RowStatistics {
    int row = -1;
    TensorStats stats;
    QString error;
};

// Computes the statistics of `tensors` (rows of the table, in order) with the compute module,
// for QtConcurrent::run: one result per tensor as soon as it is known, progress in tensors, and
// a stop within a chunk of 1 Mi elements when the promise is cancelled (the tensor it was in gets
// no result). `doc` keeps the data alive.
void computeStatistics(QPromise<RowStatistics> &promise, std::shared_ptr<const Document> doc,
                       const std::vector<NamedTensor> *tensors);

} // namespace ckpt
