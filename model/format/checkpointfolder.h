#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// What a Hugging Face Trainer's trainer_state.json says about the run (TrainerState.save_to_json):
// where it stands and the losses it logged.
struct TrainerState {
    std::optional<std::int64_t> globalStep;
    std::optional<std::int64_t> maxSteps;
    std::optional<double> epoch;
    std::optional<double> bestMetric;
    std::string bestModelCheckpoint;
    struct LogPoint {
        std::int64_t step = 0;
        std::optional<double> epoch;
        std::optional<double> loss;      // training loss logged at this step
        std::optional<double> evalLoss;  // evaluation loss
        std::optional<double> learningRate;
    };
    std::vector<LogPoint> log;  // log_history's entries with a step and a loss, in the file's order
    std::optional<double> lastLoss() const;
    std::optional<double> lastEvalLoss() const;
};

// One recognised file (or folder) of a checkpoint folder.
struct FolderPart {
    std::string name;  // relative to the folder opened ("global_step500/mp_rank_00_model_states.pt")
    std::string path;  // the full path
    std::string role;  // what it is, in plain words ("optimizer state")
    std::string summary;  // a line about its content where one was read cheaply ("AdamW, 2 groups, step 500")
    // A pickled part (isPickledPart): whether it was read for its globals, and the dangerous ones
    // Python would run on loading it ("posix.system").
    bool scanned = false;
    std::vector<std::string> dangerous;
};

// A folder opened as one checkpoint: which layout it has, the file that is read as the model's
// document, and what else it holds.
struct CheckpointFolder {
    std::string folder;     // as the user named it
    std::string layout;     // "Hugging Face", "Hugging Face (PEFT adapter)", "DeepSpeed", "single checkpoint file"
    std::string modelFile;  // the file read as the document (its path)
    std::string modelName;  // the same relative to the folder ("global_step500/mp_rank_00_model_states.pt")
    std::string modelRole;  // what that file is ("model weights", "DeepSpeed model states" ...)
    std::vector<FolderPart> parts;  // the folder's other recognised parts, bounded
    // Pickled files past the kMaxParts listed: not shown, but still read for their globals (a
    // scanner must not pass a folder because its dangerous file is the 65th).
    std::vector<FolderPart> unlisted;
    // The folder (or the tag folder read) had more than kMaxEntries entries: files past them were
    // neither listed nor scanned.
    bool entriesCut = false;
    std::optional<TrainerState> trainerState;
    std::vector<std::string> notes;  // what was left out or could not be read
};

// Limits that keep a huge or hostile folder cheap.
struct FolderLimits {
    static constexpr std::size_t kMaxEntries = 10000;      // directory entries looked at per folder
    static constexpr std::size_t kMaxParts = 64;           // parts listed
    static constexpr std::size_t kMaxListed = 10;          // names listed in an error
    static constexpr std::uintmax_t kMaxTrainerStateBytes = 16u << 20;
    static constexpr std::uintmax_t kMaxLatestBytes = 256;  // DeepSpeed's `latest` holds a tag name
};

// True when `path` names a folder (following a symbolic link to one).
bool isFolder(const std::string &path);

// True when Python unpickles this part when a run resumes or someone loads it (torch.load of
// optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin, a DeepSpeed partition, the
// other format's pytorch_model.bin): what a scanner must look at besides the model's file.
bool isPickledPart(const FolderPart &part);

// Finds the checkpoint in folder `dir`: a Hugging Face model or Trainer checkpoint (safetensors
// preferred over pytorch_model.bin, as transformers does; a PEFT adapter), a DeepSpeed save folder
// whose `latest` names a tag folder (or such a tag folder itself), or a folder holding exactly one
// checkpoint file. Reads trainer_state.json when there is one. Never follows `latest` out of the
// folder. Throws FormatError starting with "dir: " when no single checkpoint can be told.
CheckpointFolder resolveCheckpointFolder(const std::string &dir);

// trainer_state.json's content (at most kMaxTrainerStateBytes). Throws FormatError naming the file.
TrainerState readTrainerState(const std::string &path);
// The same from its text.
TrainerState parseTrainerState(std::string_view text);

} // namespace ckpt
