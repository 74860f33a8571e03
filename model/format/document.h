#pragma once

#include "error.h"
#include "picklemachine.h"
#include "scriptclasses.h"
#include "tensorref.h"
#include "value.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ckpt {

class MappedFile;
struct CheckpointFolder;  // checkpointfolder.h

enum class ContainerFormat { TorchZip, TorchScript, Legacy, Tar, Safetensors, Pickle, Sharded };
enum class DocumentKind {
    StateDict,
    TrainingCheckpoint,
    InferencePackage,
    FullModel,
    LightningCheckpoint,
    Tensor,
    ScriptModule,  // a TorchScript module (torch.jit.save)
    Generic,
    OptimizerState,  // an optimizer's state alone (torch.save(opt.state_dict()), DeepSpeed's *_optim_states.pt)
};

// "zip", "legacy", "torchscript", "tar", "safetensors", "pickle".
std::string formatName(ContainerFormat f);
// "state_dict", "training_checkpoint", ...
std::string kindName(DocumentKind k);

// A step from a parent value to a child: a dict key, a sequence index or an object attribute.
using KeyPath = std::vector<std::string>;
// "model_state_dict/fc1.weight" style text for a path.
std::string pathText(const KeyPath &path);

struct NamedTensor {
    std::string name;   // state-dict key ("fc1.weight")
    ValuePtr value;     // the Tensor value
    const TensorRef &ref() const { return *value->tensorRef(); }
};

// A file that does not read, with the globals its pickles named before the fault: Python runs
// what comes before a broken tail, so a scanner still reports them.
// Also what else the file would make a loader do that is dangerous (`hazards`: a shard index
// that sends it to a file outside its folder), which is why it was not read further.
class ReadFailure : public FormatError {
public:
    ReadFailure(const std::string &what, std::vector<GlobalUse> named, std::vector<std::string> dangers = {})
        : FormatError(what), globals(std::move(named)), hazards(std::move(dangers))
    {
    }
    std::vector<GlobalUse> globals;
    std::vector<std::string> hazards;
};

// Everything read from one file. Immutable once returned by readDocument; safe to share
// between threads for reading.
struct Document {
    std::string path;
    ContainerFormat format = ContainerFormat::TorchZip;
    std::string formatDetail;           // "torch zip archive, version 3" ...
    int pickleProtocol = 0;
    ValuePtr root;
    ValuePtr constants;                 // TorchScript: what constants.pkl holds (frozen weights ...)
    ValuePtr formatMetadata;            // safetensors __metadata__, a shard index's metadata
    std::vector<std::string> sourceRecords;  // TorchScript: its code/*.py records (never run)
    ScriptClasses scriptClasses;        // TorchScript: each module class's declared parameters and buffers
    std::string sidecarPath;            // <name>_metadata.json beside the file, when there is one
    ValuePtr sidecar;                   // its content (the seed's inference metadata)
    // Set when a folder was opened: its layout, the file read as `path`, its other recognised parts
    // (optimizer, scheduler, trainer state ...). Null for a file opened by name.
    std::shared_ptr<const CheckpointFolder> folder;
    std::shared_ptr<MappedFile> file;   // keeps tensor data views valid
    std::vector<std::shared_ptr<const std::vector<std::uint8_t>>> ownedBuffers;  // inflated records
    std::vector<std::shared_ptr<MappedFile>> extraFiles;  // shards of a sharded checkpoint
    std::vector<std::shared_ptr<ValueArena>> arenas;      // break the values' cycles when the last copy goes
    std::map<std::string, std::shared_ptr<StorageRef>> storages;
    std::vector<GlobalUse> globals;
    std::vector<OpcodeUse> opcodes;     // every opcode of the pickles read, by opcode byte
    std::vector<std::string> warnings;
    std::vector<std::string> anomalies;  // structural oddities a scanner reports (see security.h)

    // Understanding, filled by classify().
    DocumentKind kind = DocumentKind::Generic;
    bool hasStateDict = false;
    KeyPath stateDictPath;              // keys from the root to the state dict
    std::string stateDictSource;        // "dict", "module_tree" or "script_module"
    // A script module whose every module class declared its parameters and buffers: the state dict
    // is torch's state_dict() (plus constants and packed weights after it) and its parameters are marked.
    bool scriptDeclared = false;
    std::vector<NamedTensor> stateDict;
    ValuePtr optimizer;
    KeyPath optimizerPath;
    std::vector<KeyPath> weightPaths;   // every path classified as weights (not metadata)
    std::vector<NamedTensor> tensors;   // every tensor in the file once, named by its dotted path
    std::vector<KeyPath> otherWeightSets;  // weight sets besides the model's (EMA, other networks)
    std::vector<std::string> conventions;  // recognised layouts: Lightning, EMA, key prefixes, ...
    // Why a file that holds tensors has no model weights, as a sentence (an optimizer's state saved
    // alone, DeepSpeed ZeRO-3's empty placeholders, which also warn); empty otherwise.
    std::string noWeightsReason;

    std::int64_t parameterCount() const;
    // A shard index: whether its shards are torch.save files (pytorch_model.bin shards), whose
    // globals, opcodes and anomalies are the index's.
    bool pickledShards = false;
    // False for safetensors files and the indexes of safetensors shards, which hold no pickle at all.
    bool hasPickle() const
    {
        return format == ContainerFormat::Sharded ? pickledShards : format != ContainerFormat::Safetensors;
    }
    std::int64_t stateDictBytes() const;
};

struct ReadOptions {
    // Called with the fraction done; returning false cancels (readDocument then throws).
    std::function<bool(double)> progress;
};

// Opens and interprets a checkpoint; never executes anything from it. Throws FormatError whose
// message starts with the file path ("path: what is wrong").
Document readDocument(const std::string &path, const ReadOptions &options = {});
// Same, over bytes in memory; `name` stands for the path in messages.
Document readDocumentFromBytes(std::string bytes, const std::string &name, const ReadOptions &options = {});

// True when a file the document reads from (its own or a shard) was truncated while mapped, so
// bytes read from it since may be zeros instead of its content (see MappedFile::truncated).
bool documentTruncated(const Document &doc);

// Finds the state dict, optimizer state and kind of a document whose root is read.
void classify(Document &doc);

// The path of the set of weights `text` names: a tree path as `ckpt show` takes them
// ("state_dict/student"), or the same keys joined by dots ("state_dict.student") where only one
// path of the file reads so. Throws FormatError naming the file, the text and the file's weight
// sets when nothing is there or the dotted form fits several paths.
KeyPath weightSetPath(const Document &doc, const std::string &text);

// Makes the set of weights at `path` (a dict of tensors or a module tree) the model's state dict,
// as if classify() had chosen it: the state dict's tensors, source and conventions, the kind, and
// the optimizer that fits it best are derived again; the former model weights become one of
// otherWeightSets and the chosen set is no longer among them. Throws FormatError naming the file,
// the path, what is there and the file's weight sets when it is not a set of weights.
void useWeightSet(Document &doc, const KeyPath &path);

} // namespace ckpt
