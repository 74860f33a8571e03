#include "security.h"

#include "dtype.h"
#include "error.h"
#include "mappedfile.h"
#include "picklemachine.h"
#include "pythonnames.h"
#include "valuetree.h"

#include <unordered_map>
#include <unordered_set>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string_view>

namespace ckpt {

namespace {

// Modules whose callables execute code, spawn processes, touch files or the network, or load
// further code. Matched by module prefix ("os" matches "os.path" too).
constexpr std::string_view kDangerousModules[]{
    // processes, the interpreter, code loading
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "runpy", "pty", "ctypes", "_ctypes", "signal",
    "importlib", "imp", "pkgutil", "zipimport", "site", "code", "codeop", "commands", "venv", "ensurepip",
    "distutils", "setuptools", "idlelib", "lib2to3", "_osx_support", "_aix_support", "multiprocessing",
    "concurrent", "asyncio",
    // debuggers and profilers: each runs a string of code (pdb.run, timeit.timeit, cProfile.run ...)
    "bdb", "pdb", "pydoc", "timeit", "cProfile", "profile", "trace", "doctest",
    // nested pickles and other loaders of objects
    "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve",
    // files and archives
    "shutil", "tempfile", "glob", "fileinput", "linecache", "dbm", "sqlite3", "gzip", "bz2", "lzma", "zipfile",
    "tarfile", "logging.config",
    // the network
    "socket", "socketserver", "ssl", "http", "httplib", "httplib2", "urllib", "urllib2", "urllib3", "requests",
    "aiohttp", "ftplib", "telnetlib", "smtplib", "smtpd", "imaplib", "poplib", "nntplib", "xmlrpc", "wsgiref",
    "webbrowser", "mailcap", "pipes",
    // IPython's magics, NumPy's and PyTorch's own code runners and loaders
    "IPython", "numpy.testing", "numpy.f2py", "numpy.distutils", "numpy.ctypeslib", "torch.hub", "torch.package",
    "torch.utils.collect_env", "torch.utils.cpp_extension", "torch.jit.unsupported_tensor_ops",
    "torch.fx.graph_module", "torch.distributed", "torch._dynamo", "torch._inductor",
    // PyTorch's modules whose classes (not only functions) start processes, open sockets, write
    // files or run code when made: torch.multiprocessing.Pool, torch.distributed.TCPStore and
    // FileStore, torch.utils.tensorboard.SummaryWriter, torch.utils.benchmark.Timer's code.
    "torch.multiprocessing", "torch.utils.tensorboard", "torch.utils.benchmark", "torch.utils.bottleneck",
    "torch.utils.model_zoo", "torch.testing", "torch.onnx", "torch.backends._nnapi",
    "torch.utils.data.communication",  // SpawnProcessForDataPipeline: a function named like a class
    "torch.library",  // torch.library.Library registers operator kernels for the whole session
    // package installers: installing a package runs its build code
    "pip", "pkg_resources", "conda",
};

// Attribute names that, wherever they appear, are a module object rather than a class or a
// function: modules import these under their own name or an underscore alias ("import os as _os").
// A global that resolves to a module hands the module itself to the pickle, which can then
// overwrite what it holds (BUILD sets torch.os.zz = 5 on the live os module; SETITEM on
// builtins.__dict__ replaces a builtin) for every later line of code in that Python session.
// Names that are also common function or class names (socket.socket, glob.glob, code) are left
// out: a user's function called `trace` is not a module.
constexpr std::string_view kModuleAliases[]{
    "os", "_os", "sys", "_sys", "posix", "_posix", "nt", "_nt", "posixpath", "ntpath", "subprocess", "_subprocess",
    "_posixsubprocess", "pickle", "_pickle", "cPickle", "builtins", "_builtins", "__builtin__", "importlib",
    "_importlib", "_imp", "imp", "runpy", "ctypes", "_ctypes", "shutil", "_shutil", "marshal", "_socket",
    "multiprocessing", "tempfile", "_tempfile", "zipfile", "tarfile", "urllib", "urllib2", "urllib3", "requests",
    "webbrowser", "dill", "cloudpickle", "joblib", "pip", "setuptools", "distutils", "pkg_resources", "torch",
    "_torch", "numpy", "np", "_np",
    // torch.nn._reduction, imported under a class-like name by torch.nn.functional and torch.nn.modules.loss.
    "_Reduction",
};

// PyTorch's submodules: torch.hub, torch._utils and the others named as an attribute of torch.
constexpr std::string_view kTorchSubmodules[]{
    "_C", "_utils", "_tensor", "_ops", "_jit_internal", "_weights_only_unpickler", "serialization", "storage",
    "nn", "jit", "hub", "package", "utils", "autograd", "cuda", "fx", "ops", "classes", "distributed",
    "multiprocessing", "library", "overrides", "backends", "optim", "onnx", "_dynamo", "_inductor",
};

// Single callables that are dangerous although their module is not.
constexpr std::string_view kDangerousNames[]{
    "builtins.eval", "builtins.exec", "builtins.execfile", "builtins.compile", "builtins.getattr",
    "builtins.setattr", "builtins.delattr", "builtins.__import__", "builtins.open", "builtins.file",
    "builtins.breakpoint", "builtins.input", "builtins.globals", "builtins.locals", "builtins.vars", "builtins.help",
    "builtins.apply", "builtins.reload", "io.open", "io.open_code", "io.FileIO", "_io.open", "_io.open_code",
    "_io.FileIO", "codecs.open", "types.CodeType", "types.FunctionType", "types.LambdaType", "operator.attrgetter",
    "operator.methodcaller", "operator.itemgetter", "operator.call", "functools.partial", "functools.reduce",
    "_operator.attrgetter", "_operator.methodcaller", "_operator.itemgetter", "_operator.call", "_functools.partial",
    "_functools.reduce",
    "platform.popen", "yaml.load", "yaml.unsafe_load", "yaml.full_load", "pandas.read_pickle",
    "pandas.io.pickle.read_pickle", "numpy.load", "numpy.lib.npyio.load", "torch.load", "torch.serialization.load",
    "torch.serialization._load", "torch.storage._load_from_bytes", "torch.jit.load", "torch._C._jit_load",
    "torch.ops.load_library", "torch.classes.load_library",
};

// What this reader interprets as data.
constexpr std::string_view kUnderstood[]{
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "datetime.datetime", "datetime.date",
    "datetime.time", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePosixPath",
    "torch._utils._rebuild_qtensor", "torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch.serialization._get_layout",
    "collections.OrderedDict", "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
    "torch._tensor._rebuild_from_type", "torch.Size", "torch.device", "torch.torch_version.TorchVersion",
    "_codecs.encode", "builtins.set", "builtins.frozenset", "builtins.complex", "builtins.bytearray",
    "copyreg._reconstructor", "torch.nn.parameter.Parameter", "torch.Tensor", "torch.autograd.variable.Variable",
    "builtins.object", "torch.UntypedStorage", "torch.storage.UntypedStorage",
    // The standard library's plain attribute holder (the args= of nearly every training script): Python
    // imports argparse, which runs nothing, and unpickling only sets the saved attributes.
    "argparse.Namespace",
};

// What PyTorch 2.6's torch.load(weights_only=True), the default since 2.6, accepts
// (torch/_weights_only_unpickler.py, _get_allowed_globals): containers, tensors, parameters,
// torch.Size and torch.device, the tensor rebuild functions; with the storage and tensor classes,
// dtypes and quantization schemes matched below.
constexpr std::string_view kWeightsOnly[]{
    "collections.OrderedDict", "collections.Counter", "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout", "torch.Size", "torch.Tensor", "torch.device", "_codecs.encode",
    "builtins.bytearray", "builtins.set", "builtins.complex", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._utils._rebuild_qtensor", "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3", "torch._utils._rebuild_sparse_tensor",
    "torch._utils._rebuild_meta_tensor_no_storage", "torch._utils._rebuild_nested_tensor",
    "torch._utils._rebuild_wrapper_subclass", "torch._utils._rebuild_device_tensor_from_numpy",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor", "torch._tensor._rebuild_from_type_v2",
    "torch.storage.TypedStorage", "torch.storage.UntypedStorage", "torch.per_tensor_affine",
    "torch.per_tensor_symmetric", "torch.per_channel_affine", "torch.per_channel_symmetric",
    "torch.per_channel_affine_float_qparams",
};

// dtypes as str(dtype) names them ("torch.float32"): what the weights-only reader accepts. Other
// spellings (torch.half, torch.long) are aliases this reader understands but PyTorch's does not list.
constexpr std::string_view kDtypeNames[]{
    "float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "bool", "complex32", "complex64", "complex128", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz", "bits8", "bits16", "bits1x8", "bits2x4",
    "bits4x2",
};
constexpr std::string_view kDtypeAliases[]{
    "half", "float", "double", "long", "int", "short", "chalf", "cfloat", "cdouble", "strided", "sparse_coo",
};

// Memory formats and layouts: constants (torch.channels_last), as dtypes are.
constexpr std::string_view kTorchFormats[]{
    "contiguous_format", "channels_last", "channels_last_3d", "preserve_format", "sparse_csr", "sparse_csc",
    "sparse_bsr", "sparse_bsc", "_mkldnn",
};

// Callables of the standard library, NumPy and PyTorch that this reader does not interpret but knows
// to be harmless whatever the file passes them: they build a value and touch nothing outside it
// (containers, numbers, dates, typing's markers, NumPy's scalar types). Shown as unknown, as a class
// of the user's code is. Every other callable of those libraries is dangerous (classifyGlobal).
constexpr std::string_view kKnownHarmless[]{
    "builtins.list", "builtins.dict", "builtins.tuple", "builtins.int", "builtins.float", "builtins.str",
    "builtins.bytes", "builtins.bool", "builtins.slice", "builtins.range", "builtins.Ellipsis",
    "builtins.NotImplemented", "collections.Counter", "collections.defaultdict", "collections.deque",
    "collections.ChainMap", "datetime.timedelta", "datetime.timezone", "decimal.Decimal", "fractions.Fraction",
    "uuid.UUID", "zoneinfo.ZoneInfo", "types.SimpleNamespace", "io.BytesIO", "io.StringIO", "_io.BytesIO",
    "_io.StringIO", "array.array", "array._array_reconstructor",
    "copyreg.__newobj__", "copyreg.__newobj_ex__",
    // typing's markers as omegaconf and dataclass configs pickle them (Dict[str, int] is
    // operator.getitem(typing.Dict, (str, int))): calling one only makes a type annotation.
    "operator.getitem", "_operator.getitem", "typing.Any", "typing.Optional", "typing.Union", "typing.List",
    "typing.Dict", "typing.Tuple", "typing.Set", "typing.Callable", "typing.Type", "typing.Sequence",
    "typing.Mapping",
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer", "numpy.ma.core._mareconstruct",
    "numpy.ma.core.MaskedArray", "numpy.bool_", "numpy.int8", "numpy.int16", "numpy.int32", "numpy.int64",
    "numpy.uint8", "numpy.uint16", "numpy.uint32", "numpy.uint64", "numpy.float16", "numpy.float32",
    "numpy.float64", "numpy.longdouble", "numpy.complex64", "numpy.complex128", "numpy.str_", "numpy.bytes_",
    // NumPy's random generators (a RandomState or Generator kept for resuming): each makes the bit
    // generator NumPy knows by the name given, and calls only a constructor the file names itself.
    "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__bit_generator_ctor",
    // Old full-model pickles (torch 0.3-0.4) hold these as module attributes.
    "torch.nn.backends.thnn._get_thnn_function_backend", "torch.get_default_dtype", "torch.get_default_device",
};

// Activation functions a module keeps as an attribute (TransformerEncoderLayer's activation is
// torch.nn.functional.relu; F.gelu is torch._C._nn.gelu): arithmetic on the tensors they are given.
constexpr std::string_view kActivationModules[]{"torch", "torch.nn.functional", "torch._C._nn", "torch.special"};
constexpr std::string_view kActivations[]{
    "relu", "relu6", "gelu", "silu", "mish", "elu", "selu", "celu", "leaky_relu", "hardtanh", "hardswish",
    "hardsigmoid", "sigmoid", "tanh", "softplus", "softsign", "softmax", "log_softmax", "logsigmoid", "tanhshrink",
    "glu", "prelu", "rrelu", "expit", "logit",
};

// The opcodes PyTorch 2.6's weights-only reader interprets; any other stops it ("Unsupported
// operand"), whatever the globals: FRAME and SHORT_BINUNICODE of protocol 4, protocol 0-1's text opcodes.
constexpr std::string_view kWeightsOnlyOpcodes[]{
    "APPEND", "APPENDS", "BINFLOAT", "BINGET", "BININT", "BININT1", "BININT2", "BINPERSID", "BINPUT",
    "BINUNICODE", "BUILD", "EMPTY_DICT", "EMPTY_LIST", "EMPTY_SET", "EMPTY_TUPLE", "GLOBAL", "LONG1",
    "LONG_BINGET", "LONG_BINPUT", "MARK", "NEWFALSE", "NEWOBJ", "NEWTRUE", "NONE", "PROTO", "REDUCE", "SETITEM",
    "SETITEMS", "SHORT_BINSTRING", "STOP", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3",
};

template <typename List> bool contains(const List &list, std::string_view s)
{
    return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

bool moduleMatches(std::string_view module, std::string_view prefix)
{
    return module == prefix || (module.starts_with(prefix) && module.size() > prefix.size() && module[prefix.size()] == '.');
}

// Storage classes ("torch.FloatStorage", "torch.cuda.HalfStorage") and the legacy tensor types
// ("torch.FloatTensor", "torch.cuda.sparse.LongTensor"), as torch._storage_classes and
// torch._tensor_classes name them.
bool isStorageOrTensorClass(const GlobalUse &g)
{
    const std::string_view n = g.qualname;
    if (g.module == "torch" || g.module == "torch.cuda")
        return (n.ends_with("Storage") || n.ends_with("Tensor")) && n != "Tensor";
    return (g.module == "torch.sparse" || g.module == "torch.cuda.sparse") && n.ends_with("Tensor");
}

bool isDtype(const GlobalUse &g) { return g.module == "torch" && contains(kDtypeNames, g.qualname); }

// dtype aliases, layouts and quantization schemes: constants this reader understands.
bool isTorchConstant(const GlobalUse &g)
{
    const std::string_view n = g.qualname;
    return g.module == "torch" && (contains(kDtypeAliases, n) || contains(kTorchFormats, n) || n.starts_with("per_tensor") ||
                                   n.starts_with("per_channel"));
}

// Python's own machinery named as a global: a module's namespace (builtins.__dict__), its
// builtins, a class's internals. Two dunder names are ordinary pickle reconstructors.
bool isDunder(std::string_view n)
{
    return n.size() > 4 && n.starts_with("__") && n.ends_with("__") && n != "__newobj__" && n != "__newobj_ex__";
}

// The library a global's module belongs to, when it is one whose callables this reader judges by an
// allow-list: Python's standard library (its Python 2 names too), NumPy, PyTorch.
enum class Library { Other, Stdlib, Numpy, Torch };
Library libraryOf(std::string_view module)
{
    const std::string_view top = module.substr(0, module.find('.'));
    if (top == "torch")
        return Library::Torch;
    if (top == "numpy")
        return Library::Numpy;
    if (std::binary_search(std::begin(pynames::kStdlibModules), std::end(pynames::kStdlibModules), top))
        return Library::Stdlib;
    return Library::Other;
}

// A name spelled as a class (CamelCase, PEP 8): an upper-case first letter after any leading
// underscores, and a lower-case letter somewhere (Linear, _Real, BatchNorm1d); or an acronym of three
// or more capitals and digits without a leading underscore (LSTM, GRU, GELU: torch.nn's layers).
// Function names (relu, load_url) and module aliases (F, dist, functools, _VF) are not.
bool looksLikeClass(std::string_view n)
{
    const auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
    const auto lower = [](char c) { return c >= 'a' && c <= 'z'; };
    const auto start = n.find_first_not_of('_');
    if (start == std::string_view::npos || !upper(n[start]))
        return false;
    if (std::any_of(n.begin() + static_cast<std::ptrdiff_t>(start), n.end(), lower))
        return true;
    return start == 0 && n.size() >= 3 &&
           std::all_of(n.begin(), n.end(), [&](char c) { return upper(c) || (c >= '0' && c <= '9'); });
}

// builtins' exception classes (ValueError, UserWarning, SystemExit): calling one only makes the exception.
bool isBuiltinException(const GlobalUse &g)
{
    const std::string_view n = g.qualname;
    return g.module == "builtins" && looksLikeClass(n) &&
           (n.ends_with("Error") || n.ends_with("Exception") || n.ends_with("Warning") || n.ends_with("Exit") ||
            n == "KeyboardInterrupt" || n == "StopIteration" || n == "StopAsyncIteration");
}

} // namespace

std::string globalClassName(GlobalClass c)
{
    switch (c) {
    case GlobalClass::Understood: return "understood";
    case GlobalClass::Unknown: return "unknown";
    case GlobalClass::Lookup: return "attribute lookup";
    case GlobalClass::Dangerous: return "dangerous";
    }
    return "?";
}

GlobalVerdict classifyGlobal(const GlobalUse &use)
{
    GlobalVerdict v;
    v.use = use;
    const std::string &name = use.name;
    v.weightsOnlyAllowed = contains(kWeightsOnly, name) || isStorageOrTensorClass(use) || isDtype(use);
    if (use.module == kComputedName) {
        v.cls = GlobalClass::Dangerous;
        v.reason = "its module and name are computed when Python loads the file: any function can be reached";
        v.weightsOnlyAllowed = false;
        return v;
    }
    if (use.qualname.find('.') != std::string::npos) {
        v.cls = GlobalClass::Dangerous;
        v.reason = "a dotted name makes Python follow attributes (" + use.qualname + ")";
        v.weightsOnlyAllowed = false;
        return v;
    }
    const std::string &qual = use.qualname;
    if (isDunder(qual)) {
        v.cls = GlobalClass::Dangerous;
        v.reason = use.module + "." + qual + " is Python's internal machinery (a module's namespace, its builtins or a "
                   "class's internals), not a class or function: loading the file can read or change it";
        v.weightsOnlyAllowed = false;
        return v;
    }
    bool moduleObject = contains(kModuleAliases, qual) || (use.module == "torch" && contains(kTorchSubmodules, qual));
    // torch + hub: the dangerous module torch.hub itself (torch.hub.load is judged by its module below).
    moduleObject = moduleObject || contains(kDangerousModules, use.module + "." + qual);
    if (moduleObject) {
        v.cls = GlobalClass::Dangerous;
        v.reason = use.module + "." + qual + " is a module, not a class or function: loading the file can change "
                   "what that module holds for the rest of that Python session";
        v.weightsOnlyAllowed = false;
        return v;
    }
    for (auto m : kDangerousModules)
        if (moduleMatches(use.module, m)) {
            v.cls = GlobalClass::Dangerous;
            v.reason = "module '" + use.module + "' can run commands, load code or reach files and the network";
            return v;
        }
    // By module and name: a global found in a nested pickle carries a note in its display name.
    if (const std::string full = use.module + "." + qual; contains(kDangerousNames, full)) {
        v.cls = GlobalClass::Dangerous;
        v.reason = full + " can execute code or reach arbitrary objects";
        return v;
    }
    const Library library = libraryOf(use.module);
    // torch.nn's layers, by class name only: torch.nn.modules.activation.F is torch.nn.functional
    // itself, torch.nn.modules.module.functools a module (see the allow-list rule below).
    const bool torchClass = library == Library::Torch && looksLikeClass(qual);
    const std::string full = use.module + "." + qual;
    if (contains(kUnderstood, full) || isStorageOrTensorClass(use) || isDtype(use) || isTorchConstant(use) ||
        (use.module.starts_with("torch.nn.modules.") && torchClass) || use.module == "torch.jit._pickle") {
        v.cls = GlobalClass::Understood;
        return v;
    }
    v.cls = GlobalClass::Unknown;
    // The standard library, NumPy and PyTorch hold thousands of functions that run commands, load code,
    // or open files and sockets when called (uuid._get_command_stdout, dataclasses._create_fn,
    // torch.from_file, numpy.memmap, logging.FileHandler): a list of dangerous ones cannot be complete.
    // So a global of those libraries is dangerous unless this reader knows it to be harmless: what it
    // interprets (above), what it lists as harmless, what torch.load(weights_only=True) accepts, and
    // PyTorch's classes. A full pickled model names PyTorch's classes (torch.nn.modules.linear.Linear,
    // torch.optim.adam.Adam, torch.distributions.normal.Normal, torch.nn.utils.weight_norm.WeightNorm);
    // they are told apart by their CamelCase names from PyTorch's functions and the modules imported
    // under a short name (F, dist), which stay dangerous. PyTorch's modules whose classes act when made
    // (torch.distributed, torch.multiprocessing ...) are dangerous whole (kDangerousModules, above).
    // Globals of other modules (the author's __main__.Net, transformers' classes) stay unknown: Python
    // imports that code, which this reader cannot judge.
    const bool weightsOnly = contains(kWeightsOnly, full) || isStorageOrTensorClass(use) || isDtype(use);
    if (library == Library::Other || torchClass || weightsOnly || contains(kKnownHarmless, full) ||
        isBuiltinException(use) || (contains(kActivationModules, use.module) && contains(kActivations, qual)) ||
        (use.module == "torch._utils" && qual.starts_with("_rebuild_")) ||
        // A full model keeps the init function it was built with (torch.nn.init.xavier_uniform_): each
        // fills the tensor it is given. Only the functions torch.nn.init defines (pythonnames.h, from
        // torch): the modules it imports under their own names (math, warnings, torch) stay dangerous.
        (use.module == "torch.nn.init" && std::binary_search(std::begin(pynames::kTorchNnInitFunctions),
                                                             std::end(pynames::kTorchNnInitFunctions), qual)) ||
        // torch.max's (values, indices) and the like: named tuples.
        use.module == "torch.return_types")
        return v;
    v.cls = GlobalClass::Dangerous;
    switch (library) {
    case Library::Stdlib:
        v.reason = full + " is a function of the standard library that this tool does not know to be safe: Python "
                   "would call it";
        break;
    case Library::Numpy:
        v.reason = full + " is a function of NumPy that this tool does not know to be safe: Python would call it";
        break;
    default:
        v.reason = full + " is a function or a module of PyTorch (not a class) that this tool does not know to be "
                   "safe: Python would call it, or hand the module to the file";
        break;
    }
    return v;
}

namespace {
// Pickles handed to pickle.loads inside the file: their globals run too when Python loads it.
// What the pickles handed to pickle.loads built, kept alive for the getattr check: their arenas
// (every value each made), results and opcodes.
struct NestedPickles {
    std::vector<std::shared_ptr<ValueArena>> arenas;
    std::vector<ValuePtr> roots;
    std::vector<OpcodeUse> opcodes;
};

void scanNestedPickles(const ValuePtr &root, std::vector<GlobalUse> &found, std::vector<std::string> &anomalies,
                       NestedPickles &nested, int level)
{
    if (!root || level > 3)
        return;
    std::unordered_set<const Value *> seen;
    // Each pickle read once: the memo can hand one bytes value to any number of pickle.loads calls,
    // and _codecs.encode make any number of copies of one (each read would have room to copy again).
    std::unordered_set<const Value *> read;
    std::unordered_set<std::string_view> readText;  // views into values `root` holds
    std::vector<ValuePtr> stack{root};
    while (!stack.empty()) {
        ValuePtr v = std::move(stack.back());
        stack.pop_back();
        if (!v || !seen.insert(v.get()).second)
            continue;
        if (v->kind() != Value::Kind::Object) {
            // Only an object can be a call to pickle.loads; only containers hold one.
            for (auto &c : childrenOf(*v, ChildLabels::Deferred))
                if (c.value && c.value->isContainer())
                    stack.push_back(std::move(c.value));
            continue;
        }
        const std::string cls = className(*v);
        if ((cls == "pickle.loads" || cls == "_pickle.loads" || cls == "cPickle.loads" || cls == "dill.loads") &&
            v->args() && v->args()->isSequence() && !v->args()->items().empty() &&
            v->args()->items()[0]->kind() == Value::Kind::Bytes && read.insert(v->args()->items()[0].get()).second &&
            readText.insert(v->args()->items()[0]->text()).second) {
            const auto &bytes = v->args()->items()[0]->text();
            PickleMachine inner;
            inner.setPersistentLoad([](const ValuePtr &, std::uint64_t) { return Value::none(); });
            nested.arenas.push_back(inner.arena());
            try {
                auto r = inner.run({reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()});
                const auto ops = inner.opcodes();
                nested.opcodes.insert(nested.opcodes.end(), ops.begin(), ops.end());
                nested.roots.push_back(r.value);
                for (auto g : inner.globals()) {
                    g.name += " (in a pickle passed to " + cls + ")";
                    found.push_back(std::move(g));
                }
                scanNestedPickles(r.value, found, anomalies, nested, level + 1);
            } catch (const FormatError &e) {
                anomalies.push_back("a pickle passed to " + cls + " does not read: " + e.what());
                for (auto g : inner.globals()) {
                    g.name += " (in a pickle passed to " + cls + ")";
                    found.push_back(std::move(g));
                }
            }
        }
        for (auto &c : childrenOf(*v, ChildLabels::Deferred))
            if (c.value && c.value->isContainer())
                stack.push_back(std::move(c.value));
    }
}

bool isGetattrUse(const GlobalUse &g) { return g.module == "builtins" && g.qualname == "getattr"; }
bool isGetattr(const Value &v)
{
    return v.kind() == Value::Kind::Global && v.text() == "builtins" && v.name() == "getattr";
}

// A name Python reaches as a plain attribute: an ASCII identifier that does not start with '_' (no
// dunder such as __globals__ or __class__, no private helper).
bool isPublicIdentifier(const std::string &s)
{
    const auto letter = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
    return !s.empty() && s.size() <= 256 && letter(s[0]) &&
           std::all_of(s.begin(), s.end(), [&](char c) { return letter(c) || (c >= '0' && c <= '9') || c == '_'; });
}

// How a value holds a child. Data: a dict's key or value, a list's or set's item, the state BUILD
// set (Python puts it into the object's attributes). Call: anything a call receives or is made
// from (a tuple's items: CPython takes a call's arguments only as a tuple; an object's class and
// arguments; items appended or set on an object, which calls its append or __setitem__).
enum class Edge { Data, Call, Class };

template <typename F> void forEachEdge(const Value &v, F &&f)
{
    const auto k = v.kind();
    const Edge items = k == Value::Kind::List || k == Value::Kind::Set || k == Value::Kind::FrozenSet ? Edge::Data
                                                                                                      : Edge::Call;
    for (const auto &c : v.items())
        if (c)
            f(c, items);
    const Edge entries = k == Value::Kind::Dict ? Edge::Data : Edge::Call;
    for (const auto &e : v.entries()) {
        if (e.key)
            f(e.key, entries);
        if (e.value)
            f(e.value, entries);
    }
    if (v.state())
        f(v.state(), Edge::Data);
    if (v.objectClass())
        f(v.objectClass(), Edge::Class);
    if (v.args())
        f(v.args(), Edge::Call);
}

// Python >= 3.11 pickles an enum member as getattr(EnumClass, 'MEMBER'). Such a use only looks a
// value up; it is harmless when nothing the file does calls what was looked up. Empty when every
// getattr call of the file (its pickles' values in `arenas`, their results `roots`) is such a
// lookup; else why one is not. `named`: how often the pickles name builtins.getattr, so that a use
// this reader kept no value for (a pickle read only for its globals) cannot pass unseen.
std::string getattrMisuse(const std::vector<ValuePtr> &roots, const std::vector<std::shared_ptr<ValueArena>> &arenas,
                          std::int64_t named)
{
    // Every value the pickles made, and everything those hold.
    std::unordered_set<const Value *> seen;
    std::vector<const Value *> all, stack;
    const auto visit = [&](const ValuePtr &v) {
        if (v && seen.insert(v.get()).second)
            stack.push_back(v.get());
    };
    for (const auto &a : arenas)
        if (a)
            for (const auto &v : a->values())
                visit(v);
    for (const auto &v : roots)
        visit(v);
    while (!stack.empty()) {
        const Value *v = stack.back();
        stack.pop_back();
        all.push_back(v);
        forEachEdge(*v, [&](const ValuePtr &c, Edge) { visit(c); });
    }

    std::int64_t globalsSeen = 0;
    std::vector<const Value *> calls;
    for (const Value *v : all) {
        globalsSeen += isGetattr(*v);
        if (v->kind() == Value::Kind::Object && v->objectClass() && isGetattr(*v->objectClass()))
            calls.push_back(v);
    }
    if (globalsSeen < named)
        return "builtins.getattr is named where this reader keeps no value to check (a part of the file read only "
               "for its globals, or dropped unused)";
    for (const auto &v : roots)
        if (v && isGetattr(*v))
            return "builtins.getattr itself is what the file holds";

    // Each call: getattr(a global that is not dangerous, 'plain_name'), with nothing built into the result.
    for (const Value *c : calls) {
        const auto &a = c->args();
        if (c->builtByNew() || !a || a->kind() != Value::Kind::Tuple || a->items().size() != 2 || !a->items()[0] ||
            !a->items()[1])
            return "a getattr call does not take exactly a global and a name";
        const Value &target = *a->items()[0];
        const Value &name = *a->items()[1];
        if (target.kind() != Value::Kind::Global)
            return "a getattr call looks up in a " + target.typeName() + ", not in a class or function the file names";
        const GlobalUse use{target.qualifiedName(), 1, 0, target.text(), target.name()};
        if (classifyGlobal(use).cls == GlobalClass::Dangerous)
            return "a getattr call looks up in " + target.qualifiedName() + ", which is dangerous itself";
        if (!name.isString() || !isPublicIdentifier(name.text()))
            return "a getattr call looks up a name that is not a plain public attribute name (" +
                   (name.isString() ? name.text().substr(0, 60) : name.typeName()) + ")";
        if (c->state() || !c->items().empty() || !c->entries().empty())
            return "the file changes what a getattr call returned (a BUILD, appended or set items)";
    }

    // getattr itself appears only as the function of those calls.
    std::unordered_map<const Value *, std::vector<const Value *>> dataParents;  // child -> holders as data
    std::string misuse;
    for (const Value *v : all)
        forEachEdge(*v, [&](const ValuePtr &c, Edge e) {
            if (misuse.empty() && isGetattr(*c) &&
                !(e == Edge::Class && v->kind() == Value::Kind::Object && v->objectClass() == c))
                misuse = "builtins.getattr itself is handed to a call or kept as a value";
            if (e == Edge::Data)
                dataParents[c.get()].push_back(v);
        });
    if (!misuse.empty())
        return misuse;

    // What looked up values sit in: each result and every value holding one as data, however deep.
    std::unordered_set<const Value *> holders(calls.begin(), calls.end());
    std::vector<const Value *> up(calls.begin(), calls.end());
    while (!up.empty()) {
        const Value *v = up.back();
        up.pop_back();
        if (auto it = dataParents.find(v); it != dataParents.end())
            for (const Value *p : it->second)
                if (holders.insert(p).second)
                    up.push_back(p);
    }
    // None of those may be called, be a class, or be handed to a call (as an argument, in a tuple, set or
    // appended on an object).
    for (const Value *v : all)
        forEachEdge(*v, [&](const ValuePtr &c, Edge e) {
            if (misuse.empty() && e != Edge::Data && holders.contains(c.get()))
                misuse = std::string(e == Edge::Class && c->objectClass() && isGetattr(*c->objectClass())
                                         ? "what a getattr call returned is called"
                                         : "what a getattr call returned is handed to a call (in a tuple, as a "
                                           "call's arguments or class, or appended or set on an object)");
        });
    if (!misuse.empty())
        return misuse;

    // ... and each result is kept as data in what the file holds: reachable from a result through dict,
    // list and set contents and objects' attributes only.
    std::unordered_set<const Value *> kept;
    std::vector<const Value *> down;
    for (const auto &v : roots)
        if (v && kept.insert(v.get()).second)
            down.push_back(v.get());
    while (!down.empty()) {
        const Value *v = down.back();
        down.pop_back();
        forEachEdge(*v, [&](const ValuePtr &c, Edge e) {
            if (e == Edge::Data && kept.insert(c.get()).second)
                down.push_back(c.get());
        });
    }
    for (const Value *c : calls)
        if (!kept.contains(c))
            return "what a getattr call returned is not kept as a dict, list or set value or an object's attribute "
                   "in what the file holds";
    return {};
}
} // namespace

SecurityReport globalsReport(const std::vector<GlobalUse> &globals)
{
    SecurityReport r;
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
    return r;
}

// builtins.getattr is dangerous by name; where every call of it in the file only looks up an enum
// member or another plain attribute that nothing calls, it is an attribute lookup instead.
namespace {
void judgeGetattr(const Document &doc, const NestedPickles &nested, SecurityReport &r)
{
    std::int64_t named = 0;
    for (const auto &v : r.globals)
        if (isGetattrUse(v.use))
            named += v.use.count;
    if (named == 0)
        return;
    std::string misuse;
    // NEWOBJ_EX's keyword arguments are not kept where the reader interprets the call: what they hold
    // could be handed to a call unseen.
    for (const auto *ops : {&doc.opcodes, &nested.opcodes})
        for (const auto &o : *ops)
            if (opcodeName(o.op) == "NEWOBJ_EX")
                misuse = "the file uses NEWOBJ_EX, whose keyword arguments this reader does not keep for every call";
    if (misuse.empty()) {
        std::vector<ValuePtr> roots{doc.root, doc.constants};
        roots.insert(roots.end(), nested.roots.begin(), nested.roots.end());
        std::vector<std::shared_ptr<ValueArena>> arenas = doc.arenas;
        arenas.insert(arenas.end(), nested.arenas.begin(), nested.arenas.end());
        misuse = getattrMisuse(roots, arenas, named);
    }
    for (auto &v : r.globals) {
        if (!isGetattrUse(v.use))
            continue;
        if (misuse.empty()) {
            v.cls = GlobalClass::Lookup;
            v.reason = "Python 3.11 and later pickle enum members this way (getattr(Color, 'RED')): here it only "
                       "looks a value up by name in a class the file names, and nothing calls what it finds";
        } else {
            v.reason += "; here it is more than an enum member's lookup: " + misuse;
        }
    }
    r.dangerous = std::any_of(r.globals.begin(), r.globals.end(),
                              [](const GlobalVerdict &v) { return v.cls == GlobalClass::Dangerous; });
}
} // namespace

namespace {
// "1 TiB", "8 GiB", "1.5 MiB", "300 bytes": binary units, one decimal where the figure is not whole.
std::string byteText(std::int64_t b)
{
    static constexpr const char *kUnits[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(b);
    std::size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(kUnits)) {
        v /= 1024;
        ++u;
    }
    const double shown = std::round(v * 10) / 10;
    char text[48];
    std::snprintf(text, sizeof text, "%.*f %s", u == 0 || shown == std::floor(shown) ? 0 : 1, shown, kUnits[u]);
    return text;
}

// The element size of a class torch.load can call with a size and that allocates that many
// elements at once: the typed storages (torch.FloatStorage, torch.cuda.HalfStorage), the legacy
// tensor types (torch.LongTensor(2, 3)), torch.Tensor and TypedStorage (float32, torch's default
// dtype), UntypedStorage (bytes), Python's bytearray and bytes. 0 for anything else. Sparse tensor types allocate nothing.
std::int64_t sizedClassElement(const Value &cls, bool &tensorClass)
{
    const std::string &m = cls.text();
    const std::string &n = cls.name();
    tensorClass = false;
    // bytearray(n) and bytes(n) are n zero bytes (weights_only accepts bytearray).
    if ((m == "builtins" || m == "__builtin__") && (n == "bytearray" || n == "bytes"))
        return 1;
    if (m == "torch.storage" || m == "torch") {
        if (n == "UntypedStorage" || n == "_UntypedStorage")
            return 1;
        if (n == "TypedStorage")
            return 4;
    }
    if (m == "torch" && n == "Tensor") {
        tensorClass = true;
        return 4;
    }
    if (m != "torch" && m != "torch.cuda")
        return 0;
    std::string storage = n;
    if (n.size() > 6 && n.ends_with("Tensor")) {
        tensorClass = true;
        storage = n.substr(0, n.size() - 6) + "Storage";
    } else if (!n.ends_with("Storage")) {
        return 0;
    }
    const auto t = dtypeFromStorageClass(storage);
    return t ? static_cast<std::int64_t>(dtypeSize(*t)) : 0;
}

// A typed storage class by its legacy name (torch.ByteStorage, torch.cuda.HalfStorage): the full
// torch.load of a zip or legacy file reads these names as a StorageType (its find_class), which
// cannot be called or made; the weights-only reader and a bare pickle's load find the class itself.
bool isLegacyStorageName(const Value &cls)
{
    const std::string &n = cls.name();
    return n.ends_with("Storage") && n != "TypedStorage" && n != "UntypedStorage" && n != "_UntypedStorage" &&
           dtypeFromStorageClass(n).has_value();
}

// The element size of a class whose __new__ alone (NEWOBJ, which torch.load(weights_only=False)
// runs and the weights-only reader refuses) allocates its size argument, as torch 1.13 does:
// UntypedStorage, the legacy typed storages (where the class itself is found: a bare pickle),
// torch.Tensor and the legacy tensor types, Python's bytes. TypedStorage.__new__ and
// bytearray.__new__ allocate nothing (their __init__, which NEWOBJ skips, would). 0 otherwise.
std::int64_t newedClassElement(const Value &cls, ContainerFormat format, bool &tensorClass)
{
    const std::string &m = cls.text();
    const std::string &n = cls.name();
    tensorClass = false;
    if ((m == "builtins" || m == "__builtin__") && n == "bytes")
        return 1;
    if (n == "TypedStorage" || (m != "torch" && m != "torch.storage") ||
        (isLegacyStorageName(cls) && format != ContainerFormat::Pickle))
        return 0;
    return sizedClassElement(cls, tensorClass);
}

// What torch.load allocates for sizes the file declares, where that is more than the file holds:
// a REDUCE of a storage or tensor class on integer sizes or a torch.Size (the file's size is the
// measure), a NEWOBJ of a class whose __new__ allocates, and in a legacy stream (torch < 1.6),
// whose storages torch allocates at their declared size before it reads their records and grows
// when a tensor spans past them (its set_ resizes a storage it owns), a storage declared or
// spanned past its record. A storage the pickle makes itself (torch.ByteStorage(1) handed to
// _rebuild_tensor_v2) is grown the same way, in any container. The zip format's storages are the
// records themselves, which torch refuses to resize: nothing to allocate there.
void findLoadAllocations(const Document &doc, SecurityReport &r)
{
    const std::int64_t fileBytes = doc.file ? static_cast<std::int64_t>(doc.file->size()) : 0;
    const auto add = [&r](std::string what, std::int64_t bytes) { r.allocations.push_back({std::move(what), bytes}); };
    std::unordered_map<const StorageRef *, std::pair<std::int64_t, const TensorRef *>> spanned;  // most bytes spanned
    std::vector<const StorageRef *> made;  // storages the pickle makes, in the order first spanned
    std::unordered_map<const void *, const Value *> calls;  // the calls that may make them
    const bool legacy = doc.format == ContainerFormat::Legacy;
    const bool wrapped = legacy || doc.format == ContainerFormat::TorchZip;  // torch.load's own find_class
    for (const auto &arena : doc.arenas) {
        if (!arena)
            continue;
        for (const auto &v : arena->values()) {
            if (v->kind() == Value::Kind::Tensor && v->tensorRef() && v->tensorRef()->storage &&
                v->tensorRef()->layout == TensorRef::Layout::Strided &&
                (legacy || (!v->tensorRef()->storage->resolved && v->tensorRef()->storage->keepAlive))) {
                const TensorRef &t = *v->tensorRef();
                std::int64_t extent = 0, bytes = 0;
                if (t.extentElements(extent) &&
                    !__builtin_mul_overflow(extent, static_cast<std::int64_t>(dtypeSize(t.dtype)), &bytes)) {
                    const auto [it, fresh] = spanned.try_emplace(t.storage.get(), bytes, &t);
                    if (fresh && !t.storage->resolved)
                        made.push_back(t.storage.get());
                    if (bytes > it->second.first)
                        it->second = {bytes, &t};
                }
                continue;
            }
            if (v->kind() != Value::Kind::Object || !v->objectClass() ||
                v->objectClass()->kind() != Value::Kind::Global)
                continue;
            calls.emplace(v.get(), v.get());
            if (!v->args() || v->args()->kind() != Value::Kind::Tuple || v->args()->items().empty())
                continue;
            const Value &cls = *v->objectClass();
            const bool byNew = v->builtByNew();
            bool tensorClass = false;
            const std::int64_t element =
                byNew ? newedClassElement(cls, doc.format, tensorClass) : sizedClassElement(cls, tensorClass);
            const auto *sizes = &v->args()->items();
            // torch.Tensor(torch.Size([a, b])) is torch.Tensor(a, b).
            const Value *size = sizes->size() == 1 ? sizes->front().get() : nullptr;
            const bool torchSize = tensorClass && size && size->kind() == Value::Kind::Tuple &&
                                   size->pythonClass() == "torch.Size";
            if (torchSize)
                sizes = &size->items();
            if (element == 0 || (!tensorClass && sizes->size() != 1) ||
                !std::all_of(sizes->begin(), sizes->end(), [](const ValuePtr &i) { return i && i->isInt() && i->asInt() >= 0; }))
                continue;
            std::int64_t bytes = element;
            std::string list;
            bool overflow = false;
            for (std::size_t i = 0; i < sizes->size(); ++i) {
                overflow = overflow || __builtin_mul_overflow(bytes, (*sizes)[i]->asInt(), &bytes);
                list += (i ? ", " : "") + std::to_string((*sizes)[i]->asInt());
            }
            // Past int64 bytes torch refuses the size rather than allocating it.
            if (overflow || bytes <= fileBytes)
                continue;
            const std::string name = cls.qualifiedName();
            const std::string call = (byNew ? name + ".__new__(" + name + ", " : name + "(") +
                                     (torchSize ? "torch.Size([" + list + "])" : list) + ")";
            const std::string amount = byteText(bytes) + " (" + std::to_string(bytes) + " bytes)";
            const std::string tail = "; the file is " + std::to_string(fileBytes) + " bytes";
            const GlobalUse use{name, 1, 0, cls.text(), cls.name()};
            // torch 1.13's weights-only reader refuses NEWOBJ but on Parameter; later ones run it for
            // the classes they allow.
            if (byNew)
                add(call + " (NEWOBJ) would allocate " + amount + " when loaded with torch.load(weights_only=False)" +
                        (classifyGlobal(use).weightsOnlyAllowed
                             ? ", and with weights_only=True of the releases that make the classes they allow this "
                               "way (torch 1.13's refuses it)"
                             : " (weights_only=True refuses it)") +
                        tail,
                    bytes);
            else if (wrapped && isLegacyStorageName(cls))
                add(call + " would allocate " + amount + " when loaded with torch.load(weights_only=True); a full "
                           "torch.load stops at the call (in this container it reads " + name + " as a storage type, "
                           "which it cannot call)" + tail,
                    bytes);
            else
                add(call + " would allocate " + amount + " when loaded" +
                        (classifyGlobal(use).weightsOnlyAllowed ? ", torch.load(weights_only=True) too" : "") + tail,
                    bytes);
        }
    }
    std::unordered_map<const TensorRef *, const std::string *> names;
    for (const auto *list : {&doc.stateDict, &doc.tensors})
        for (const auto &t : *list)
            if (t.value && t.value->tensorRef())
                names.emplace(t.value->tensorRef().get(), &t.name);
    const auto tensorName = [&names](const TensorRef *t) {
        const auto n = names.find(t);
        return n != names.end() ? "tensor '" + *n->second + "'" : std::string("a tensor");
    };
    if (legacy) {
        for (const auto &[key, storage] : doc.storages) {
            if (!storage || key.find("/view/") != std::string::npos)  // a view's bytes are its root's
                continue;
            const StorageRef &s = *storage;
            const auto size = static_cast<std::int64_t>(dtypeSize(s.dtype));
            const std::int64_t record = s.resolved ? static_cast<std::int64_t>(s.byteSize) : 0;
            std::int64_t declared = 0;
            if (size == 0 || __builtin_mul_overflow(s.declaredNumel, size, &declared))
                continue;
            const std::string tail = ", torch.load(weights_only=True) too; the record holds " + std::to_string(record) +
                                     " bytes";
            if (declared > record)
                add("storage '" + s.key + "' declares " + std::to_string(s.declaredNumel) + " " +
                        std::string(dtypeName(s.dtype)) + " elements: torch.load would allocate " + byteText(declared) +
                        " (" + std::to_string(declared) + " bytes) for it before reading its record" + tail,
                    declared);
            const auto it = spanned.find(storage.get());
            if (it != spanned.end() && it->second.first > std::max(declared, record))
                add(tensorName(it->second.second) + " spans " + std::to_string(it->second.first / size) +
                        " elements of storage '" + s.key + "': torch.load would grow the storage to " +
                        byteText(it->second.first) + " (" + std::to_string(it->second.first) + " bytes) for it" + tail,
                    it->second.first);
        }
    }
    // Storages the pickle makes (picklemachine's madeStorage: the call it holds is one of the file's).
    for (const StorageRef *s : made) {
        const auto call = s->keepAlive ? calls.find(s->keepAlive.get()) : calls.end();
        if (call == calls.end())
            continue;
        const auto size = static_cast<std::int64_t>(dtypeSize(s->dtype));
        const auto &[bytes, tensor] = spanned.at(s);
        std::int64_t declared = 0;
        if (size == 0 || __builtin_mul_overflow(s->declaredNumel, size, &declared) ||
            bytes <= std::max(declared, fileBytes))
            continue;
        // Where torch.load reads the class as a StorageType, only the weights-only reader makes the storage.
        const bool full = !(wrapped && isLegacyStorageName(*call->second->objectClass()));
        add(tensorName(tensor) + " spans " + std::to_string(bytes / size) + " elements of the storage the pickle makes " +
                "by calling " + s->key + ", which is not in the file: torch.load" +
                (full ? "" : "(weights_only=True)") + " would grow it to " + byteText(bytes) + " (" +
                std::to_string(bytes) + " bytes)" +
                (full ? ", torch.load(weights_only=True) too"
                      : "; a full torch.load stops at the call (in this container it reads " +
                            call->second->objectClass()->qualifiedName() + " as a storage type, which it cannot call)") +
                "; the file is " + std::to_string(fileBytes) + " bytes",
            bytes);
    }
    // As anomalies, the largest first; a file that asks many times is summed after the first few.
    std::stable_sort(r.allocations.begin(), r.allocations.end(),
                     [](const LoadAllocation &a, const LoadAllocation &b) { return a.bytes > b.bytes; });
    constexpr std::size_t kListed = 8;
    std::int64_t rest = 0;
    for (std::size_t i = 0; i < r.allocations.size(); ++i)
        if (i < kListed)
            r.anomalies.push_back(r.allocations[i].what);
        else if (__builtin_add_overflow(rest, r.allocations[i].bytes, &rest))
            rest = std::numeric_limits<std::int64_t>::max();
    if (r.allocations.size() > kListed)
        r.anomalies.push_back(std::to_string(r.allocations.size() - kListed) + " more allocations like these, " +
                              byteText(rest) + " in all");
}
} // namespace

SecurityReport securityReport(const Document &doc)
{
    static const std::string kNoPickle = "(safetensors: no pickle, so no code; read by safetensors, not torch.load)";
    std::vector<GlobalUse> globals = doc.globals;
    std::vector<std::string> anomalies = doc.anomalies;
    NestedPickles nested;
    scanNestedPickles(doc.root, globals, anomalies, nested, 0);
    SecurityReport r = globalsReport(globals);
    r.anomalies = std::move(anomalies);
    judgeGetattr(doc, nested, r);
    findLoadAllocations(doc, r);
    // Files torch.load(weights_only=True) refuses whatever they hold.
    const auto refuse = [&r](std::string why) {
        r.weightsOnlyLoadable = false;
        r.weightsOnlyBlockers.push_back(std::move(why));
    };
    switch (doc.format) {
    // torch.load refuses these two before it unpickles anything: the globals play no part.
    case ContainerFormat::TorchScript:
        r.weightsOnlyFileReason = "it is a TorchScript archive, which torch.load refuses with weights_only=True "
                                  "(torch.jit.load reads it)";
        refuse("(a TorchScript archive: torch.jit.load, not torch.load)");
        break;
    case ContainerFormat::Tar:
        r.weightsOnlyFileReason = "it is in the tar format of torch < 0.4, which torch.load refuses with "
                                  "weights_only=True";
        refuse("(the tar format of torch < 0.4: torch.load refuses weights_only=True for it)");
        break;
    case ContainerFormat::Safetensors: refuse(kNoPickle); break;
    case ContainerFormat::Sharded:
        if (!doc.hasPickle()) {
            refuse(kNoPickle);
            break;
        }
        [[fallthrough]];  // torch.save shards: each is loaded with torch.load
    default:
        for (const auto &o : doc.opcodes)
            if (const auto name = opcodeName(o.op); !contains(kWeightsOnlyOpcodes, name))
                refuse("(pickle opcode " + std::string(name) + " at offset " + std::to_string(o.firstOffset) +
                       ", which the weights-only reader does not interpret)");
    }
    return r;
}

} // namespace ckpt
