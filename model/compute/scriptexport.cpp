#include "scriptexport.h"

#include "atomicwrite.h"
#include "computeloader.h"
#include "dtypecast.h"
#include "error.h"
#include "inferencemeta.h"
#include "signalcleanup.h"
#include "tensorref.h"
#include "valuetree.h"

#include "dtype.h"
#include "torchzipwriter.h"
#include "ziparchive.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace ckpt {

namespace {

// The written module read back by this program's own reader: a TorchScript archive in which each
// weight exported under its own name has its shape, the cast dtype where one was asked for, and,
// without a cast, the very bytes of the source (LibTorch copies them). A given architecture may
// name its weights otherwise; those are checked by LibTorch's loading alone. Returns how many
// tensors were compared.
std::size_t verifyExport(const Document &written, const Document &source, std::optional<DType> cast,
                         const std::string &output)
{
    if (written.format != ContainerFormat::TorchScript)
        throw FormatError(output + ": read back, it is not a TorchScript archive (" + written.formatDetail + ")");
    std::map<std::string, const TensorRef *> got;
    for (const auto &[name, v] : written.stateDict)
        if (v && v->isTensor())
            got.emplace(name, v->tensorRef().get());
    std::size_t compared = 0;
    for (const auto &[name, v] : source.stateDict) {
        const auto it = got.find(name);
        if (!v || !v->isTensor() || it == got.end() || v->tensorRef()->layout != TensorRef::Layout::Strided ||
            v->tensorRef()->quantization)
            continue;
        const TensorRef &want = *v->tensorRef();
        const TensorRef &have = *it->second;
        const DType dtype = cast && canCastFloats(want.dtype, *cast) ? *cast : want.dtype;
        if (have.shape != want.shape || have.dtype != dtype)
            throw FormatError(output + ": read back, '" + name + "' is " + std::string(dtypeName(have.dtype)) + " " +
                              shapeText(have.shape) + " where " + std::string(dtypeName(dtype)) + " " +
                              shapeText(want.shape) + " was exported");
        // Without a cast, or cast back to the source's own dtype (float16 weights LibTorch built in
        // float32), the bytes are the source's.
        if ((!cast || *cast == want.dtype) && want.isContiguous() && have.isContiguous()) {
            const auto a = want.spannedBytes();
            const auto b = have.spannedBytes();
            if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin()))
                throw FormatError(output + ": read back, the values of '" + name + "' differ from the source's");
        }
        ++compared;
    }
    return compared;
}

// ---- Casting a TorchScript archive as Module.to(dtype) does -------------------------------------
//
// LibTorch writes the module as it is; the cast is done here on the archive's bytes. Python's
// Module.to(dtype) replaces each floating parameter's and buffer's data in place (`param.data =
// fn(param)`), so whatever else holds the same tensor follows: an RNN's `_flat_weights` list holds
// its very parameters, which the archive pickles once and refers to from both places. Casting the
// storage records of the parameters and buffers gives that file exactly: one storage per weight, in
// the new dtype, seen from every place that refers to it; tensors that are neither (a plain tensor
// attribute, constants) keep their dtype, as in Python.

// One pickle opcode as LibTorch's pickler (protocol 2) writes them: where it lies and, for the ones
// the cast reads, its argument.
struct PickleOp {
    std::uint8_t code = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::string text;         // BINUNICODE's string, GLOBAL's "module\nname"
    std::uint64_t number = 0; // memo index of BINPUT/BINGET and their long forms
};

std::uint64_t littleEndian(std::span<const std::uint8_t> p, std::size_t at, std::size_t n)
{
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
        v |= std::uint64_t(p[at + i]) << (8 * i);
    return v;
}

// What follows each opcode LibTorch's pickler writes: n >= 0 bytes, or (n < 0) a length of -n
// bytes and that many bytes; kNotWritten for the opcodes it never writes. GLOBAL ('c') reads two
// lines and is handled apart.
constexpr std::int8_t kNotWritten = 127;
const std::array<std::int8_t, 256> &argumentSizes()
{
    static const auto table = [] {
        std::array<std::int8_t, 256> t;
        t.fill(kNotWritten);
        for (const unsigned char c : std::string_view("(.)]}tNRbsuaeQld012"))
            t[c] = 0;
        for (const int c : {0x81, 0x85, 0x86, 0x87, 0x88, 0x89}) // NEWOBJ, TUPLE1-3, NEWTRUE, NEWFALSE
            t[c] = 0;
        for (const int c : {0x80, int('K'), int('q'), int('h')}) // PROTO, BININT1, BINPUT, BINGET
            t[c] = 1;
        t['M'] = 2;
        for (const int c : {'J', 'r', 'j'}) // BININT, LONG_BINPUT, LONG_BINGET
            t[c] = 4;
        t['G'] = 8;
        for (const int c : {0x8a, int('C'), int('U')}) // LONG1, SHORT_BINBYTES, SHORT_BINSTRING
            t[c] = -1;
        for (const int c : {'X', 'B', 'T'}) // BINUNICODE, BINBYTES, BINSTRING
            t[c] = -4;
        for (const int c : {0x8d, 0x8e}) // BINUNICODE8, BINBYTES8
            t[c] = -8;
        return t;
    }();
    return table;
}

std::vector<PickleOp> scanPickle(std::span<const std::uint8_t> p, const std::string &where)
{
    std::vector<PickleOp> ops;
    std::size_t at = 0;
    auto need = [&](std::uint64_t n) {
        if (n > p.size() - at)
            throw FormatError(where + ": the pickle ends inside an opcode at offset " + std::to_string(at));
    };
    while (at < p.size()) {
        PickleOp op;
        op.code = p[at];
        op.begin = at++;
        if (op.code == 'c') {
            for (int line = 0; line < 2; ++line) {
                const auto nl = std::find(p.begin() + static_cast<std::ptrdiff_t>(at), p.end(), std::uint8_t('\n'));
                if (nl == p.end())
                    throw FormatError(where + ": the pickle ends inside a GLOBAL at offset " +
                                      std::to_string(op.begin));
                const auto stop = static_cast<std::size_t>(nl - p.begin());
                op.text.append(reinterpret_cast<const char *>(p.data() + at), stop - at);
                if (line == 0)
                    op.text += '\n';
                at = stop + 1;
            }
        } else if (const int size = argumentSizes()[op.code]; size == kNotWritten) {
            static const char *hex = "0123456789abcdef";
            throw FormatError(where + ": opcode 0x" + std::string{hex[op.code >> 4], hex[op.code & 15]} +
                              " at offset " + std::to_string(op.begin) +
                              " is not one LibTorch writes; the module cannot be cast");
        } else if (size >= 0) {
            need(static_cast<std::uint64_t>(size));
            if (op.code == 'q' || op.code == 'h' || op.code == 'r' || op.code == 'j')
                op.number = littleEndian(p, at, static_cast<std::size_t>(size));
            at += static_cast<std::size_t>(size);
        } else {
            const auto width = static_cast<std::size_t>(-size);
            need(width);
            const std::uint64_t n = littleEndian(p, at, width);
            at += width;
            need(n);
            op.text.assign(reinterpret_cast<const char *>(p.data() + at), static_cast<std::size_t>(n));
            at += static_cast<std::size_t>(n);
        }
        op.end = at;
        ops.push_back(std::move(op));
        if (ops.back().code == '.')
            break;
    }
    if (ops.empty() || ops.back().code != '.')
        throw FormatError(where + ": the pickle has no STOP");
    return ops;
}

bool isMemoPut(std::uint8_t c)
{
    return c == 'q' || c == 'r';
}
bool isMemoGet(std::uint8_t c)
{
    return c == 'h' || c == 'j';
}

// The storage records of a TorchScript module's floating parameters and buffers (its own and its
// submodules', as each class declares them) whose dtype is not `to`: what Module.to(to) casts.
// Throws when a tensor that is neither shares such a storage (Python would leave it as it is while
// the parameter moves to a new storage; one file cannot hold both).
std::set<std::string> storagesToCast(const Document &doc, DType to, const std::string &where)
{
    if (!doc.root || !isScriptModule(*doc.root) || doc.scriptClasses.truncated)
        throw FormatError(where + ": the module's parameters and buffers cannot be told apart; it cannot be cast");
    std::set<std::string> keys;
    std::set<const Value *> cast;
    std::set<const Value *> seen;
    std::vector<const Value *> stack{doc.root.get()};
    while (!stack.empty()) {
        const Value *m = stack.back();
        stack.pop_back();
        if (!seen.insert(m).second)
            continue;
        const ScriptClassDecl *decl = doc.scriptClasses.find(className(*m));
        if (!decl || !m->state() || !m->state()->isDict())
            throw FormatError(where + ": module class " + className(*m) +
                              " does not declare its parameters and buffers; it cannot be cast");
        for (const auto &e : m->state()->entries()) {
            if (!e.key || !e.key->isString() || !e.value)
                continue;
            const std::string &name = e.key->text();
            if (e.value->isTensor()) {
                const bool weight =
                    std::find(decl->parameters.begin(), decl->parameters.end(), name) != decl->parameters.end() ||
                    std::find(decl->buffers.begin(), decl->buffers.end(), name) != decl->buffers.end();
                const TensorRef &t = *e.value->tensorRef();
                if (weight && t.storage && dtypeIsFloating(t.dtype) && t.dtype != to && canCastFloats(t.dtype, to)) {
                    keys.insert(t.storage->key);
                    cast.insert(e.value.get());
                }
            } else if (e.value->kind() == Value::Kind::Object && isScriptModule(*e.value)) {
                stack.push_back(e.value.get());
            }
        }
    }
    for (const auto &t : doc.tensors)
        if (!t.name.starts_with("(constants)") && t.ref().storage && keys.count(t.ref().storage->key) &&
            !cast.count(t.value.get()))
            throw FormatError(where + ": '" + t.name + "' shares its storage with a parameter or buffer but is " +
                              "neither; Module.to would separate them, which this export cannot");
    return keys;
}

// `bytes` (a TorchScript archive LibTorch wrote) with the storages of the module's floating
// parameters and buffers cast to `to`, as Python's module.to(to) followed by torch.jit.save gives.
std::string castArchive(const std::string &bytes, DType to, const std::string &where)
{
    const Document doc = readDocumentFromBytes(bytes, where);
    if (doc.format != ContainerFormat::TorchScript)
        throw FormatError(where + ": LibTorch's module is not a TorchScript archive (" + doc.formatDetail + ")");
    const std::set<std::string> keys = storagesToCast(doc, to, where);
    const std::span<const std::uint8_t> all(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size());
    const ZipArchive zip(all);
    const ZipArchive::Entry *pklEntry = zip.find("data.pkl");
    if (!pklEntry)
        throw FormatError(where + ": the archive has no data.pkl");
    const RecordBytes pkl = zip.read(*pklEntry);
    const std::vector<PickleOp> ops = scanPickle(pkl.bytes, where + " data.pkl");

    // Strings and globals the memo holds, to read the storage tuples that refer to them.
    std::map<std::uint64_t, std::string> memo;
    for (std::size_t i = 1; i < ops.size(); ++i)
        if (isMemoPut(ops[i].code) && (ops[i - 1].code == 'X' || ops[i - 1].code == 'c'))
            memo[ops[i].number] = ops[i - 1].text;
    // Each storage's persistent id is MARK 'storage' type key location numel TUPLE BINPERSID, each
    // item a value (or a memo reference) maybe followed by a memo put. The type item becomes a
    // plain GLOBAL of the storage's new class (a memoised one is not put again: the tuples that
    // referred to it are rewritten too, and nothing else may).
    struct Replace {
        std::size_t begin, end;
        std::string bytes;
    };
    std::vector<Replace> replaced;
    std::set<std::uint64_t> dropped;
    std::map<std::string, DType> fromOf; // storage key -> its dtype before the cast
    for (std::size_t i = 0; i < ops.size(); ++i) {
        if (ops[i].code != 'Q')
            continue;
        std::size_t mark = i;
        while (mark > 0 && ops[mark - 1].code != '(')
            --mark;
        if (mark == 0 || i < 2 || ops[i - 1].code != 't')
            throw FormatError(where + ": a persistent id at offset " + std::to_string(ops[i].begin) +
                              " is not a storage tuple; the module cannot be cast");
        struct Item {
            std::size_t first, last; // op indices, inclusive
        };
        std::vector<Item> items;
        for (std::size_t k = mark; k < i - 1; ++k) {
            if (isMemoPut(ops[k].code) && !items.empty() && items.back().last + 1 == k)
                items.back().last = k;
            else
                items.push_back({k, k});
        }
        auto textOf = [&](const Item &it) -> std::string {
            const PickleOp &op = ops[it.first];
            if (op.code == 'X' || op.code == 'c')
                return op.text;
            if (isMemoGet(op.code))
                if (auto m = memo.find(op.number); m != memo.end())
                    return m->second;
            return {};
        };
        if (items.size() != 5 || textOf(items[0]) != "storage" || !textOf(items[1]).starts_with("torch\n"))
            throw FormatError(where + ": a persistent id at offset " + std::to_string(ops[i].begin) +
                              " is not a storage tuple LibTorch writes; the module cannot be cast");
        const std::string typeText = textOf(items[1]);
        const auto from = dtypeFromStorageClass(std::string_view(typeText).substr(6));
        const std::string key = textOf(items[2]);
        if (!from || key.empty())
            throw FormatError(where + ": storage " + (key.empty() ? "(unnamed)" : "'" + key + "'") + " has type '" +
                              typeText.substr(6) + "'; the module cannot be cast");
        const DType dtype = keys.count(key) ? to : *from;
        fromOf.emplace(key, *from);
        const Item &type = items[1];
        for (std::size_t k = type.first; k <= type.last; ++k)
            if (isMemoPut(ops[k].code))
                dropped.insert(ops[k].number);
        replaced.push_back(
            {ops[type.first].begin, ops[type.last].end, "ctorch\n" + std::string(dtypeStorageClass(dtype)) + "\n"});
    }
    for (const auto &k : keys)
        if (!fromOf.count(k))
            throw FormatError(where + ": storage '" + k + "' of a parameter is not in data.pkl's storage list");
    // A memo reference to a storage class outside the storage tuples would now find nothing.
    {
        std::size_t r = 0;
        for (const auto &op : ops) {
            while (r < replaced.size() && replaced[r].end <= op.begin)
                ++r;
            const bool inside = r < replaced.size() && op.begin >= replaced[r].begin;
            if (!inside && isMemoGet(op.code) && dropped.count(op.number))
                throw FormatError(where +
                                  ": data.pkl refers to a storage class from elsewhere; the module cannot be cast");
        }
    }
    std::string newPkl;
    newPkl.reserve(pkl.bytes.size() + replaced.size() * 24);
    std::size_t copied = 0;
    for (const auto &r : replaced) {
        newPkl.append(reinterpret_cast<const char *>(pkl.bytes.data() + copied), r.begin - copied);
        newPkl += r.bytes;
        copied = r.end;
    }
    newPkl.append(reinterpret_cast<const char *>(pkl.bytes.data() + copied), pkl.bytes.size() - copied);

    std::string out;
    out.reserve(bytes.size());
    std::string folder = zip.prefix();
    if (!folder.empty() && folder.back() == '/')
        folder.pop_back();
    TorchZipWriter writer(
        [&out](std::span<const std::uint8_t> b) { out.append(reinterpret_cast<const char *>(b.data()), b.size()); },
        folder);
    for (const auto &e : zip.entries()) {
        const std::string name = e.name.substr(zip.prefix().size());
        if (name == "data.pkl") {
            writer.addRecord(name, newPkl);
            continue;
        }
        const RecordBytes rb = zip.read(e);
        if (name.starts_with("data/") && keys.count(name.substr(5))) {
            writer.addRecord(name, castFloats(rb.bytes, fromOf.at(name.substr(5)), to));
        } else {
            writer.addRecord(name, rb.bytes);
        }
    }
    writer.finish();
    return out;
}

// One sample for the module to run after reading back: a batch of one of the architecture's input
// shape (any size taken as 4), integer indices 0 and 1 for a model that starts with an Embedding.
// Nothing when the shape is unknown.
std::optional<PredictionInput> sampleFor(const Architecture &arch)
{
    if (arch.inputShape.empty())
        return std::nullopt;
    PredictionInput in;
    in.shape.push_back(1);
    std::int64_t n = 1;
    for (const auto d : arch.inputShape) {
        in.shape.push_back(d < 0 ? 4 : d);
        n *= in.shape.back();
        if (n > (std::int64_t(1) << 20))
            return std::nullopt; // a sample this large costs more than the check is worth
    }
    in.values.resize(static_cast<std::size_t>(n));
    for (std::size_t i = 0; i < in.values.size(); ++i)
        in.values[i] = arch.integerInput ? double(i % 2) : std::sin(double(i + 1));
    return in;
}

// The precision a prediction on the written module runs in: the dtype written (float64 runs as
// itself at the default precision); nothing where this machine's LibTorch cannot run it.
std::optional<std::string> runPrecision(DType cast)
{
    if (cast == DType::Float32 || cast == DType::Float64)
        return std::string("float32");
    const std::string want(dtypeName(cast));
    for (const auto &d : ComputeLoader::api().devices())
        if (d.id == "cpu")
            for (const auto &t : d.dtypes)
                if (t == want)
                    return want;
    return std::nullopt;
}

// The module read back holds its parameters and buffers in the dtype asked for, every one.
void verifyCast(const Document &back, DType to, const std::string &output)
{
    const auto left = storagesToCast(back, to, output);
    if (!left.empty())
        throw FormatError(output + ": read back, " + std::to_string(left.size()) +
                          " storages of parameters or buffers are not " + std::string(dtypeName(to)));
}

// Runs `sample` through the TorchScript module in `file` (read as `doc`) in `precision`; what
// LibTorch said when it could not, else nothing.
std::optional<std::string> runFails(const Document &doc, const Architecture &arch, const PredictionInput &sample,
                                    const std::string &precision)
{
    try {
        ComputeLoader::api().predictor(doc, arch)->run(sample,
                                                       PredictOptions().normalized(false).precision(precision).top(1));
        return std::nullopt;
    } catch (const std::exception &ex) {
        std::string why = ex.what();
        return why.size() > 600 ? why.substr(0, 600) + "…" : why;
    }
}

// A file beside the output that is removed when this goes, whatever happens: by this destructor,
// or, once listed (after it is created), by the CLI's signal handler when Ctrl-C or SIGTERM ends
// the run first.
struct ScratchFile {
    std::string path;
    std::optional<SignalCleanupEntry> onSignal;
    ~ScratchFile()
    {
        if (!path.empty())
            std::remove(path.c_str());
        onSignal.reset();  // after the removal: a signal in between finds nothing to remove
    }
};

// The cast module read back runs a sample of its input (as resolveArchitecture guesses it) in the
// dtype written, as torch.jit.load(file) would be run: a weight the cast missed fails here ("mat1
// and mat2 must have the same dtype"). A failure is the cast's only when the module as LibTorch
// wrote it (`uncast`) runs the same sample; then nothing is kept. `notes` says what was run, or
// why nothing was: no known input shape, a dtype this machine's LibTorch cannot compute in
// (float16 on a CPU), a guessed input the model does not take.
void runWrittenBack(const Document &back, const std::string &temporary, const std::string &uncast, DType cast,
                    const std::string &output, std::vector<std::string> *notes)
{
    auto note = [notes](std::string text) {
        if (notes)
            notes->push_back(std::move(text));
    };
    const std::string dtype(dtypeName(cast));
    Architecture arch;
    try {
        arch = resolveArchitecture(back);
    } catch (const FormatError &) {
    }
    // Loading it for a run holds it twice more in memory (a float32 copy, one in the dtype run).
    constexpr std::size_t kMaxRunBytes = std::size_t(1) << 30;
    if (uncast.size() > kMaxRunBytes)
        return note("the written module was not run: it is larger than the 1 GiB a check run loads");
    const auto sample = sampleFor(arch);
    if (!sample)
        return note("the written module was not run: the file does not tell what input it takes");
    const auto precision = runPrecision(cast);
    if (!precision)
        return note("the written module was not run: LibTorch " + ComputeLoader::api().torchVersion() +
                    " does not compute in " + dtype + " on this CPU");
    const auto failed = runFails(back, arch, *sample, *precision);
    if (!failed)
        return note("read back, the module ran a sample of shape " + shapeText(sample->shape) + " in " + dtype);
    // Did it run before the cast? The module as LibTorch wrote it, beside the output for a moment.
    ScratchFile before{temporary + ".uncast", std::nullopt};
    {
        std::FILE *f = std::fopen(before.path.c_str(), "wbx");
        if (!f) {
            before.path.clear(); // not ours to remove
            throw FormatError(output + ": read back, the module does not run in " + dtype + " (" + *failed + "), and " +
                              temporary + ".uncast could not be made to see whether it ran before");
        }
        before.onSignal.emplace(before.path);
        const bool ok = std::fwrite(uncast.data(), 1, uncast.size(), f) == uncast.size();
        if (std::fclose(f) != 0 || !ok)
            throw FormatError(output + ": read back, the module does not run in " + dtype + " (" + *failed +
                              "), and writing " + before.path + " failed");
    }
    const Document uncastDoc = readDocument(before.path);
    if (runFails(uncastDoc, resolveArchitecture(uncastDoc), *sample, "float32"))
        return note("the written module was not run: it does not take the input its first weight suggests (shape " +
                    shapeText(sample->shape) + ")");
    throw FormatError(output + ": read back, the module does not run in " + dtype + " on a sample of shape " +
                      shapeText(sample->shape) + " that it ran before the cast, so it was not kept: " + *failed);
}

// LibTorch builds the module in float32 (float64 stays float64); weights stored as float16 or
// bfloat16 are written back in their own dtype, as torch.jit.script(model.half()) holds them: the
// archive is cast to it (castArchive). Nothing for float32/float64 weights. A module whose floating
// weights mix float16 or bfloat16 with other floating types cannot be written as the source holds
// it by casting the whole archive: refused here, before anything is built, with the way out.
std::optional<DType> sourceFloatingDtype(const Document &edited, const std::string &path)
{
    std::set<DType> types;
    for (const auto &w : edited.stateDict)
        if (w.value && w.value->isTensor() && dtypeIsFloating(w.value->tensorRef()->dtype))
            types.insert(w.value->tensorRef()->dtype);
    const bool reduced = types.count(DType::Float16) || types.count(DType::BFloat16);
    if (!reduced)
        return std::nullopt;
    if (types.size() == 1)
        return *types.begin();
    std::string names;
    for (const DType t : types)
        names += (names.empty() ? "" : " and ") + std::string(dtypeName(t));
    throw FormatError(path + ": the weights mix " + names +
                      "; a TorchScript module is written with its floating weights in one dtype: choose it with "
                      "--dtype (float32 keeps every value; float16 or bfloat16 keeps the file small)");
}

bool editsWeights(const ConvertOptions &o)
{
    return !o.strip.empty() || !o.add.empty() || o.promoteEma || !o.drops.empty();
}

} // namespace

std::string castScriptArchive(const std::string &bytes, DType to, const std::string &where)
{
    return castArchive(bytes, to, where);
}

std::optional<std::string> scriptNormalisationWarning(const Document &doc)
{
    const Preprocessing prep = preprocessingOf(doc);
    if (!prep.present())
        return std::nullopt;
    return "the package normalises its inputs (" + prep.source +
           "); the TorchScript module does not: normalise inputs before calling it";
}

ScriptExport planScriptExport(const Document &doc, const std::string &output, ConvertOptions edits,
                              const ArchitectureRequest &request)
{
    if (doc.format == ContainerFormat::TorchScript && editsWeights(edits))
        throw FormatError(doc.path + ": the file is TorchScript: its module is exported as it is; --drop, "
                                     "--strip-prefix, --add-prefix and --ema do not apply");
    ScriptExport e;
    e.cast = edits.castTo; // counted by the planner, done by LibTorch
    edits.target(ConvertTarget::StateDict).forModuleExport(true);
    // The plan says what goes in (the weights, edited) and what the module cannot hold (optimizer
    // state, metadata, class names, preprocessing), as for the other targets.
    e.plan = planConversion(doc, output, edits);
    auto edited = std::make_shared<Document>(doc);
    if (doc.format != ContainerFormat::TorchScript) {
        // The plan's weights are plain tensors, as state_dict() gives them; a pickled full model's
        // frozen parameter (requires_grad=False) stays frozen in the module, as torch.jit.script
        // keeps it (predict, which exports the file's own tensors, does the same).
        using View = std::tuple<const StorageRef *, std::int64_t, std::vector<std::int64_t>, std::vector<std::int64_t>>;
        auto viewOf = [](const TensorRef &t) { return View{t.storage.get(), t.storageOffset, t.shape, t.strides}; };
        std::set<View> frozen;
        for (const auto &w : doc.stateDict)
            if (w.value && w.value->isTensor() && w.ref().isParameter && !w.ref().requiresGrad && w.ref().storage)
                frozen.insert(viewOf(w.ref()));
        edited->stateDict.clear();
        for (const auto &entry : e.plan.root->entries()) {
            ValuePtr v = entry.value;
            if (v && v->isTensor() && v->tensorRef()->storage && frozen.count(viewOf(*v->tensorRef()))) {
                auto ref = std::make_shared<TensorRef>(*v->tensorRef());
                ref->isParameter = true;
                ref->requiresGrad = false;
                v = Value::tensor(ref);
            }
            edited->stateDict.push_back({keyText(*entry.key), v});
        }
    }
    if (auto warning = scriptNormalisationWarning(*edited))
        e.plan.warnings.push_back(std::move(*warning));
    if (!e.cast && doc.format != ContainerFormat::TorchScript)
        e.cast = sourceFloatingDtype(*edited, doc.path);
    e.architecture = resolveArchitecture(*edited, request);
    e.source = std::move(edited);
    return e;
}

ConversionResult executeScriptExport(const ScriptExport &e, const WriteOptions &w, std::vector<std::string> *notes,
                                     const std::function<bool()> &cancelled)
{
    const std::string &output = e.plan.output;
    checkWriteTarget(output, w);
    const auto predictor = ComputeLoader::api().predictor(*e.source, e.architecture);
    // Written as LibTorch holds it; writeScriptExport casts the archive (see castScriptArchive).
    const std::string bytes = predictor->torchScriptBytes(std::string());
    std::vector<std::string> loading = predictor->notes();
    // LibTorch computes float16/bfloat16 weights in float32 and says so; the module written is cast
    // back to that dtype (e.cast), so those notes would say the opposite of what the file holds.
    if (e.cast) {
        const std::string written = " is stored as " + std::string(dtypeName(*e.cast)) + ", computed as float32";
        std::erase_if(loading, [&written](const std::string &n) { return n.ends_with(written); });
    }
    if (cancelled && cancelled())
        throw FormatError("cancelled; nothing was written");
    auto result = writeScriptExport(bytes, *e.source, e.cast, output, w, &loading);
    if (notes)
        *notes = std::move(loading);
    return result;
}

ConversionResult writeScriptExport(const std::string &bytes, const Document &source, std::optional<DType> cast,
                                   const std::string &output, const WriteOptions &w, std::vector<std::string> *notes)
{
    checkOutputExtension(output, false, kScriptExportWrites); // predict --export-torchscript too
    // LibTorch built float16/bfloat16 weights in float32: written back in their own dtype (what
    // planScriptExport decides for convert; predict --export-torchscript comes here without it).
    if (!cast && source.format != ContainerFormat::TorchScript)
        cast = sourceFloatingDtype(source, source.path);
    const std::string written = cast ? castArchive(bytes, *cast, output) : bytes;
    ConversionResult result;
    result.output = output;
    result.bytes = written.size();
    AtomicFileWriter writer(output, w);
    writer.write(written);
    writer.commit([&](const std::string &temporary) {
        verifyFileBytes(temporary, {reinterpret_cast<const std::uint8_t *>(written.data()), written.size()}, output);
        const Document back = readWrittenBack(temporary, output);
        result.tensorsVerified = verifyExport(back, source, cast, output);
        if (cast) {
            verifyCast(back, *cast, output);
            runWrittenBack(back, temporary, bytes, *cast, output, notes);
        }
    });
    result.verified = true;
    return result;
}

nlohmann::ordered_json scriptExportToJson(const ScriptExport &e, const ConversionResult *result,
                                          const std::vector<std::string> &notes)
{
    auto j = conversionToJson(e.plan, result);
    j["target"] = "torchscript";
    j["architecture"] = {{"source", sourceName(e.architecture.source)}, {"exact", e.architecture.exact}};
    j["notes"] = notes;
    return j;
}

} // namespace ckpt
