#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt {

// What a TorchScript module class declares about its attributes in its code record:
//   class Linear(Module):
//     __parameters__ = ["weight", "bias", ]
//     __buffers__ = []
// Names are listed in the class's attribute order; torch.jit.load makes parameters and buffers of them.
struct ScriptClassDecl {
    std::vector<std::string> parameters;
    std::vector<std::string> buffers;
};

// Declarations by qualified class name ("__torch__.torch.nn.modules.linear.Linear").
struct ScriptClasses {
    std::map<std::string, ScriptClassDecl, std::less<>> classes;
    std::size_t names = 0;    // parameter and buffer names kept, all classes together
    bool truncated = false;   // a limit left classes out
    const ScriptClassDecl *find(std::string_view qualifiedName) const
    {
        auto it = classes.find(qualifiedName);
        return it == classes.end() ? nullptr : &it->second;
    }
};

// Reads the module classes one code record declares (`record` is its path under the archive's
// folder: "code/__torch__/torch/nn/modules/linear.py") into `out`. Only the two declaration lines
// above are read, line by line, at the class body's level (two spaces in, as torch prints them);
// nothing else of the source is interpreted. A class whose lists do
// not read as that syntax, or that lacks one of them, is left out; a class named twice keeps its
// first declaration. At most kMaxScriptClasses classes and kMaxScriptNames names are kept in all.
void readScriptClasses(std::string_view source, std::string_view record, ScriptClasses &out);

inline constexpr std::size_t kMaxScriptClasses = 1u << 16;
inline constexpr std::size_t kMaxScriptNames = 1u << 20;

// The module a code record defines ("code/__torch__/a/b.py" -> "__torch__.a.b"); "" when the
// path is not a code record's.
std::string scriptRecordModule(std::string_view record);

} // namespace ckpt
