#include "inferencemeta.h"

#include "metadata.h"

#include <algorithm>
#include <map>

namespace ckpt {

namespace {

// Numbers of a list or tuple (ints, floats or bools); empty when any item is something else.
std::vector<double> numbers(const ValuePtr &v)
{
    std::vector<double> out;
    if (!v)
        return out;
    if (v->kind() == Value::Kind::Float || v->kind() == Value::Kind::Int)
        return {v->kind() == Value::Kind::Float ? v->asFloat() : static_cast<double>(v->asInt())};
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

std::vector<std::string> strings(const ValuePtr &v)
{
    std::vector<std::string> out;
    if (!v || !v->isSequence())
        return out;
    for (const auto &item : v->items()) {
        if (!item || !item->isString())
            return {};
        out.push_back(item->text());
    }
    return out;
}

// A root entry of the file (a dict), else of its sidecar.
ValuePtr lookup(const Document &doc, const std::string &key, bool *fromSidecar = nullptr)
{
    if (doc.root && doc.root->isDict())
        if (auto v = doc.root->get(key); v && !v->isNone()) {
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

Preprocessing preprocessingOf(const Document &doc)
{
    Preprocessing p;
    bool sidecar = false;
    if (auto m = lookup(doc, "input_mean", &sidecar)) {
        p.mean = numbers(m);
        p.std = numbers(lookup(doc, "input_std"));
        p.source = std::string(sidecar ? "sidecar " : "") + "input_mean/input_std";
        if (p.present())
            return p;
    }
    for (const char *key : {"preprocessing", "normalization", "normalize"}) {
        auto v = lookup(doc, key, &sidecar);
        if (!v || !v->isDict())
            continue;
        p.mean = numbers(v->get("mean"));
        p.std = numbers(v->get("std"));
        p.source = std::string(sidecar ? "sidecar " : "") + key;
        if (p.present())
            return p;
    }
    return {};
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
            for (const auto &e : v->entries())
                if (e.key && e.key->isInt() && e.value && e.value->isString())
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
                !name->isString()) {
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

std::vector<std::string> featureNamesOf(const Document &doc)
{
    for (const char *key : {"feature_names", "features", "input_names", "columns"})
        if (auto names = strings(lookup(doc, key)); !names.empty())
            return names;
    return {};
}

} // namespace ckpt
