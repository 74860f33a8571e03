#pragma once

#include "document.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ckpt {

// How a global a pickle names would behave if Python loaded the file.
enum class GlobalClass {
    Understood,  // a reconstructor or container this reader interprets as data
    Unknown,     // a class kept opaque here; Python would import its module (often the user's code)
    // builtins.getattr only ever used to look a value up by name, as Python >= 3.11 pickles enum
    // members (getattr(Color, 'RED')): every call passed the checks of securityReport. Never given
    // by classifyGlobal, which judges a name alone.
    Lookup,
    Dangerous,   // executes, imports, opens files or reaches the network when called
};

std::string globalClassName(GlobalClass c);  // "understood", "unknown", "attribute lookup", "dangerous"

struct GlobalVerdict {
    GlobalUse use;
    GlobalClass cls = GlobalClass::Unknown;
    std::string reason;           // why it is dangerous, when it is
    bool weightsOnlyAllowed = false;  // torch.load(weights_only=True) accepts it
};

// Memory torch.load would allocate for what the file declares rather than for what it holds: a
// storage class called with a size (torch.ByteStorage(2**40)), a legacy stream's storage declared
// larger than its record, a legacy tensor that grows its storage past the record. A few bytes of
// file can make Python allocate a terabyte, weights_only=True too.
struct LoadAllocation {
    std::string what;       // the call or the storage and tensor, and why, as a sentence
    std::int64_t bytes = 0;  // what torch allocates for it
};

// What the file would do if loaded in Python, and whether PyTorch's safe loader would take it.
struct SecurityReport {
    std::vector<GlobalVerdict> globals;
    std::vector<std::string> anomalies;  // the allocations below among them
    // Allocations past what the file holds: a denial of service, not code; anomalies, not dangerous.
    std::vector<LoadAllocation> allocations;
    bool dangerous = false;
    bool weightsOnlyLoadable = true;
    std::vector<std::string> weightsOnlyBlockers;  // globals the safe loader refuses
    // Why the safe loader refuses the whole file before reading any pickle (a TorchScript archive,
    // the tar format), whatever the file names; empty when it reads the pickle. Also among the blockers.
    std::string weightsOnlyFileReason;
};

// Classifies one global by name.
GlobalVerdict classifyGlobal(const GlobalUse &use);
// Classifies a list of globals (what a file names, or what it named before it failed to read):
// the report's globals, `dangerous` and weights-only blockers; no anomalies, no container checks.
SecurityReport globalsReport(const std::vector<GlobalUse> &globals);
// The report for a read document.
SecurityReport securityReport(const Document &doc);

} // namespace ckpt
