#include "document.h"
#include "jsonexport.h"

#include "checkpointfolder.h"
#include "inferencemeta.h"
#include "optimizermap.h"

#include "error.h"
#include "mappedfile.h"
#include "pythonrepr.h"
#include "textcodec.h"
#include "safetensorsreader.h"
#include "security.h"
#include "tararchive.h"
#include "valuetree.h"
#include "ziparchive.h"

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <cstring>
#include <filesystem>
#include <regex>
#include <limits>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string_view>

namespace ckpt {

namespace {

constexpr std::string_view kLegacyMagic = "119547037146038801333356";  // 0x1950a86a20f9469cfc6c
constexpr std::int64_t kLegacyProtocolVersion = 1001;

std::string_view asText(std::span<const std::uint8_t> b, std::size_t n)
{
    return {reinterpret_cast<const char *>(b.data()), std::min(n, b.size())};
}

// Says what a file that is not a checkpoint looks like.
std::string describeUnknown(std::span<const std::uint8_t> d)
{
    if (d.empty())
        return "the file is empty";
    const auto head = asText(d, 512);
    if (head.starts_with("version https://git-lfs"))
        return "this is a git-lfs pointer file, not the checkpoint itself (run `git lfs pull`)";
    std::string lower(head);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("<!doctype html") != std::string::npos || lower.find("<html") != std::string::npos)
        return "this is an HTML page (a failed download?), not a checkpoint";
    if (d.size() >= 2 && d[0] == 0x1f && d[1] == 0x8b)
        return "this is a gzip-compressed file; decompress it first";
    if (d.size() >= 4 && std::memcmp(d.data(), "\x89HDF", 4) == 0)
        return "this is an HDF5 file (Keras?), not a PyTorch checkpoint";
    if (head.starts_with("{") || head.starts_with("["))
        return "this is a JSON text file, not a checkpoint";
    const bool text = std::all_of(head.begin(), head.end(), [](unsigned char c) {
        return c == '\n' || c == '\r' || c == '\t' || (c >= 0x20 && c < 0x7f) || c >= 0x80;
    });
    if (text)
        // Quoted as Python would (a newline as \n, a character cut at byte 40 not left half): the
        // message stays one line.
        return "this is a text file, not a checkpoint (starts with " + pythonStringRepr(head, 40) + ")";
    return "unrecognised format: not a zip archive, a pickle, a tar archive or safetensors (first bytes " +
           hexPreview(head, 8) + ")";
}

constexpr std::size_t kMaxStorageKeyBytes = 1024;

std::shared_ptr<StorageRef> storageFromPid(const std::vector<ValuePtr> &pid, std::string &key, std::uint64_t offset)
{
    auto fail = [offset](const std::string &what) -> void {
        throw FormatError("pickle offset " + std::to_string(offset) + ": storage persistent id " + what);
    };
    if (pid.size() < 5)
        fail("has " + std::to_string(pid.size()) + " fields, expected at least 5");
    const auto &type = pid[1];
    if (!type || type->kind() != Value::Kind::Global)
        fail("has no storage type");
    if (!pid[2] || !(pid[2]->isString() || pid[2]->isInt()))
        fail("has no key");
    // torch names a storage by a short number ("0", or its address in legacy files). Each persistent
    // id copies its key and looks it up: a pickle's memo can hand one long key to any number of them.
    if (pid[2]->isString() && pid[2]->text().size() > kMaxStorageKeyBytes)
        fail("has a key of " + std::to_string(pid[2]->text().size()) + " bytes (at most " +
             std::to_string(kMaxStorageKeyBytes) + "; torch writes a short number)");
    key = pid[2]->isString() ? pid[2]->text() : std::to_string(pid[2]->asInt());
    auto ref = makeStorageRef();
    ref->key = key;
    // torch >= 2.0 names the byte storage of the newer dtypes torch.storage.UntypedStorage.
    if ((type->text() == "torch.storage" || type->text() == "torch") && type->name() == "UntypedStorage") {
        ref->dtype = DType::UInt8;
        ref->untyped = true;
    } else if (type->text() == "torch" || type->text() == "torch.cuda") {
        if (auto dt = dtypeFromStorageClass(type->name()))
            ref->dtype = *dt;
    }
    if (ref->dtype == DType::Unknown)
        fail("names an unknown storage type " + type->qualifiedName());
    if (pid[3] && pid[3]->isString())
        ref->location = pid[3]->text();
    if (pid[4] && pid[4]->isInt())
        ref->declaredNumel = pid[4]->asInt();
    if (ref->declaredNumel < 0)
        fail("declares a negative size");
    return ref;
}

class Reader {
public:
    Reader(Document &doc, const ReadOptions &opts) : m_doc(doc), m_opts(opts) {}

    void read()
    {
        try {
            readContainer();
        } catch (const ReadFailure &e) {  // a shard's: what it named is kept
            std::vector<GlobalUse> named = m_machine.globals();
            named.insert(named.end(), e.globals.begin(), e.globals.end());
            throw ReadFailure(e.what(), std::move(named), e.hazards);
        } catch (const FormatError &e) {
            throw ReadFailure(e.what(), m_machine.globals());
        }
    }

private:
    void readContainer()
    {
        const auto data = m_doc.file->bytes();
        if (ZipArchive::looksLikeZip(data)) {
            readZip(data);
        } else if (TarArchive::looksLikeTar(data)) {
            try {
                readTar(data);
            } catch (const TarArchive::NotATar &e) {
                // As torch.load does when tarfile refuses the archive: a pickle from the first byte.
                m_doc.anomalies.push_back(std::string(e.what()) + "; read so here too");
                readPickleStream(data);
            }
        } else if (looksLikeSafetensors(data)) {
            // Its JSON header is read in order; the mapping is opened for random reads.
            std::uint64_t header = 0;
            for (int i = 7; i >= 0; --i)
                header = (header << 8) | data[static_cast<std::size_t>(i)];
            prefetchMapped(data.first(static_cast<std::size_t>(std::min<std::uint64_t>(header, data.size() - 8) + 8)));
            readSafetensors(m_doc, data);
        } else if (looksLikeShardIndex(data)) {
            m_doc.file->setAccess(MappedFile::Access::Normal);  // JSON, read whole
            readShardIndex(m_doc, data, m_opts);
        } else if (!data.empty() && (data[0] == 0x80 || data[0] == '(' || data[0] == '}' || data[0] == ']' ||
                                     data[0] == 'c' || data[0] == 'L' || data[0] == 'I')) {
            readPickleStream(data);
        } else {
            throw FormatError(describeUnknown(data));
        }
        // Appended: a shard index already holds what its shards' pickles named.
        const auto globals = m_machine.globals();  // returned by value
        const auto opcodes = m_machine.opcodes();
        m_doc.globals.insert(m_doc.globals.end(), globals.begin(), globals.end());
        m_doc.opcodes.insert(m_doc.opcodes.end(), opcodes.begin(), opcodes.end());
        m_doc.arenas.push_back(m_machine.arena());
        m_doc.warnings.insert(m_doc.warnings.end(), m_machine.warnings().begin(), m_machine.warnings().end());
    }

private:
    Document &m_doc;
    const ReadOptions &m_opts;
    PickleMachine m_machine;

    // What follows a pickle's STOP: another pickle, a zip archive, or just bytes.
    static std::string trailingDataNote(const std::string &after, std::span<const std::uint8_t> rest)
    {
        std::string what = std::to_string(rest.size()) + " bytes follow " + after;
        if (ZipArchive::looksLikeZip(rest))
            what += ": a zip archive is appended";
        else if (!rest.empty() && rest[0] == 0x80)
            what += ": they look like a second pickle";
        return what;
    }

    void setProgress(double from, double to)
    {
        if (!m_opts.progress)
            return;
        m_machine.setProgress([this, from, to](double f) { return m_opts.progress(from + (to - from) * f); });
    }

    // --- torch zip -------------------------------------------------------------------------
    void readZip(std::span<const std::uint8_t> data)
    {
        // Shared from the start: storages read lazily keep it, and a copy of a 20,000-record index
        // cost as much as building it.
        const auto shared = std::make_shared<const ZipArchive>(data);
        const ZipArchive &zip = *shared;
        m_doc.anomalies = zip.anomalies();
        const auto *pkl = zip.find("data.pkl");
        const bool script = zip.find("constants.pkl") != nullptr;
        if (!pkl && zip.find("model.json")) {
            readTorchScriptJson(zip, data);
            return;
        }
        if (!pkl) {
            if (const auto *bytecode = zip.find("bytecode.pkl")) {
                scanBytecodeGlobals(zip, shared, *bytecode, data);  // kept with the error below
                throw FormatError("this is a TorchScript mobile (lite interpreter) export without data.pkl; "
                                  "that layout is not supported yet");
            }
            if (zip.find(".data/version"))
                throw FormatError("this is a torch.package archive; that format is not supported yet");
            throw FormatError("zip archive without a data.pkl record: not a torch.save checkpoint (records: " +
                              entryList(zip) + ")");
        }
        m_doc.format = script ? ContainerFormat::TorchScript : ContainerFormat::TorchZip;
        std::string version;
        if (const auto *v = zip.find("version")) {
            auto b = zip.read(*v);
            version = std::string(asText(b.bytes, 32));
            while (!version.empty() && (version.back() == '\n' || version.back() == '\r'))
                version.pop_back();
        }
        if (const auto *bo = zip.find("byteorder")) {
            auto b = zip.read(*bo);
            // torch.save writes sys.byteorder; torch.load of 2.1 and later refuses any other value,
            // 1.13 ignores the record. Said as an anomaly, and the file is read on (little-endian, as
            // 1.13 does): refusing it here would hide what its pickle names from the scan.
            const auto order = asText(b.bytes, 64);
            if (order != "little" && order != "big")
                m_doc.anomalies.push_back("record '" + bo->name + "' says the byte order is '" + displayText(order) +
                                          "', neither 'little' nor 'big': torch.load of PyTorch 2.1 and later "
                                          "refuses the file (Unknown endianness type), 1.13 ignores the record "
                                          "and reads it little-endian, as this reader does");
            m_bigEndian = order == "big";
        }
        std::string records;  // torch 2.x bookkeeping records, shown in the format detail
        for (const char *r : {".format_version", ".storage_alignment"})
            if (const auto *e = zip.find(r)) {
                auto b = zip.read(*e);
                std::string v(asText(b.bytes, 16));
                while (!v.empty() && (v.back() == '\n' || v.back() == '\r'))
                    v.pop_back();
                records += std::string(", ") + (r + 1) + " " + v;
            }
        if (zip.find(".data/serialization_id"))
            records += ", serialization id";
        if (m_bigEndian)
            records += ", big-endian storages (swapped on read)";
        const bool mobile = zip.find("bytecode.pkl") != nullptr;
        m_doc.formatDetail = std::string(script ? (mobile ? "TorchScript archive with a mobile (lite interpreter) export"
                                                          : "TorchScript archive")
                                                : "torch zip archive") +
                             (version.empty() ? "" : ", version " + version) + records + ", records under '" +
                             zip.prefix() + "'";
        if (script)
            for (const auto &e : zip.entries())
                if (e.name.compare(0, zip.prefix().size() + 5, zip.prefix() + "code/") == 0 && e.name.ends_with(".py")) {
                    m_doc.sourceRecords.push_back(e.name.substr(zip.prefix().size()));
                    readClassDeclarations(zip, e);
                }
        m_doc.root = runZipPickle(zip, shared, *pkl, "data/", data, true);
        // TorchScript keeps frozen weights and other constants in constants.pkl.
        if (const auto *constants = script ? zip.find("constants.pkl") : nullptr)
            m_doc.constants = runZipPickle(zip, shared, *constants, "constants/", data, false);
        if (const auto *bytecode = mobile ? zip.find("bytecode.pkl") : nullptr)
            scanBytecodeGlobals(zip, shared, *bytecode, data);
        keepOwnedBuffers();
    }

    // A mobile export's bytecode.pkl (the methods' instructions) is read only for the globals it
    // names, which the security report lists as it does data.pkl's: the lite interpreter
    // unpickles it too. Its value is not shown; a fault in it is a note, not a failed read, and
    // what it named up to the fault is kept. Its tensors are constants/ records, as constants.pkl's.
    void scanBytecodeGlobals(const ZipArchive &zip, const std::shared_ptr<const ZipArchive> &zipShared,
                             const ZipArchive::Entry &bytecode, std::span<const std::uint8_t> data)
    {
        try {
            runZipPickle(zip, zipShared, bytecode, "constants/", data, false);
        } catch (const FormatError &e) {
            m_doc.anomalies.push_back(std::string(e.what()) + " (read only for the globals it names)");
        }
    }

    // A code record's module classes' __parameters__ and __buffers__ lines (nothing else of it is
    // read). The source inflated for this is capped: past the cap, or where a record does not
    // inflate, its classes are missing and the state dict is named as without declarations.
    static constexpr std::uint64_t kMaxSourceBytes = 64ull << 20;
    std::uint64_t m_sourceBytes = 0;
    void readClassDeclarations(const ZipArchive &zip, const ZipArchive::Entry &e)
    {
        if (e.size > kMaxSourceBytes - m_sourceBytes) {
            m_doc.scriptClasses.truncated = true;
            return;
        }
        m_sourceBytes += e.size;
        try {
            auto b = zip.read(e);
            readScriptClasses(std::string_view(reinterpret_cast<const char *>(b.bytes.data()), b.bytes.size()),
                              std::string_view(e.name).substr(zip.prefix().size()), m_doc.scriptClasses);
        } catch (const FormatError &) {
            m_doc.scriptClasses.truncated = true;  // the code is not needed to list the weights
        }
    }

    // TorchScript of torch 1.0-1.2: model.json describes modules, parameters and tensors (strings
    // for numbers, as protobuf's JSON writes them); attributes.pkl holds attribute values, tensors
    // among them as torch.jit._pickle.build_tensor_from_id(index).
    void readTorchScriptJson(const ZipArchive &zip, std::span<const std::uint8_t> data)
    {
        using json = nlohmann::json;
        m_doc.format = ContainerFormat::TorchScript;
        const auto *model = zip.find("model.json");
        auto mb = zip.read(*model);
        if (mb.owned)
            m_owned.push_back(mb.owned);
        json j;
        try {
            j = json::parse(mb.bytes.begin(), mb.bytes.end());
        } catch (const json::exception &e) {
            throw FormatError("record 'model.json' is not valid JSON: " + std::string(e.what()));
        }
        auto number = [](const json &v, const std::string &what) -> std::int64_t {
            try {
                if (v.is_number_integer())
                    return v.get<std::int64_t>();
                if (v.is_string())
                    return std::stoll(v.get<std::string>());
            } catch (const std::exception &) {
            }
            throw FormatError("model.json: " + what + " is not an integer");
        };
        static const std::map<std::string, DType> types{
            {"FLOAT", DType::Float32}, {"DOUBLE", DType::Float64}, {"FLOAT16", DType::Float16},
            {"INT64", DType::Int64},   {"INT32", DType::Int32},    {"INT16", DType::Int16},
            {"INT8", DType::Int8},     {"UINT8", DType::UInt8},    {"BOOL", DType::Bool}};
        std::vector<ValuePtr> tensors;
        if (j.contains("tensors") && j["tensors"].is_array())
            for (const auto &t : j["tensors"]) {
                auto ref = std::make_shared<TensorRef>();
                const std::string type = t.value("dataType", "FLOAT");
                auto it = types.find(type);
                if (it == types.end())
                    throw FormatError("model.json: tensor of unsupported dataType " + type);
                ref->dtype = it->second;
                for (const auto &d : t.value("dims", json::array()))
                    ref->shape.push_back(number(d, "tensor dims"));
                for (const auto &d : t.value("strides", json::array()))
                    ref->strides.push_back(number(d, "tensor strides"));
                ref->storageOffset = t.contains("offset") ? number(t["offset"], "tensor offset") : 0;
                ref->requiresGrad = t.value("requiresGrad", false);
                ref->rebuild = "model.json";
                const std::string key = t.contains("data") ? t["data"].value("key", "") : "";
                auto &storage = m_doc.storages[key];
                if (!storage) {
                    storage = std::make_shared<StorageRef>();
                    storage->key = key;
                    storage->dtype = ref->dtype;
                    storage->location = t.value("device", "cpu");
                    if (const auto *rec = zip.find(key); rec && rec->method == 0)
                        storage->setBytes(zip.read(*rec).bytes);
                    else
                        storage->problem = "tensor record '" + key + "' is missing or compressed";
                }
                ref->storage = storage;
                tensors.push_back(Value::tensor(ref));
            }
        // attributes.pkl: a list of attribute values.
        ValuePtr attributes;
        if (const auto *a = zip.find("attributes.pkl")) {
            auto ab = zip.read(*a);
            if (ab.owned)
                m_owned.push_back(ab.owned);
            m_machine.setBaseOffset(ab.owned ? 0 : static_cast<std::uint64_t>(ab.bytes.data() - data.data()));
            try {
                attributes = m_machine.run(ab.bytes).value;
            } catch (const FormatError &e) {
                throw FormatError("record 'attributes.pkl': " + std::string(e.what()));
            }
        }
        auto tensorAt = [&tensors](std::int64_t i) -> ValuePtr {
            return i >= 0 && static_cast<std::size_t>(i) < tensors.size() ? tensors[static_cast<std::size_t>(i)] : nullptr;
        };
        auto attributeAt = [&](std::int64_t i) -> ValuePtr {
            if (!attributes || !attributes->isSequence() || i < 0 || static_cast<std::size_t>(i) >= attributes->items().size())
                return nullptr;
            ValuePtr v = attributes->items()[static_cast<std::size_t>(i)];
            if (className(*v) == "torch.jit._pickle.build_tensor_from_id" && v->args() && v->args()->isSequence() &&
                !v->args()->items().empty() && v->args()->items()[0]->isInt())
                return tensorAt(v->args()->items()[0]->asInt());
            return v;
        };
        std::function<ValuePtr(const json &, std::uint32_t)> module = [&](const json &m, std::uint32_t depth) -> ValuePtr {
            if (depth > PickleLimits::kMaxDepth)
                throw FormatError("model.json: modules nest deeper than the limit");
            auto attrs = Value::dict();
            for (const auto &p : m.value("parameters", json::array()))
                if (auto t = tensorAt(number(p.value("tensorId", json("-1")), "tensorId")))
                    attrs->entries().push_back({Value::string(p.value("name", "?")), t});
            for (const auto &a : m.value("attributes", json::array()))
                if (auto v = attributeAt(number(a.value("id", json("-1")), "attribute id")))
                    attrs->entries().push_back({Value::string(a.value("name", "?")), v});
            for (const auto &sub : m.value("submodules", json::array())) {
                auto child = module(sub, depth + 1);
                attrs->noteChild(child);
                attrs->entries().push_back({Value::string(sub.value("name", "?")), child});
            }
            auto obj = Value::object(Value::global("__torch__", m.value("name", "module")), Value::tuple());
            obj->setBuiltByNew(true);
            obj->setState(attrs);
            obj->noteChild(attrs);
            return obj;
        };
        m_doc.root = module(j.value("mainModule", json::object()), 0);
        m_doc.formatDetail = "TorchScript archive of torch 1.0-1.2 (model.json, producer " +
                             j.value("producerVersion", std::string("?")) + "), records under '" + zip.prefix() + "'";
        keepOwnedBuffers();
    }

    // Runs one pickle of the archive; its storages are records under `recordPrefix`.
    ValuePtr runZipPickle(const ZipArchive &zip, const std::shared_ptr<const ZipArchive> &zipShared,
                          const ZipArchive::Entry &pkl, const std::string &recordPrefix,
                          std::span<const std::uint8_t> data, bool main)
    {
        m_machine.setPersistentLoad([this, &zip, zipShared, recordPrefix](const ValuePtr &pid, std::uint64_t offset) {
            return loadZipStorage(zip, zipShared, recordPrefix, pid, offset);
        });
        auto pb = zip.read(pkl);
        if (pb.owned)
            m_owned.push_back(pb.owned);
        else
            prefetchMapped(pb.bytes);  // parsed in order; the mapping is set for random reads
        m_machine.setBaseOffset(pb.owned ? 0 : static_cast<std::uint64_t>(pb.bytes.data() - data.data()));
        if (main)
            setProgress(0.0, 1.0);
        try {
            auto r = m_machine.run(pb.bytes);
            if (main)
                m_doc.pickleProtocol = r.protocol;
            if (r.end < pb.bytes.size())
                m_doc.anomalies.push_back(trailingDataNote(pkl.name, pb.bytes.subspan(r.end)));
            return r.value;
        } catch (const FormatError &e) {
            throw FormatError("record '" + pkl.name + "': " + e.what());
        }
    }

    ValuePtr loadZipStorage(const ZipArchive &zip, const std::shared_ptr<const ZipArchive> &zipShared,
                            const std::string &recordPrefix, const ValuePtr &pid, std::uint64_t offset)
    {
        if (!pid->isSequence() || pid->items().empty() || !pid->items()[0]->isString() ||
            pid->items()[0]->text() != "storage")
            throw FormatError("pickle offset " + std::to_string(offset) + ": unsupported persistent id " +
                              (pid->isSequence() && !pid->items().empty() ? keyText(*pid->items()[0])
                                                                          : pid->typeName()));
        std::string key;
        auto fresh = storageFromPid(pid->items(), key, offset);
        const std::string record = recordPrefix + key;
        // Storages are shared by key within one pickle's namespace (data/ or constants/). One
        // search finds it or where it goes.
        const auto it = m_doc.storages.lower_bound(record);
        if (it != m_doc.storages.end() && it->first == record)
            return Value::storage(it->second);
        const auto *rec = zip.find(record);
        const std::size_t unit = dtypeIsComplex(fresh->dtype) ? dtypeSize(fresh->dtype) / 2 : dtypeSize(fresh->dtype);
        if (!rec) {
            fresh->problem = "storage record '" + record + "' is missing from the archive";
        } else if (m_bigEndian && unit > 1) {
            // Written on a big-endian machine: the numbers are produced byte-swapped on first use.
            fresh->setLoader(rec->size, [zip = zipShared, entry = *rec, file = m_doc.file, unit]() {
                auto rb = zip->read(entry);
                auto swapped = std::make_shared<std::vector<std::uint8_t>>(rb.bytes.begin(), rb.bytes.end());
                for (std::size_t off = 0; off + unit <= swapped->size(); off += unit)
                    std::reverse(swapped->begin() + static_cast<std::ptrdiff_t>(off),
                                 swapped->begin() + static_cast<std::ptrdiff_t>(off + unit));
                return std::shared_ptr<const std::vector<std::uint8_t>>(swapped);
            });
            checkDeclaredSize(*fresh);
        } else if (rec->method == 0) {
            try {
                fresh->setBytes(zip.read(*rec).bytes);
                checkDeclaredSize(*fresh);
            } catch (const FormatError &e) {
                fresh->problem = e.what();
            }
        } else {
            // A deflated record (a re-zipped file) is inflated when its numbers are first needed,
            // never at open. The closure keeps the mapping alive.
            fresh->setLoader(rec->size, [zip = zipShared, entry = *rec, file = m_doc.file]() { return zip->read(entry).owned; });
            checkDeclaredSize(*fresh);
        }
        m_doc.storages.emplace_hint(it, record, fresh);
        return Value::storage(fresh);
    }

    void checkDeclaredSize(StorageRef &s)
    {
        std::uint64_t need = 0;
        const bool overflows = __builtin_mul_overflow(static_cast<std::uint64_t>(s.declaredNumel), dtypeSize(s.dtype), &need);
        if (s.declaredNumel > 0 && (overflows || s.byteSize < need))
            m_doc.warnings.push_back("storage '" + s.key + "' declares " + std::to_string(s.declaredNumel) +
                                     " elements but its record holds " + std::to_string(s.byteSize) + " bytes");
    }

    static std::string entryList(const ZipArchive &zip)
    {
        std::string s;
        for (std::size_t i = 0; i < zip.entries().size() && i < 8; ++i)
            s += (i ? ", " : "") + displayText(zip.entries()[i].name);
        if (zip.entries().size() > 8)
            s += ", …";
        return s;
    }

    bool m_bigEndian = false;  // the archive's byteorder record says "big"

    // Inflated records must outlive the reader: the document's mapping owns them from here.
    std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> m_owned;
    void keepOwnedBuffers() { m_doc.ownedBuffers = std::move(m_owned); }

    // --- torch 0.1.x tar ----------------------------------------------------------------------
    // Members: sys_info, storages (count; per storage (key, location, type), int64 count, bytes;
    // then the view list), tensors (count; per tensor (key, storage key, type), int32 ndim, 4 bytes
    // of padding, int64 sizes, strides and offset), and pickle, whose persistent ids name tensors
    // and storages by key, or modules by (class, source file, source).
    void readTar(std::span<const std::uint8_t> data)
    {
        TarArchive tar(data);
        m_doc.format = ContainerFormat::Tar;
        // torch.load extracts these three; sys_info it never reads.
        for (const char *name : {"storages", "tensors", "pickle"})
            if (!tar.find(name))
                throw FormatError(std::string("tar archive without a '") + name +
                                  "' member: not a torch 0.1.x checkpoint (members: " + tarMemberList(tar) + ")");
        if (!tar.find("sys_info"))
            m_doc.anomalies.push_back("tar archive without the 'sys_info' member torch 0.1.x writes (torch.load reads it "
                                      "without one; members: " + tarMemberList(tar) + ")");
        struct Cursor {
            std::span<const std::uint8_t> bytes;
            std::uint64_t base = 0;
            std::size_t pos = 0;
            std::string member;
        };
        auto cursorOf = [&](const char *name) {
            const auto *m = tar.find(name);
            return Cursor{tar.bytes(*m), m->offset, 0, name};
        };
        auto runAt = [this](Cursor &c) {
            m_machine.setBaseOffset(c.base + c.pos);
            try {
                auto r = m_machine.run(c.bytes.subspan(c.pos));
                c.pos += r.end;
                return r.value;
            } catch (const FormatError &e) {
                throw FormatError("tar member '" + c.member + "': " + e.what());
            }
        };
        auto readInt = [](Cursor &c, std::size_t width) -> std::int64_t {
            if (c.bytes.size() - c.pos < width)
                throw FormatError("tar member '" + c.member + "' ends at offset " + std::to_string(c.base + c.pos) +
                                  " (truncated?)");
            std::uint64_t u = 0;
            for (std::size_t i = width; i-- > 0;)
                u = (u << 8) | c.bytes[c.pos + i];
            c.pos += width;
            if (width == 4)
                return static_cast<std::int32_t>(static_cast<std::uint32_t>(u));
            return static_cast<std::int64_t>(u);
        };
        auto keyOf = [](const ValuePtr &v, const std::string &what) {
            if (v && v->isInt())
                return std::to_string(v->asInt());
            if (v && v->kind() == Value::Kind::BigInt)
                return v->text();
            if (v && v->isString())
                return v->text();
            throw FormatError(what + " key is a " + (v ? v->typeName() : std::string("null")));
        };
        auto countOf = [](const ValuePtr &v, const std::string &what) {
            if (!v || !v->isInt() || v->asInt() < 0)
                throw FormatError(what + " count is not a non-negative int");
            return v->asInt();
        };

        Cursor storages = cursorOf("storages");
        const auto nStorages = countOf(runAt(storages), "storage");
        for (std::int64_t i = 0; i < nStorages; ++i) {
            auto desc = runAt(storages);
            if (!desc->isSequence() || desc->items().size() < 3 || !desc->items()[2] ||
                desc->items()[2]->kind() != Value::Kind::Global)
                throw FormatError("tar member 'storages': storage " + std::to_string(i) +
                                  " is not described as (key, location, type)");
            auto s = std::make_shared<StorageRef>();
            s->key = keyOf(desc->items()[0], "storage");
            s->location = desc->items()[1] && desc->items()[1]->isString() ? desc->items()[1]->text() : "cpu";
            auto dt = dtypeFromStorageClass(desc->items()[2]->name());
            if (!dt)
                throw FormatError("tar member 'storages': unknown storage type " + desc->items()[2]->qualifiedName());
            s->dtype = *dt;
            const std::int64_t numel = readInt(storages, 8);
            std::uint64_t nbytes = 0;
            if (numel < 0 || __builtin_mul_overflow(static_cast<std::uint64_t>(numel), dtypeSize(s->dtype), &nbytes) ||
                nbytes > storages.bytes.size() - storages.pos)
                throw FormatError("tar member 'storages': storage '" + s->key + "' declares " + std::to_string(numel) +
                                  " elements, more than the member holds");
            s->declaredNumel = numel;
            s->setBytes(storages.bytes.subspan(storages.pos, static_cast<std::size_t>(nbytes)));
            storages.pos += static_cast<std::size_t>(nbytes);
            m_doc.storages.emplace(s->key, s);
        }
        auto views = runAt(storages);
        if (views->isSequence())
            for (const auto &v : views->items()) {
                if (!v->isSequence() || v->items().size() < 4)
                    continue;
                const auto target = keyOf(v->items()[0], "view");
                const auto root = keyOf(v->items()[1], "view root");
                auto it = m_doc.storages.find(root);
                if (it == m_doc.storages.end() || !v->items()[2]->isInt() || !v->items()[3]->isInt())
                    throw FormatError("tar member 'storages': view '" + target + "' of unknown storage '" + root + "'");
                const auto size = dtypeSize(it->second->dtype);
                const auto off = static_cast<std::uint64_t>(std::max<std::int64_t>(0, v->items()[2]->asInt())) * size;
                const auto len = static_cast<std::uint64_t>(std::max<std::int64_t>(0, v->items()[3]->asInt())) * size;
                auto view = std::make_shared<StorageRef>(*it->second);
                view->key = target;
                if (off > it->second->byteSize || len > it->second->byteSize - off)
                    throw FormatError("tar member 'storages': view '" + target + "' lies outside storage '" + root + "'");
                view->setBytes(it->second->data().subspan(static_cast<std::size_t>(off), static_cast<std::size_t>(len)));
                m_doc.storages.emplace(target, view);
            }

        std::map<std::string, ValuePtr> tensors;
        Cursor tc = cursorOf("tensors");
        const auto nTensors = countOf(runAt(tc), "tensor");
        for (std::int64_t i = 0; i < nTensors; ++i) {
            auto desc = runAt(tc);
            if (!desc->isSequence() || desc->items().size() < 2)
                throw FormatError("tar member 'tensors': tensor " + std::to_string(i) + " is not (key, storage, type)");
            const auto key = keyOf(desc->items()[0], "tensor");
            const auto storageKey = keyOf(desc->items()[1], "tensor storage");
            const std::int64_t ndim = readInt(tc, 4);
            readInt(tc, 4);  // padding: older writers stored ndim as 8 bytes
            if (ndim < 0 || static_cast<std::uint64_t>(ndim) > (tc.bytes.size() - tc.pos) / 16)
                throw FormatError("tar member 'tensors': tensor '" + key + "' declares " + std::to_string(ndim) +
                                  " dimensions, more than the member holds");
            auto ref = std::make_shared<TensorRef>();
            for (std::int64_t d = 0; d < ndim; ++d)
                ref->shape.push_back(readInt(tc, 8));
            for (std::int64_t d = 0; d < ndim; ++d)
                ref->strides.push_back(readInt(tc, 8));
            ref->storageOffset = readInt(tc, 8);
            auto it = m_doc.storages.find(storageKey);
            if (it == m_doc.storages.end())
                throw FormatError("tar member 'tensors': tensor '" + key + "' refers to unknown storage '" + storageKey + "'");
            ref->storage = it->second;
            ref->dtype = it->second->dtype;
            ref->rebuild = "tar tensors member";
            tensors.emplace(key, Value::tensor(ref));
        }

        Cursor pc = cursorOf("pickle");
        m_machine.setPersistentLoad([this, &tensors](const ValuePtr &pid, std::uint64_t offset) -> ValuePtr {
            if (pid->isSequence() && !pid->items().empty())
                return pid->items()[0];  // (class, source file, source): the class
            if (pid->isString() && pid->text().size() > kMaxStorageKeyBytes)
                throw FormatError("pickle offset " + std::to_string(offset) + ": persistent id of " +
                                  std::to_string(pid->text().size()) + " bytes (at most " +
                                  std::to_string(kMaxStorageKeyBytes) + "; torch writes a short number)");
            const std::string key = pid->isString() ? pid->text() : pid->isInt() ? std::to_string(pid->asInt()) : "";
            if (auto t = tensors.find(key); t != tensors.end())
                return t->second;
            if (auto s = m_doc.storages.find(key); s != m_doc.storages.end())
                return Value::storage(s->second);
            throw FormatError("pickle offset " + std::to_string(offset) + ": persistent id '" + key +
                              "' names no tensor or storage of the archive");
        });
        setProgress(0.0, 1.0);
        auto r = runAt(pc);
        m_doc.root = r;
        m_doc.pickleProtocol = 2;
        m_doc.formatDetail = "torch 0.1.x tar archive, " + std::to_string(nStorages) + " storages, " +
                             std::to_string(nTensors) + " tensors";
    }

    static std::string tarMemberList(const TarArchive &tar)
    {
        std::string s;
        for (std::size_t i = 0; i < tar.members().size() && i < 8; ++i)
            s += (i ? ", " : "") + displayText(tar.members()[i].name);
        return s;
    }

    // --- legacy stream (torch < 1.6) and plain pickles ----------------------------------------
    struct PendingView {
        std::shared_ptr<StorageRef> view;
        std::string rootKey;
        std::int64_t offset = 0;  // elements into the root storage
    };

    static constexpr std::size_t kPickleWindow = 2u << 20;  // pickle bytes fetched ahead of the parser

    void readPickleStream(std::span<const std::uint8_t> data)
    {
        // A legacy stream (the pickle of its magic number first, as torch writes it) is a few
        // pickles, then every storage headed by its element count: read with the mapping left for
        // random reads (see MappedFile::setAccess), the pickles fetched ahead of the parser. Any
        // other stream is a pickle read in order: the usual read-ahead suits it.
        static constexpr std::uint8_t kLegacyHead[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                                       0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
        const bool legacyHead =
            data.size() >= sizeof kLegacyHead && std::memcmp(data.data(), kLegacyHead, sizeof kLegacyHead) == 0;
        if (!legacyHead)
            m_doc.file->setAccess(MappedFile::Access::Normal);
        std::size_t pos = 0;
        auto runAt = [&](const char *what) {
            m_machine.setBaseOffset(pos);
            prefetchMapped(data.subspan(pos, std::min(data.size() - pos, kPickleWindow)));
            try {
                auto r = m_machine.run(data.subspan(pos));
                pos += r.end;
                return r;
            } catch (const FormatError &e) {
                throw FormatError(std::string(what) + ": " + e.what());
            }
        };
        auto first = runAt("first pickle");
        const bool legacy = first.value->kind() == Value::Kind::BigInt && first.value->text() == kLegacyMagic;
        if (!legacy) {
            if (first.value->kind() == Value::Kind::BigInt || first.value->isInt())
                throw FormatError("starts with the number " + (first.value->isInt() ? std::to_string(first.value->asInt())
                                                                                      : first.value->text()) +
                                  ", not PyTorch's legacy magic number");
            // A plain pickle (pickle.dump), with no tensors stored outside it.
            m_doc.format = ContainerFormat::Pickle;
            m_doc.formatDetail = "plain pickle, protocol " + std::to_string(first.protocol);
            m_doc.root = first.value;
            m_doc.pickleProtocol = first.protocol;
            if (pos < data.size())
                m_doc.anomalies.push_back(trailingDataNote("the pickle", data.subspan(pos)));
            return;
        }
        m_doc.format = ContainerFormat::Legacy;
        auto version = runAt("protocol version pickle");
        if (!version.value->isInt() || version.value->asInt() != kLegacyProtocolVersion)
            throw FormatError("legacy protocol version is " + keyText(*version.value) + ", expected 1001");
        auto sysInfo = runAt("sys_info pickle");
        if (sysInfo.value->isDict()) {
            auto le = sysInfo.value->get("little_endian");
            if (le && le->kind() == Value::Kind::Bool && !le->asBool())
                m_doc.warnings.push_back("written on a big-endian machine; values are not byte-swapped yet");
        }
        std::vector<PendingView> views;
        m_machine.setPersistentLoad([this, &views](const ValuePtr &pid, std::uint64_t offset) -> ValuePtr {
            if (!pid->isSequence() || pid->items().empty() || !pid->items()[0]->isString())
                throw FormatError("pickle offset " + std::to_string(offset) + ": unsupported persistent id");
            const auto &items = pid->items();
            const std::string &type = items[0]->text();
            if (type == "module") {
                // ('module', class, source_file, source): the class itself; its source is kept as data.
                if (items.size() < 2)
                    throw FormatError("pickle offset " + std::to_string(offset) + ": module persistent id is empty");
                return items[1];
            }
            if (type != "storage")
                throw FormatError("pickle offset " + std::to_string(offset) + ": unsupported persistent id '" + type +
                                  "'");
            std::string key;
            auto fresh = storageFromPid(items, key, offset);
            std::shared_ptr<StorageRef> root;
            if (auto it = m_doc.storages.find(key); it != m_doc.storages.end()) {
                root = it->second;
            } else {
                m_doc.storages.emplace(key, fresh);
                root = fresh;
            }
            if (items.size() >= 6 && items[5] && items[5]->isSequence() && items[5]->items().size() >= 3) {
                // view_metadata = (view_key, offset, view_size): a slice of the root storage.
                const auto &vm = items[5]->items();
                if (!vm[0]->isString() || !vm[1]->isInt() || !vm[2]->isInt() || vm[1]->asInt() < 0 || vm[2]->asInt() < 0 ||
                    vm[0]->text().size() > kMaxStorageKeyBytes)
                    throw FormatError("pickle offset " + std::to_string(offset) + ": malformed storage view metadata");
                const std::string viewKey = key + "/view/" + vm[0]->text();
                if (auto it = m_doc.storages.find(viewKey); it != m_doc.storages.end())
                    return Value::storage(it->second);
                auto view = std::make_shared<StorageRef>(*root);
                view->key = vm[0]->text();
                view->declaredNumel = vm[2]->asInt();
                views.push_back({view, key, vm[1]->asInt()});
                m_doc.storages.emplace(viewKey, view);
                return Value::storage(view);
            }
            return Value::storage(root);
        });
        // Progress comes every 65,536 opcodes (a few hundred KiB of pickle): the next window is
        // fetched then, so that a pickle of many MiB is not read a page at a time.
        const auto rest = data.subspan(pos);
        m_machine.setProgress([this, rest](double f) {
            const auto at = std::min(rest.size(), static_cast<std::size_t>(f * static_cast<double>(rest.size())));
            prefetchMapped(rest.subspan(at, std::min(rest.size() - at, kPickleWindow)));
            return !m_opts.progress || m_opts.progress(f);
        });
        auto main = runAt("main pickle");
        m_machine.setProgress(nullptr);
        setProgress(0.0, 1.0);
        m_doc.root = main.value;
        m_doc.pickleProtocol = main.protocol;
        auto keys = runAt("storage key list");
        if (!keys.value->isSequence())
            throw FormatError("storage key list is a " + keys.value->typeName() + ", not a list");
        // Each storage's element count heads its bytes: reading ahead around each of them would
        // read the whole file. Storages packed closer than a read-ahead window are better read
        // whole, in large reads.
        m_doc.file->setAccess(MappedFile::Access::Random);
        constexpr std::size_t kDenseStorageSpacing = 64u << 10, kMaxWholePrefetch = 256u << 20;
        if (!keys.value->items().empty() && (data.size() - pos) / keys.value->items().size() < kDenseStorageSpacing &&
            data.size() - pos <= kMaxWholePrefetch)
            prefetchMapped(data.subspan(pos));
        std::size_t resolvedCount = 0;
        for (const auto &k : keys.value->items()) {
            if (!k || !(k->isString() || k->isInt()))
                throw FormatError("storage key list holds a " + (k ? k->typeName() : std::string("null")));
            const std::string key = k->isString() ? k->text() : std::to_string(k->asInt());
            auto it = m_doc.storages.find(key);
            if (it == m_doc.storages.end())
                throw FormatError("storage '" + key + "' is listed at offset " + std::to_string(pos) +
                                  " but no tensor refers to it");
            auto &s = *it->second;
            if (data.size() - pos < 8)
                throw FormatError("storage '" + key + "' at offset " + std::to_string(pos) +
                                  ": file ends before its element count (truncated?)");
            std::int64_t numel = 0;
            for (int i = 7; i >= 0; --i)
                numel = static_cast<std::int64_t>((static_cast<std::uint64_t>(numel) << 8) | data[pos + static_cast<std::size_t>(i)]);
            pos += 8;
            std::uint64_t nbytes = 0;
            if (numel < 0 || __builtin_mul_overflow(static_cast<std::uint64_t>(numel), dtypeSize(s.dtype), &nbytes) ||
                nbytes > data.size() - pos)
                throw FormatError("storage '" + key + "' at offset " + std::to_string(pos - 8) + " declares " +
                                  std::to_string(numel) + " elements but only " + std::to_string(data.size() - pos) +
                                  " bytes remain (truncated?)");
            s.setBytes(data.subspan(pos, static_cast<std::size_t>(nbytes)));
            checkDeclaredSize(s);
            pos += static_cast<std::size_t>(nbytes);
            ++resolvedCount;
        }
        for (auto &v : views) {
            const auto &root = *m_doc.storages.at(v.rootKey);
            const std::uint64_t size = dtypeSize(root.dtype);
            const std::uint64_t begin = static_cast<std::uint64_t>(v.offset) * size;
            const std::uint64_t len = static_cast<std::uint64_t>(v.view->declaredNumel) * size;
            if (!root.resolved || begin > root.byteSize || len > root.byteSize - begin) {
                v.view->problem = "view '" + v.view->key + "' lies outside storage '" + v.rootKey + "'";
                continue;
            }
            v.view->setBytes(root.data().subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(len)));
        }
        if (pos < data.size())
            m_doc.anomalies.push_back(trailingDataNote("the last storage", data.subspan(pos)));
        m_doc.formatDetail = "legacy torch.save stream (torch < 1.6), " + std::to_string(resolvedCount) + " storages";
    }
};

} // namespace

std::string formatName(ContainerFormat f)
{
    switch (f) {
    case ContainerFormat::TorchZip: return "zip";
    case ContainerFormat::TorchScript: return "torchscript";
    case ContainerFormat::Legacy: return "legacy";
    case ContainerFormat::Tar: return "tar";
    case ContainerFormat::Safetensors: return "safetensors";
    case ContainerFormat::Pickle: return "pickle";
    case ContainerFormat::Sharded: return "sharded";
    }
    return "?";
}

std::string pathText(const KeyPath &path)
{
    std::string s;
    for (std::size_t i = 0; i < path.size(); ++i)
        s += (i ? "/" : "") + path[i];
    return s;
}

namespace {
// Sums a per-tensor figure, skipping the -1 of an overflowing shape and saturating at int64's max.
template <typename F> std::int64_t saturatingSum(const std::vector<NamedTensor> &tensors, F figure)
{
    std::int64_t n = 0;
    for (const auto &t : tensors)
        if (__builtin_add_overflow(n, std::max<std::int64_t>(0, figure(t.ref())), &n))
            return std::numeric_limits<std::int64_t>::max();
    return n;
}
} // namespace

std::int64_t Document::parameterCount() const
{
    return saturatingSum(stateDict, [](const TensorRef &r) { return r.numel(); });
}

std::int64_t Document::stateDictBytes() const
{
    return saturatingSum(stateDict, [](const TensorRef &r) { return r.nbytes(); });
}

bool documentTruncated(const Document &doc)
{
    if (doc.file && doc.file->truncated())
        return true;
    for (const auto &f : doc.extraFiles)
        if (f && f->truncated())
            return true;
    return false;
}

namespace {
// Tells each storage viewing the file's mapping where its bytes live, so whoever reads them later
// can tell when the file was cut short under them.
void noteMappings(Document &doc)
{
    if (!doc.file)
        return;
    for (auto &[key, storage] : doc.storages)
        storage->noteMapping(doc.file);
    std::vector<const TensorRef *> todo;
    for (const auto &t : doc.tensors)
        todo.push_back(t.value->tensorRef().get());
    while (!todo.empty()) {
        const TensorRef *t = todo.back();
        todo.pop_back();
        if (!t)
            continue;
        if (t->storage)
            t->storage->noteMapping(doc.file);
        for (const auto &part : t->sparseParts())
            if (part && part->isTensor())
                todo.push_back(part->tensorRef().get());
        if (t->quantization)
            for (const auto *part : {&t->quantization->scales, &t->quantization->zeroPoints})
                if (*part && (*part)->isTensor())
                    todo.push_back((*part)->tensorRef().get());
    }
}

Document readMapped(std::shared_ptr<MappedFile> file, const std::string &path, const ReadOptions &options)
{
    const ValuePoolScope pool;  // the document's values come from one pool
    Document doc;
    doc.path = path;
    doc.file = std::move(file);
    // A file cut short while we read it reads as zeros past its new end (see MappedFile): say
    // so rather than whatever those zeros made the reader conclude.
    const auto truncated = [&doc] { return documentTruncated(doc); };
    try {
        Reader(doc, options).read();
        // Check every tensor's extent against its storage before anything touches data.
        classify(doc);
        noteMappings(doc);
        if (truncated())
            throw FormatError("the file changed or was truncated while it was read");
    } catch (const ReadFailure &e) {
        if (truncated())
            throw FormatError(path + ": the file changed or was truncated while it was read");
        // What Python would run before it reached the fault still runs: say so.
        std::string dangerous;
        for (const auto &g : globalsReport(e.globals).globals)
            if (g.cls == GlobalClass::Dangerous)
                dangerous += (dangerous.empty() ? "" : ", ") + g.use.name;
        throw ReadFailure(path + ": " + e.what() +
                              (dangerous.empty() ? "" : " (before that point it names " + dangerous +
                                                            ", which Python would run when loading it)"),
                          e.globals, e.hazards);
    } catch (const FormatError &e) {
        if (truncated())
            throw FormatError(path + ": the file changed or was truncated while it was read");
        throw FormatError(path + ": " + e.what());
    } catch (const std::bad_alloc &) {
        throw FormatError(path + ": out of memory while reading");
    } catch (const std::exception &e) {
        throw FormatError(path + ": " + e.what());
    }
    return doc;
}
} // namespace

namespace {
constexpr std::uintmax_t kMaxSidecarBytes = 16u << 20;

// The JSON that describes `file` from beside it: the seed's ModelSaver writes `<name>_metadata.json`
// next to `<name>.pth`; a Hugging Face model folder keeps `config.json` (an adapter's
// `adapter_config.json`) next to its weights, named pytorch_model.bin, model.safetensors, their
// shards (model-00001-of-00002.safetensors) or their index. Empty when there is none.
std::filesystem::path sidecarOf(const std::filesystem::path &file)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path seed = file.parent_path() / (file.stem().string() + "_metadata.json");
    if (file.extension() != ".json" && fs::is_regular_file(seed, ec))
        return seed;
    static const std::regex huggingFace(
        R"(((pytorch_model|model)(-\d{5}-of-\d{5})?\.(bin|safetensors))|(pytorch_model\.bin|model\.safetensors)\.index\.json)");
    static const std::regex adapter(R"(adapter_model\.(bin|safetensors))");
    const std::string name = file.filename().string();
    fs::path config;
    if (std::regex_match(name, huggingFace))
        config = file.parent_path() / "config.json";
    else if (std::regex_match(name, adapter))
        config = file.parent_path() / "adapter_config.json";
    return !config.empty() && fs::is_regular_file(config, ec) ? config : fs::path();
}

void readSidecar(Document &doc)
{
    namespace fs = std::filesystem;
    const fs::path sidecar = sidecarOf(fs::path(doc.path));
    std::error_code ec;
    if (sidecar.empty())
        return;
    const auto size = fs::file_size(sidecar, ec);
    if (ec || size > kMaxSidecarBytes) {
        doc.warnings.push_back("sidecar " + sidecar.string() + " is larger than 16 MiB; not read");
        return;
    }
    try {
        auto mapped = MappedFile::open(sidecar.string());
        const auto bytes = mapped->bytes();
        // Linear in its size (nlohmann's parse into ordered_json is quadratic in an object's keys).
        const auto parsed = parseOrderedJson(
            std::string_view(reinterpret_cast<const char *>(bytes.data()), bytes.size()), PickleLimits::kMaxDepth + 1);
        if (parsed.is_discarded())
            throw FormatError("not JSON, or nested deeper than " + std::to_string(PickleLimits::kMaxDepth) + " levels");
        doc.sidecar = jsonToValue(parsed);
        doc.sidecarPath = sidecar.string();
    } catch (const std::exception &e) {
        doc.warnings.push_back("sidecar " + sidecar.string() + " is not readable JSON: " + e.what());
    }
}
} // namespace

namespace {
std::string numberText(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

// One line about a part beside the weights that is itself a torch.save file (optimizer.pt,
// scheduler.pt, rng_state.pth, training_args.bin, DeepSpeed's optimizer partitions): read as any
// checkpoint is (structure only, no tensor data but a 0-d step), so it costs what its pickle costs.
// Python loads these too when a run resumes: the globals it would run are kept in the part and said
// in the line. A part listed but not used (the other format's weights) is read for its globals only.
void describePart(FolderPart &part)
{
    const bool optimizer = part.role == "optimizer state" || part.role.starts_with("DeepSpeed optimizer states");
    const bool scheduler = part.role == "learning-rate scheduler state";
    if (!isPickledPart(part))
        return;
    const bool summarise = part.role.find("not read") == std::string::npos;
    try {
        const Document doc = readDocument(part.path);
        for (const auto &g : securityReport(doc).globals)
            if (g.cls == GlobalClass::Dangerous)
                part.dangerous.push_back(g.use.name);
        part.scanned = true;
        std::string out;
        if (summarise && optimizer) {
            if (!doc.optimizer)
                out = "no optimizer state found in it";
            else {
                out = optimizerClassName(*doc.optimizer);
                const ValuePtr groups = doc.optimizer->isDict() ? doc.optimizer->get("param_groups") : nullptr;
                if (groups && groups->isSequence())
                    out += ", " + std::to_string(groups->items().size()) +
                           (groups->items().size() == 1 ? " group" : " groups");
                const ValuePtr state = doc.optimizer->isDict() ? doc.optimizer->get("state") : nullptr;
                if (state && state->isDict())
                    out += ", " + std::to_string(state->entries().size()) + " parameter states";
                if (const auto step = optimizerStep(*doc.optimizer))
                    out += ", step " + std::to_string(*step);
            }
        } else if (summarise && scheduler) {
            // torch.optim.lr_scheduler's state_dict(): last_epoch counts the scheduler's steps.
            const ValuePtr root = doc.root && doc.root->isDict() ? doc.root : nullptr;
            const ValuePtr last = root ? root->get("last_epoch") : nullptr;
            const ValuePtr lrs = root ? root->get("_last_lr") : nullptr;
            if (last && last->isInt())
                out = "last_epoch " + std::to_string(last->asInt());
            if (lrs && lrs->isSequence() && !lrs->items().empty() && lrs->items()[0] &&
                lrs->items()[0]->kind() == Value::Kind::Float)
                out += (out.empty() ? "" : ", ") + std::string("learning rate ") + numberText(lrs->items()[0]->asFloat());
            if (out.empty())
                out = "a " + kindName(doc.kind) + " without last_epoch";
        }
        if (!part.dangerous.empty()) {
            std::string names;
            for (const auto &n : part.dangerous)
                names += (names.empty() ? "" : ", ") + n;
            out += (out.empty() ? "" : "; ") + std::string("DANGEROUS: names ") + names +
                   ", which Python would run when loading it";
        }
        part.summary = out;
    } catch (const std::exception &e) {
        if (summarise)
            part.summary = std::string("not readable: ") + e.what();
    }
}

Document readFolder(const std::string &path, const ReadOptions &options)
{
    auto folder = std::make_shared<CheckpointFolder>(resolveCheckpointFolder(path));
    for (auto &part : folder->parts)
        describePart(part);
    // Parts past the listed ones are read for their globals too; a dangerous one is listed after all.
    for (auto &part : folder->unlisted) {
        describePart(part);
        if (!part.dangerous.empty())
            folder->parts.push_back(part);
    }
    std::erase_if(folder->unlisted, [](const FolderPart &p) { return !p.dangerous.empty(); });
    Document doc = readDocument(folder->modelFile, options);
    for (const auto &note : folder->notes)
        doc.warnings.push_back(path + ": " + note);
    doc.folder = std::move(folder);
    return doc;
}
} // namespace

Document readDocument(const std::string &path, const ReadOptions &options)
{
    // A folder is a checkpoint too: a Trainer's checkpoint-500/, a save_pretrained folder, DeepSpeed's.
    if (isFolder(path))
        return readFolder(path, options);
    std::shared_ptr<MappedFile> file;
    try {
        file = MappedFile::open(path);
    } catch (const FormatError &e) {
        throw FormatError(path + ": " + e.what());
    }
    Document doc = readMapped(std::move(file), path, options);
    readSidecar(doc);
    return doc;
}

Document readDocumentFromBytes(std::string bytes, const std::string &name, const ReadOptions &options)
{
    return readMapped(MappedFile::fromBytes(std::move(bytes), name), name, options);
}

} // namespace ckpt
