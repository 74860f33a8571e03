#include "security.h"

#include "error.h"
#include "picklemachine.h"
#include "valuetree.h"

#include <unordered_set>

#include <algorithm>
#include <array>
#include <string_view>

namespace ckpt {

namespace {

// Modules whose callables execute code, spawn processes, touch files or the network, or load
// further code. Matched by module prefix ("os" matches "os.path" too).
constexpr std::array<std::string_view, 40> kDangerousModules{
    "os", "posix", "nt", "subprocess", "sys", "socket", "runpy", "pty", "shutil", "ctypes", "pickle", "_pickle",
    "cPickle", "dill", "marshal", "importlib", "imp", "pkgutil", "webbrowser", "venv", "code", "codeop", "commands",
    "multiprocessing", "signal", "asyncio", "http", "urllib", "urllib2", "requests", "ftplib", "telnetlib",
    "smtplib", "xmlrpc", "tempfile", "glob", "zipimport", "torch.hub", "numpy.testing", "_posixsubprocess",
};

// Single callables that are dangerous although their module is not.
constexpr std::array<std::string_view, 24> kDangerousNames{
    "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr", "builtins.setattr",
    "builtins.delattr", "builtins.__import__", "builtins.open", "builtins.breakpoint", "builtins.input",
    "builtins.globals", "builtins.locals", "builtins.vars", "builtins.help", "operator.attrgetter",
    "operator.methodcaller", "operator.itemgetter", "functools.partial", "functools.reduce",
    "torch.load", "torch.serialization.load", "torch.jit.load", "numpy.load", "torch._C._jit_load",
};

// What this reader interprets as data.
constexpr std::array<std::string_view, 39> kUnderstood{
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "datetime.datetime", "datetime.date",
    "datetime.time", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch.serialization._get_layout",
    "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
    "torch._tensor._rebuild_from_type", "torch.Size", "torch.device", "torch.torch_version.TorchVersion",
    "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.bytearray",
    "copyreg._reconstructor", "torch.nn.parameter.Parameter", "torch.Tensor", "torch.autograd.variable.Variable",
    "builtins.object", "torch.UntypedStorage", "torch.storage.UntypedStorage",
};

// What torch.load(weights_only=True) accepts (PyTorch's allow-list of plain containers, tensors,
// parameters, dtypes, torch.Size, OrderedDict and the tensor rebuild functions).
constexpr std::array<std::string_view, 19> kWeightsOnly{
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_meta_tensor_no_storage",
    "torch._utils._rebuild_nested_tensor", "torch._utils._rebuild_qtensor", "torch._tensor._rebuild_from_type_v2",
    "torch.Size", "torch.Tensor", "torch.nn.parameter.Parameter", "_codecs.encode", "torch.device",
    "torch.serialization._get_layout", "torch.UntypedStorage", "torch.storage.UntypedStorage", "builtins.set",
};

bool moduleMatches(std::string_view module, std::string_view prefix)
{
    return module == prefix || (module.starts_with(prefix) && module.size() > prefix.size() && module[prefix.size()] == '.');
}

bool isStorageOrDtype(const GlobalUse &g)
{
    if (g.module != "torch" && g.module != "torch.cuda")
        return false;
    const std::string_view n = g.qualname;
    if (n.ends_with("Storage"))
        return true;
    static constexpr std::array<std::string_view, 28> dtypes{
        "float16", "float32", "float64", "bfloat16", "half", "float", "double", "int8", "int16", "int32",
        "int64", "uint8", "bool", "long", "int", "short", "complex32", "complex64", "complex128", "chalf", "cfloat",
        "cdouble", "qint8", "quint8", "qint32", "quint4x2", "quint2x4", "strided"};
    return std::find(dtypes.begin(), dtypes.end(), n) != dtypes.end() || n.starts_with("per_tensor") ||
           n.starts_with("per_channel") || n.starts_with("float8") || n.starts_with("uint") || n == "sparse_coo";
}

template <std::size_t N> bool contains(const std::array<std::string_view, N> &list, std::string_view s)
{
    return std::find(list.begin(), list.end(), s) != list.end();
}

} // namespace

std::string globalClassName(GlobalClass c)
{
    switch (c) {
    case GlobalClass::Understood: return "understood";
    case GlobalClass::Unknown: return "unknown";
    case GlobalClass::Dangerous: return "dangerous";
    }
    return "?";
}

GlobalVerdict classifyGlobal(const GlobalUse &use)
{
    GlobalVerdict v;
    v.use = use;
    const std::string &name = use.name;
    v.weightsOnlyAllowed = contains(kWeightsOnly, name) || isStorageOrDtype(use);
    if (use.qualname.find('.') != std::string::npos) {
        v.cls = GlobalClass::Dangerous;
        v.reason = "a dotted name makes Python follow attributes (" + use.qualname + ")";
        v.weightsOnlyAllowed = false;
        return v;
    }
    for (auto m : kDangerousModules)
        if (moduleMatches(use.module, m)) {
            v.cls = GlobalClass::Dangerous;
            v.reason = "module '" + use.module + "' can run commands, load code or reach files and the network";
            return v;
        }
    if (contains(kDangerousNames, name)) {
        v.cls = GlobalClass::Dangerous;
        v.reason = name + " can execute code or reach arbitrary objects";
        return v;
    }
    if (contains(kUnderstood, name) || isStorageOrDtype(use) || use.module.starts_with("torch.nn.modules.") ||
        use.module == "torch.jit._pickle") {
        v.cls = GlobalClass::Understood;
        return v;
    }
    v.cls = GlobalClass::Unknown;
    return v;
}

namespace {
// Pickles handed to pickle.loads inside the file: their globals run too when Python loads it.
void scanNestedPickles(const ValuePtr &root, std::vector<GlobalUse> &found, std::vector<std::string> &anomalies,
                       int level)
{
    if (!root || level > 3)
        return;
    std::unordered_set<const Value *> seen;
    std::vector<ValuePtr> stack{root};
    while (!stack.empty()) {
        ValuePtr v = std::move(stack.back());
        stack.pop_back();
        if (!v || !seen.insert(v.get()).second)
            continue;
        const std::string cls = className(*v);
        if ((cls == "pickle.loads" || cls == "_pickle.loads" || cls == "cPickle.loads" || cls == "dill.loads") &&
            v->args() && v->args()->isSequence() && !v->args()->items().empty() &&
            v->args()->items()[0]->kind() == Value::Kind::Bytes) {
            const auto &bytes = v->args()->items()[0]->text();
            PickleMachine inner;
            inner.setPersistentLoad([](const ValuePtr &, std::uint64_t) { return Value::none(); });
            try {
                auto r = inner.run({reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()});
                for (auto g : inner.globals()) {
                    g.name += " (in a pickle passed to " + cls + ")";
                    found.push_back(std::move(g));
                }
                scanNestedPickles(r.value, found, anomalies, level + 1);
            } catch (const FormatError &e) {
                anomalies.push_back("a pickle passed to " + cls + " does not read: " + e.what());
                for (auto g : inner.globals()) {
                    g.name += " (in a pickle passed to " + cls + ")";
                    found.push_back(std::move(g));
                }
            }
        }
        for (auto &c : childrenOf(*v))
            stack.push_back(std::move(c.value));
    }
}
} // namespace

SecurityReport securityReport(const Document &doc)
{
    SecurityReport r;
    r.anomalies = doc.anomalies;
    std::vector<GlobalUse> globals = doc.globals;
    scanNestedPickles(doc.root, globals, r.anomalies, 0);
    for (const auto &g : globals) {
        auto v = classifyGlobal(g);
        if (v.cls == GlobalClass::Dangerous)
            r.dangerous = true;
        if (!v.weightsOnlyAllowed) {
            r.weightsOnlyLoadable = false;
            r.weightsOnlyBlockers.push_back(g.name);
        }
        r.globals.push_back(std::move(v));
    }
    // TorchScript archives are loaded with torch.jit.load, never with torch.load.
    if (doc.format == ContainerFormat::TorchScript) {
        r.weightsOnlyLoadable = false;
        r.weightsOnlyBlockers.push_back("(a TorchScript archive: torch.jit.load, not torch.load)");
    }
    return r;
}

} // namespace ckpt
