#pragma once

#include "jsonexport.h"
#include "optimizermap.h"

#include <string>

namespace ckpt {

// The optimizer's class as far as its state dict tells it, the one name the CLI and the window
// show: inferOptimizerType's family, with Adam and AdamW told apart where their param groups say
// which (adamVariant): "Adam", "AdamW", "AdamW (AMSGrad)". "Adam/AdamW" (with " (AMSGrad)" where
// it keeps max_exp_avg_sq) only where the groups cannot tell, as in files older than torch 1.13.
// Inline so that every layer above the format library can call it.
inline std::string optimizerClassName(const Value &optimizerState)
{
    const std::string family = inferOptimizerType(optimizerState);
    const bool amsgrad = family == "Adam (AMSGrad)";
    if (family != "Adam/AdamW" && !amsgrad)
        return family;
    std::string name = adamVariant(optimizerState);
    if (name.empty())
        name = "Adam/AdamW";
    return amsgrad ? name + " (AMSGrad)" : name;
}

} // namespace ckpt
