#pragma once

#include "document.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ckpt {

// A value as JSON: scalars as themselves, containers as arrays/objects, and what JSON cannot hold
// tagged: {"__tensor__": {...}}, {"__class__": "m.Name", "args", "state"}, {"__bytes__": ...},
// {"__int__": "digits"}, {"__float__": "nan"}, {"__set__": [...]}, {"__global__": "m.name"},
// {"__ref__": "path"} for an object already written at another path (shared or cyclic).
// The state dict's parameters as sum(p.numel() for p in model.parameters()) counts them: a tied
// tensor once, buffers not at all. `exact` when the file says which tensors are buffers (a pickled
// module tree, a TorchScript module whose classes declared their parameters); otherwise only the
// buffers known by name (BatchNorm's running statistics) are left out. `trainable` (those with
// requires_grad) where the file records it, that is where the count is exact.
struct ParameterCount {
    std::int64_t count = 0;
    bool exact = false;
    std::optional<std::int64_t> trainable;
};
ParameterCount parameterCount(const Document &doc);

// The state dict's tied tensors: groups of names (two or more, in the state dict's order, groups
// by their first name's place) that are one tensor to PyTorch: the same object, or views of one
// storage at the same offset with the same shape, strides and dtype (a.data_ptr() == b.data_ptr(),
// as lm_head.weight tied to the embedding's). Other views of one storage (a split qkv) are not tied.
// Empty for a file without pickles: safetensors cannot share storage.
std::vector<std::vector<std::string>> tiedTensors(const Document &doc);

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
// FormatError that begins with `what`. Values JSON cannot hold are still tagged; so is an integer
// past 64 bits unsigned (pythonJsonText writes its digits).
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
// NaN, Infinity and -Infinity outside strings, which Python's json module writes and reads, are
// read as {"__float__": ...} tags, and an integer past 64 bits (which Python writes and reads
// exactly) as {"__int__": "digits"} rather than a float (see jsonToValue).
nlohmann::ordered_json parseOrderedJson(std::string_view text, std::size_t maxDepth = 100000);

// The same for one member of the text's top-level object (a shard index's "metadata"): the other
// members are read but not built. Null when the object has no such member.
nlohmann::ordered_json parseOrderedJsonMember(std::string_view text, std::string_view member,
                                              std::size_t maxDepth = 100000);

// Plain JSON as a value tree, keys in the JSON's order: objects as dicts, arrays as lists, numbers
// as int (wider ones exact) or float; {"__float__": "nan" | "inf" | "-inf"}, as valueToJson tags a
// float JSON cannot hold, is that float again, and {"__int__": "digits"}, as valueToJson tags an
// integer wider than 64 bits and parseOrderedJson reads one, that integer. Throws FormatError past
// the pickle nesting limit.
ValuePtr jsonToValue(const nlohmann::ordered_json &j);

// JSON text as Python's json.dumps writes it for a file another program reads (a metadata sidecar,
// safetensors metadata): a float JSON cannot hold, tagged {"__float__": "nan"} by valueToPlainJson,
// is written NaN, Infinity or -Infinity, which Python's json.loads reads back as that float; an
// integer wider than 64 bits, tagged {"__int__": "digits"}, as its digits, which json.loads reads
// back as that int; everything else as nlohmann's dump(indent) writes it.
std::string pythonJsonText(const nlohmann::ordered_json &j, int indent = -1);

// Inferred optimizer family from its state keys and hyperparameters ("Adam", "SGD", ...).
std::string inferOptimizerType(const Value &optimizerState);

struct SecurityReport;
// The security report as JSON (`ckpt scan --json`, and "security" in `ckpt info --json`).
nlohmann::ordered_json securityToJson(const SecurityReport &report);

// Pieces that write JSON text byte for byte as nlohmann's dump(indent, ' ', false,
// error_handler_t::replace) writes the same values, for lists streamed entry by entry instead of
// built as one tree first (the tensor list of writeDocumentJson, `ckpt tensors --json`). A `pad` is
// "\n" and the indentation of the line a value starts on ("\n" alone at the top level).
namespace jsontext {

// A string, escaped as dump escapes it; invalid UTF-8 written as U+FFFD.
void appendString(std::string &out, std::string_view s);
// The same as dump with error_handler_t::strict writes it: invalid UTF-8 throws nlohmann's type_error.
void appendStringStrict(std::string &out, std::string_view s);
void appendInt(std::string &out, std::int64_t v);
void appendUnsigned(std::string &out, std::uint64_t v);
// Any value (through nlohmann), as dump(indent) writes it nested where `pad` says.
void appendValue(std::string &out, const nlohmann::ordered_json &v, std::string_view pad, int indent);

// The fixed text between the members of objects written at one nesting, made once for all of
// them: writing a member is then a few appends. Keys are given once, as plain ASCII.
class ObjectLayout {
public:
    // `pad`: where each object starts; `keys`: every key its objects may have, numbered in order.
    ObjectLayout(std::string_view pad, int indent, std::span<const std::string_view> keys);
    ObjectLayout(std::string_view pad, int indent, std::initializer_list<std::string_view> keys)
        : ObjectLayout(pad, indent, std::span<const std::string_view>(keys.begin(), keys.size()))
    {
    }
    // Starts the member whose key is keys[key]: "{" for the object's first member, else ",", then
    // the member's own line and its key.
    void member(std::string &out, std::size_t key, bool first) const { out += m_keys[2 * key + (first ? 0 : 1)]; }
    // A member's value.
    void value(std::string &out, const std::string &v) const { appendString(out, v); }
    void value(std::string &out, std::string_view v) const { appendString(out, v); }
    void value(std::string &out, const char *v) const { appendString(out, v); }
    void value(std::string &out, bool v) const { out += v ? "true" : "false"; }
    void value(std::string &out, std::int64_t v) const { appendInt(out, v); }
    void value(std::string &out, const std::vector<std::int64_t> &v) const;
    void value(std::string &out, const nlohmann::ordered_json &v) const { appendValue(out, v, m_memberPad, m_indent); }
    // Ends an object that has at least one member.
    void close(std::string &out) const;
    // "\n" and a member's indentation: the pad of a value nested in a member.
    const std::string &memberPad() const { return m_memberPad; }

private:
    std::string m_pad;        // "\n" and the object's own indentation, before its "}"
    std::string m_memberPad;  // one indent step further
    std::string m_itemPad;    // two steps further: the elements of a member's list
    int m_indent;
    std::vector<std::string> m_keys;  // per key: "{" then ",", each followed by the member's line and "\"key\": "
};

// A JSON array written element by element to a stream, as dump(indent) writes it nested where
// `pad` says, sent on to the stream every 60 KiB or so rather than held whole.
class ArrayStream {
public:
    ArrayStream(std::ostream &out, std::string_view pad, int indent);
    // Starts the next element: the text to append it to, on a line indented as elementPad() says.
    std::string &next();
    const std::string &elementPad() const { return m_elementPad; }
    // Ends the array ("[]" when it had no elements) and writes out what is buffered.
    void finish();

private:
    void flushIfFull();
    std::ostream &m_out;
    std::string m_pad;
    std::string m_elementPad;
    std::string m_buf;
    std::size_t m_count = 0;
};

} // namespace jsontext

struct RunFolder;  // checkpointfolder.h
// What `ckpt info --json` prints for a training run's output folder, which is no checkpoint:
// {"file", "error" (the sentence info says), "run": {"folder", "found", "entries_cut",
// "checkpoints": [{"name", "path", "number", "global_step", "epoch", "last_loss"}]}}, by step.
nlohmann::ordered_json runFolderToJson(const RunFolder &run, const std::string &error);

// The stable document `ckpt info --json` prints.
nlohmann::ordered_json documentToJson(const Document &doc);
// The same document as text, exactly documentToJson(doc).dump(indent) (invalid UTF-8 replaced),
// with the tensor list written entry by entry instead of built as one tree first.
void writeDocumentJson(const Document &doc, std::ostream &out, int indent = 2);

} // namespace ckpt
