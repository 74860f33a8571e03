#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

struct Document;  // document.h

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
    // A Trainer's output_dir after save_model(): the final model at its top and the checkpoint
    // folders the run saved beside it ("checkpoint-500" ...), by the number in their names; at most
    // FolderLimits::kMaxRunCheckpoints. Empty for other folders, and for a DeepSpeed save folder,
    // whose global_step folders are its tags.
    std::vector<std::string> runCheckpoints;
    std::size_t runCheckpointsFound = 0;  // how many there are (more than listed where cut)
    std::vector<std::string> notes;  // what was left out or could not be read
};

// Limits that keep a huge or hostile folder cheap.
struct FolderLimits {
    static constexpr std::size_t kMaxEntries = 10000;      // directory entries looked at per folder
    static constexpr std::size_t kMaxParts = 64;           // parts listed
    static constexpr std::size_t kMaxListed = 10;          // names listed in an error
    static constexpr std::uintmax_t kMaxTrainerStateBytes = 16u << 20;
    static constexpr std::uintmax_t kMaxLatestBytes = 256;  // DeepSpeed's `latest` holds a tag name
    static constexpr std::size_t kMaxRunCheckpoints = 100;  // checkpoint folders of a run read (trainer_state.json each)
};

// A training run's output folder (a Trainer's output_dir): no checkpoint of its own, but the
// checkpoint folders saved into it during the run (checkpoint-500/, global_step500/, epoch_3/).
struct RunFolder {
    struct Checkpoint {
        std::string name;  // the subfolder's name ("checkpoint-500")
        std::string path;  // the full path
        std::int64_t number = 0;  // the number in its name
        std::optional<std::int64_t> globalStep;  // its trainer_state.json's global_step, where it has one
        std::optional<double> epoch;
        std::optional<double> lastLoss;
    };
    std::string folder;
    // Ordered by step: trainer_state.json's global_step where each has one, else the number in the
    // name (never the names' text order, which puts checkpoint-1000 before checkpoint-200). At most
    // kMaxRunCheckpoints, the first by number.
    std::vector<Checkpoint> checkpoints;
    std::size_t found = 0;  // how many checkpoint folders there are (more than listed where cut)
    bool entriesCut = false;  // the folder had more entries than were looked at
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

// The folder's optimizer state file (a Trainer's optimizer.pt, accelerate's optimizer.bin): the
// first part whose role is "optimizer state"; null when it has none.
const FolderPart *folderOptimizerPart(const CheckpointFolder &folder);

// A folder's model document (`doc`, whose weights file holds no optimizer) with the optimizer saved
// beside it in the folder (folderOptimizerPart) read and made its optimizer, so that the optimizer's
// ids map to the weights' names as in a single-file training checkpoint. The part's file stays
// mapped as long as the result lives. Null where the document is no folder's, has an optimizer of
// its own, or the folder has no optimizer part. Throws FormatError naming the part's file when it
// does not read or holds no optimizer state.
std::shared_ptr<const Document> withFolderOptimizer(const Document &doc);

// The run `dir` holds where it is a run's output folder (checkpoint folders, no checkpoint of its own);
// nullopt for a checkpoint folder or a folder without checkpoint folders. With `besideModel`, also
// the run of an output_dir that holds the final model at its top (CheckpointFolder::runCheckpoints),
// for a command that follows a run (series); opening such a folder reads its model. Throws
// FormatError starting with "dir: " where the folder cannot be listed.
std::optional<RunFolder> findRunFolder(const std::string &dir, bool besideModel = false);

// trainer_state.json's content (at most kMaxTrainerStateBytes). Throws FormatError naming the file.
TrainerState readTrainerState(const std::string &path);
// The same from its text.
TrainerState parseTrainerState(std::string_view text);

} // namespace ckpt
