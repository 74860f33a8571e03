#include "keyalign.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace ckpt {

std::vector<std::string> splitDots(const std::string &name)
{
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (;;) {
        const auto dot = name.find('.', start);
        parts.push_back(name.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos)
            return parts;
        start = dot + 1;
    }
}

const std::vector<std::string> &knownKeyPrefixes()
{
    static const std::vector<std::string> prefixes{"module.", "_orig_mod.", "model."};
    return prefixes;
}

bool isAveragedModelCounter(std::string_view name) { return name == "n_averaged"; }

std::size_t averagedModelCounter(const std::vector<std::string> &names)
{
    if (names.size() < 2)
        return std::string::npos;
    std::size_t counter = std::string::npos;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (isAveragedModelCounter(names[i]) && counter == std::string::npos)
            counter = i;
        else if (!names[i].starts_with("module."))
            return std::string::npos;
    }
    return counter;
}

namespace {

// commonWrapperPrefix over every name but the one at `skip` (npos: all of them).
std::string wrapperPrefix(const std::vector<std::string> &names, std::size_t skip)
{
    const std::size_t first = skip == 0 ? 1 : 0;
    if (names.size() <= first)
        return {};
    // Peel one known prefix at a time while every name carries it (DDP around a compiled model).
    // Each step compares only the next few bytes of each name, from where the last one ended:
    // a name of "module." repeated is linear, not quadratic.
    std::size_t at = 0;
    for (bool peeled = true; peeled;) {
        peeled = false;
        for (const auto &p : knownKeyPrefixes()) {
            bool all = true;
            for (std::size_t i = 0; i < names.size() && all; ++i)
                all = i == skip || (names[i].size() > at + p.size() && names[i].compare(at, p.size(), p) == 0);
            if (all) {
                at += p.size();
                peeled = true;
                break;
            }
        }
    }
    return names[first].substr(0, at);
}

} // namespace

std::string commonWrapperPrefix(const std::vector<std::string> &names)
{
    return wrapperPrefix(names, averagedModelCounter(names));
}

std::string naturalKey(std::string_view text)
{
    std::string key;
    key.reserve(text.size() + 16);
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] >= '0' && text[i] <= '9') {
            std::size_t j = i;
            while (j < text.size() && text[j] >= '0' && text[j] <= '9')
                ++j;
            if (j - i < 20)
                key.append(20 - (j - i), '0');
            key.append(text.substr(i, j - i));
            i = j;
        } else {
            const char ch = text[i++];
            key += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
        }
    }
    return key;
}

KeyMapping parseKeyMapping(const std::string &text)
{
    const auto eq = text.find('=');
    if (eq == std::string::npos)
        throw std::invalid_argument("a key mapping is OLD=NEW, got '" + text + "'");
    return {text.substr(0, eq), text.substr(eq + 1)};
}

KeyAlignment alignKeys(const std::vector<std::string> &a, const std::vector<std::string> &b,
                       const std::vector<KeyMapping> &mappings)
{
    KeyAlignment out;
    std::vector<std::string> renamed = a;
    for (auto &n : renamed)
        for (const auto &m : mappings)
            if (n.compare(0, m.from.size(), m.from) == 0) {
                n = m.to + n.substr(m.from.size());
                break;
            }
    // A mapping that gives two of a's names the same name would pair one of them at random with b's:
    // refused, naming both.
    if (!mappings.empty()) {
        std::unordered_map<std::string_view, std::size_t> seen;
        for (std::size_t i = 0; i < renamed.size(); ++i)
            if (auto [it, fresh] = seen.emplace(renamed[i], i); !fresh)
                throw std::invalid_argument("the key mapping gives " + a[it->second] + " and " + a[i] +
                                            " the same name, " + renamed[i] + ": give mappings that keep names apart");
    }
    // AveragedModel's counter is found among the names as saved: a mapping may take the "module."
    // off the others.
    const std::size_t counterA = averagedModelCounter(a), counterB = averagedModelCounter(b);
    const auto pairUp = [&](std::string prefixA, std::string prefixB) {
        KeyAlignment al;
        // A prefix both sides share is part of the names, not a wrapper difference.
        if (prefixA == prefixB)
            prefixA.clear(), prefixB.clear();
        al.prefixA = std::move(prefixA);
        al.prefixB = std::move(prefixB);
        // The counter keeps its name: it never carried the prefix.
        auto keyA = [&](std::size_t i) { return i == counterA ? renamed[i] : renamed[i].substr(al.prefixA.size()); };
        auto keyB = [&](std::size_t j) { return j == counterB ? b[j] : b[j].substr(al.prefixB.size()); };
        std::unordered_map<std::string, std::size_t> inB;
        for (std::size_t j = 0; j < b.size(); ++j)
            inB.emplace(keyB(j), j);
        std::vector<bool> matchedB(b.size(), false);
        for (std::size_t i = 0; i < renamed.size(); ++i) {
            auto it = inB.find(keyA(i));
            if (it != inB.end() && !matchedB[it->second]) {
                al.pairs.emplace_back(i, it->second);
                matchedB[it->second] = true;
            } else {
                (i == counterA ? al.wrapperA : al.onlyA).push_back(i);
            }
        }
        for (std::size_t j = 0; j < b.size(); ++j)
            if (!matchedB[j])
                (j == counterB ? al.wrapperB : al.onlyB).push_back(j);
        return al;
    };
    out = pairUp(wrapperPrefix(renamed, counterA), wrapperPrefix(b, counterB));
    // A prefix every name of one side carries is not always a wrapper: a Hugging Face model's
    // "model.layers.0…" keys all start with "model." when the tied lm_head.weight was left out of
    // that file, and the other file, which keeps it, has no common prefix. Stripping is kept only
    // when it pairs at least as many names as the names as they are.
    if (!out.prefixA.empty() || !out.prefixB.empty()) {
        KeyAlignment asTheyAre = pairUp({}, {});
        if (asTheyAre.pairs.size() > out.pairs.size())
            out = std::move(asTheyAre);
    }
    return out;
}

} // namespace ckpt
