#pragma once

#include "architecture.h"
#include "document.h"
#include "security.h"

#include <exception>
#include <memory>
#include <vector>
#include <iosfwd>
#include <string>

namespace ckpt {
class ComputeApi;
}

namespace ckpt::cli {

// Prints the one-line error every command gives ("ckpt: FILE: reason"; a FormatError already
// names its file) and returns the exit status 1.
int reportError(std::ostream &err, const std::string &file, const std::exception &e);

// The compute module (LibTorch) for a command that compares several files: when it cannot be
// loaded, no file is at fault, so the one-line error names the module ("ckpt: cannot load the
// compute module ...: looked for it at ...") and nullptr is returned.
ComputeApi *computeModuleOrReport(std::ostream &err);

// Reads a file for a command; with `weights` (--weights: a tree path, or its dotted form), that set
// of weights is the model's for everything the command does (see useWeightSet). Throws FormatError.
Document readInput(const std::string &file, const std::string &weights = {});

// One entry of a document named by the text as written: a state-dict name (or a tensor's path when
// there is no state dict), else a key at the top of the file equal to the whole text (keys may hold
// '/'), else a tree path ("model_state_dict/fc1.weight"). `value` is nullptr when none names one;
// `note` is set when the text names more than one different entry, and says which was taken.
struct FoundEntry {
    ValuePtr value;
    std::string note;
};
FoundEntry findEntry(const Document &doc, const std::string &key);

// Hands `value` to the process for the rest of its life and returns it. A command that is done
// when it has used a document ends without taking the document apart value by value (for a file
// of 20,000 tensors that costs longer than reading it): the memory goes back when the process
// exits. What is kept stays reachable, so leak checkers do not report it.
template <class T> T &keepUntilExit(T value)
{
    extern std::vector<std::shared_ptr<void>> *g_keptUntilExit;
    if (!g_keptUntilExit)
        g_keptUntilExit = new std::vector<std::shared_ptr<void>>;
    auto kept = std::make_shared<T>(std::move(value));
    g_keptUntilExit->push_back(kept);
    return *kept;
}

// What loading the file in Python would do, in one line (info and scan): dangerous globals, and
// whether torch.load(weights_only=True) takes it and, when not, what stops it; a file with no
// pickle says so.
std::string securitySummary(const Document &doc, const SecurityReport &report);

// A whole file as text; refused (FormatError) past `limit` bytes.
std::string readText(const std::string &path, std::size_t limit);

// The architecture the options --arch FILE.pt, --arch-spec (JSON text or a .json file) and
// --activation ask for, as `ckpt predict` and `ckpt convert` take them.
ArchitectureRequest architectureRequest(const std::string &arch, const std::string &archSpec,
                                        const std::string &activation);

} // namespace ckpt::cli
