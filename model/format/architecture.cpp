#include "architecture.h"

#include "dtype.h"
#include "error.h"
#include "jsonexport.h"
#include "keyalign.h"
#include "picklemachine.h"
#include "pruning.h"
#include "safetensorswriter.h"
#include "valuetree.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <unordered_set>

namespace ckpt {

namespace {

using json = nlohmann::ordered_json;
using Shape = std::vector<std::int64_t>;

// Options beyond this are refused: the shape arithmetic stays far from overflow.
constexpr std::int64_t kOptionLimit = std::int64_t{1} << 31;

const std::set<std::string> kWeightless = {"Identity", "Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"};

std::string joinShape(const Shape &s) { return shapeText(s); }

std::string layerLabel(const Layer &l)
{
    return (l.path.empty() ? std::string("the model") : "layer " + l.path) + " (" + l.type + ")";
}

[[noreturn]] void fail(const Layer &l, const std::string &what) { throw FormatError(layerLabel(l) + ": " + what); }

// Sizes of the tensors a layer may use, by local name.
using TensorShapes = std::map<std::string, Shape>;

std::int64_t intOption(const Layer &l, json &o, const char *key, std::optional<std::int64_t> dflt)
{
    if (!o.contains(key) || o[key].is_null()) {
        if (!dflt)
            fail(l, std::string("option ") + key + " is required");
        o[key] = *dflt;
    }
    if (o[key].is_boolean() || !o[key].is_number_integer())
        fail(l, std::string("option ") + key + " must be an integer");
    const auto v = o[key].get<std::int64_t>();
    if (v < -kOptionLimit || v > kOptionLimit)
        fail(l, std::string("option ") + key + " is out of range");
    return v;
}

double floatOption(const Layer &l, json &o, const char *key, double dflt)
{
    if (!o.contains(key) || o[key].is_null())
        o[key] = dflt;
    if (!o[key].is_number())
        fail(l, std::string("option ") + key + " must be a number");
    return o[key].get<double>();
}

bool boolOption(const Layer &l, json &o, const char *key, bool dflt)
{
    if (!o.contains(key) || o[key].is_null())
        o[key] = dflt;
    if (!o[key].is_boolean())
        fail(l, std::string("option ") + key + " must be true or false");
    return o[key].get<bool>();
}

// An int or a list of n ints (PyTorch's _pair/_single), stored back as a list.
Shape listOption(const Layer &l, json &o, const char *key, std::size_t n, std::optional<std::int64_t> dflt)
{
    if (!o.contains(key) || o[key].is_null()) {
        if (!dflt)
            fail(l, std::string("option ") + key + " is required");
        o[key] = *dflt;
    }
    Shape out;
    if (o[key].is_number_integer() && !o[key].is_boolean()) {
        out.assign(n, o[key].get<std::int64_t>());
    } else if (o[key].is_array() && o[key].size() == n) {
        for (const auto &x : o[key]) {
            if (!x.is_number_integer())
                fail(l, std::string("option ") + key + " must hold integers");
            out.push_back(x.get<std::int64_t>());
        }
    } else {
        fail(l, std::string("option ") + key + " must be an integer or a list of " + std::to_string(n));
    }
    for (auto v : out)
        if (v < -kOptionLimit || v > kOptionLimit)
            fail(l, std::string("option ") + key + " is out of range");
    o[key] = out;
    return out;
}

void requirePositive(const Layer &l, const Shape &values, const char *key, bool zeroAllowed = false)
{
    for (auto v : values)
        if (v < 0 || (v == 0 && !zeroAllowed))
            fail(l, std::string("option ") + key + (zeroAllowed ? " must not be negative" : " must be positive"));
}

const Shape *shapeOf(const TensorShapes &t, const std::string &name)
{
    auto it = t.find(name);
    return it == t.end() ? nullptr : &it->second;
}

void requireShape(const Layer &l, const TensorShapes &t, const std::string &name, const Shape &want)
{
    const Shape *s = shapeOf(t, name);
    if (!s)
        fail(l, "weight " + l.tensorName(name) + " is missing");
    if (*s != want)
        fail(l, l.tensorName(name) + " has shape " + joinShape(*s) + ", the layer needs " + joinShape(want));
}

void checkOption(const Layer &l, json &o, const char *key, std::int64_t fromWeights)
{
    if (o.contains(key) && !o[key].is_null() && o[key] != fromWeights)
        fail(l, std::string(key) + " is " + o[key].dump() + " but the weights say " + std::to_string(fromWeights));
    o[key] = fromWeights;
}

// Completes a leaf's options with PyTorch's defaults and checks them against its tensors.
// Returns the names of the tensors it uses.
std::vector<std::string> completeLeaf(Layer &l, const TensorShapes &t)
{
    json &o = l.options;
    const std::string &ty = l.type;
    std::vector<std::string> used;
    auto use = [&](const std::string &n) {
        if (shapeOf(t, n))
            used.push_back(n);
    };
    if (ty == "Linear") {
        const Shape *w = shapeOf(t, "weight");
        if (!w)
            fail(l, "weight " + l.tensorName("weight") + " is missing");
        if (w->size() != 2)
            fail(l, l.tensorName("weight") + " has shape " + joinShape(*w) + ", a Linear weight is 2-D");
        checkOption(l, o, "in_features", (*w)[1]);
        checkOption(l, o, "out_features", (*w)[0]);
        const bool wantBias = !o.contains("bias") || o["bias"].is_null() || o["bias"] == true;
        o.erase("bias");
        if (shapeOf(t, "bias"))
            requireShape(l, t, "bias", {(*w)[0]});
        else if (wantBias && l.pythonClass.empty())
            fail(l, "weight " + l.tensorName("bias") + " is missing (say \"bias\": false for a layer without one)");
        use("weight");
        use("bias");
    } else if (ty == "Conv1d" || ty == "Conv2d" || ty == "ConvTranspose1d" || ty == "ConvTranspose2d") {
        const std::size_t nd = ty.back() == '1' || ty == "Conv1d" || ty == "ConvTranspose1d" ? 1 : 2;
        const bool transposed = ty.starts_with("ConvTranspose");
        const Shape *w = shapeOf(t, "weight");
        if (!w)
            fail(l, "weight " + l.tensorName("weight") + " is missing");
        if (w->size() != nd + 2)
            fail(l, l.tensorName("weight") + " has shape " + joinShape(*w) + ", expected " + std::to_string(nd + 2) + "-D");
        const auto groups = intOption(l, o, "groups", 1);
        if (groups < 1)
            fail(l, "groups must be positive");
        checkOption(l, o, "in_channels", transposed ? (*w)[0] : (*w)[1] * groups);
        checkOption(l, o, "out_channels", transposed ? (*w)[1] * groups : (*w)[0]);
        Shape k(w->begin() + 2, w->end());
        if (o.contains("kernel_size") && !o["kernel_size"].is_null() && listOption(l, o, "kernel_size", nd, {}) != k)
            fail(l, "kernel_size is " + o["kernel_size"].dump() + " but the weights say " + joinShape(k));
        o["kernel_size"] = k;
        requirePositive(l, listOption(l, o, "stride", nd, 1), "stride");
        if (!transposed && o.contains("padding") && o["padding"].is_string()) {
            if (o["padding"] != "same" && o["padding"] != "valid")
                fail(l, "padding must be 'same', 'valid' or numbers");
        } else {
            listOption(l, o, "padding", nd, 0);
        }
        requirePositive(l, listOption(l, o, "dilation", nd, 1), "dilation");
        requirePositive(l, k, "kernel_size");
        if (!o["padding"].is_string())
            requirePositive(l, o["padding"].get<Shape>(), "padding", true);
        if (transposed)
            listOption(l, o, "output_padding", nd, 0);
        if (!o.contains("padding_mode") || o["padding_mode"].is_null())
            o["padding_mode"] = "zeros";
        if (o["padding_mode"] != "zeros")
            fail(l, "padding_mode " + o["padding_mode"].dump() + " is not supported (only 'zeros')");
        const std::int64_t outCh = o["out_channels"].get<std::int64_t>();
        if (shapeOf(t, "bias"))
            requireShape(l, t, "bias", {outCh});
        else if (l.pythonClass.empty() && o.value("bias", true) == true)
            fail(l, "weight " + l.tensorName("bias") + " is missing (say \"bias\": false for a layer without one)");
        o.erase("bias");
        o.erase("transposed");
        if (!transposed)
            o.erase("output_padding");
        use("weight");
        use("bias");
    } else if (ty == "BatchNorm1d" || ty == "BatchNorm2d" || ty == "InstanceNorm1d" || ty == "InstanceNorm2d") {
        const Shape *s = shapeOf(t, "running_mean");
        if (!s)
            s = shapeOf(t, "weight");
        if (s && s->size() == 1)
            checkOption(l, o, "num_features", (*s)[0]);
        const auto n = intOption(l, o, "num_features", std::nullopt);
        floatOption(l, o, "eps", 1e-5);
        if (!o.contains("momentum") || !o["momentum"].is_null())  // None: a cumulative average
            floatOption(l, o, "momentum", 0.1);
        const bool instance = ty.starts_with("Instance");
        const bool affine = boolOption(l, o, "affine", instance ? shapeOf(t, "weight") != nullptr : true);
        const bool track = boolOption(l, o, "track_running_stats", instance ? shapeOf(t, "running_mean") != nullptr : true);
        if (affine) {
            requireShape(l, t, "weight", {n});
            requireShape(l, t, "bias", {n});
            use("weight");
            use("bias");
        }
        if (track) {
            requireShape(l, t, "running_mean", {n});
            requireShape(l, t, "running_var", {n});
            use("running_mean");
            use("running_var");
        }
        use("num_batches_tracked");
    } else if (ty == "LayerNorm") {
        if ((!o.contains("normalized_shape") || o["normalized_shape"].is_null()) && shapeOf(t, "weight"))
            o["normalized_shape"] = *shapeOf(t, "weight");
        if (o.contains("normalized_shape") && o["normalized_shape"].is_number_integer())
            o["normalized_shape"] = json::array({o["normalized_shape"]});
        if (!o.contains("normalized_shape") || !o["normalized_shape"].is_array() || o["normalized_shape"].empty())
            fail(l, "option normalized_shape is required");
        const Shape ns = o["normalized_shape"].get<Shape>();
        floatOption(l, o, "eps", 1e-5);
        if (boolOption(l, o, "elementwise_affine", shapeOf(t, "weight") != nullptr || !l.pythonClass.empty())) {
            requireShape(l, t, "weight", ns);
            use("weight");
            if (shapeOf(t, "bias")) {
                requireShape(l, t, "bias", ns);
                use("bias");
            }
        }
    } else if (ty == "GroupNorm") {
        const auto g = intOption(l, o, "num_groups", std::nullopt);
        if (shapeOf(t, "weight") && shapeOf(t, "weight")->size() == 1)
            checkOption(l, o, "num_channels", (*shapeOf(t, "weight"))[0]);
        const auto c = intOption(l, o, "num_channels", std::nullopt);
        if (g < 1 || c % g != 0)
            fail(l, "num_channels " + std::to_string(c) + " is not divisible by num_groups " + std::to_string(g));
        floatOption(l, o, "eps", 1e-5);
        if (boolOption(l, o, "affine", shapeOf(t, "weight") != nullptr)) {
            requireShape(l, t, "weight", {c});
            requireShape(l, t, "bias", {c});
            use("weight");
            use("bias");
        }
    } else if (ty == "Embedding") {
        const Shape *w = shapeOf(t, "weight");
        if (!w || w->size() != 2)
            fail(l, "weight " + l.tensorName("weight") + (w ? " must be 2-D" : " is missing"));
        checkOption(l, o, "num_embeddings", (*w)[0]);
        checkOption(l, o, "embedding_dim", (*w)[1]);
        if (o.contains("max_norm") && !o["max_norm"].is_null())
            fail(l, "max_norm is not supported (it renormalises the weights as it runs)");
        if (!o.contains("padding_idx"))
            o["padding_idx"] = nullptr;
        use("weight");
    } else if (ty == "PReLU") {
        const Shape *w = shapeOf(t, "weight");
        if (!w || w->size() != 1)
            fail(l, "weight " + l.tensorName("weight") + (w ? " must be 1-D" : " is missing"));
        o["num_parameters"] = (*w)[0];
        use("weight");
    } else if (ty == "Flatten") {
        intOption(l, o, "start_dim", 1);
        intOption(l, o, "end_dim", -1);
    } else if (ty == "LeakyReLU") {
        floatOption(l, o, "negative_slope", 0.01);
    } else if (ty == "ELU") {
        floatOption(l, o, "alpha", 1.0);
    } else if (ty == "GELU") {
        if (!o.contains("approximate") || o["approximate"].is_null())
            o["approximate"] = "none";
        if (o["approximate"] != "none" && o["approximate"] != "tanh")
            fail(l, "approximate must be 'none' or 'tanh'");
    } else if (ty == "Softplus") {
        floatOption(l, o, "beta", 1.0);
        floatOption(l, o, "threshold", 20.0);
    } else if (ty == "Hardtanh") {
        floatOption(l, o, "min_val", -1.0);
        floatOption(l, o, "max_val", 1.0);
    } else if (ty == "ReLU6") {
        o["min_val"] = 0.0;
        o["max_val"] = 6.0;
    } else if (ty == "Softmax" || ty == "LogSoftmax") {
        if (!o.contains("dim"))
            o["dim"] = nullptr;
        if (!o["dim"].is_null() && !o["dim"].is_number_integer())
            fail(l, "dim must be an integer");
    } else if (ty == "MaxPool1d" || ty == "MaxPool2d" || ty == "AvgPool1d" || ty == "AvgPool2d") {
        const std::size_t nd = ty.back() == 'd' && ty[ty.size() - 2] == '1' ? 1 : 2;
        const Shape k = listOption(l, o, "kernel_size", nd, std::nullopt);
        if (!o.contains("stride") || o["stride"].is_null() || (o["stride"].is_array() && o["stride"].empty()))
            o["stride"] = k;
        requirePositive(l, k, "kernel_size");
        requirePositive(l, listOption(l, o, "stride", nd, std::nullopt), "stride");
        requirePositive(l, listOption(l, o, "padding", nd, 0), "padding", true);
        boolOption(l, o, "ceil_mode", false);
        if (ty.starts_with("Max")) {
            requirePositive(l, listOption(l, o, "dilation", nd, 1), "dilation");
            if (boolOption(l, o, "return_indices", false))
                fail(l, "return_indices=True gives a tuple, not a tensor");
        } else {
            boolOption(l, o, "count_include_pad", true);
            if (nd == 2 && !o.contains("divisor_override"))
                o["divisor_override"] = nullptr;
        }
    } else if (ty == "AdaptiveAvgPool1d" || ty == "AdaptiveAvgPool2d" || ty == "AdaptiveMaxPool1d" ||
               ty == "AdaptiveMaxPool2d") {
        const std::size_t nd = ty.back() == 'd' && ty[ty.size() - 2] == '1' ? 1 : 2;
        if (!o.contains("output_size"))
            fail(l, "option output_size is required");
        json &os = o["output_size"];
        if (os.is_number_integer())
            os = json::array({os, os});
        if (nd == 1 && os.is_array() && os.size() == 2 && os[0] == os[1])
            os = json::array({os[0]});
        if (!os.is_array() || os.size() != nd)
            fail(l, "output_size must be an integer or a list of " + std::to_string(nd));
        for (auto &x : os)
            if (!x.is_null() && (!x.is_number_integer() || x.get<std::int64_t>() < 1 || x.get<std::int64_t>() > kOptionLimit))
                fail(l, "output_size must hold positive integers or null");
        if (ty.starts_with("AdaptiveMax") && o.value("return_indices", false))
            fail(l, "return_indices=True gives a tuple, not a tensor");
    } else if (ty == "ReLU" || ty == "Sigmoid" || ty == "Tanh" || ty == "SiLU" || ty == "Mish" || ty == "Hardswish" ||
               ty == "Hardsigmoid" || ty == "Softsign" || kWeightless.count(ty)) {
        // nothing to complete
    } else {
        fail(l, "this layer type is not supported");
    }
    for (const auto &[name, shape] : t)
        if (std::find(used.begin(), used.end(), name) == used.end())
            fail(l, "weight " + l.tensorName(name) + " " + joinShape(shape) + " is not used by a " + ty + " layer");
    return used;
}

std::string lastComponent(const std::string &cls)
{
    const auto dot = cls.rfind('.');
    return dot == std::string::npos ? cls : cls.substr(dot + 1);
}

bool isSupported(const std::string &type)
{
    const auto &all = supportedLayerTypes();
    return std::find(all.begin(), all.end(), type) != all.end();
}

// Scalars, strings, None and lists of them: the options a module's constructor stored.
bool isOptionValue(const ValuePtr &v, int depth = 0)
{
    if (!v)
        return false;
    switch (v->kind()) {
    case Value::Kind::None:
    case Value::Kind::Bool:
    case Value::Kind::Int:
    case Value::Kind::Float:
    case Value::Kind::String: return true;
    case Value::Kind::Tuple:
    case Value::Kind::List:
        return depth < 2 && std::all_of(v->items().begin(), v->items().end(),
                                        [depth](const ValuePtr &x) { return isOptionValue(x, depth + 1); });
    default: return false;
    }
}

std::vector<std::pair<std::string, ValuePtr>> namedEntries(const ValuePtr &dict)
{
    std::vector<std::pair<std::string, ValuePtr>> out;
    if (dict && dict->isDict())
        for (const auto &e : dict->entries())
            if (e.key && e.value)
                out.emplace_back(keyText(*e.key), e.value);
    return out;
}

// How many children at the end of a user's module class are activations or dropout registered
// after all its Linear/Conv layers (at least two, and nothing else), the pattern of a class whose forward
// uses one ReLU and one Dropout between every pair of layers; 0 when the children do not end so.
// Output activations (Sigmoid, Softmax, LogSoftmax) are not counted: a class that registers one
// last usually applies it last.
std::size_t trailingSharedModules(const std::vector<Layer> &children)
{
    // Tanh, like Sigmoid, often ends a network (generators, actors): not counted.
    static const std::set<std::string> hidden{"ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "ELU", "SELU",
                                               "CELU", "Mish", "Hardswish", "Hardtanh", "Dropout",
                                               "Dropout1d", "Dropout2d", "AlphaDropout"};
    // Only chains of the layers an activation goes between: with a norm layer among them
    // (conv, bn, relu) registration order is usually the forward's own.
    static const std::set<std::string> main{"Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"};
    std::size_t tail = 0;
    while (tail < children.size()) {
        const Layer &c = children[children.size() - 1 - tail];
        if (c.isContainer() || !c.tensors.empty() || !hidden.contains(c.type))
            break;
        ++tail;
    }
    if (tail == 0)
        return 0;
    std::size_t weighted = 0;
    for (std::size_t i = 0; i + tail < children.size(); ++i) {
        if (!main.contains(children[i].type))
            return 0;  // a norm, pooling or container among them: the order may well be the forward's
        ++weighted;
    }
    return weighted >= 2 ? tail : 0;
}

// A package's `architecture` entry as the plain JSON a spec is: a list repeating one dict
// (`[{"type": "ReLU"}] * 3`) pickles it once and refers to it again, and each use is a layer, so
// shared lists and dicts are written out in full (valueToJson would refer to the first). Bounded in
// depth, as specs are shallow, and in size: sharing lets 30 levels of [x, x] in a 1 KB file stand
// for 2^30 entries, so writing out stops past kMaxSpecNodes entries in all, with an error. What is
// not plain data stays tagged for the spec's error to name.
constexpr std::size_t kMaxSpecNodes = 100'000;

nlohmann::ordered_json specJson(const ValuePtr &v, std::size_t &budget, int depth = 0)
{
    using json = nlohmann::ordered_json;
    if (!v || depth > 32)
        return depth > 32 ? json("(nested too deeply)") : json(nullptr);
    if (budget == 0)
        throw FormatError("the package's architecture spells out more than " + std::to_string(kMaxSpecNodes) +
                          " entries (lists or dicts it refers to again and again); a spec of layers is far smaller");
    --budget;
    switch (v->kind()) {
    case Value::Kind::Tuple:
    case Value::Kind::List: {
        if (v->items().size() > 65536)
            return json("(a list of " + std::to_string(v->items().size()) + " items)");
        json a = json::array();
        for (const auto &i : v->items())
            a.push_back(specJson(i, budget, depth + 1));
        return a;
    }
    case Value::Kind::Dict: {
        if (v->entries().size() > 256)  // a layer has a few options, not thousands
            return json("(a dict of " + std::to_string(v->entries().size()) + " entries)");
        json o = json::object();
        for (const auto &e : v->entries())
            if (e.key && e.key->isString() && !o.contains(e.key->text()))
                o[e.key->text()] = specJson(e.value, budget, depth + 1);
        return o;
    }
    default:
        return valueToJson(v);
    }
}

// A module's own parameters and buffers by local name, as its state dict lists them.
std::vector<NamedTensor> registeredTensors(const Value &m)
{
    std::vector<NamedTensor> out;
    for (const char *key : {"_parameters", "_buffers"})
        for (auto &[n, v] : namedEntries(m.state()->get(key)))
            if (v->isTensor())
                out.push_back({n, v});
    return out;
}

Layer layerFromModule(const Value &m, const std::string &name, const std::string &path,
                      std::unordered_set<const Value *> &seen, std::uint32_t depth, std::vector<std::string> &assumptions)
{
    if (depth > PickleLimits::kMaxDepth)
        throw FormatError("module tree nested too deeply at " + path);
    Layer l;
    l.name = name;
    l.path = path;
    l.pythonClass = className(m);
    const bool standard = l.pythonClass.starts_with("torch.nn.modules.");
    const std::string base = lastComponent(l.pythonClass);
    if (!seen.insert(&m).second)
        throw FormatError((path.empty() ? std::string("the model") : "module " + path) +
                          " is used twice in the tree; weight sharing between layers is not supported");
    TensorShapes tensors;
    // In the order the module registered them, parameters before buffers, as torch's
    // named_parameters() and state_dict() list them (weight, bias; running_mean, running_var,
    // num_batches_tracked): an optimizer's state follows that order.
    std::vector<std::string> registered;
    for (const char *key : {"_parameters", "_buffers"})
        for (auto &[n, v] : namedEntries(m.state()->get(key)))
            if (v->isTensor() && tensors.emplace(n, v->tensorRef()->shape).second)
                registered.push_back(n);
    // torch.nn.utils.prune replaced the parameter X with X_orig (a parameter) and X_mask (a buffer)
    // of its shape; the layer computes with X = X_orig * X_mask, and has the weights of X.
    for (const auto &p : prunedParameters(registeredTensors(m))) {
        const std::string orig = p.name + "_orig", mask = p.name + "_mask";
        tensors[p.name] = tensors[orig];
        tensors.erase(orig);
        tensors.erase(mask);
        std::replace(registered.begin(), registered.end(), orig, p.name);
        std::erase(registered, mask);
    }
    for (const auto &e : m.state()->entries())
        if (e.key && e.key->isString() && !e.key->text().starts_with("_") && e.key->text() != "training" &&
            e.key->text() != "inplace" && isOptionValue(e.value))
            l.options[e.key->text()] = valueToJson(e.value);
    std::vector<std::pair<std::string, ValuePtr>> children;
    for (auto &[n, v] : namedEntries(m.state()->get("_modules")))
        if (isModule(*v))
            children.emplace_back(n, v);
    const bool container = standard && (base == "Sequential" || base == "ModuleList" || base == "ModuleDict");
    if (standard && !container) {
        l.type = base;
        if (!isSupported(base))
            fail(l, "torch.nn." + base + " is not supported; supported layers are listed in the README");
        if (!children.empty())
            fail(l, "a standard layer with submodules is not supported");
        l.tensors = registered;
        completeLeaf(l, tensors);
        return l;
    }
    l.type = container && base == "Sequential" ? "Sequential" : "Container";
    const std::string who = (path.empty() ? std::string("the model") : path) + " (" + l.pythonClass + ")";
    if (children.empty())
        throw FormatError(who + " has its own forward code, which a pickle does not carry: give a TorchScript "
                                "architecture (--arch) or a spec (--arch-spec)");
    if (!tensors.empty())
        throw FormatError(who + " holds its own weights (" + registered.front() +
                          "), which only its forward code, not in the file, knows how to use: give --arch or --arch-spec");
    for (auto &[n, v] : children)
        l.children.push_back(layerFromModule(*v, n, path.empty() ? n : path + "." + n, seen, depth + 1, assumptions));
    if (l.type == "Container") {
        std::string names;
        for (const auto &c : l.children)
            names += (names.empty() ? "" : ", ") + c.name;
        if (const std::size_t shared = trailingSharedModules(l.children)) {
            // self.fc1, self.fc2, self.fc3, self.relu, self.dropout: the activation and dropout are
            // registered once and used between the layers; run in registration order they would
            // follow the output layer. Applied after every layer but the last instead.
            const std::vector<Layer> tail(l.children.end() - static_cast<std::ptrdiff_t>(shared), l.children.end());
            const std::vector<Layer> layers(l.children.begin(), l.children.end() - static_cast<std::ptrdiff_t>(shared));
            l.children.clear();
            std::string tailNames;
            for (const auto &t : tail)
                tailNames += (tailNames.empty() ? "" : ", ") + t.name;
            for (std::size_t i = 0; i < layers.size(); ++i) {
                l.children.push_back(layers[i]);
                if (i + 1 < layers.size())
                    l.children.insert(l.children.end(), tail.begin(), tail.end());
            }
            assumptions.push_back(who + ": its forward is not in the file; its children are registered as " + names +
                                  ": " + tailNames + " (no weights, registered after the layers) taken to be shared "
                                  "and applied after every layer but the last, the usual forward of such a class; "
                                  "give --arch-spec if it differs");
        } else {
            assumptions.push_back(who + ": its forward is not in the file; its children run in registration order (" +
                                  names + ")");
        }
    }
    return l;
}

void collectLeaves(const Layer &l, std::vector<const Layer *> &out)
{
    if (l.isContainer()) {
        for (const auto &c : l.children)
            collectLeaves(c, out);
    } else {
        out.push_back(&l);
    }
}

std::int64_t normDim(std::int64_t d, std::size_t rank)
{
    return d < 0 ? d + static_cast<std::int64_t>(rank) : d;
}

// floor or ceil of a/b for b > 0.
std::int64_t divRound(std::int64_t a, std::int64_t b, bool ceil)
{
    std::int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != ceil))
        q += ceil ? 1 : -1;
    return q;
}

Shape propagateLeaf(const Layer &l, Shape s)
{
    const json &o = l.options;
    const std::string &ty = l.type;
    auto need = [&](bool ok, const std::string &what) {
        if (!ok)
            fail(l, "cannot take an input of shape " + joinShape(s) + ": " + what);
    };
    if (ty == "Linear") {
        need(!s.empty() && s.back() == o["in_features"].get<std::int64_t>(),
             "it needs " + std::to_string(o["in_features"].get<std::int64_t>()) + " features in the last dimension");
        s.back() = o["out_features"].get<std::int64_t>();
    } else if (ty.starts_with("Conv") || ty.starts_with("MaxPool") || ty.starts_with("AvgPool")) {
        const bool conv = ty.starts_with("Conv");
        const bool transposed = ty.starts_with("ConvTranspose");
        const std::size_t nd = o["kernel_size"].size();
        need(s.size() == nd + 2 || s.size() == nd + 1,
             "it needs " + std::to_string(nd + 2) + " dimensions (batch, channels, " + (nd == 1 ? "length" : "height, width") + ")");
        if (conv)
            need(s[s.size() - nd - 1] == o["in_channels"].get<std::int64_t>(),
                 "it needs " + std::to_string(o["in_channels"].get<std::int64_t>()) + " channels");
        const Shape k = o["kernel_size"].get<Shape>(), st = o["stride"].get<Shape>();
        const Shape d = o.contains("dilation") ? o["dilation"].get<Shape>() : Shape(nd, 1);
        const bool ceil = o.value("ceil_mode", false);
        for (std::size_t i = 0; i < nd; ++i) {
            std::int64_t &x = s[s.size() - nd + i];
            // Sizes, strides and paddings come from the file or a spec: computed wide, then bounded.
            using Wide = __int128;
            const Wide kk = k[i], dd = d[i], ss = st[i];
            need(ss > 0 && kk > 0 && dd > 0, "kernel size, stride and dilation must be positive");
            Wide out = x;
            if (conv && o["padding"].is_string()) {
                if (o["padding"] == "valid")
                    out = (Wide(x) - dd * (kk - 1) - 1) / ss + 1;
            } else {
                const Wide p = o["padding"][i].get<std::int64_t>();
                if (transposed) {
                    out = (Wide(x) - 1) * ss - 2 * p + dd * (kk - 1) + o["output_padding"][i].get<std::int64_t>() + 1;
                } else {
                    if (!conv)
                        need(2 * p <= kk, "padding must be at most half the kernel size");
                    const Wide span = Wide(x) + 2 * p - dd * (kk - 1) - 1;
                    need(span >= 0, "the input is smaller than the kernel");
                    need(span <= Wide(ArchitectureLimits::kMaxActivation) * 4, "the padded input is too large");
                    out = divRound(static_cast<std::int64_t>(span), st[i], ceil && !conv) + 1;
                    if (ceil && !conv && (out - 1) * ss >= Wide(x) + p)
                        --out;  // PyTorch: the last window must start inside the input or left padding
                }
            }
            need(out > 0, "the output would be empty");
            need(out <= ArchitectureLimits::kMaxActivation,
                 "its output would be more than " + std::to_string(ArchitectureLimits::kMaxActivation) +
                     " values wide, more than this program runs");
            x = static_cast<std::int64_t>(out);
        }
        if (conv)
            s[s.size() - nd - 1] = o["out_channels"].get<std::int64_t>();
    } else if (ty.starts_with("BatchNorm") || ty.starts_with("InstanceNorm") || ty == "GroupNorm") {
        const std::int64_t c = ty == "GroupNorm" ? o["num_channels"].get<std::int64_t>() : o["num_features"].get<std::int64_t>();
        need(s.size() >= 2 && s[1] == c, "it needs " + std::to_string(c) + " channels in dimension 1");
        if (ty == "BatchNorm1d")
            need(s.size() == 2 || s.size() == 3, "it needs 2 or 3 dimensions");
        if (ty == "BatchNorm2d")
            need(s.size() == 4, "it needs 4 dimensions");
    } else if (ty == "LayerNorm") {
        const Shape ns = o["normalized_shape"].get<Shape>();
        need(s.size() >= ns.size() && std::equal(ns.rbegin(), ns.rend(), s.rbegin()),
             "its last dimensions must be " + joinShape(ns));
    } else if (ty == "Embedding") {
        s.push_back(o["embedding_dim"].get<std::int64_t>());
    } else if (ty == "Flatten") {
        if (s.empty())
            return s;
        const auto a = normDim(o["start_dim"].get<std::int64_t>(), s.size());
        const auto b = normDim(o["end_dim"].get<std::int64_t>(), s.size());
        need(a >= 0 && b < static_cast<std::int64_t>(s.size()) && a <= b, "start_dim/end_dim are outside the input");
        Shape out(s.begin(), s.begin() + a);
        out.push_back(std::accumulate(s.begin() + a, s.begin() + b + 1, std::int64_t{1}, [](std::int64_t p, std::int64_t v) {
            return p > 0 && v > ArchitectureLimits::kMaxActivation / p ? ArchitectureLimits::kMaxActivation + 1 : p * v;
        }));
        out.insert(out.end(), s.begin() + b + 1, s.end());
        s = out;
    } else if (ty.starts_with("Adaptive")) {
        const json &os = o["output_size"];
        need(s.size() >= os.size() + 1, "it needs " + std::to_string(os.size() + 1) + " or more dimensions");
        for (std::size_t i = 0; i < os.size(); ++i)
            if (!os[i].is_null())
                s[s.size() - os.size() + i] = os[i].get<std::int64_t>();
    } else if (ty == "Softmax" || ty == "LogSoftmax") {
        if (!o["dim"].is_null()) {
            const auto d = normDim(o["dim"].get<std::int64_t>(), s.size());
            need(d >= 0 && d < static_cast<std::int64_t>(s.size()), "dim is outside the input");
        }
    } else if (ty == "PReLU") {
        const auto n = o["num_parameters"].get<std::int64_t>();
        need(n == 1 || (s.size() >= 2 && s[1] == n), "it needs " + std::to_string(n) + " channels in dimension 1");
    }
    // Sizes from a file or a spec decide what LibTorch allocates when the model runs: bounded per
    // sample (the first dimension is the batch).
    std::int64_t values = 1;
    for (std::size_t i = s.size() > 1 ? 1 : 0; i < s.size(); ++i)
        if (const std::int64_t d = s[i];
            d > 0 && (d > ArchitectureLimits::kMaxActivation || values > ArchitectureLimits::kMaxActivation / d))
            fail(l, "its output " + joinShape(s) + " would hold more than " +
                        std::to_string(ArchitectureLimits::kMaxActivation) + " values, more than this program runs");
        else if (d > 0)
            values *= d;
    return s;
}

Shape propagate(const Layer &l, Shape s)
{
    if (!l.isContainer())
        return propagateLeaf(l, std::move(s));
    for (const auto &c : l.children)
        s = propagate(c, std::move(s));
    return s;
}

// The input size a package states: input_shape, input_size or image_size, at the root, in
// model_config or in preprocessing; a list ([C, H, W], or [H, W] for the spatial sizes) or, for an
// image, one number (a square). Fills `shape`'s sizes; true when the file stated them.
bool applyStatedSize(const Document &doc, Shape &shape)
{
    if (!doc.root || !doc.root->isDict())
        return false;
    bool stated = false;
    for (const ValuePtr &where : {doc.root, doc.root->get("model_config"), doc.root->get("preprocessing")}) {
        if (!where || !where->isDict())
            continue;
        for (const char *key : {"input_shape", "input_size", "image_size"}) {
            auto v = where->get(key);
            if (!v)
                continue;
            Shape given;
            if (v->kind() == Value::Kind::Int && shape.size() == 3 && v->asInt() > 0 && v->asInt() <= (1 << 16))
                given = {v->asInt(), v->asInt()};
            else if (v->isSequence())
                for (const auto &x : v->items())
                    if (x && x->kind() == Value::Kind::Int && x->asInt() > 0 && x->asInt() <= (1 << 16))
                        given.push_back(x->asInt());
            // [C, H, W] or [H, W] for the spatial sizes.
            if (!given.empty() && given.size() == shape.size() && (given[0] == shape[0] || shape[0] == -1)) {
                stated = stated || shape != given;
                shape = given;
            } else if (!given.empty() && given.size() + 1 == shape.size()) {
                std::copy(given.begin(), given.end(), shape.begin() + 1);
                stated = true;
            }
        }
    }
    return stated;
}

// "recurrent" or "attention" for the torch.nn sequence layers the built-in runner has no kernel
// for; "" for others.
std::string sequenceLayerKind(const std::string &type)
{
    for (const char *t : {"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"})
        if (type == t)
            return "recurrent";
    for (const char *t : {"MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerDecoder",
                          "TransformerEncoderLayer", "TransformerDecoderLayer"})
        if (type == t)
            return "attention";
    return {};
}

// The first standard recurrent or attention layer of a pickled module tree, as "lstm (LSTM)", and
// its kind; nullopt when there is none. Such a layer blocks the built-in runner whatever else the
// model holds, so it is the first thing to say. Each module is looked at once (`seen`): the memo
// lets a pickle share one module among many parents, or make a module its own child, and a walk of
// every path through such a tree would never end.
std::optional<std::pair<std::string, std::string>> findSequenceLayer(const Value &m, const std::string &path, int depth,
                                                                     std::unordered_set<const Value *> &seen)
{
    if (depth > 64 || !m.state() || !m.state()->isDict() || !seen.insert(&m).second)
        return std::nullopt;
    const std::string cls = className(m);
    if (cls.starts_with("torch.nn.modules."))
        if (auto kind = sequenceLayerKind(lastComponent(cls)); !kind.empty())
            return std::make_pair((path.empty() ? std::string("the model") : path) + " (" + lastComponent(cls) + ")", kind);
    for (auto &[n, v] : namedEntries(m.state()->get("_modules")))
        if (v && isModule(*v))
            if (auto found = findSequenceLayer(*v, path.empty() ? n : path + "." + n, depth + 1, seen))
                return found;
    return std::nullopt;
}

// The same read from a state dict's names: weight_ih_l0 with weight_hh_l0 [G·H, H] (G = 4 an
// LSTM, 3 a GRU, 1 an RNN), in_proj_weight a MultiheadAttention.
std::optional<std::pair<std::string, std::string>> findSequenceWeights(const Document &doc)
{
    std::map<std::string, const NamedTensor *> byName;
    for (const auto &w : doc.stateDict)
        byName[w.name] = &w;
    for (const auto &w : doc.stateDict) {
        const auto dot = w.name.rfind('.');
        const std::string prefix = dot == std::string::npos ? std::string() : w.name.substr(0, dot);
        const std::string local = dot == std::string::npos ? w.name : w.name.substr(dot + 1);
        const std::string where = prefix.empty() ? std::string("the model") : prefix;
        if (local == "weight_ih_l0" || local == "weight_ih") {
            std::string type = "RNN";
            auto hh = byName.find((prefix.empty() ? "" : prefix + ".") + (local == "weight_ih" ? "weight_hh" : "weight_hh_l0"));
            if (hh != byName.end() && hh->second->value && hh->second->value->isTensor()) {
                const Shape &sh = hh->second->ref().shape;
                if (sh.size() == 2 && sh[1] > 0)
                    type = sh[0] == 4 * sh[1] ? "LSTM" : sh[0] == 3 * sh[1] ? "GRU" : "RNN";
            }
            if (local == "weight_ih")
                type += "Cell";
            return std::make_pair(where + " (" + type + ")", std::string("recurrent"));
        }
        if (local == "in_proj_weight" || local == "q_proj_weight")
            return std::make_pair(where + " (MultiheadAttention)", std::string("attention"));
    }
    return std::nullopt;
}

// What to say when a sequence layer blocks the built-in runner.
std::string sequenceLayerMessage(const std::string &file, const std::pair<std::string, std::string> &found)
{
    return file + ": layer " + found.first + " is " + (found.second == "recurrent" ? "a recurrent" : "an attention") +
           " layer, which the built-in runner does not support (it runs the feed-forward layers the README lists): "
           "give a TorchScript file of the model with --arch (from torch.jit.script or torch.jit.trace; the weights "
           "are loaded into it), which runs any layer";
}

// One sample's shape from the first layer that constrains it; unknown spatial sizes are found by
// trying the usual image sizes until the whole network accepts one.
void inferInput(Architecture &a, const Document &doc)
{
    const auto leaves = leavesInOrder(a.root);
    const Layer *first = nullptr;
    // A Flatten first (an MNIST MLP's nn.Flatten(), nn.Linear(784, ...)): the sample is the
    // Linear's features, which a [1, 28, 28] picture gives flattened as well as a row of 784.
    bool flattened = false;
    for (const Layer *l : leaves) {
        if (kWeightless.count(l->type))
            continue;
        if (l->type == "Flatten" && !flattened) {
            flattened = true;
            continue;
        }
        first = l;
        break;
    }
    if (!first || (flattened && first->type != "Linear"))
        return;
    const json &o = first->options;
    const std::string &ty = first->type;
    Shape shape;
    if (ty == "Linear")
        shape = {o["in_features"].get<std::int64_t>()};
    else if (ty == "BatchNorm1d")
        shape = {o["num_features"].get<std::int64_t>()};
    else if (ty == "LayerNorm")
        shape = o["normalized_shape"].get<Shape>();
    else if (ty == "Embedding") {
        shape = {-1};
        a.integerInput = true;
    } else if (ty == "Conv1d" || ty == "ConvTranspose1d" || ty == "InstanceNorm1d")
        shape = {o.contains("in_channels") ? o["in_channels"].get<std::int64_t>() : o["num_features"].get<std::int64_t>(), -1};
    else if (ty == "Conv2d" || ty == "ConvTranspose2d")
        shape = {o["in_channels"].get<std::int64_t>(), -1, -1};
    else if (ty == "BatchNorm2d" || ty == "InstanceNorm2d")
        shape = {o["num_features"].get<std::int64_t>(), -1, -1};
    else if (ty == "GroupNorm")
        shape = {o["num_channels"].get<std::int64_t>(), -1, -1};
    else
        return;
    applyStatedSize(doc, shape);
    if (a.integerInput) {
        a.embeddingRows = o["num_embeddings"].get<std::int64_t>();
        a.embeddingName = "layer " + (first->path.empty() ? first->name : first->path);
        // A sequence's length is fixed when a later layer needs it (Embedding, Flatten, Linear of
        // L·D features): the one length that runs. Any length otherwise.
        for (std::int64_t length = 1; length <= 512 && shape == Shape{-1}; ++length) {
            try {
                propagate(a.root, {1, length});
            } catch (const FormatError &) {
                continue;
            }
            try {
                propagate(a.root, {1, 2 * length + 1});
            } catch (const FormatError &) {
                shape = {length};
            }
            break;
        }
    }
    if (std::find(shape.begin(), shape.end(), -1) != shape.end() && !a.integerInput) {
        std::vector<std::int64_t> sizes = {224, 32, 28, 64, 96, 128, 256, 299, 16};
        for (std::int64_t i = 1; i <= 512; ++i)
            sizes.push_back(i);
        for (std::int64_t size : sizes) {
            Shape trial{1};
            for (auto d : shape)
                trial.push_back(d == -1 ? size : d);
            try {
                propagate(a.root, trial);
            } catch (const FormatError &) {
                continue;
            }
            // Does another size run too (an adaptive pool before the head)? Then the size is a choice.
            Shape other{1};
            for (auto d : shape)
                other.push_back(d == -1 ? size * 2 + 1 : d);
            try {
                propagate(a.root, other);
                a.inputSizeChosen = true;
            } catch (const FormatError &) {
            }
            shape.assign(trial.begin() + 1, trial.end());
            break;
        }
    }
    a.inputShape = shape;
}

// "[3, any, any]": a sample's shape as the assumptions word it.
std::string sampleText(const Shape &shape)
{
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i)
        s += (i ? ", " : "") + (shape[i] < 0 ? std::string("any") : std::to_string(shape[i]));
    return s + "]";
}

// A TorchScript archive does not record what its forward takes: one sample's shape is read from
// its first weight in registration order (that of the layer the input most likely meets first),
// by the class of the module holding it, or, for a class of the user's, by the weight's rank.
// Said as an assumption; nothing is set when the weight tells nothing.
// `stated`: the document whose package may state the input size (the weights' file for --arch).
void inferScriptInput(Architecture &a, const Document &doc, const Document &stated)
{
    // Buffers a model keeps beside its layers (position_ids, an attention mask, a cache) belong to
    // no layer the input meets: the first floating-point tensor named `weight` is the first
    // layer's, else the first floating-point tensor.
    const NamedTensor *first = nullptr;
    for (const bool named : {true, false}) {
        for (const auto &w : doc.stateDict)
            if (!w.name.starts_with("constants.") && w.value && w.value->isTensor() && dtypeIsFloating(w.ref().dtype) &&
                (!named || w.name == "weight" || w.name.ends_with(".weight"))) {
                first = &w;
                break;
            }
        if (first)
            break;
    }
    // A graph optimised for mobile keeps its weights as constants (XNNPACK contexts), in order.
    const bool constant = !first && !doc.stateDict.empty() && doc.stateDict.front().name.starts_with("constants.") &&
                          doc.stateDict.front().value && doc.stateDict.front().value->isTensor();
    if (constant)
        first = &doc.stateDict.front();
    if (!first || !doc.root)
        return;
    const Shape &w = first->ref().shape;
    // The object holding the weight: its attributes from the root, by the name's components.
    const auto dot = first->name.rfind('.');
    const std::string local = dot == std::string::npos ? first->name : first->name.substr(dot + 1);
    ValuePtr owner = constant ? nullptr : doc.root;
    for (std::size_t begin = 0; owner && dot != std::string::npos && begin <= dot;) {
        const auto end = first->name.find('.', begin);
        owner = owner->state() && owner->state()->isDict() ? owner->state()->get(first->name.substr(begin, end - begin))
                                                           : nullptr;
        begin = end + 1;
    }
    const std::string cls = owner ? lastComponent(className(*owner)) : std::string();
    auto attribute = [&owner](const char *key) -> std::int64_t {
        if (!owner || !owner->state() || !owner->state()->isDict())
            return 0;
        auto v = owner->state()->get(key);
        return v && v->isInt() ? v->asInt() : 0;
    };
    const auto rank = w.size();
    const bool weight = local == "weight" || constant;
    Shape shape;
    std::string layer = cls.empty() ? std::string("its module") : "a " + cls;
    bool integer = false;
    if (weight && cls.starts_with("Conv") && !cls.starts_with("ConvTranspose") && rank >= 3 && rank <= 5) {
        // A scripted module keeps in_channels; a traced one only its weight [out, in / groups, k...].
        std::int64_t in = attribute("in_channels");
        if (in <= 0 && __builtin_mul_overflow(w[1], std::max<std::int64_t>(attribute("groups"), 1), &in))
            return;  // a groups count no layer has: no guess
        shape.assign(rank - 1, -1);
        shape[0] = in;
    } else if (weight && cls.starts_with("ConvTranspose") && rank >= 3 && rank <= 5) {
        shape.assign(rank - 1, -1);
        shape[0] = w[0];  // [in, out / groups, k...]
    } else if (weight && (cls == "Embedding" || cls == "EmbeddingBag") && rank == 2) {
        shape = {-1};
        integer = true;
        a.embeddingRows = w[0];
        a.embeddingName = dot == std::string::npos ? std::string() : first->name.substr(0, dot);
    } else if (weight && cls == "Linear" && rank == 2) {
        shape = {w[1]};
    } else if (weight && (cls == "BatchNorm1d" || cls == "LayerNorm") && rank >= 1) {
        shape = w;
    } else if (weight && (cls == "BatchNorm2d" || cls == "InstanceNorm2d" || cls == "GroupNorm") && rank == 1) {
        shape = {attribute("num_channels") > 0 ? attribute("num_channels") : w[0], -1, -1};
    } else if (weight && (rank == 2 || rank == 3 || rank == 4)) {
        // A class this program does not know: read as the layer whose weight has this rank.
        layer = rank == 2 ? "Linear" : rank == 3 ? "Conv1d" : "Conv2d";
        shape.assign(rank - 1, -1);
        shape[0] = w[1];
        layer = (constant ? std::string("a constant of the optimised graph") : cls.empty() ? std::string("a module") : cls) +
                ", read as a " + layer + "'s by its rank";
    } else {
        return;
    }
    const bool sized = shape.size() == 3 && applyStatedSize(stated, shape);
    a.inputShape = shape;
    a.inputShapeGuessed = true;
    a.integerInput = integer;
    a.assumptions.push_back("input: one sample of shape " + sampleText(shape) + (integer ? " (integer indices)" : "") +
                            ", read from the first weight, " + first->name + " " + joinShape(w) + " of " + layer +
                            (sized ? ", its size as the file states" : "") +
                            ": a TorchScript file does not record what its forward takes");
}

// What the last layer that computes gives, by the types of the leaves in run order (Identity,
// Dropout and Flatten change no value): log-probabilities after a LogSoftmax, probabilities after a
// Softmax or a Sigmoid, logits otherwise. Pickled module trees and TorchScript files alike.
Architecture::Output outputOfLastLayer(const std::vector<std::string> &types)
{
    for (auto it = types.rbegin(); it != types.rend(); ++it) {
        if (kWeightless.count(*it) || *it == "Flatten")
            continue;
        if (*it == "LogSoftmax")
            return Architecture::Output::LogProbabilities;
        if (*it == "Softmax" || *it == "Sigmoid")
            return Architecture::Output::Probabilities;
        break;
    }
    return Architecture::Output::Logits;
}

// A TorchScript module's leaves in registration order, as a pickled tree's are run: the submodules
// are the attributes that are script modules themselves. A torch.nn layer's class name (mangled or
// not: "__torch__.torch.nn.modules.activation.___torch_mangle_3.Sigmoid") gives its type; a class
// of the user's without submodules gives "" (a layer that computes something unknown).
void scriptLeafTypes(const Value &m, int depth, std::vector<std::string> &out)
{
    std::vector<const Value *> children;
    if (depth < 64 && m.state() && m.state()->isDict())
        for (const auto &e : m.state()->entries())
            if (e.value && isScriptModule(*e.value))
                children.push_back(e.value.get());
    if (children.empty()) {
        const std::string cls = className(m);
        out.push_back(cls.starts_with("__torch__.torch.nn.modules.") ? lastComponent(cls) : std::string());
        return;
    }
    for (const Value *c : children)
        scriptLeafTypes(*c, depth + 1, out);
}

void scriptOutput(Architecture &a, const Document &script)
{
    if (!script.root || !isScriptModule(*script.root))
        return;
    std::vector<std::string> types;
    scriptLeafTypes(*script.root, 0, types);
    a.output = outputOfLastLayer(types);
}

// The channels (features) a leaf takes and gives; 0 when it does not say.
std::pair<std::int64_t, std::int64_t> leafChannels(const Layer &l)
{
    const json &o = l.options;
    auto num = [&o](const char *key) {
        return o.contains(key) && o[key].is_number_integer() ? o[key].get<std::int64_t>() : std::int64_t{0};
    };
    if (l.type == "Linear")
        return {num("in_features"), num("out_features")};
    if (l.type.starts_with("Conv"))
        return {num("in_channels"), num("out_channels")};
    if (l.type.starts_with("BatchNorm") || l.type.starts_with("InstanceNorm"))
        return {num("num_features"), num("num_features")};
    if (l.type == "GroupNorm")
        return {num("num_channels"), num("num_channels")};
    return {0, 0};
}

// Why a class of the user's looks like a residual block, whose forward adds its input to what its
// layers give (x + f(x)); "" when it does not. The rule: a child named like a skip path
// (downsample, shortcut, skip), a class name ending in Block or Bottleneck or naming Residual, or —
// for a class below the top level — a first layer with weights that takes as many channels as the
// last one gives, with at least two such layers between, so that x + f(x) fits.
std::string residualLook(const Layer &l, bool top)
{
    std::string lower = lastComponent(l.pythonClass);
    for (char &c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto &c : l.children)
        for (const char *skip : {"downsample", "shortcut", "skip"})
            if (c.name.find(skip) != std::string::npos)
                return "it has a child named '" + c.name + "'";
    if (lower.ends_with("block") || lower.ends_with("bottleneck") || lower.find("residual") != std::string::npos)
        return "its class is named " + lastComponent(l.pythonClass);
    if (top)
        return {};
    std::vector<const Layer *> weighted;
    for (const Layer *leaf : leavesInOrder(l))
        if (leafChannels(*leaf).first > 0)
            weighted.push_back(leaf);
    if (weighted.size() >= 2 && leafChannels(*weighted.front()).first == leafChannels(*weighted.back()).second)
        return "its first layer with weights (" + weighted.front()->name + ") takes " +
               std::to_string(leafChannels(*weighted.front()).first) + " channels and its last (" +
               weighted.back()->name + ") gives as many, so x + f(x) fits";
    return {};
}

void collectForwardGuesses(const Layer &l, bool top, std::vector<std::string> &custom, std::vector<std::string> &residual)
{
    if (l.type == "Container") {
        const std::string who = (l.path.empty() ? std::string("the model") : l.path) + " (" +
                                lastComponent(l.pythonClass) + ")";
        custom.push_back(who);
        if (const std::string why = residualLook(l, top); !why.empty())
            residual.push_back(who + ": " + why);
    }
    for (const auto &c : l.children)
        collectForwardGuesses(c, false, custom, residual);
}

// The warnings a pickled module tree's result carries (Architecture::warnings).
void forwardWarnings(Architecture &a)
{
    std::vector<std::string> custom, residual;
    collectForwardGuesses(a.root, true, custom, residual);
    if (custom.empty())
        return;
    const std::size_t shown = std::min<std::size_t>(custom.size(), 3);
    std::string names;
    for (std::size_t i = 0; i < shown; ++i)
        names += (i ? ", " : "") + custom[i];
    if (custom.size() > shown)
        names += " and " + std::to_string(custom.size() - shown) + " more";
    a.warnings.push_back("the forward code of " + names +
                         " is not in the file: this result assumes each runs its children one after another in the "
                         "order they were registered; if a forward does anything else (adds, concatenates, reshapes) "
                         "the numbers are wrong. A TorchScript export of the model (torch.jit.script or "
                         "torch.jit.trace, predicted directly or given with --arch) runs its real forward");
    if (residual.empty())
        return;
    std::string why;
    for (std::size_t i = 0; i < std::min<std::size_t>(residual.size(), 3); ++i)
        why += (i ? "; " : "") + residual[i];
    if (residual.size() > 3)
        why += "; and " + std::to_string(residual.size() - 3) + " more";
    a.warnings.push_back("this result is likely wrong: " + std::string(residual.size() == 1 ? "a block" : "blocks") +
                         " of this model look residual (" + why +
                         "). A residual block adds its input to what its layers give (x + f(x)) in its forward; that "
                         "skip connection cannot be seen in a pickle and is not computed here. Predict with a "
                         "TorchScript export of the model instead (torch.jit.script(model).save(...), or --arch)");
}

void finish(Architecture &a, const Document &doc)
{
    inferInput(a, doc);
    std::vector<std::string> types;
    for (const Layer *l : leavesInOrder(a.root))
        types.push_back(l->type);
    a.output = outputOfLastLayer(types);
    // A full check of the chain before anything runs: wrong widths between layers are caught here.
    if (!a.inputShape.empty() && std::find(a.inputShape.begin(), a.inputShape.end(), -1) == a.inputShape.end()) {
        Shape trial{1};
        trial.insert(trial.end(), a.inputShape.begin(), a.inputShape.end());
        try {
            propagate(a.root, trial);
        } catch (const FormatError &e) {
            throw FormatError(doc.path + ": " + e.what());
        }
    }
}

std::string optionText(const json &v)
{
    if (v.is_array()) {
        std::string s = "(";
        for (std::size_t i = 0; i < v.size(); ++i)
            s += (i ? ", " : "") + optionText(v[i]);
        return s + (v.size() == 1 ? ",)" : ")");
    }
    if (v.is_null())
        return "None";
    if (v.is_boolean())
        return v.get<bool>() ? "True" : "False";
    if (v.is_string())
        return "'" + v.get<std::string>() + "'";
    if (v.is_number_float())
        return formatFloat(v.get<double>());
    return v.dump();
}

void describe(const Layer &l, int depth, std::vector<std::string> &out)
{
    std::string line(static_cast<std::size_t>(depth) * 2, ' ');
    line += (l.name.empty() ? std::string("(model)") : l.name) + ": ";
    if (l.isContainer()) {
        line += l.type == "Sequential" ? "Sequential" : lastComponent(l.pythonClass) + " (children in order)";
        out.push_back(line);
        for (const auto &c : l.children)
            describe(c, depth + 1, out);
        return;
    }
    line += l.type + "(";
    bool firstOption = true;
    for (const auto &[k, v] : l.options.items()) {
        line += (firstOption ? "" : ", ") + k + "=" + optionText(v);
        firstOption = false;
    }
    out.push_back(line + ")");
}

std::string activationLayer(const std::string &activation)
{
    static const std::map<std::string, std::string> kTypes = {
        {"relu", "ReLU"}, {"tanh", "Tanh"}, {"sigmoid", "Sigmoid"}, {"gelu", "GELU"}, {"silu", "SiLU"},
        {"elu", "ELU"},   {"leaky_relu", "LeakyReLU"}, {"none", ""}};
    auto it = kTypes.find(activation);
    if (it == kTypes.end())
        throw FormatError("unknown activation '" + activation +
                          "' (relu, tanh, sigmoid, gelu, silu, elu, leaky_relu or none)");
    return it->second;
}

} // namespace

std::string sourceName(Architecture::Source source)
{
    switch (source) {
    case Architecture::Source::TorchScript: return "torchscript";
    case Architecture::Source::ModuleTree: return "module_tree";
    case Architecture::Source::ScriptArchitecture: return "torchscript_architecture";
    case Architecture::Source::Spec: return "spec";
    case Architecture::Source::PackageSpec: return "package_spec";
    case Architecture::Source::InferredMlp: return "inferred_mlp";
    }
    return {};
}

const std::vector<std::string> &supportedLayerTypes()
{
    static const std::vector<std::string> kTypes = {
        "Linear", "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d",
        "InstanceNorm1d", "InstanceNorm2d", "LayerNorm", "GroupNorm", "Embedding", "Dropout", "Dropout1d", "Dropout2d",
        "AlphaDropout", "Identity", "Flatten", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "GELU", "SiLU", "Mish", "ELU",
        "Softplus", "Hardtanh", "Hardswish", "Hardsigmoid", "Softsign", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
        "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
        "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Sequential"};
    return kTypes;
}

std::vector<const Layer *> leavesInOrder(const Layer &root)
{
    std::vector<const Layer *> out;
    collectLeaves(root, out);
    return out;
}

std::vector<std::int64_t> propagateShape(const Layer &root, std::vector<std::int64_t> shape)
{
    return propagate(root, std::move(shape));
}

Architecture architectureFromSpec(const Document &doc, const nlohmann::ordered_json &specIn, Architecture::Source source)
{
    const std::string where = source == Architecture::Source::PackageSpec ? doc.path + ": the package's architecture"
                                                                          : std::string("architecture spec");
    json spec = specIn;
    json inputShape;
    if (spec.is_object()) {
        inputShape = spec.value("input_shape", json());
        spec = spec.value("layers", json());
    }
    if (!spec.is_array() || spec.empty())
        throw FormatError(where + ": expected a JSON list of layers, e.g. [{\"type\": \"Linear\", \"name\": \"fc1\"}, "
                                  "{\"type\": \"ReLU\"}]");
    if (!doc.hasStateDict)
        throw FormatError(doc.path + ": the file holds no state dict to run with an architecture");
    Architecture a;
    a.source = source;
    a.weights = doc.stateDict;
    a.root.type = "Sequential";
    // A single module's own state dict (nn.Linear(5, 3).state_dict(): 'weight', 'bias') against a
    // one-layer spec: that layer holds them. The model runs as a Sequential of it, whose keys
    // are the layer's name, a dot, and the file's.
    if (spec.size() == 1 && spec[0].is_object() &&
        std::none_of(a.weights.begin(), a.weights.end(), [](const NamedTensor &w) { return w.name.find('.') != std::string::npos; })) {
        const std::string name = spec[0].contains("name") && spec[0]["name"].is_string() ? spec[0]["name"].get<std::string>() : "0";
        for (auto &w : a.weights)
            w.name = name + "." + w.name;
        a.assumptions.push_back("the file's tensors are one module's own (no prefix): they belong to layer '" + name +
                                "', and a model made from them is a Sequential holding it");
    }
    std::map<std::string, Shape> all;
    for (const auto &w : a.weights)
        all[w.name] = w.ref().shape;
    std::set<std::string> used, names;
    for (std::size_t i = 0; i < spec.size(); ++i) {
        const json &item = spec[i];
        if (!item.is_object() || !item.contains("type") || !item["type"].is_string())
            throw FormatError(where + ": layer " + std::to_string(i) + " needs a \"type\"");
        Layer l;
        l.type = item["type"].get<std::string>();
        for (const char *prefix : {"torch.nn.", "nn."})
            if (l.type.starts_with(prefix))
                l.type = l.type.substr(std::string(prefix).size());
        l.name = item.contains("name") && item["name"].is_string() ? item["name"].get<std::string>() : std::to_string(i);
        l.path = l.name;
        if (l.name.empty() || !names.insert(l.name).second)
            throw FormatError(where + ": layer " + std::to_string(i) + " has an empty or repeated name '" + l.name + "'");
        if (!isSupported(l.type) || l.type == "Sequential")
            throw FormatError(where + ": layer " + l.name + ": type '" + l.type + "' is not supported");
        for (const auto &[k, v] : item.items())
            if (k != "type" && k != "name")
                l.options[k] = v;
        l.given = l.options;
        TensorShapes tensors;
        const std::string prefix = l.name + ".";
        for (const auto &[n, s] : all)
            if (n.starts_with(prefix) && n.find('.', prefix.size()) == std::string::npos)
                tensors[n.substr(prefix.size())] = s;
        for (const auto &n : completeLeaf(l, tensors)) {
            l.tensors.push_back(n);
            used.insert(l.tensorName(n));
        }
        a.root.children.push_back(std::move(l));
    }
    std::string unused;
    for (const auto &w : a.weights)
        if (!used.count(w.name) && !w.name.ends_with("num_batches_tracked"))
            unused += (unused.empty() ? "" : ", ") + w.name + " " + shapeText(w.ref().shape);
    if (!unused.empty())
        throw FormatError(where + " does not match the weights: no layer uses " + unused);
    if (source == Architecture::Source::PackageSpec)
        a.assumptions.push_back("layers and their order as the package's 'architecture' entry lists them");
    else if (source == Architecture::Source::Spec)
        a.assumptions.push_back("layers and their order as the given spec lists them");
    if (inputShape.is_array() && !inputShape.empty()) {
        try {
            a.inputShape = inputShape.get<Shape>();
        } catch (const std::exception &) {
            throw FormatError(where + ": input_shape must be a list of integers");
        }
    }
    const Shape given = a.inputShape;
    finish(a, doc);
    if (!given.empty())
        a.inputShape = given;
    return a;
}

namespace {

// Whether the safetensors file is one this tool wrote and its reader put back in the state dict's
// order (kSafetensorsKeyOrder names every entry, and the root lists them so).
bool keyOrderRestored(const Document &doc)
{
    const ValuePtr text = doc.formatMetadata && doc.formatMetadata->isDict()
                              ? doc.formatMetadata->get(std::string(kSafetensorsKeyOrder))
                              : nullptr;
    if (!text || !text->isString() || !doc.root || !doc.root->isDict())
        return false;
    const json order = json::parse(text->text(), nullptr, false);
    const auto &entries = doc.root->entries();
    if (!order.is_array() || order.size() != entries.size())
        return false;
    for (std::size_t i = 0; i < entries.size(); ++i)
        if (!order[i].is_string() || !entries[i].key || !entries[i].key->isString() ||
            order[i].get_ref<const std::string &>() != entries[i].key->text())
            return false;
    return true;
}

// Whether the container lists its tensors by name rather than in the model's order: safetensors
// files and sharded indexes (their weight_map) do, unless this tool recorded the order and it was
// restored.
bool namesSortedByContainer(const Document &doc)
{
    if (doc.format == ContainerFormat::Safetensors)
        return !keyOrderRestored(doc);
    return doc.format == ContainerFormat::Sharded;
}

} // namespace

std::optional<nlohmann::ordered_json> inferMlpSpec(const Document &doc, const std::string &activation, std::string *why)
{
    auto no = [why](std::string reason) -> std::optional<json> {
        if (why)
            *why = std::move(reason);
        return std::nullopt;
    };
    const std::string act = activationLayer(activation);
    if (!doc.hasStateDict || doc.stateDict.empty())
        return no("the file holds no state dict");
    // The tensors by module, in the order the state dict first names each module: a Sequential's
    // state dict lists its layers in run order ("0.weight", "0.bias", "1.weight", ...).
    struct Module {
        std::string prefix;
        std::map<std::string, const NamedTensor *> members;  // "weight", "bias", "running_mean", ...
    };
    std::vector<Module> modules;
    std::map<std::string, std::size_t> moduleIndex;
    std::set<std::string> names;
    for (const auto &w : doc.stateDict) {
        names.insert(w.name);
        const auto dot = w.name.rfind('.');
        const std::string prefix = dot == std::string::npos ? "" : w.name.substr(0, dot);
        const std::string member = dot == std::string::npos ? w.name : w.name.substr(dot + 1);
        auto [it, added] = moduleIndex.emplace(prefix, modules.size());
        if (added)
            modules.push_back({prefix, {}});
        modules[it->second].members[member] = &w;
    }
    // A safetensors file lists its tensors sorted by name (0, 10, 12, 2, …), not in the order the
    // model registered them: layers run in the names' natural order (2 before 10).
    if (namesSortedByContainer(doc))
        std::stable_sort(modules.begin(), modules.end(),
                         [](const Module &a, const Module &b) { return naturalKey(a.prefix) < naturalKey(b.prefix); });
    auto rank1 = [](const NamedTensor *t) { return t && t->ref().shape.size() == 1 ? t->ref().shape[0] : -1; };

    json layers = json::array();
    std::int64_t width = -1;  // the features the layers so far give; -1 before the first layer
    bool afterLinear = false;
    for (const auto &m : modules) {
        auto member = [&m](const char *n) -> const NamedTensor * {
            auto it = m.members.find(n);
            return it == m.members.end() ? nullptr : it->second;
        };
        auto unexpected = [&m](std::initializer_list<const char *> known) -> std::string {
            for (const auto &[k, t] : m.members)
                if (std::find_if(known.begin(), known.end(), [&k = k](const char *n) { return k == n; }) == known.end())
                    return t->name + " " + shapeText(t->ref().shape);
            return {};
        };
        const std::string name = m.prefix.empty() ? std::string("0") : m.prefix;
        const NamedTensor *weight = member("weight"), *bias = member("bias");
        if (weight && weight->ref().shape.size() == 2) {
            if (auto other = unexpected({"weight", "bias"}); !other.empty())
                return no(other + " belongs to no Linear layer");
            const auto &s = weight->ref().shape;
            if (width != -1 && s[1] != width)
                return no(weight->name + " takes " + std::to_string(s[1]) + " features but the layer before gives " +
                          std::to_string(width));
            if (bias && bias->ref().shape != Shape{s[0]})
                return no(bias->name + " has shape " + shapeText(bias->ref().shape) + ", not the " +
                          std::to_string(s[0]) + " outputs of " + weight->name);
            if (afterLinear && !act.empty()) {
                // Under the deepest container the two layers share ("module.activation1" between
                // "module.fc1" and "module.fc2", "body.activation3" between "body.l1.fc" and
                // "body.l2.fc"), so a wrapper's prefix nests the whole chain in one container.
                const std::string &before = layers.back()["name"].get_ref<const std::string &>();
                std::size_t shared = 0;  // length of the common prefix that ends with a dot
                for (std::size_t i = 0; i < before.size() && i < name.size() && before[i] == name[i]; ++i)
                    if (before[i] == '.')
                        shared = i + 1;
                layers.push_back({{"type", act},
                                  {"name", before.substr(0, shared) + "activation" + std::to_string(layers.size())}});
            }
            json layer = {{"type", "Linear"}, {"name", name}, {"in_features", s[1]}, {"out_features", s[0]}};
            if (!bias)
                layer["bias"] = false;
            layers.push_back(layer);
            width = s[0];
            afterLinear = true;
            continue;
        }
        // A normalisation layer over the features: BatchNorm1d keeps running statistics; LayerNorm
        // has a weight and a bias and nothing else. Neither changes the width.
        const NamedTensor *mean = member("running_mean"), *var = member("running_var");
        if (mean || var) {
            if (auto other = unexpected({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
                !other.empty())
                return no(other + " belongs to no BatchNorm1d layer");
            const std::int64_t n = rank1(mean);
            if (n < 1 || rank1(var) != n || (weight && rank1(weight) != n) || (bias && rank1(bias) != n) ||
                (!weight) != (!bias))
                return no("the tensors of " + name + " are not those of a BatchNorm1d layer");
            if (width != -1 && n != width)
                return no(mean->name + " normalises " + std::to_string(n) + " features but the layer before gives " +
                          std::to_string(width));
            json layer = {{"type", "BatchNorm1d"}, {"name", name}, {"num_features", n}};
            if (!weight)
                layer["affine"] = false;
            layers.push_back(layer);
            width = n;
            continue;
        }
        if (weight && weight->ref().shape.size() == 1 && bias) {
            if (auto other = unexpected({"weight", "bias"}); !other.empty())
                return no(other + " belongs to no LayerNorm layer");
            const std::int64_t n = rank1(weight);
            if (rank1(bias) != n)
                return no(bias->name + " has shape " + shapeText(bias->ref().shape) + ", not that of " + weight->name);
            if (width != -1 && n != width)
                return no(weight->name + " normalises " + std::to_string(n) + " features but the layer before gives " +
                          std::to_string(width));
            layers.push_back({{"type", "LayerNorm"}, {"name", name}, {"normalized_shape", json::array({n})}});
            width = n;
            continue;
        }
        if (weight)
            return no(weight->name + " has shape " + shapeText(weight->ref().shape) +
                      ": not the weight of a Linear, BatchNorm1d or LayerNorm layer");
        const NamedTensor *first = m.members.begin()->second;
        return no(first->name + " " + shapeText(first->ref().shape) + " belongs to no Linear layer");
    }
    if (!afterLinear)
        return no("no tensor is a Linear weight");
    // Activation layers get names that cannot collide with the weights' prefixes.
    for (auto &l : layers)
        if (l["type"] == act) {
            std::string n = l["name"].get<std::string>();
            const auto dot = n.rfind('.');
            while (moduleIndex.count(n))
                n.insert(dot == std::string::npos ? 0 : dot + 1, "_");
            l["name"] = n;
        }
    return layers;
}

nlohmann::ordered_json specOf(const Architecture &arch)
{
    json out = json::array();
    for (const Layer *l : leavesInOrder(arch.root)) {
        json item = {{"type", l->type}, {"name", l->path}};
        for (const auto &[k, v] : l->options.items())
            item[k] = v;
        out.push_back(item);
    }
    return out;
}

std::vector<std::string> describeArchitecture(const Architecture &arch)
{
    std::vector<std::string> out;
    if (arch.source == Architecture::Source::TorchScript || arch.source == Architecture::Source::ScriptArchitecture) {
        out.push_back("TorchScript: " + arch.scriptPath);
        return out;
    }
    describe(arch.root, 0, out);
    return out;
}

namespace {

Architecture resolveUnpruned(const Document &doc, const ArchitectureRequest &request)
{
    if (!request.scriptPath.empty() && !request.spec.empty())
        throw FormatError("give either a TorchScript architecture or a spec, not both");
    if (!request.scriptPath.empty()) {
        if (!doc.hasStateDict)
            throw FormatError(doc.path + ": the file holds no state dict to load into " + request.scriptPath);
        // LibTorch reads the file when the module is built, and its message for a missing file gives
        // no reason: one that cannot be opened is said so now, for predict and export alike.
        if (std::ifstream f(request.scriptPath, std::ios::binary); !f)
            throw FormatError(request.scriptPath + ": cannot be opened: " + std::strerror(errno));
        Architecture a;
        a.source = Architecture::Source::ScriptArchitecture;
        a.exact = true;
        a.scriptPath = request.scriptPath;
        a.weights = doc.stateDict;
        // What the input is, read from the architecture file as for a TorchScript file on its own
        // (an Embedding first: integer indices; a convolution: an image); the weights' file may
        // state the size. A file that cannot be read here gets its error when LibTorch loads it.
        try {
            const Document script = readDocument(request.scriptPath);
            inferScriptInput(a, script, doc);
            scriptOutput(a, script);
            // Only a hint for shaping rows and reading pictures: the file still runs as written,
            // and what it computes is exact, so nothing is listed as assumed.
            a.assumptions.clear();
        } catch (const std::exception &) {
        }
        return a;
    }
    if (!request.spec.empty()) {
        // Every complaint names the file whose weights the spec was checked against.
        auto named = [&doc](const std::string &what) {
            if (what.starts_with(doc.path + ":"))
                return FormatError(what);
            return FormatError(doc.path + ": " + (what.starts_with("architecture spec") ? what : "architecture spec: " + what));
        };
        json spec;
        try {
            spec = json::parse(request.spec);
        } catch (const std::exception &e) {
            throw named(std::string("architecture spec is not valid JSON: ") + e.what());
        }
        try {
            return architectureFromSpec(doc, spec, Architecture::Source::Spec);
        } catch (const FormatError &e) {
            throw named(e.what());
        }
    }
    if (doc.format == ContainerFormat::TorchScript || doc.kind == DocumentKind::ScriptModule) {
        Architecture a;
        a.source = Architecture::Source::TorchScript;
        a.exact = true;  // it runs as it is; only the input shape is guessed, and said so
        a.scriptPath = doc.path;
        a.weights = doc.stateDict;
        inferScriptInput(a, doc, doc);
        scriptOutput(a, doc);
        return a;
    }
    if (doc.hasStateDict && doc.stateDictSource == "module_tree") {
        ValuePtr module = doc.stateDictPath.empty() ? doc.root : findPath(doc.root, doc.stateDictPath);
        if (!module || !isModule(*module))
            throw FormatError(doc.path + ": the module tree could not be found");
        Architecture a;
        a.source = Architecture::Source::ModuleTree;
        a.weights = doc.stateDict;
        std::unordered_set<const Value *> searched;
        if (auto found = findSequenceLayer(*module, "", 0, searched))
            throw FormatError(sequenceLayerMessage(doc.path, *found));
        std::unordered_set<const Value *> seen;
        try {
            a.root = layerFromModule(*module, "", "", seen, 0, a.assumptions);
        } catch (const FormatError &e) {
            throw FormatError(doc.path + ": " + e.what());
        }
        a.exact = a.assumptions.empty();
        finish(a, doc);
        forwardWarnings(a);
        return a;
    }
    if (doc.hasStateDict && doc.root && doc.root->isDict())
        if (auto spec = doc.root->get("architecture"); spec && (spec->isSequence() || spec->isDict())) {
            std::size_t budget = kMaxSpecNodes;
            nlohmann::ordered_json written;
            try {
                written = specJson(spec, budget);
            } catch (const FormatError &e) {
                throw FormatError(doc.path + ": " + e.what());
            }
            return architectureFromSpec(doc, written, Architecture::Source::PackageSpec);
        }
    if (!doc.hasStateDict)
        throw FormatError(doc.path + ": the file holds no weights to run");
    std::string why;
    auto spec = inferMlpSpec(doc, request.activation, &why);
    if (!spec)
        if (auto found = findSequenceWeights(doc))
            throw FormatError(sequenceLayerMessage(doc.path, *found));
    if (!spec)
        throw FormatError(doc.path + ": a state dict alone does not say its architecture, and it is not a chain of "
                                     "Linear layers (" + why + "): give a TorchScript file of the model (--arch) or "
                                     "a spec (--arch-spec)");
    Architecture a = architectureFromSpec(doc, *spec, Architecture::Source::InferredMlp);
    // What the spec route assumed about a given spec does not apply; what it said of the names does.
    std::erase_if(a.assumptions, [](const std::string &s) { return !s.starts_with("the file's tensors are one module's own"); });
    std::string chain;
    std::vector<std::string> norms;
    for (const Layer *l : leavesInOrder(a.root))
        if (l->type == "Linear") {
            chain += (chain.empty() ? std::to_string(l->options["in_features"].get<std::int64_t>()) : "") + " -> " +
                     std::to_string(l->options["out_features"].get<std::int64_t>());
        } else if (l->type == "BatchNorm1d" || l->type == "LayerNorm") {
            chain += " (" + l->type + ")";
            norms.push_back(l->type + " " + l->path);
        }
    a.assumptions.push_back("a chain of Linear layers read from the weight shapes: " + chain);
    if (namesSortedByContainer(doc))
        a.assumptions.push_back("the layers run in the natural order of their names (2 before 10): a " +
                                formatName(doc.format) + " file does not keep the order the model registered them in");
    if (!norms.empty()) {
        std::string list;
        for (const auto &n : norms)
            list += (list.empty() ? "" : ", ") + n;
        a.assumptions.push_back(list + (norms.size() == 1 ? " uses" : " use") +
                                " PyTorch's default eps 1e-5 (a state dict does not store it)");
    }
    a.assumptions.push_back(request.activation == "none"
                                ? std::string("no activation between the layers (chosen; the weights cannot tell)")
                                : "activation " + activationLayer(request.activation) +
                                      (norms.empty() ? std::string(" between the layers")
                                                     : std::string(" between the layers, after a layer's norm")) +
                                      " (chosen; the weights cannot tell), none after the last");
    return a;
}

} // namespace

Architecture resolveArchitecture(const Document &doc, const ArchitectureRequest &request)
{
    // A model pruned with torch.nn.utils.prune runs as its unpruned architecture does, with each
    // pruned parameter X computed from X_orig and X_mask (a TorchScript file runs as it is).
    const bool script = doc.format == ContainerFormat::TorchScript || doc.kind == DocumentKind::ScriptModule;
    const auto pruned = doc.hasStateDict && !script ? prunedParameters(doc.stateDict) : std::vector<PrunedParameter>{};
    if (pruned.empty())
        return resolveUnpruned(doc, request);
    Document view = doc;
    view.stateDict = effectiveNames(doc.stateDict);
    Architecture a = resolveUnpruned(view, request);
    for (const auto &p : pruned)
        a.masks.push_back({p.name, doc.stateDict[p.mask].value});
    return a;
}

bool takesInput(const Architecture &arch, const std::vector<std::int64_t> &sample)
{
    if (arch.root.type.empty())
        return true;  // TorchScript: only running it tells
    Shape trial{1};
    trial.insert(trial.end(), sample.begin(), sample.end());
    try {
        propagate(arch.root, trial);
        return true;
    } catch (const FormatError &) {
        return false;
    }
}

} // namespace ckpt
