#include "scriptexport.h"

#include "atomicwrite.h"
#include "computeloader.h"
#include "dtypecast.h"
#include "error.h"
#include "inferencemeta.h"
#include "tensorref.h"
#include "valuetree.h"

#include <algorithm>
#include <map>
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
        if (!cast && want.isContiguous() && have.isContiguous()) {
            const auto a = want.spannedBytes();
            const auto b = have.spannedBytes();
            if (a.size() != b.size() || !std::equal(a.begin(), a.end(), b.begin()))
                throw FormatError(output + ": read back, the values of '" + name + "' differ from the source's");
        }
        ++compared;
    }
    return compared;
}

bool editsWeights(const ConvertOptions &o)
{
    return !o.strip.empty() || !o.add.empty() || o.promoteEma || !o.drops.empty();
}

} // namespace

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
    e.cast = edits.castTo;  // counted by the planner, done by LibTorch
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
    const std::string bytes = predictor->torchScriptBytes(e.cast ? std::string(dtypeName(*e.cast)) : std::string());
    if (notes)
        *notes = predictor->notes();
    if (cancelled && cancelled())
        throw FormatError("cancelled; nothing was written");
    return writeScriptExport(bytes, *e.source, e.cast, output, w);
}

ConversionResult writeScriptExport(const std::string &bytes, const Document &source, std::optional<DType> cast,
                                   const std::string &output, const WriteOptions &w)
{
    checkOutputExtension(output, false, kScriptExportWrites);  // predict --export-torchscript too
    ConversionResult result;
    result.output = output;
    result.bytes = bytes.size();
    AtomicFileWriter writer(output, w);
    writer.write(bytes);
    writer.commit([&](const std::string &temporary) {
        verifyFileBytes(temporary, {reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size()}, output);
        result.tensorsVerified = verifyExport(readWrittenBack(temporary, output), source, cast, output);
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
