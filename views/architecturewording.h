#pragma once

#include "architecture.h"

#include <QString>

namespace ckpt {

// Where an architecture comes from, as both panes that run or export one say it: a phrase that
// reads inside a sentence ("architecture: weights loaded into a TorchScript file (exact)"); a
// title starts it with a capital.
QString architectureSourceTitle(Architecture::Source source);

} // namespace ckpt
