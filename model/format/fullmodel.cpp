#include "fullmodel.h"

#include "error.h"
#include "keyalign.h"
#include "picklemachine.h"
#include "tensoridentity.h"
#include "tensorref.h"
#include "valuetree.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ckpt {

namespace {

using json = nlohmann::ordered_json;

// Python module of each supported layer type inside torch.nn.modules.
const std::map<std::string, std::string> &moduleOfType()
{
    static const std::map<std::string, std::string> kModules = [] {
        std::map<std::string, std::string> m;
        for (const char *t : {"Linear", "Identity"})
            m[t] = "linear";
        for (const char *t : {"Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"})
            m[t] = "conv";
        for (const char *t : {"BatchNorm1d", "BatchNorm2d"})
            m[t] = "batchnorm";
        for (const char *t : {"InstanceNorm1d", "InstanceNorm2d"})
            m[t] = "instancenorm";
        for (const char *t : {"LayerNorm", "GroupNorm"})
            m[t] = "normalization";
        m["Embedding"] = "sparse";
        for (const char *t : {"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"})
            m[t] = "dropout";
        m["Flatten"] = "flatten";
        for (const char *t : {"ReLU", "ReLU6", "LeakyReLU", "PReLU", "GELU", "SiLU", "Mish", "ELU", "Softplus", "Hardtanh",
                              "Hardswish", "Hardsigmoid", "Softsign", "Sigmoid", "Tanh", "Softmax", "LogSoftmax"})
            m[t] = "activation";
        for (const char *t : {"MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
                              "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"})
            m[t] = "pooling";
        m["Sequential"] = "container";
        return m;
    }();
    return kModules;
}

// An option as the attribute PyTorch stores: lists become tuples (what _pair/_single give).
ValuePtr attributeValue(const json &j)
{
    switch (j.type()) {
    case json::value_t::null: return Value::none();
    case json::value_t::boolean: return Value::boolean(j.get<bool>());
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return Value::integer(j.get<std::int64_t>());
    case json::value_t::number_float: return Value::floating(j.get<double>());
    case json::value_t::string: return Value::string(j.get<std::string>());
    case json::value_t::array: {
        std::vector<ValuePtr> items;
        for (const auto &x : j)
            items.push_back(attributeValue(x));
        return Value::tuple(std::move(items));
    }
    default: throw FormatError("an option value of this kind cannot be a module attribute: " + j.dump());
    }
}

json option(const Layer &l, const char *key, json dflt)
{
    return l.options.contains(key) && !l.options[key].is_null() ? l.options[key] : dflt;
}

json optionOrNull(const Layer &l, const char *key)
{
    return l.options.contains(key) ? l.options[key] : json();
}

// MaxPool, AvgPool2d and the adaptive pools keep their arguments as the constructor was given them
// (2 or (2, 2)); a stride not given is the kernel size. Options a spec wrote keep their form;
// completed ones are one number when every dimension has the same.
json asGiven(const Layer &l, const char *key)
{
    auto given = [&](const char *k) { return l.given.contains(k) && !l.given[k].is_null(); };
    if (given(key))
        return l.given[key];
    if (std::string(key) == "stride" && given("kernel_size"))
        return l.given["kernel_size"];
    const json &list = l.options[key];
    if (list.is_array() && !list.empty() && std::all_of(list.begin(), list.end(), [&](const json &x) { return x == list[0]; }))
        return list[0];
    return list;
}

// The attributes a layer's constructor sets, in the order PyTorch 1.13 sets them.
std::vector<std::pair<std::string, json>> constructorAttributes(const Layer &l)
{
    const std::string &t = l.type;
    std::vector<std::pair<std::string, json>> a;
    const json inplace = option(l, "inplace", false);
    if (t == "Linear") {
        a = {{"in_features", l.options["in_features"]}, {"out_features", l.options["out_features"]}};
    } else if (t.starts_with("Conv")) {
        const bool transposed = t.starts_with("ConvTranspose");
        const json &k = l.options["kernel_size"];
        const std::size_t nd = k.size();
        const json padding = l.options["padding"];
        const json dilation = l.options["dilation"];
        // F.pad's order: last dimension first, each side twice (_reverse_repeat_tuple); for
        // padding='same' PyTorch spreads dilation*(k-1) with the extra element on the right.
        json reversed = json::array();
        for (std::size_t i = nd; i-- > 0;) {
            if (padding.is_string()) {
                const std::int64_t total =
                    padding == "same" ? dilation[i].get<std::int64_t>() * (k[i].get<std::int64_t>() - 1) : 0;
                reversed.push_back(total / 2);
                reversed.push_back(total - total / 2);
            } else {
                reversed.push_back(padding[i]);
                reversed.push_back(padding[i]);
            }
        }
        a = {{"in_channels", l.options["in_channels"]},
             {"out_channels", l.options["out_channels"]},
             {"kernel_size", k},
             {"stride", l.options["stride"]},
             {"padding", padding},
             {"dilation", dilation},
             {"transposed", transposed},
             {"output_padding", transposed ? l.options["output_padding"] : json(std::vector<std::int64_t>(nd, 0))},
             {"groups", l.options["groups"]},
             {"padding_mode", l.options["padding_mode"]},
             {"_reversed_padding_repeated_twice", reversed}};
    } else if (t.starts_with("BatchNorm") || t.starts_with("InstanceNorm")) {
        a = {{"num_features", l.options["num_features"]},
             {"eps", l.options["eps"]},
             {"momentum", optionOrNull(l, "momentum")},
             {"affine", l.options["affine"]},
             {"track_running_stats", l.options["track_running_stats"]}};
    } else if (t == "LayerNorm") {
        a = {{"normalized_shape", l.options["normalized_shape"]},
             {"eps", l.options["eps"]},
             {"elementwise_affine", l.options["elementwise_affine"]}};
    } else if (t == "GroupNorm") {
        a = {{"num_groups", l.options["num_groups"]},
             {"num_channels", l.options["num_channels"]},
             {"eps", l.options["eps"]},
             {"affine", l.options["affine"]}};
    } else if (t == "Embedding") {
        json padding = optionOrNull(l, "padding_idx");
        if (padding.is_number_integer() && padding.get<std::int64_t>() < 0)  // PyTorch stores it counted from 0
            padding = l.options["num_embeddings"].get<std::int64_t>() + padding.get<std::int64_t>();
        a = {{"num_embeddings", l.options["num_embeddings"]},
             {"embedding_dim", l.options["embedding_dim"]},
             {"padding_idx", padding},
             {"max_norm", json()},
             {"norm_type", option(l, "norm_type", 2.0)},
             {"scale_grad_by_freq", option(l, "scale_grad_by_freq", false)},
             {"sparse", option(l, "sparse", false)}};
    } else if (t.find("Dropout") != std::string::npos) {
        a = {{"p", option(l, "p", 0.5)}, {"inplace", inplace}};
    } else if (t == "Flatten") {
        a = {{"start_dim", l.options["start_dim"]}, {"end_dim", l.options["end_dim"]}};
    } else if (t == "ReLU" || t == "SiLU" || t == "Mish" || t == "Hardswish" || t == "Hardsigmoid") {
        a = {{"inplace", inplace}};
    } else if (t == "ReLU6" || t == "Hardtanh") {
        a = {{"min_val", l.options["min_val"]}, {"max_val", l.options["max_val"]}, {"inplace", inplace}};
    } else if (t == "LeakyReLU") {
        a = {{"negative_slope", l.options["negative_slope"]}, {"inplace", inplace}};
    } else if (t == "PReLU") {
        // `init` is stored since torch 2.0 (reset_parameters reads it); 1.13 ignores it.
        a = {{"num_parameters", l.options["num_parameters"]}, {"init", option(l, "init", 0.25)}};
    } else if (t == "GELU") {
        a = {{"approximate", l.options["approximate"]}};
    } else if (t == "ELU") {
        a = {{"alpha", l.options["alpha"]}, {"inplace", inplace}};
    } else if (t == "Softplus") {
        a = {{"beta", l.options["beta"]}, {"threshold", l.options["threshold"]}};
    } else if (t == "Softmax" || t == "LogSoftmax") {
        a = {{"dim", optionOrNull(l, "dim")}};
    } else if (t.starts_with("MaxPool")) {
        a = {{"kernel_size", asGiven(l, "kernel_size")},
             {"stride", asGiven(l, "stride")},
             {"padding", asGiven(l, "padding")},
             {"dilation", asGiven(l, "dilation")},
             {"return_indices", false},
             {"ceil_mode", l.options["ceil_mode"]}};
    } else if (t == "AvgPool1d") {  // stored through _single: always tuples
        a = {{"kernel_size", l.options["kernel_size"]},
             {"stride", l.options["stride"]},
             {"padding", l.options["padding"]},
             {"ceil_mode", l.options["ceil_mode"]},
             {"count_include_pad", l.options["count_include_pad"]}};
    } else if (t == "AvgPool2d") {
        a = {{"kernel_size", asGiven(l, "kernel_size")},
             {"stride", asGiven(l, "stride")},
             {"padding", asGiven(l, "padding")},
             {"ceil_mode", l.options["ceil_mode"]},
             {"count_include_pad", l.options["count_include_pad"]},
             {"divisor_override", optionOrNull(l, "divisor_override")}};
    } else if (t.starts_with("AdaptiveAvgPool")) {
        a = {{"output_size", asGiven(l, "output_size")}};
    } else if (t.starts_with("AdaptiveMaxPool")) {
        a = {{"output_size", asGiven(l, "output_size")}, {"return_indices", false}};
    }
    for (const auto &[name, value] : a)
        if (value.is_null() && name != "momentum" && name != "padding_idx" && name != "max_norm" && name != "dim" &&
            name != "divisor_override")
            throw FormatError("layer " + (l.path.empty() ? std::string("(root)") : l.path) + " (" + t + "): option " +
                              name + " is not known");
    return a;
}

// The parameter and buffer slots a layer type has, present or None.
struct Slots {
    std::vector<std::string> parameters;
    std::vector<std::string> buffers;
};

Slots slotsOf(const std::string &t)
{
    if (t == "Linear" || t.starts_with("Conv") || t == "LayerNorm" || t == "GroupNorm")
        return {{"weight", "bias"}, {}};
    if (t.starts_with("BatchNorm") || t.starts_with("InstanceNorm"))
        return {{"weight", "bias"}, {"running_mean", "running_var", "num_batches_tracked"}};
    if (t == "Embedding" || t == "PReLU")
        return {{"weight"}, {}};
    return {};
}

ValuePtr orderedDict()
{
    auto d = Value::dict();
    d->setPythonClass("collections.OrderedDict");
    return d;
}

void put(const ValuePtr &dict, const std::string &key, ValuePtr value)
{
    dict->entries().push_back({Value::string(key), std::move(value)});
}

class TreeBuilder {
public:
    explicit TreeBuilder(const Architecture &arch)
    {
        for (const auto &w : arch.weights)
            m_weights[w.name] = w.value;
    }

    // A module object: `cls`, NEWOBJ, BUILD with the state Module.__dict__ holds.
    ValuePtr module(const std::string &type, const ValuePtr &modules, const Layer *layer)
    {
        const std::string cls = torchModuleClass(type);
        const auto dot = cls.rfind('.');
        auto obj = Value::object(Value::global(cls.substr(0, dot), cls.substr(dot + 1)), Value::tuple());
        obj->setBuiltByNew(true);
        auto state = Value::dict();
        auto params = orderedDict();
        auto buffers = orderedDict();
        if (layer) {
            const Slots slots = slotsOf(type);
            for (const auto &n : slots.parameters)
                put(params, n, tensor(*layer, n, true));
            for (const auto &n : slots.buffers)
                put(buffers, n, tensor(*layer, n, false));
            for (const auto &n : layer->tensors)
                if (std::find(slots.parameters.begin(), slots.parameters.end(), n) == slots.parameters.end() &&
                    std::find(slots.buffers.begin(), slots.buffers.end(), n) == slots.buffers.end())
                    throw FormatError("layer " + layer->path + " (" + type + "): weight '" + n +
                                      "' has no place in a torch.nn." + type);
        }
        // Module.__init__'s attributes in its order (PyTorch 1.13; newer releases fill in the
        // hook dictionaries they added when they unpickle).
        put(state, "training", Value::boolean(false));
        put(state, "_parameters", params);
        put(state, "_buffers", buffers);
        put(state, "_non_persistent_buffers_set", Value::set());
        put(state, "_backward_hooks", orderedDict());
        put(state, "_is_full_backward_hook", Value::none());
        put(state, "_forward_hooks", orderedDict());
        put(state, "_forward_pre_hooks", orderedDict());
        put(state, "_state_dict_hooks", orderedDict());
        put(state, "_load_state_dict_pre_hooks", orderedDict());
        put(state, "_load_state_dict_post_hooks", orderedDict());
        put(state, "_modules", modules ? modules : orderedDict());
        if (layer)
            for (const auto &[name, value] : constructorAttributes(*layer)) {
                auto v = attributeValue(value);
                // PyTorch computes this one as a list for padding='same'/'valid', a tuple otherwise.
                if (name == "_reversed_padding_repeated_twice" && layer->options["padding"].is_string())
                    v = Value::list(v->items());
                put(state, name, v);
            }
        obj->setState(state);
        return obj;
    }

private:
    ValuePtr tensor(const Layer &l, const std::string &local, bool parameter)
    {
        auto it = m_weights.find(l.tensorName(local));
        if (it == m_weights.end() || std::find(l.tensors.begin(), l.tensors.end(), local) == l.tensors.end())
            return Value::none();
        // One tensor under several names (a tied weight: the state dict's detached names all view
        // one storage alike) is one Parameter, as in the model that was saved: its parameters()
        // yield it once, and an optimizer steps it once. Where the source kept its Parameter
        // objects (state_dict(keep_vars=True)), the pickle's memo says which names are one object:
        // two Parameters made on one storage (b.w = nn.Parameter(a.w)) stay two, as torch has them.
        const TensorRef &source = *it->second->tensorRef();
        const auto identity = source.isParameter ? std::nullopt : tensorIdentity(source);
        auto &made = identity ? (parameter ? m_parametersByIdentity : m_buffersByIdentity)[*identity]
                              : (parameter ? m_parameters : m_buffers)[it->second.get()];
        if (!made) {
            auto ref = std::make_shared<TensorRef>(*it->second->tensorRef());
            ref->isParameter = parameter;
            ref->requiresGrad = parameter;
            made = Value::tensor(ref);
        }
        return made;
    }

    std::map<std::string, ValuePtr> m_weights;
    std::unordered_map<const Value *, ValuePtr> m_parameters;
    std::unordered_map<const Value *, ValuePtr> m_buffers;
    std::map<TensorIdentity, ValuePtr> m_parametersByIdentity;
    std::map<TensorIdentity, ValuePtr> m_buffersByIdentity;
};

// A container being filled: its _modules and the name of the child added last.
struct Container {
    ValuePtr modules = orderedDict();
    std::map<std::string, std::size_t> containers;  // child name -> index in `open`
    std::string last;
};

} // namespace

std::vector<NamedTensor> moduleToTensors(const Value &module)
{
    std::vector<NamedTensor> out;
    if (!isModule(module))
        return out;
    std::unordered_set<const Value *> seenModules;
    std::unordered_set<const Value *> seenTensors;
    // Depth first, in registration order, as named_modules() visits them.
    std::vector<std::pair<const Value *, std::string>> stack{{&module, ""}};
    while (!stack.empty()) {
        auto [m, prefix] = std::move(stack.back());
        stack.pop_back();
        if (!seenModules.insert(m).second || prefix.size() > (std::size_t(1) << 16))
            continue;
        const auto &attrs = m->state();
        for (const char *group : {"_parameters", "_buffers"})
            if (auto d = attrs->get(group); d && d->isDict())
                for (const auto &e : d->entries())
                    if (e.key && e.value && e.value->isTensor() && seenTensors.insert(e.value.get()).second)
                        out.push_back({prefix + keyText(*e.key), e.value});
        if (auto children = attrs->get("_modules"); children && children->isDict()) {
            const auto &entries = children->entries();
            for (auto it = entries.rbegin(); it != entries.rend(); ++it)
                if (it->key && it->value && isModule(*it->value) && stack.size() < PickleLimits::kMaxDepth)
                    stack.emplace_back(it->value.get(), prefix + keyText(*it->key) + ".");
        }
    }
    return out;
}

std::string torchModuleClass(const std::string &type)
{
    const auto &m = moduleOfType();
    auto it = m.find(type);
    return it == m.end() ? std::string() : "torch.nn.modules." + it->second + "." + type;
}

ValuePtr moduleTreeValue(const Architecture &arch)
{
    if (arch.source == Architecture::Source::TorchScript || arch.source == Architecture::Source::ScriptArchitecture)
        throw FormatError("a TorchScript architecture cannot become a pickled torch.nn module tree (convert with "
                          "--to torchscript instead, or give the layers with --arch-spec)");
    if (arch.source == Architecture::Source::ModuleTree)
        throw FormatError("a module tree is re-saved as it is, not rebuilt");
    TreeBuilder builder(arch);
    // Containers are built top-down, each holding its children in run order; a dotted name opens
    // (or continues) a nested Sequential, which must be the last child of its parent so that
    // running the tree visits the layers in the architecture's order.
    std::vector<Container> open(1);
    std::vector<std::pair<std::size_t, std::string>> parentOf(1, {0, ""}); // index of parent, own name
    for (const Layer &l : arch.root.children) {
        if (l.isContainer())
            throw FormatError("layer " + l.path + ": nested containers are given by dotted names in a spec");
        if (torchModuleClass(l.type).empty())
            throw FormatError("layer " + l.path + ": " + l.type + " has no torch.nn class here");
        const auto parts = splitDots(l.name);
        // Each level is a Sequential a few pickle levels deep; the reader (this one, and Python's
        // recursion limit) stops long before a thousand.
        constexpr std::size_t kMaxNesting = 64;
        if (parts.size() > kMaxNesting)
            throw FormatError("layer '" + l.name.substr(0, 80) + (l.name.size() > 80 ? "…" : "") + "' nests " +
                              std::to_string(parts.size() - 1) + " containers deep; at most " +
                              std::to_string(kMaxNesting - 1) + " are written");
        std::size_t at = 0;
        std::string path;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
            const std::string &part = parts[i];
            path += (path.empty() ? "" : ".") + part;
            if (part.empty())
                throw FormatError("layer name '" + l.name + "' has an empty part");
            auto found = open[at].containers.find(part);
            if (found == open[at].containers.end()) {
                for (const auto &e : open[at].modules->entries())
                    if (e.key->text() == part)
                        throw FormatError("layer '" + l.name + "' would nest under layer '" + path +
                                          "', which is not a container");
                open.emplace_back();
                parentOf.emplace_back(at, part);
                open[at].containers[part] = open.size() - 1;
                put(open[at].modules, part, nullptr);  // placeholder, the Sequential is made below
                open[at].last = part;
                at = open.size() - 1;
            } else {
                if (open[at].last != part)
                    throw FormatError("layer '" + l.name + "' nests under '" + path + "', but layers not under it run "
                                      "between (a nested Sequential cannot keep this order)");
                at = found->second;
            }
        }
        const std::string &leaf = parts.back();
        if (leaf.empty())
            throw FormatError("layer name '" + l.name + "' has an empty part");
        for (const auto &e : open[at].modules->entries())
            if (e.key->text() == leaf)
                throw FormatError("layer name '" + l.name + "' is used twice");
        put(open[at].modules, leaf, builder.module(l.type, nullptr, &l));
        open[at].last = leaf;
    }
    // Close the containers innermost first (children were opened after their parents).
    for (std::size_t i = open.size(); i-- > 1;) {
        auto seq = builder.module("Sequential", open[i].modules, nullptr);
        auto &parent = open[parentOf[i].first];
        for (auto &e : parent.modules->entries())
            if (e.key->text() == parentOf[i].second && !e.value)
                e.value = seq;
    }
    return builder.module("Sequential", open[0].modules, nullptr);
}

} // namespace ckpt
