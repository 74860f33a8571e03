#pragma once

// Python-like repr of a value tree, for comparing what the pickle machine built with what
// Python's own unpickler would show. Test helper only.
#include "tensorref.h"
#include "value.h"

#include <string>

inline std::string pyRepr(const ckpt::ValuePtr &v, int depth = 0)
{
    using K = ckpt::Value::Kind;
    if (!v)
        return "<null>";
    if (depth > 50)
        return "...";
    auto seq = [&](const std::string &open, const std::string &close, bool tuple1) {
        std::string s = open;
        for (std::size_t i = 0; i < v->items().size(); ++i)
            s += (i ? ", " : "") + pyRepr(v->items()[i], depth + 1);
        if (tuple1 && v->items().size() == 1)
            s += ",";
        return s + close;
    };
    switch (v->kind()) {
    case K::None: return "None";
    case K::Bool: return v->asBool() ? "True" : "False";
    case K::Int: return std::to_string(v->asInt());
    case K::BigInt: return v->text();
    case K::Float: return ckpt::formatFloat(v->asFloat());
    case K::Complex: return "(" + ckpt::formatFloat(v->asFloat()) + "+" + ckpt::formatFloat(v->imag()) + "j)";
    case K::String: return (v->pythonClass().empty() ? "" : v->pythonClass() + ":") + "'" + v->text() + "'";
    case K::Bytes: {
        std::string s = v->pythonClass().empty() ? "b'" : "bytearray(b'";
        for (unsigned char c : v->text()) {
            if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
                s += static_cast<char>(c);
            } else {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", c);
                s += buf;
            }
        }
        return s + (v->pythonClass().empty() ? "'" : "')");
    }
    case K::Tuple: return (v->pythonClass().empty() ? "" : v->pythonClass()) + seq("(", ")", v->pythonClass().empty());
    case K::List: return seq("[", "]", false);
    case K::Set: return "{" + seq("", "", false) + "}";
    case K::FrozenSet: return "frozenset({" + seq("", "", false) + "})";
    case K::Dict: {
        std::string s = v->pythonClass().empty() ? "{" : v->pythonClass() + "({";
        for (std::size_t i = 0; i < v->entries().size(); ++i)
            s += (i ? ", " : "") + pyRepr(v->entries()[i].key, depth + 1) + ": " +
                 pyRepr(v->entries()[i].value, depth + 1);
        s += v->pythonClass().empty() ? "}" : "})";
        if (v->state())
            s += " state=" + pyRepr(v->state(), depth + 1);
        return s;
    }
    case K::Global: return "<global " + v->qualifiedName() + ">";
    case K::Object: {
        std::string s = "<object " + (v->objectClass() ? pyRepr(v->objectClass(), depth + 1) : "?") + " args=" +
                        pyRepr(v->args(), depth + 1);
        if (v->state())
            s += " state=" + pyRepr(v->state(), depth + 1);
        if (!v->items().empty()) {
            s += " items=[";
            for (std::size_t i = 0; i < v->items().size(); ++i)
                s += (i ? ", " : "") + pyRepr(v->items()[i], depth + 1);
            s += "]";
        }
        if (!v->entries().empty()) {
            s += " dict={";
            for (std::size_t i = 0; i < v->entries().size(); ++i)
                s += (i ? ", " : "") + pyRepr(v->entries()[i].key, depth + 1) + ": " +
                     pyRepr(v->entries()[i].value, depth + 1);
            s += "}";
        }
        return s + ">";
    }
    case K::Tensor: {
        const auto &t = *v->tensorRef();
        return std::string(t.isParameter ? "<parameter " : "<tensor ") + std::string(ckpt::dtypeName(t.dtype)) + " " +
               ckpt::shapeText(t.shape) + " storage=" + (t.storage ? t.storage->key : "?") +
               " offset=" + std::to_string(t.storageOffset) + " strides=" + ckpt::shapeText(t.strides) +
               (t.requiresGrad ? " grad" : "") + ">";
    }
    case K::Storage: return "<storage " + v->storageRef()->key + ">";
    }
    return "?";
}
