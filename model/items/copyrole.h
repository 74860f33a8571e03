#pragma once

#include <Qt>

namespace ckpt {

// The text a cell puts on the clipboard when it differs from what it shows: a number shown with
// six significant digits ("-0.0300748") is copied with every digit its dtype holds
// ("-0.030074818"), so that a pasted value reads back as the stored one. Models that show rounded
// figures answer it; views/itemviewcopy.cpp asks for it before the displayed text.
inline constexpr int CopyTextRole = Qt::UserRole + 0x4350;  // 'CP'

} // namespace ckpt
