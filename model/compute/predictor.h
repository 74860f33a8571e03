#pragma once

// Inside the compute module: the prediction side of ComputeApi. No LibTorch types here, so the
// module's other sources do not pay for <torch/script.h>.
#include "computeapi.h"

#include <memory>
#include <vector>

namespace ckpt {

// See ComputeApi::predictor.
std::unique_ptr<Predictor> makePredictor(const Document &doc, const Architecture &arch);
// See ComputeApi::devices.
std::vector<DeviceInfo> listDevices();

} // namespace ckpt
