#pragma once

#include "value.h"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace ckpt {

// How much of a value pythonRepr writes: the text stops near `maxChars` (with "…"), a container
// shows its first `maxItems` elements (then ", …"), and nesting below `maxDepth` is written "…".
struct ReprLimits {
    std::size_t maxChars = 4000;
    std::size_t maxItems = 100;
    std::uint32_t maxDepth = 24;
};

// A value as Python's repr writes what torch.load returns, for plain data: None, True, 1, 0.001,
// 'text', b'\x00', (1,), [..], {..}, set(), OrderedDict([('a', 1)]), torch.Size([2, 3]),
// device(type='cuda', index=0). What Python would show by running code is written as data
// instead: an instance as its class's name with its arguments and state (Namespace(lr=0.1), as
// argparse and dataclasses write theirs), a call the pickle asks for as the qualified name of what
// it calls with its arguments (collections.Counter({...}), venv.main([...])), a tensor as
// <tensor float32 [2, 3] cpu>, a global by its qualified name. A container that holds itself is written [...] as Python does.
std::string pythonRepr(const Value &v, const ReprLimits &limits = {});

// An instance of a dict subclass that is its items and nothing else (Lightning's AttributeDict, a
// dict with attribute access): made by its class's __new__ without arguments, filled by the
// pickle's SETITEMS, with no attributes or list items of its own. Its repr is the dict's.
bool isPlainDictSubclass(const Value &v);

// Python's repr of a str (UTF-8; a byte that is not UTF-8 is written \xNN) and of bytes, the
// first `maxChars` characters (bytes) of it, then "…" inside the quotes.
std::string pythonStringRepr(std::string_view utf8, std::size_t maxChars = std::numeric_limits<std::size_t>::max());
std::string pythonBytesRepr(std::string_view raw, std::size_t maxBytes = std::numeric_limits<std::size_t>::max());
// Python's repr of a complex: 1j, (1+2j), (-0-1.5j).
std::string pythonComplexRepr(double re, double im);

} // namespace ckpt
