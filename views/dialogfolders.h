#pragma once

#include <QString>

// Where the window's file dialogs start, chosen apart from the dialogs so that the choice can be
// tested without showing one. Never the process's working folder (a desktop launcher's is `/` or
// home, a terminal's wherever the user happened to be): a folder the user chose or worked in.
namespace ckpt::dialogfolders {

// QSettings keys: the folder of the last checkpoint opened (any way: dialog, command line, drop,
// recent list), and the last folder an export or a conversion wrote to.
inline constexpr auto kLastOpenKey = "lastOpenDirectory";
inline constexpr auto kLastOutputKey = "lastOutputDirectory";

// File → Open and its kin: the remembered folder of the last opened file when it still exists,
// else the user's home.
QString openStart();
// Remembers the folder holding `path` (a file, or a checkpoint folder: the folder it is in) for openStart().
void rememberOpened(const QString &path);
// A dialog choosing where an output of `documentPath` goes (an exported tensor, converted files):
// the last output folder when it still exists, else the document's folder, else home.
QString outputStart(const QString &documentPath);
// Remembers `folder` as the last output folder for outputStart().
void rememberOutput(const QString &folder);

} // namespace ckpt::dialogfolders
