#include "checkpointfolder.h"

#include "document.h"
#include "error.h"
#include "jsonexport.h"
#include "mappedfile.h"
#include "picklemachine.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <regex>

namespace ckpt {

namespace fs = std::filesystem;

namespace {

// The names transformers writes (trainer.py, modeling_utils.py, peft's save_pretrained), in the
// order from_pretrained looks for weights: safetensors first, a single file before an index.
constexpr const char *kModelFiles[] = {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                                       "pytorch_model.bin.index.json"};
constexpr const char *kAdapterFiles[] = {"adapter_model.safetensors", "adapter_model.bin"};

struct KnownPart {
    const char *name;
    const char *role;
};
// What a Trainer checkpoint folder (Trainer._save_checkpoint) and a save_pretrained folder hold
// besides the weights.
constexpr KnownPart kKnownParts[] = {
    {"config.json", "model configuration"},
    {"generation_config.json", "generation settings"},
    {"adapter_config.json", "adapter configuration (PEFT)"},
    {"optimizer.pt", "optimizer state"},
    {"optimizer.bin", "optimizer state"},
    {"scheduler.pt", "learning-rate scheduler state"},
    {"scaler.pt", "mixed-precision gradient scaler state"},
    {"trainer_state.json", "trainer state (step, epoch, logged losses)"},
    {"training_args.bin", "training arguments (a pickled TrainingArguments)"},
    {"zero_to_fp32.py", "DeepSpeed's script that gathers ZeRO partitions into fp32 weights"},
    {"tokenizer.json", "tokenizer"},
    {"tokenizer_config.json", "tokenizer settings"},
    {"special_tokens_map.json", "tokenizer's special tokens"},
    {"vocab.json", "tokenizer vocabulary"},
    {"vocab.txt", "tokenizer vocabulary"},
    {"merges.txt", "tokenizer merges"},
    {"tokenizer.model", "tokenizer (SentencePiece)"},
    {"spiece.model", "tokenizer (SentencePiece)"},
};

// Files whose role is known and that are not the model's weights: never the "one checkpoint file".
bool isRoleFile(const std::string &name)
{
    static const std::regex rng(R"(rng_state(_\d+)?\.pth)");
    for (const auto &k : kKnownParts)
        if (name == k.name)
            return true;
    return std::regex_match(name, rng);
}

bool isCheckpointExtension(const std::string &name)
{
    static const char *exts[] = {".pth", ".pt", ".ckpt", ".bin", ".tar", ".safetensors"};
    for (const char *e : exts)
        if (name.size() > std::strlen(e) && name.ends_with(e))
            return true;
    return false;
}

bool isFile(const fs::path &p)
{
    std::error_code ec;
    return fs::is_regular_file(p, ec);
}

bool isDir(const fs::path &p)
{
    std::error_code ec;
    return fs::is_directory(p, ec);
}

// A folder's entries, names sorted, at most kMaxEntries of them; `more` says some were left out.
struct Listing {
    std::vector<std::string> files;
    std::vector<std::string> folders;
    bool more = false;
};

Listing listFolder(const fs::path &dir)
{
    Listing out;
    std::error_code ec;
    fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
    if (ec)
        throw FormatError(dir.string() + ": cannot list the folder: " + ec.message());
    std::size_t seen = 0;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec)
            break;
        if (++seen > FolderLimits::kMaxEntries) {
            out.more = true;
            break;
        }
        const std::string name = it->path().filename().string();
        std::error_code tec;
        if (it->is_directory(tec))
            out.folders.push_back(name);
        else if (it->is_regular_file(tec))
            out.files.push_back(name);
    }
    std::sort(out.files.begin(), out.files.end());
    std::sort(out.folders.begin(), out.folders.end());
    return out;
}

// "a, b, c and 12 more"
std::string boundedList(const std::vector<std::string> &names)
{
    std::string out;
    const std::size_t shown = std::min(names.size(), FolderLimits::kMaxListed);
    for (std::size_t i = 0; i < shown; ++i)
        out += (i ? ", " : "") + names[i];
    if (names.size() > shown)
        out += " and " + std::to_string(names.size() - shown) + " more";
    return out;
}

// A run's checkpoint folders among `listing`'s subfolders (Trainer's checkpoint-500, DeepSpeed's
// global_step500, scripts' epoch_3 and step-100), as (number, name), by number.
std::vector<std::pair<std::int64_t, std::string>> runCheckpoints(const Listing &listing)
{
    static const std::regex run(R"((checkpoint|global_step|epoch|step)[-_]?(\d{1,15}))");
    std::vector<std::pair<std::int64_t, std::string>> out;
    std::smatch m;
    for (const auto &d : listing.folders)
        if (std::regex_match(d, m, run))
            out.emplace_back(std::stoll(m[2].str()), d);
    std::sort(out.begin(), out.end());
    return out;
}

class Resolver {
public:
    explicit Resolver(const std::string &dir) : m_dirText(dir), m_dir(dir) {}

    CheckpointFolder resolve()
    {
        m_out.folder = m_dirText;
        const Listing top = listFolder(m_dir);
        if (top.more)
            m_out.notes.push_back("the folder has more than " + std::to_string(FolderLimits::kMaxEntries) +
                                  " entries; only the first were looked at");
        std::optional<fs::path> deepSpeedTag = followLatest();
        if (chooseHuggingFace()) {
            addKnownParts(m_dir, "", top);
        } else if (deepSpeedTag) {
            m_out.layout = "DeepSpeed";
            const Listing tag = listFolder(*deepSpeedTag);
            const std::string tagName = deepSpeedTag->filename().string();
            if (!chooseDeepSpeedModel(*deepSpeedTag, tagName + "/", tag))
                fail("'latest' names the tag folder '" + tagName + "', which holds no mp_rank_*_model_states.pt file");
            addKnownParts(m_dir, "", top);
        } else if (chooseDeepSpeedModel(m_dir, "", top)) {
            m_out.layout = "DeepSpeed (tag folder)";
            addKnownParts(m_dir, "", top);
        } else {
            chooseSingleFile(top);
            addKnownParts(m_dir, "", top);
        }
        if (deepSpeedTag && m_out.layout.starts_with("Hugging Face")) {
            // A Trainer run with DeepSpeed: the Trainer's weights are read; the engine's tag is listed.
            const Listing tag = listFolder(*deepSpeedTag);
            const std::string tagName = deepSpeedTag->filename().string() + "/";
            addPart(tagName, *deepSpeedTag, "DeepSpeed checkpoint tag folder");
            addDeepSpeedFiles(*deepSpeedTag, tagName, tag, "");
        }
        if (!deepSpeedTag && !m_out.layout.starts_with("DeepSpeed"))  // a DeepSpeed folder's global_step folders are its tags
            for (const auto &r : runCheckpoints(top)) {
                ++m_out.runCheckpointsFound;
                if (m_out.runCheckpoints.size() < FolderLimits::kMaxRunCheckpoints)
                    m_out.runCheckpoints.push_back(r.second);
            }
        readTrainerStateIfAny();
        return std::move(m_out);
    }

private:
    std::string m_dirText;
    fs::path m_dir;
    CheckpointFolder m_out;
    std::vector<std::string> m_listed;  // names already among the parts (or the model file)
    bool m_partsCut = false;

    [[noreturn]] void fail(const std::string &what) const { throw FormatError(m_dirText + ": " + what); }

    void addPart(const std::string &name, const fs::path &path, const std::string &role)
    {
        if (std::find(m_listed.begin(), m_listed.end(), name) != m_listed.end())
            return;
        m_listed.push_back(name);
        if (m_out.parts.size() >= FolderLimits::kMaxParts) {
            if (!m_partsCut)
                m_out.notes.push_back("more parts than the " + std::to_string(FolderLimits::kMaxParts) +
                                      " listed (the pickled ones past them are still scanned)");
            m_partsCut = true;
            m_out.unlisted.push_back({name, path.string(), role, {}, false, {}});
            return;
        }
        m_out.parts.push_back({name, path.string(), role, {}, false, {}});
    }

    void chooseModel(const std::string &name, const fs::path &path, const std::string &role)
    {
        m_out.modelFile = path.string();
        m_out.modelName = name;
        m_out.modelRole = role;
        m_listed.push_back(name);
    }

    // DeepSpeed's `latest` names the tag folder of the last save (engine.save_checkpoint writes the
    // tag, no newline). Only a plain name of a folder inside this one is followed.
    std::optional<fs::path> followLatest()
    {
        const fs::path latest = m_dir / "latest";
        std::error_code ec;
        const auto status = fs::symlink_status(latest, ec);
        if (ec || !fs::exists(status))
            return std::nullopt;
        // DeepSpeed writes a small file; a link named latest (scripts make one to their last
        // checkpoint folder) could lead anywhere and is never followed.
        if (fs::is_symlink(status)) {
            m_out.notes.push_back("'latest' is a symbolic link; it is not followed");
            return std::nullopt;
        }
        if (!fs::is_regular_file(status))
            return std::nullopt;  // a folder named latest: not DeepSpeed's pointer
        const auto size = fs::file_size(latest, ec);
        if (ec || size > FolderLimits::kMaxLatestBytes)
            fail("'latest' is " + std::to_string(size) + " bytes; DeepSpeed writes only a tag name there");
        std::string tag;
        {
            const auto mapped = MappedFile::open(latest.string());
            const auto b = mapped->bytes();
            tag.assign(reinterpret_cast<const char *>(b.data()),
                       std::min<std::size_t>(b.size(), FolderLimits::kMaxLatestBytes));
        }
        while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.back())))
            tag.pop_back();
        while (!tag.empty() && std::isspace(static_cast<unsigned char>(tag.front())))
            tag.erase(tag.begin());
        const bool plain = !tag.empty() && tag != "." && tag != ".." && tag.find('/') == std::string::npos &&
                           tag.find('\\') == std::string::npos && tag.find('\0') == std::string::npos;
        if (!plain)
            fail("'latest' names '" + printable(tag) + "', which is not a folder name inside this folder; "
                 "it is not followed");
        const fs::path target = m_dir / tag;
        const auto targetStatus = fs::symlink_status(target, ec);
        if (ec || !fs::exists(targetStatus))
            fail("'latest' names the tag folder '" + printable(tag) + "', which is not there");
        // A tag folder that is a link could lead anywhere: followed only when it stays inside.
        const fs::path canonicalDir = fs::weakly_canonical(m_dir, ec);
        const fs::path canonicalTarget = fs::weakly_canonical(target, ec);
        if (ec || canonicalTarget.parent_path() != canonicalDir)
            fail("'latest' names '" + printable(tag) + "', which leads out of the folder; it is not followed");
        if (!isDir(target))
            fail("'latest' names '" + printable(tag) + "', which is not a folder");
        addPart("latest", latest, "DeepSpeed's pointer to the last tag ('" + tag + "')");
        return target;
    }

    static std::string printable(const std::string &s)
    {
        std::string out;
        for (unsigned char c : s)
            out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
        return out;
    }

    bool chooseHuggingFace()
    {
        for (const char *name : kModelFiles)
            if (isFile(m_dir / name)) {
                m_out.layout = "Hugging Face";
                chooseModel(name, m_dir / name,
                            std::string(name).ends_with(".index.json") ? "model weights (shard index)"
                                                                       : "model weights");
                // The other format of the same weights, saved too: listed, not read.
                for (const char *other : kModelFiles)
                    if (other != name && isFile(m_dir / other))
                        addPart(other, m_dir / other, "model weights in another format (not read)");
                for (const char *adapter : kAdapterFiles)
                    if (isFile(m_dir / adapter))
                        addPart(adapter, m_dir / adapter, "adapter weights (PEFT)");
                return true;
            }
        for (const char *name : kAdapterFiles)
            if (isFile(m_dir / name)) {
                m_out.layout = "Hugging Face (PEFT adapter)";
                chooseModel(name, m_dir / name, "adapter weights (PEFT)");
                for (const char *other : kAdapterFiles)
                    if (other != name && isFile(m_dir / other))
                        addPart(other, m_dir / other, "adapter weights in another format (not read)");
                return true;
            }
        return false;
    }

    // mp_rank_00_model_states.pt (the lowest model-parallel rank) of a DeepSpeed tag folder.
    bool chooseDeepSpeedModel(const fs::path &dir, const std::string &prefix, const Listing &listing)
    {
        static const std::regex modelStates(R"(mp_rank_\d+_model_states\.pt)");
        for (const auto &f : listing.files)  // sorted: mp_rank_00 first
            if (std::regex_match(f, modelStates)) {
                chooseModel(prefix + f, dir / f, "DeepSpeed model states");
                addDeepSpeedFiles(dir, prefix, listing, f);
                return true;
            }
        return false;
    }

    void addDeepSpeedFiles(const fs::path &dir, const std::string &prefix, const Listing &listing,
                           const std::string &chosen)
    {
        static const std::regex modelStates(R"((.*_)?mp_rank_\d+_model_states\.pt)");
        static const std::regex optimStates(R"(.*_optim_states\.pt)");
        for (const auto &f : listing.files) {
            if (f == chosen)
                continue;
            if (std::regex_match(f, optimStates))
                addPart(prefix + f, dir / f, "DeepSpeed optimizer states (ZeRO partition)");
            else if (std::regex_match(f, modelStates))
                addPart(prefix + f, dir / f, "DeepSpeed model states of another rank (not read)");
        }
        if (!prefix.empty())  // a tag folder: its other pickles too (the folder's own come with its parts)
            addOtherPickles(dir, prefix, listing);
    }

    void chooseSingleFile(const Listing &top)
    {
        std::vector<std::string> candidates;
        for (const auto &f : top.files)
            if (isCheckpointExtension(f) && !isRoleFile(f))
                candidates.push_back(f);
        if (candidates.size() == 1) {
            m_out.layout = "single checkpoint file";
            chooseModel(candidates[0], m_dir / candidates[0], "checkpoint");
            return;
        }
        if (candidates.size() > 1)
            fail("the folder holds " + std::to_string(candidates.size()) + " checkpoint files (" +
                 boundedList(candidates) + "); name the one to open");
        // Nothing here: the run's output folder holds its checkpoints in subfolders.
        if (const auto runs = runCheckpoints(top); !runs.empty()) {
            std::vector<std::string> names;
            for (const auto &r : runs)
                names.push_back(r.second);
            fail("no checkpoint file in the folder itself; it is a training run's output folder, which holds " +
                 std::to_string(runs.size()) + (runs.size() == 1 ? " checkpoint folder (" : " checkpoint folders (") +
                 boundedList(names) + "): open one of them (the last is " +
                 (fs::path(m_dirText) / names.back()).string() + "), or follow the run across them with: ckpt series " +
                 m_dirText);
        }
        fail("no checkpoint file in the folder (looked for model.safetensors, pytorch_model.bin, their shard "
             "indexes, adapter_model.*, DeepSpeed's 'latest' and mp_rank_*_model_states.pt, and files ending "
             ".pth .pt .ckpt .bin .tar .safetensors" +
             (top.more ? " among the first " + std::to_string(FolderLimits::kMaxEntries) + " entries: name the file"
                       : std::string()) +
             ")");
    }

    void addKnownParts(const fs::path &dir, const std::string &prefix, const Listing &listing)
    {
        for (const auto &k : kKnownParts)
            if (isFile(dir / k.name))
                addPart(prefix + k.name, dir / k.name, k.role);
        static const std::regex rng(R"(rng_state(_\d+)?\.pth)");
        for (const auto &f : listing.files)
            if (std::regex_match(f, rng))
                addPart(prefix + f, dir / f, "random number generator state");
        addOtherPickles(dir, prefix, listing);
    }

    // Every other file whose name says torch.save (or pickle) wrote it: a script may load it, so it
    // is listed and scanned though its role is unknown.
    void addOtherPickles(const fs::path &dir, const std::string &prefix, const Listing &listing)
    {
        if (listing.more)
            m_out.entriesCut = true;
        for (const auto &f : listing.files)
            if (isPickledPart(FolderPart{f, {}, {}, {}, false, {}}))
                addPart(prefix + f, dir / f, pickleRole(prefix + f));
    }

    // transformers names the shards of pytorch_model.bin.index.json "pytorch_model-00001-of-00002.bin":
    // read through the index when that is the model file, else the weights in another format.
    std::string pickleRole(const std::string &name) const
    {
        static const std::regex shard(R"(pytorch_model-\d+-of-\d+\.bin)");
        if (!std::regex_match(name, shard))
            return "pickled file of unknown role (not read)";
        return m_out.modelName == "pytorch_model.bin.index.json" ? "shard of the model weights (read through the index)"
                                                                 : "shard of the model weights in another format (not read)";
    }

    void readTrainerStateIfAny()
    {
        const fs::path state = m_dir / "trainer_state.json";
        if (!isFile(state))
            return;
        try {
            m_out.trainerState = readTrainerState(state.string());
        } catch (const FormatError &e) {
            m_out.notes.push_back(e.what());
        }
    }
};

std::optional<double> numberOf(const nlohmann::ordered_json &j)
{
    if (j.is_number())
        return j.get<double>();
    // parseOrderedJson tags NaN and the infinities Python writes.
    if (j.is_object() && j.size() == 1 && j.contains("__float__") && j["__float__"].is_string()) {
        const auto &t = j["__float__"].get_ref<const std::string &>();
        if (t == "nan")
            return std::nan("");
        if (t == "inf")
            return INFINITY;
        if (t == "-inf")
            return -INFINITY;
    }
    return std::nullopt;
}

std::optional<std::int64_t> integerOf(const nlohmann::ordered_json &j)
{
    // A count past int64 (json reads 2^64 - 1 as unsigned) is no step this reader can show.
    if (j.is_number_unsigned())
        return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX)
                   ? std::optional<std::int64_t>(static_cast<std::int64_t>(j.get<std::uint64_t>()))
                   : std::nullopt;
    if (j.is_number_integer())
        return j.get<std::int64_t>();
    if (j.is_number_float()) {
        const double d = j.get<double>();
        if (std::isfinite(d) && std::abs(d) < 9e15 && d == std::floor(d))
            return static_cast<std::int64_t>(d);
    }
    return std::nullopt;
}

} // namespace

std::optional<double> TrainerState::lastLoss() const
{
    for (auto it = log.rbegin(); it != log.rend(); ++it)
        if (it->loss)
            return it->loss;
    return std::nullopt;
}

std::optional<double> TrainerState::lastEvalLoss() const
{
    for (auto it = log.rbegin(); it != log.rend(); ++it)
        if (it->evalLoss)
            return it->evalLoss;
    return std::nullopt;
}

bool isPickledPart(const FolderPart &part)
{
    if (part.role == "optimizer state" || part.role == "learning-rate scheduler state" ||
        part.role.starts_with("DeepSpeed optimizer states"))
        return true;
    for (const char *ext : {".pt", ".pth", ".bin", ".ckpt", ".pkl", ".tar"})
        if (part.name.ends_with(ext))
            return true;
    return false;
}

const FolderPart *folderOptimizerPart(const CheckpointFolder &folder)
{
    for (const auto &p : folder.parts)
        if (p.role == "optimizer state")
            return &p;
    return nullptr;
}

std::shared_ptr<const Document> withFolderOptimizer(const Document &doc)
{
    if (!doc.folder || doc.optimizer)
        return nullptr;
    const FolderPart *part = folderOptimizerPart(*doc.folder);
    if (!part)
        return nullptr;
    // Read as any checkpoint is: its structure, no tensor data (the norms are computed on demand).
    Document state = readDocument(part->path);
    if (!state.optimizer)
        throw FormatError(part->path + ": no optimizer state in it (a dict with 'state' and 'param_groups', as "
                                       "optimizer.state_dict() gives it)");
    auto out = std::make_shared<Document>(doc);
    out->optimizer = state.optimizer;
    out->optimizerPath = state.optimizerPath;
    // The state's values and tensor records live in the part's own file, arenas and buffers.
    if (state.file)
        out->extraFiles.push_back(state.file);
    out->extraFiles.insert(out->extraFiles.end(), state.extraFiles.begin(), state.extraFiles.end());
    out->ownedBuffers.insert(out->ownedBuffers.end(), state.ownedBuffers.begin(), state.ownedBuffers.end());
    out->arenas.insert(out->arenas.end(), state.arenas.begin(), state.arenas.end());
    return out;
}

std::optional<RunFolder> findRunFolder(const std::string &dir, bool besideModel)
{
    try {
        if (resolveCheckpointFolder(dir).runCheckpoints.empty() || !besideModel)
            return std::nullopt;  // a checkpoint of its own: not taken for a run
    } catch (const std::exception &) {
        // No single checkpoint here: a run's folders, maybe.
    }
    const Listing top = listFolder(fs::path(dir));
    const auto runs = runCheckpoints(top);
    if (runs.empty())
        return std::nullopt;
    RunFolder out;
    out.folder = dir;
    out.found = runs.size();
    out.entriesCut = top.more;
    // Bounded: each checkpoint's trainer_state.json is read, and a series reads each checkpoint.
    for (std::size_t i = 0; i < runs.size() && i < FolderLimits::kMaxRunCheckpoints; ++i) {
        RunFolder::Checkpoint c;
        c.number = runs[i].first;
        c.name = runs[i].second;
        c.path = (fs::path(dir) / c.name).string();
        const fs::path state = fs::path(c.path) / "trainer_state.json";
        if (isFile(state))
            try {
                const TrainerState t = readTrainerState(state.string());
                c.globalStep = t.globalStep;
                c.epoch = t.epoch;
                c.lastLoss = t.lastLoss();
            } catch (const FormatError &) {
                // Ordered by the number in its name; opening it says what is wrong with the file.
            }
        out.checkpoints.push_back(std::move(c));
    }
    const bool allSteps = std::all_of(out.checkpoints.begin(), out.checkpoints.end(),
                                      [](const RunFolder::Checkpoint &c) { return c.globalStep.has_value(); });
    if (allSteps)
        std::stable_sort(out.checkpoints.begin(), out.checkpoints.end(),
                         [](const RunFolder::Checkpoint &a, const RunFolder::Checkpoint &b) {
                             return *a.globalStep < *b.globalStep;
                         });
    return out;
}

bool isFolder(const std::string &path) { return !path.empty() && isDir(fs::path(path)); }

CheckpointFolder resolveCheckpointFolder(const std::string &dir) { return Resolver(dir).resolve(); }

TrainerState parseTrainerState(std::string_view text)
{
    const auto j = parseOrderedJson(text, PickleLimits::kMaxDepth + 1);
    if (j.is_discarded())
        throw FormatError("not JSON, or nested deeper than " + std::to_string(PickleLimits::kMaxDepth) + " levels");
    if (!j.is_object())
        throw FormatError("not a JSON object, as TrainerState.save_to_json writes");
    TrainerState s;
    if (j.contains("global_step"))
        s.globalStep = integerOf(j["global_step"]);
    if (j.contains("max_steps"))
        s.maxSteps = integerOf(j["max_steps"]);
    if (j.contains("epoch"))
        s.epoch = numberOf(j["epoch"]);
    if (j.contains("best_metric"))
        s.bestMetric = numberOf(j["best_metric"]);
    if (j.contains("best_model_checkpoint") && j["best_model_checkpoint"].is_string())
        s.bestModelCheckpoint = j["best_model_checkpoint"].get<std::string>();
    if (j.contains("log_history") && j["log_history"].is_array())
        for (const auto &e : j["log_history"]) {
            if (!e.is_object() || !e.contains("step"))
                continue;
            const auto step = integerOf(e["step"]);
            if (!step)
                continue;
            TrainerState::LogPoint p;
            p.step = *step;
            if (e.contains("loss"))
                p.loss = numberOf(e["loss"]);
            if (e.contains("eval_loss"))
                p.evalLoss = numberOf(e["eval_loss"]);
            if (e.contains("epoch"))
                p.epoch = numberOf(e["epoch"]);
            if (e.contains("learning_rate"))
                p.learningRate = numberOf(e["learning_rate"]);
            if (p.loss || p.evalLoss)
                s.log.push_back(p);
        }
    return s;
}

TrainerState readTrainerState(const std::string &path)
{
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (!ec && size > FolderLimits::kMaxTrainerStateBytes)
        throw FormatError(path + ": " + std::to_string(size) + " bytes, more than the " +
                          std::to_string(FolderLimits::kMaxTrainerStateBytes >> 20) +
                          " MiB read for a trainer state; not read");
    try {
        const auto mapped = MappedFile::open(path);
        const auto b = mapped->bytes();
        if (b.size() > FolderLimits::kMaxTrainerStateBytes)  // grew since
            throw FormatError("larger than the " + std::to_string(FolderLimits::kMaxTrainerStateBytes >> 20) +
                              " MiB read for a trainer state; not read");
        return parseTrainerState(std::string_view(reinterpret_cast<const char *>(b.data()), b.size()));
    } catch (const FormatError &e) {
        throw FormatError(path + ": " + e.what());
    }
}

} // namespace ckpt
