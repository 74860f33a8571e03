#include "inferencemeta.h"

#include "dtypecast.h"
#include "metadata.h"
#include "pythonrepr.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <utility>

namespace ckpt {

namespace {

// One element of a dense tensor's storage as a double; false for types that are not plain numbers.
bool elementAt(const std::uint8_t *p, DType t, double &out)
{
    auto load = [p]<class T>(T) {
        T v;
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    switch (t) {
    case DType::Float64: out = load(double{}); return true;
    case DType::Float32: out = load(float{}); return true;
    case DType::Float16: out = halfBitsToFloat(load(std::uint16_t{})); return true;
    case DType::BFloat16: out = bfloat16BitsToFloat(load(std::uint16_t{})); return true;
    case DType::Int64: out = static_cast<double>(load(std::int64_t{})); return true;
    case DType::Int32: out = load(std::int32_t{}); return true;
    case DType::Int16: out = load(std::int16_t{}); return true;
    case DType::Int8: out = load(std::int8_t{}); return true;
    case DType::UInt8: out = load(std::uint8_t{}); return true;
    case DType::Bool: out = load(std::uint8_t{}) != 0; return true;
    default: return false;
    }
}

// The numbers of a small tensor (or numpy array) whose sizes are all 1 but one: [3], [3, 1, 1],
// [1, 3]; what torch.tensor(mean).view(3, 1, 1) and train_data.mean(axis=0) give. Empty otherwise.
std::vector<double> tensorNumbers(const TensorRef &r)
{
    constexpr std::int64_t kMaxValues = 1 << 16;
    if (r.layout != TensorRef::Layout::Strided || r.quantization || !r.storage || !r.problem.empty() ||
        r.shape.size() != r.strides.size())
        return {};
    std::int64_t count = 1, stride = 0;
    for (std::size_t i = 0; i < r.shape.size(); ++i)
        if (r.shape[i] != 1) {
            if (count != 1)
                return {};  // two dimensions of more than one value: not a vector
            count = r.shape[i];
            stride = r.strides[i];
        }
    std::int64_t extent = 0;
    if (count < 1 || count > kMaxValues || !r.extentElements(extent) || !r.fitsStorage(extent))
        return {};
    const std::size_t size = dtypeSize(r.dtype);
    const auto bytes = r.storage->hold();
    std::vector<double> out;
    for (std::int64_t i = 0; i < count; ++i) {
        const auto at = static_cast<std::size_t>(r.storageOffset + i * stride) * size;
        double v = 0;
        if (at + size > bytes.size() || !elementAt(bytes.data() + at, r.dtype, v))
            return {};
        out.push_back(v);
    }
    return out;
}

// Numbers of a list or tuple (ints, floats or bools), a number, or a small tensor or numpy
// array; empty when it is something else.
std::vector<double> numbers(const ValuePtr &v)
{
    std::vector<double> out;
    if (!v)
        return out;
    if (v->kind() == Value::Kind::Float || v->kind() == Value::Kind::Int)
        return {v->kind() == Value::Kind::Float ? v->asFloat() : static_cast<double>(v->asInt())};
    if (v->isTensor() && v->tensorRef())
        return vectorTensorNumbers(*v->tensorRef());  // empty when unreadable: said as a problem
    if (!v->isSequence())
        return out;
    for (const auto &item : v->items()) {
        if (!item)
            return {};
        if (item->kind() == Value::Kind::Float)
            out.push_back(item->asFloat());
        else if (item->kind() == Value::Kind::Int || item->kind() == Value::Kind::Bool)
            out.push_back(static_cast<double>(item->asInt()));
        else
            return {};
    }
    return out;
}

// What the names of one list may take in all. A pickle can name one long string many times
// through its memo: copied per name, a 200 KB file asked for 100 GB. Real class and feature names
// take a few megabytes at most.
constexpr std::size_t kMaxNameBytes = std::size_t(64) << 20;

struct NameBytes {
    std::size_t spent = 0;
    bool spend(const std::string &name) { return (spent += name.size() + 1) <= kMaxNameBytes; }
};

// The strings of a list; empty unless each item is one (and they fit kMaxNameBytes).
std::vector<std::string> strings(const ValuePtr &v)
{
    std::vector<std::string> out;
    if (!v || !v->isSequence())
        return out;
    NameBytes budget;
    for (const auto &item : v->items()) {
        if (!item || !item->isString() || !budget.spend(item->text()))
            return {};
        out.push_back(item->text());
    }
    return out;
}

// A root entry of the file (a dict), else of its safetensors __metadata__, else of its sidecar.
ValuePtr lookup(const Document &doc, const std::string &key, bool *fromSidecar = nullptr)
{
    if (doc.root && doc.root->isDict())
        if (auto v = doc.root->get(key); v && !v->isNone()) {
            if (fromSidecar)
                *fromSidecar = false;
            return v;
        }
    if (auto v = formatMetadataValue(doc, key); v && !v->isNone() && !v->isString()) {  // text it could not decode: look on
        if (fromSidecar)
            *fromSidecar = false;
        return v;
    }
    if (doc.sidecar && doc.sidecar->isDict())
        if (auto v = doc.sidecar->get(key); v && !v->isNone()) {
            if (fromSidecar)
                *fromSidecar = true;
            return v;
        }
    return nullptr;
}

} // namespace

namespace {

// Why a mean/std pair found under `where` cannot normalise; empty when it can.
std::string preprocessingProblem(const std::string &where, const ValuePtr &meanValue, const ValuePtr &stdValue,
                                 const Preprocessing &p)
{
    auto describe = [](const char *what, const ValuePtr &v, const std::vector<double> &n) -> std::string {
        if (!v || v->isNone())
            return std::string(what) + " is missing";
        if (n.empty())
            return std::string(what) + " is not a list of numbers (" + v->typeName() + ")";
        return {};
    };
    std::string why = describe("mean", meanValue, p.mean);
    if (why.empty())
        why = describe("std", stdValue, p.std);
    if (why.empty() && p.mean.size() != p.std.size())
        why = "mean and std differ in length (" + std::to_string(p.mean.size()) + " and " + std::to_string(p.std.size()) + ")";
    if (why.empty() && std::any_of(p.std.begin(), p.std.end(), [](double s) { return !(s != 0) || !std::isfinite(s); }))
        why = "std holds zero or a non-finite value";
    return why.empty() ? why : where + ": " + why;
}

} // namespace

Preprocessing preprocessingOf(const Document &doc)
{
    Preprocessing found;
    bool sidecar = false;
    auto consider = [&found](Preprocessing p, const std::string &where, const ValuePtr &mean, const ValuePtr &std) {
        // One value against several broadcasts, as (x - mean) / std does in torch.
        if (p.mean.size() == 1 && p.std.size() > 1)
            p.mean.assign(p.std.size(), p.mean[0]);
        else if (p.std.size() == 1 && p.mean.size() > 1)
            p.std.assign(p.mean.size(), p.std[0]);
        p.problem = preprocessingProblem(where, mean, std, p);
        if (p.problem.empty())
            return p;
        if (found.problem.empty())
            found.problem = p.problem + "; inputs are not normalised";
        return Preprocessing{};
    };
    // A mean/std pair as found, named by where it was.
    auto pair = [&consider, &sidecar](const ValuePtr &m, const ValuePtr &s, const char *keys) {
        Preprocessing p;
        p.mean = numbers(m);
        p.std = numbers(s);
        p.source = std::string(sidecar ? "sidecar " : "") + keys;
        return consider(p, p.source, m, s);
    };
    if (auto m = lookup(doc, "input_mean", &sidecar)) {
        if (auto ok = pair(m, lookup(doc, "input_std"), "input_mean/input_std"); ok.present())
            return ok;
    } else if (auto s = lookup(doc, "input_std", &sidecar)) {
        consider(Preprocessing{}, std::string(sidecar ? "sidecar " : "") + "input_mean/input_std", nullptr, s);
    }
    // {'model': m, 'classes': [...], 'mean': [...], 'std': [...]}: a package's own top-level pair.
    // Both must be there: a lone 'mean' at the root may be some statistic of the run.
    if (auto m = lookup(doc, "mean", &sidecar)) {
        if (const auto s = lookup(doc, "std"))
            if (auto ok = pair(m, s, "mean/std"); ok.present())
                return ok;
    }
    for (const char *key : {"preprocessing", "normalization", "normalize"}) {
        auto v = lookup(doc, key, &sidecar);
        if (!v || !v->isDict() || (!v->get("mean") && !v->get("std")))
            continue;
        Preprocessing p;
        p.mean = numbers(v->get("mean"));
        p.std = numbers(v->get("std"));
        p.source = std::string(sidecar ? "sidecar " : "") + key;
        if (auto ok = consider(p, p.source, v->get("mean"), v->get("std")); ok.present())
            return ok;
    }
    Preprocessing none;
    none.problem = found.problem;
    return none;
}

namespace {

// A short rendering of an entry for a note, as Python prints it: 256, 'bicubic', [224, 224], True.
// pythonRepr's limits bound it whatever the file holds (a list holding itself, shared sub-lists).
std::string shortText(const ValuePtr &v)
{
    if (!v)
        return "None";
    ReprLimits limits;
    limits.maxChars = 60;
    limits.maxItems = 4;
    limits.maxDepth = 3;
    return pythonRepr(*v, limits);
}

// One size or two ([h, w]) of positive whole numbers no picture exceeds; empty otherwise.
std::vector<std::int64_t> sizes(const ValuePtr &v)
{
    constexpr std::int64_t kMax = 1 << 16;
    std::vector<std::int64_t> out;
    if (v && v->kind() == Value::Kind::Int) {
        out.push_back(v->asInt());
    } else if (v && v->isSequence() && (v->items().size() == 1 || v->items().size() == 2)) {
        for (const auto &item : v->items()) {
            if (!item || item->kind() != Value::Kind::Int)
                return {};
            out.push_back(item->asInt());
        }
    }
    if (std::any_of(out.begin(), out.end(), [](std::int64_t n) { return n < 1 || n > kMax; }))
        return {};
    return out;
}

// The PIL filter an interpolation setting names, as torchvision and timm write it: PIL's ints
// (0 NEAREST, 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX, 5 HAMMING, which torchvision's Resize
// also takes), a name in any case ('bicubic', 'BICUBIC'), with the enum's prefix
// ('InterpolationMode.BICUBIC', 'Image.BICUBIC', 'Resampling.BICUBIC'), or the pickled enum itself
// (torchvision's InterpolationMode.BICUBIC, PIL's Resampling.BICUBIC). Nullopt for anything else.
std::optional<ResampleFilter> filterSetting(const ValuePtr &v, int depth = 0)
{
    if (!v)
        return std::nullopt;
    if (v->kind() == Value::Kind::Int) {
        if (v->asInt() < 0 || v->asInt() > 5)
            return std::nullopt;
        return static_cast<ResampleFilter>(v->asInt());
    }
    if (v->kind() == Value::Kind::Object && depth == 0) {
        const ValuePtr &cls = v->objectClass();
        const ValuePtr &args = v->args();
        auto isEnum = [](const ValuePtr &c) {
            return c && c->kind() == Value::Kind::Global && (c->name() == "InterpolationMode" || c->name() == "Resampling");
        };
        if (!cls || cls->kind() != Value::Kind::Global || !args || !args->isSequence())
            return std::nullopt;
        // Python before 3.11 pickles an enum member as its class called with its value
        // (InterpolationMode('bicubic'), Resampling(3)); 3.11 as getattr(class, 'BICUBIC').
        if (isEnum(cls) && args->items().size() == 1)
            return filterSetting(args->items()[0], depth + 1);
        if (cls->qualifiedName() == "builtins.getattr" && args->items().size() == 2 && isEnum(args->items()[0]))
            return filterSetting(args->items()[1], depth + 1);
        return std::nullopt;
    }
    if (!v->isString())
        return std::nullopt;
    std::string t = v->text();
    for (auto &c : t)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char *prefix : {"torchvision.transforms.interpolationmode.", "interpolationmode.", "pil.image.resampling.",
                               "image.resampling.", "resampling.", "pil.image.", "image."})
        if (t.rfind(prefix, 0) == 0) {
            t = t.substr(std::strlen(prefix));
            break;
        }
    // torchvision's NEAREST_EXACT is PIL's NEAREST on a PIL image; PIL's ANTIALIAS is LANCZOS.
    static const std::pair<const char *, ResampleFilter> kNames[] = {
        {"nearest", ResampleFilter::Nearest},      {"nearest-exact", ResampleFilter::Nearest},
        {"nearest_exact", ResampleFilter::Nearest}, {"bilinear", ResampleFilter::Bilinear},
        {"linear", ResampleFilter::Bilinear},      {"bicubic", ResampleFilter::Bicubic},
        {"box", ResampleFilter::Box},              {"hamming", ResampleFilter::Hamming},
        {"lanczos", ResampleFilter::Lanczos},      {"antialias", ResampleFilter::Lanczos}};
    for (const auto &[name, filter] : kNames)
        if (t == name)
            return filter;
    return std::nullopt;
}

} // namespace

ImagePreprocessing imagePreprocessingOf(const Document &doc)
{
    ImagePreprocessing out;
    const ValuePtr pre = lookup(doc, "preprocessing");
    const ValuePtr config = lookup(doc, "model_config");
    // The first place that names the step wins: preprocessing, the root, model_config.
    auto find = [&](std::initializer_list<const char *> keys, std::vector<std::int64_t> &into, std::string &where) {
        struct Place {
            ValuePtr dict;
            std::string name;
        };
        for (const Place &place : {Place{pre, "preprocessing."}, Place{nullptr, ""}, Place{config, "model_config."}})
            for (const char *key : keys) {
                ValuePtr v;
                if (place.name.empty())
                    v = lookup(doc, key);
                else if (place.dict && place.dict->isDict())
                    v = place.dict->get(key);
                if (!v || v->isNone())
                    continue;
                if (!into.empty()) {  // a second one: said, not applied
                    out.notApplied.push_back(place.name + key + " " + shortText(v) + " (" + where + " is used)");
                    continue;
                }
                into = sizes(v);
                if (into.empty())
                    out.notApplied.push_back(place.name + key + " " + shortText(v) +
                                             " (not one size or [height, width] of whole numbers)");
                else
                    where = place.name + key;
            }
    };
    find({"resize", "resize_size"}, out.resize, out.resizeKey);
    find({"crop_size", "center_crop", "crop"}, out.crop, out.cropKey);
    if (out.crop.size() == 1)
        out.crop.push_back(out.crop[0]);
    // The resampling filter, from the same places in the same order (timm's pretrained_cfg keeps
    // 'interpolation' next to its sizes); one that names no PIL filter is said, and the next place
    // is read, as for the sizes; bilinear runs when none names one.
    std::vector<std::string> unknownFilters;
    for (const auto &[dict, name] : {std::pair{pre, std::string("preprocessing.")}, std::pair{ValuePtr{}, std::string()},
                                     std::pair{config, std::string("model_config.")}}) {
        ValuePtr v;
        if (name.empty())
            v = lookup(doc, "interpolation");
        else if (dict && dict->isDict())
            v = dict->get("interpolation");
        if (!v || v->isNone())
            continue;
        if (!out.filterKey.empty()) {
            out.notApplied.push_back(name + "interpolation " + shortText(v) + " (" + out.filterKey + " is used)");
            continue;
        }
        if (const auto f = filterSetting(v)) {
            out.filter = *f;
            out.filterKey = name + "interpolation";
        } else {
            unknownFilters.push_back(name + "interpolation " + shortText(v));
        }
    }
    for (const std::string &u : unknownFilters)
        out.notApplied.push_back(u + " (no PIL filter of that name: " +
                                 (out.filterKey.empty() ? std::string("images are resized with PIL's bilinear filter")
                                                        : out.filterKey + " is used") +
                                 ")");
    // The rest of the preprocessing entry: what runs is listed above; anything else is said.
    if (pre && pre->isDict())
        for (const auto &e : pre->entries()) {
            if (!e.key || !e.key->isString())
                continue;
            const std::string &k = e.key->text();
            static const char *const kHandled[] = {"mean",   "std",         "resize",     "resize_size", "crop_size",
                                                   "center_crop", "crop",   "image_size", "input_size",  "input_shape",
                                                   "antialias"};
            if (std::find_if(std::begin(kHandled), std::end(kHandled), [&k](const char *h) { return k == h; }) !=
                std::end(kHandled))
                continue;
            if (k == "interpolation")  // said above
                continue;
            // A step switched off (grayscale: False, to_bgr: None) does nothing: not worth a word.
            if (!e.value || e.value->isNone() || (e.value->kind() == Value::Kind::Bool && !e.value->asBool()))
                continue;
            out.notApplied.push_back("preprocessing." + k + " " + shortText(e.value));
        }
    return out;
}

std::vector<std::string> classNamesOf(const Document &doc)
{
    for (const char *key : {"class_names", "classes", "labels", "names"}) {
        auto v = lookup(doc, key);
        if (auto names = strings(v); !names.empty())
            return names;
        // YOLO-style {0: "person", 1: "bicycle"} under "names".
        if (v && v->isDict() && !v->entries().empty()) {
            std::map<std::int64_t, std::string> byIndex;
            NameBytes budget;
            for (const auto &e : v->entries())
                if (e.key && e.key->isInt() && e.value && e.value->isString() && budget.spend(e.value->text()))
                    byIndex[e.key->asInt()] = e.value->text();
            if (byIndex.size() == v->entries().size() && byIndex.begin()->first == 0 &&
                byIndex.rbegin()->first == static_cast<std::int64_t>(byIndex.size()) - 1) {
                std::vector<std::string> out;
                for (auto &[i, name] : byIndex)
                    out.push_back(name);
                return out;
            }
        }
    }
    // {index: name} or {name: index}; indices must cover 0..n-1 exactly.
    for (const char *key : {"idx_to_class", "class_to_idx"}) {
        auto v = lookup(doc, key);
        if (!v || !v->isDict() || v->entries().empty() || v->entries().size() > 1'000'000)
            continue;
        const bool inverted = std::string(key) == "class_to_idx";
        std::vector<std::string> out(v->entries().size());
        std::vector<bool> filled(out.size(), false);
        NameBytes budget;
        bool ok = true;
        for (const auto &e : v->entries()) {
            const ValuePtr &index = inverted ? e.value : e.key;
            const ValuePtr &name = inverted ? e.key : e.value;
            std::int64_t i = -1;
            if (index && index->isInt())
                i = index->asInt();
            else if (index && index->isString())  // JSON sidecars have string keys
                try {
                    i = std::stoll(index->text());
                } catch (...) {
                    i = -1;
                }
            if (i < 0 || i >= static_cast<std::int64_t>(out.size()) || filled[static_cast<std::size_t>(i)] || !name ||
                !name->isString() || !budget.spend(name->text())) {
                ok = false;
                break;
            }
            out[static_cast<std::size_t>(i)] = name->text();
            filled[static_cast<std::size_t>(i)] = true;
        }
        if (ok)
            return out;
    }
    return {};
}

std::vector<double> vectorTensorNumbers(const TensorRef &tensor)
{
    try {
        return tensorNumbers(tensor);
    } catch (const std::exception &) {
        return {};
    }
}

std::vector<std::string> featureNamesOf(const Document &doc)
{
    for (const char *key : {"feature_names", "features", "input_names", "columns"})
        if (auto names = strings(lookup(doc, key)); !names.empty())
            return names;
    return {};
}

} // namespace ckpt
