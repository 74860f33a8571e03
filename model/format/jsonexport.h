#pragma once

#include "document.h"

#include <nlohmann/json.hpp>
#include <iosfwd>
#include <string_view>
#include <unordered_map>

namespace ckpt {

// A value as JSON: scalars as themselves, containers as arrays/objects, and what JSON cannot hold
// tagged: {"__tensor__": {...}}, {"__class__": "m.Name", "args", "state"}, {"__bytes__": ...},
// {"__int__": "digits"}, {"__float__": "nan"}, {"__set__": [...]}, {"__global__": "m.name"},
// {"__ref__": "path"} for an object already written at another path (shared or cyclic).
nlohmann::ordered_json valueToJson(const ValuePtr &v);

// How much plain JSON may be made for one purpose — one sidecar, one safetensors header, one
// comparison's metadata, one pane's fields — shared by every value made for it: a few bytes of
// pickle can share one large list under thousands of keys. Spent by failed values too, so that the
// work stays bounded however often a caller retries.
struct PlainJsonBudget {
    std::size_t total = std::size_t{16} << 20;
    std::size_t left = total;
};

// The same, as plain JSON for a file or field another program reads (a metadata sidecar,
// safetensors metadata, a config to edit): a value the file shares is written out in full at each
// place, as Python's json.dump writes it, never as a __ref__. What valueToJson would mark instead —
// a value containing itself, nesting past the pickle limit, more than the budget left — throws a
// FormatError that begins with `what`. Values JSON cannot hold are still tagged.
nlohmann::ordered_json valueToPlainJson(const ValuePtr &v, const std::string &what, PlainJsonBudget &budget);

// Plain JSON where the budget allows it, else what valueToJson shows (a __ref__, a marker): for a
// value shown or compared rather than written.
nlohmann::ordered_json valueToPlainJsonOrShown(const ValuePtr &v, PlainJsonBudget &budget);

// Adds keys to an ordered_json object in constant time (ordered_json's operator[] searches every
// key before it: quadratic over a large dict). A key added again keeps its place, takes the value.
class JsonObjectBuilder {
public:
    explicit JsonObjectBuilder(nlohmann::ordered_json &object);
    void set(std::string key, nlohmann::ordered_json value);

private:
    nlohmann::ordered_json::object_t &m_object;
    std::unordered_map<std::string, std::size_t> m_index;
};

// JSON text parsed in time linear in its size (nlohmann's own parser looks up every key of an
// ordered_json object among those before it: quadratic over a large object). Keys keep their order;
// a repeated key keeps its first place and its last value, as parse() does. A discarded value
// when the text is not JSON or nests deeper than `maxDepth` arrays and objects.
nlohmann::ordered_json parseOrderedJson(std::string_view text, std::size_t maxDepth = 100000);

// Plain JSON as a value tree, keys in the JSON's order: objects as dicts, arrays as lists, numbers
// as int (wider ones exact) or float. Throws FormatError past the pickle nesting limit.
ValuePtr jsonToValue(const nlohmann::ordered_json &j);

// Inferred optimizer family from its state keys and hyperparameters ("Adam", "SGD", ...).
std::string inferOptimizerType(const Value &optimizerState);

struct SecurityReport;
// The security report as JSON (`ckpt scan --json`, and "security" in `ckpt info --json`).
nlohmann::ordered_json securityToJson(const SecurityReport &report);

// The stable document `ckpt info --json` prints.
nlohmann::ordered_json documentToJson(const Document &doc);
// The same document as text, exactly documentToJson(doc).dump(indent) (invalid UTF-8 replaced),
// with the tensor list written entry by entry instead of built as one tree first.
void writeDocumentJson(const Document &doc, std::ostream &out, int indent = 2);

} // namespace ckpt
