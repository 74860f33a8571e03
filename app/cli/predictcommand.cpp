#include "predictcommand.h"

#include "architecture.h"
#include "atomicwrite.h"
#include "clicommon.h"
#include "convert.h"
#include "computeloader.h"
#include "document.h"
#include "error.h"
#include "inferencemeta.h"
#include "predictionjson.h"
#include "predictioninput.h"
#include "scriptexport.h"
#include "textcodec.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

namespace ckpt::cli {

namespace {

using json = nlohmann::ordered_json;

bool endsWithIgnoringCase(std::string s, std::string suffix)
{
    for (auto *t : {&s, &suffix})
        for (auto &c : *t)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s.ends_with(suffix);
}

// The batch the options describe, shaped as the model takes it. `integer`: the input is a .npy of
// integers, which stay integers where the model's input is not known to be floating point.
PredictionInput gatherInput(const PredictCommandOptions &o, const Document &doc, const Architecture &arch, bool &integer,
                            bool &image, std::string &resampled)
{
    integer = false;
    image = false;
    resampled.clear();
    if (!o.inputs.empty() && !o.inputFile.empty())
        throw FormatError("give --input or --input-file, not both");
    // The sample shape the pane proposes too: a package's crop size where the layers take any size.
    const std::vector<std::int64_t> sample = proposedSampleShape(doc, arch);
    PredictionInput in;
    if (!o.inputs.empty()) {
        InputTable t;
        for (std::size_t i = 0; i < o.inputs.size(); ++i) {
            auto row = parseRow(o.inputs[i], "--input " + std::to_string(i + 1));
            if (i > 0 && static_cast<std::int64_t>(row.size()) != t.shape[1])
                throw FormatError("--input " + std::to_string(i + 1) + " has " + std::to_string(row.size()) +
                                  " values, the first has " + std::to_string(t.shape[1]));
            if (i == 0)
                t.shape = {0, static_cast<std::int64_t>(row.size())};
            t.values.insert(t.values.end(), row.begin(), row.end());
        }
        t.shape[0] = static_cast<std::int64_t>(o.inputs.size());
        in.values = std::move(t.values);
        in.shape = t.shape;
    } else {
        const std::string &f = o.inputFile;
        if (endsWithIgnoringCase(f, ".png") || endsWithIgnoringCase(f, ".jpg") || endsWithIgnoringCase(f, ".jpeg") ||
            endsWithIgnoringCase(f, ".bmp")) {
            // An image for a convolutional model (or an MLP whose features are a picture's pixels):
            // resized to its input size, scaled to [0, 1].
            std::string how;
            const auto picture = pictureShape(doc, arch, arch.inputShape, &how);
            if (!picture)
                throw FormatError(
                    f + ": this model does not take images (" +
                    (arch.inputShape.empty() ? std::string("the file does not say what its samples are")
                                             : "its samples have shape " + shapeText(arch.inputShape)) +
                    "); give the input as .npy or .csv");
            const std::vector<std::int64_t> &shape = *picture;
            // The file's own resize and crop first, as torchvision's Resize and CenterCrop; then a
            // model of one size (or whose size the file states) gets that size, while one that takes
            // any size runs the picture as it is, as PyTorch would.
            const std::string bytes = readText(f, std::size_t{256} << 20);
            const ImageSteps stated = statedImageSteps(imagePreprocessingOf(doc));
            InputTable t = parseImage(bytes, f, static_cast<int>(shape[0]), imageSteps(bytes, arch, shape, stated));
            in.values = std::move(t.values);
            in.shape = t.shape;
            in.note = t.note;
            resampled = t.resampled;
            if (!how.empty()) {
                // A Linear first takes the features flat; a Flatten first takes the picture as it is.
                if (!takesInput(arch, shape))
                    in.shape = {1, arch.inputShape[0]};
                in.note += (in.note.empty() ? "" : "; ") + how;
            }
            image = true;
            return in;
        }
        InputTable t;
        if (endsWithIgnoringCase(f, ".npy"))
            t = parseNpy(readText(f, std::size_t{1} << 30), f);
        else if (endsWithIgnoringCase(f, ".csv") || endsWithIgnoringCase(f, ".txt"))
            t = parseCsv(readText(f, std::size_t{256} << 20), f);
        else
            throw FormatError(f + ": the input file must be .csv, .txt, .npy or an image (.png, .jpg, .jpeg, .bmp)");
        in.values = std::move(t.values);
        in.shape = t.shape;
        integer = t.integer;
        if (endsWithIgnoringCase(f, ".npy")) {
            // One sample without its batch dimension gets one (against the model's own sample shape:
            // an array keeps its shape).
            const auto &sample = arch.inputShape;
            if ((!sample.empty() && in.shape.size() == sample.size()) || (sample.empty() && in.shape.size() == 1))
                in.shape.insert(in.shape.begin(), 1);
            return in;
        }
    }
    // Rows of numbers: each row one sample, reshaped to the model's sample shape. A mismatch
    // names where the rows came from.
    try {
        // A model that takes any picture size takes a row of C·S·S values as an S×S picture, as
        // README says, whatever size was proposed.
        std::vector<std::int64_t> rows = sample;
        std::int64_t proposed = 1;
        for (auto d : sample)
            proposed *= d;
        if (arch.inputSizeChosen && sample.size() == 3 && proposed != in.shape[1])
            rows = {sample[0], -1, -1};
        in.shape = batchShape(in.shape[0], in.shape[1], rows, arch.inputShapeGuessed);
    } catch (const FormatError &e) {
        throw FormatError((o.inputFile.empty() ? o.file + ": --input" : o.inputFile) + ": " + e.what());
    }
    return in;
}

// `inputShape`: the shape of what ran (as --json's input_shape gives it), the batch dimension
// first; the model's own sample shape when nothing ran (--show-arch).
void printArchitecture(std::ostream &out, const Architecture &arch, const std::vector<std::int64_t> &inputShape)
{
    out << "architecture: " << sourceName(arch.source) << (arch.exact ? " (exact)" : " (not exact)") << "\n";
    for (const auto &a : arch.assumptions)
        out << "  assumption: " << a << "\n";
    for (const auto &line : describeArchitecture(arch))
        out << "  " << line << "\n";
    if (!inputShape.empty())
        out << "input shape: " << shapeText(inputShape) << (arch.integerInput ? " (integer indices)" : "") << "\n";
}

} // namespace

int runPredict(const PredictCommandOptions &o, std::ostream &out, std::ostream &err)
{
    // --export-torchscript writes a file: a signal while it is written leaves its folder as it was.
    if (!o.exportTorchScript.empty())
        removeTemporaryFilesOnSignals();
    try {
        if (o.top < 0)
            throw FormatError("--top must be 0 or more");
        const Document &doc = keepUntilExit(readInput(o.file, o.weights));
        const ArchitectureRequest request = architectureRequest(o.arch, o.archSpec, o.activation);
        Architecture arch = resolveArchitecture(doc, request);
        if (!o.inputShape.empty()) {
            // The user's sample shape replaces the one read or guessed from the file: rows are
            // reshaped to it and a picture is resized to it.
            std::vector<std::int64_t> shape;
            for (const double d : parseRow(o.inputShape, "--input-shape")) {
                if (d < 1 || d > kMaxImageSide * 16.0 || d != std::floor(d))
                    throw FormatError("--input-shape " + o.inputShape + ": each size is a whole number from 1 to " +
                                      std::to_string(kMaxImageSide * 16));
                shape.push_back(static_cast<std::int64_t>(d));
            }
            if (shape.empty() || shape.size() > 4)
                throw FormatError("--input-shape " + o.inputShape + ": give one sample's shape, C,H,W for a picture");
            arch.inputShape = shape;
            arch.inputShapeGuessed = false;
            arch.inputSizeChosen = false;
        }
        if (o.showArchitecture) {
            if (o.json)
                out << json{{"source", sourceName(arch.source)}, {"exact", arch.exact}, {"assumptions", arch.assumptions},
                            {"input_shape", arch.inputShape}, {"spec", arch.root.type.empty() ? json() : specOf(arch)}}
                           .dump(1)
                    << "\n";
            else
                printArchitecture(out, arch, arch.inputShape);
            return 0;
        }
        const bool wantRun = !o.inputs.empty() || !o.inputFile.empty();
        if (!wantRun && o.exportTorchScript.empty())
            throw FormatError("give the inputs: --input \"v1,v2,...\" (repeatable) or --input-file F.csv|F.npy");
        // Inputs are checked before LibTorch is loaded: a malformed row fails fast.
        PredictionInput input;
        bool integerFile = false, image = false;
        std::string resampled;  // PIL's filter that resized a picture input
        std::vector<std::string> inputNotes;
        if (wantRun)
            input = gatherInput(o, doc, arch, integerFile, image, resampled);
        if (integerFile && !arch.integerInput && arch.inputShape.empty()) {
            // Nothing says what the model takes: an integer array goes as integers, as
            // torch.from_numpy keeps it (token ids for an Embedding).
            arch.integerInput = true;
            inputNotes.push_back(o.inputFile + " holds integers: given to the model as int64, not normalised");
        }
        if (wantRun) {
            // Nothing the file states about its inputs goes unsaid.
            const ImagePreprocessing geometry = imagePreprocessingOf(doc);
            std::vector<std::string> unused = geometry.notApplied;
            if (!image) {
                auto sizes = [](const std::vector<std::int64_t> &v) {
                    return v.size() == 1 ? std::to_string(v[0]) : shapeText(v);
                };
                std::vector<std::string> steps;
                if (!geometry.resize.empty())
                    steps.push_back(geometry.resizeKey + " " + sizes(geometry.resize) + " (the input is not a picture)");
                if (!geometry.crop.empty())
                    steps.push_back(geometry.cropKey + " " + sizes(geometry.crop) + " (the input is not a picture)");
                if (!geometry.filterKey.empty())
                    steps.push_back(geometry.filterKey + " " + filterName(geometry.filter) +
                                    " (the input is not a picture)");
                unused.insert(unused.begin(), steps.begin(), steps.end());
            }
            if (!unused.empty())
                inputNotes.push_back("not applied: " + joinText(unused, "; "));
        }
        auto predictor = ComputeLoader::api().predictor(doc, arch);
        if (o.half && o.dtype != "float32" && o.dtype != "float16")
            throw std::runtime_error("--half asks for float16, --dtype for " + o.dtype + ": give one");
        const std::string precision = o.half ? std::string("float16") : o.dtype;
        json exported;  // what --export-torchscript wrote, for --json
        if (!o.exportTorchScript.empty()) {
            // The module in the precision the run uses (as convert --dtype casts it), so that
            // torch.jit.load of it gives the outputs printed below.
            const std::optional<DType> cast =
                precision == "float32" ? std::nullopt : dtypeFromTorchName(precision);
            // Uncast: writeScriptExport casts the archive as Module.to(dtype) does (LibTorch's
            // cast leaves an RNN's _flat_weights float32, and the module fails to run).
            const std::string bytes = predictor->torchScriptBytes(std::string());
            // Never over one of the run's inputs: the file (its shards and sidecar), the
            // architecture, the spec file, the input file.
            WriteOptions w = protectingInputs(doc, o.force);
            for (const auto *p : {&o.arch, &o.archSpec, &o.inputFile})
                if (!p->empty())
                    w.protect(*p);
            const ConversionResult written = writeScriptExport(bytes, doc, cast, o.exportTorchScript, w);
            // Said whether or not inputs run too, in convert --to torchscript's words: the outputs
            // printed below are of normalised inputs; the module written takes them normalised.
            std::vector<std::string> warnings;
            if (auto warning = scriptNormalisationWarning(doc))
                warnings.push_back(std::move(*warning));
            exported = {{"output", written.output},
                        {"bytes", written.bytes},
                        {"verified", written.verified},
                        {"storages_verified", written.tensorsVerified},  // as convert --json names it
                        {"warnings", warnings}};
            if (!o.json) {
                out << "wrote " << written.output << ": " << written.bytes << " bytes of TorchScript, read back: "
                    << written.tensorsVerified << " weight" << (written.tensorsVerified == 1 ? "" : "s")
                    << " as exported\n";
                for (const auto &warning : warnings)
                    out << "warning: " << warning << '\n';
            }
            if (!wantRun) {
                if (o.json)
                    out << json{{"export", exported}}.dump(1) << "\n";
                return 0;
            }
        }
        const Preprocessing pre = preprocessingOf(doc);
        PredictOptions options;
        options.onDevice(o.device)
            .normalized(!o.noNormalize)
            .precision(precision)
            .repeated(o.repeat)
            .top(o.top)
            .classes(classNamesOf(doc))
            .probabilitiesBy(o.probabilities);
        if (pre.present())
            options.normalization(pre.mean, pre.std);
        const PredictionResult r = predictor->run(input, options);
        std::vector<std::string> notes = predictor->notes();
        if (!input.note.empty())
            notes.push_back(input.note);
        notes.insert(notes.end(), inputNotes.begin(), inputNotes.end());
        if (!pre.problem.empty())
            notes.push_back("normalisation: " + pre.problem);
        if (o.json) {
            json j = predictionToJson(r, arch, notes, input.shape);
            if (image)  // PIL's filter that resized the picture (torchvision's interpolation); null: not resized
                j["image_resample"] = resampled.empty() ? json() : json(resampled);
            if (!exported.is_null())
                j["export"] = exported;
            out << j.dump(1) << "\n";
            return 0;
        }
        printArchitecture(out, arch, input.shape);
        for (const auto &n : notes)
            out << "note: " << n << "\n";
        out << "normalized: "
            << (r.normalized      ? "yes (" + pre.source + ")"
                : pre.present()   ? std::string("no (--no-normalize)")
                : pre.problem.empty() ? std::string("no (the file has no mean/std)")
                                      : std::string("no (its mean/std cannot be used)"))
            << "\n";
        out << predictionToText(r, arch.warnings);
        return 0;
    } catch (const std::exception &e) {
        if (std::string_view(e.what()).starts_with(o.file + ":")) {  // LibTorch's load errors name the file already
            err << "ckpt: " << e.what() << '\n';
            return 1;
        }
        return reportError(err, o.file, e);
    }
}

int runDevices(const DevicesCommandOptions &o, std::ostream &out, std::ostream &err)
{
    try {
        const auto devices = ComputeLoader::api().devices();
        if (o.json) {
            json list = json::array();
            for (const auto &d : devices)
                list.push_back({{"id", d.id},
                                {"label", d.label},
                                {"available", d.available},
                                {"reason", d.reason.empty() ? json() : json(d.reason)},
                                {"name", d.name.empty() ? json() : json(d.name)},
                                {"memory_bytes", d.memoryBytes ? json(d.memoryBytes) : json()},
                                {"capability", d.capability.empty() ? json() : json(d.capability)},
                                {"dtypes", d.dtypes}});
            out << json{{"torch", ComputeLoader::api().torchVersion()}, {"devices", list}}.dump(1) << "\n";
            return 0;
        }
        out << "LibTorch " << ComputeLoader::api().torchVersion() << "\n";
        for (const auto &d : devices) {
            out << "  " << d.id << "  " << d.label;
            if (d.available) {
                out << "  (" << joinText(d.dtypes) << ")";
            } else {
                out << "  unavailable: " << d.reason;
            }
            out << "\n";
        }
        return 0;
    } catch (const std::exception &e) {
        err << "ckpt: " << e.what() << '\n';
        return 1;
    }
}

} // namespace ckpt::cli
