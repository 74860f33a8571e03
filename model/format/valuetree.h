#pragma once

#include "value.h"

#include <string>
#include <vector>

namespace ckpt {

// How a child hangs under its parent, for display and for paths.
enum class ChildRole { Key, Index, Attribute, Args, State, Item };

struct Child {
    std::string label;  // dict key text, index, attribute name, "(args)", "(state)"
    ValuePtr value;
    ChildRole role = ChildRole::Key;
    const Value *key = nullptr;  // with ChildLabels::Deferred: the key whose keyText() is the label
};

// Whether childrenOf writes each key's text into the label, or leaves it to the caller (a long
// key shared by many dicts through the memo is then never copied).
enum class ChildLabels { Text, Deferred };

// The children a viewer shows under a value: dict entries, sequence elements, an object's
// constructor arguments and attributes, a dict's or tensor's extra state. One definition serves
// the JSON export, the tree model and path lookup.
std::vector<Child> childrenOf(const Value &v, ChildLabels labels = ChildLabels::Text);

// A child's label text, for children made with either ChildLabels.
std::string childLabel(const Child &c);
// Its length, without making the text when the key is a string.
std::size_t childLabelSize(const Child &c);

// Follows labels from `root`; nullptr when a step is missing.
ValuePtr findPath(const ValuePtr &root, const std::vector<std::string> &path);

// Class name of an Object ("torch.nn.modules.linear.Linear"), "" for other values.
std::string className(const Value &v);

// True for a pickled nn.Module: an object whose attributes hold _parameters and _modules.
bool isModule(const Value &v);

// True for a TorchScript module object: its class is a compiled one ("__torch__.…") and, as every
// nn.Module, it keeps a `training` flag (script classes that are not modules have none).
bool isScriptModule(const Value &v);

// The modules of a pickled module tree, or of a TorchScript module (its submodules are attributes),
// from `root` down in registration order: dotted path ("" for the root, "encoder.layer.0") and class
// ("torch.nn.modules.linear.Linear", "__torch__.…Linear"), as torch's named_modules() lists them. A
// module reached twice is listed once; the walk is iterative and stops at the pickle depth limit and
// path bytes budget.
struct ModuleEntry {
    std::string path;
    std::string className;
};
std::vector<ModuleEntry> moduleTree(const Value &root);

} // namespace ckpt
