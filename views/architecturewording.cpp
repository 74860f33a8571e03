#include "architecturewording.h"

#include <QCoreApplication>

namespace ckpt {

QString architectureSourceTitle(Architecture::Source source)
{
    // One translation context for the Predict and Conversions panes, which both show it.
    const char *text = nullptr;
    switch (source) {
    case Architecture::Source::TorchScript:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "the TorchScript file itself");
        break;
    case Architecture::Source::ModuleTree:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "pickled module tree");
        break;
    case Architecture::Source::ScriptArchitecture:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "weights loaded into a TorchScript file");
        break;
    case Architecture::Source::Spec:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "layers written by hand");
        break;
    case Architecture::Source::PackageSpec:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "the package's architecture spec");
        break;
    case Architecture::Source::InferredMlp:
        text = QT_TRANSLATE_NOOP("ArchitectureWording", "MLP inferred from the weight shapes");
        break;
    }
    return text ? QCoreApplication::translate("ArchitectureWording", text) : QString();
}

} // namespace ckpt
