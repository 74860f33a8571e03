// Prediction: every architecture becomes a TorchScript module. A TorchScript file is loaded as it
// is; a module tree or a spec is turned into TorchScript source (one small class per layer, the
// weights as its parameters and buffers) and compiled by LibTorch, so what runs here is exactly
// what `--export-torchscript` writes and Python's torch.jit.load runs.
#include "predictor.h"
#include "predictionoutputs.h"

#include "architecture.h"
#include "document.h"
#include "error.h"
#include "keyalign.h"
#include "tensorconvert.h"
#include "tensoridentity.h"
#include "tensorref.h"
#include "textcodec.h"

#include <dlfcn.h>
#include <unistd.h>
#include <torch/cuda.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ckpt {

namespace {

using json = nlohmann::ordered_json;

std::string cudaUnavailableReason()
{
    // The CUDA half of LibTorch is a separate library: loaded means this build has CUDA.
    if (void *h = ::dlopen("libtorch_cuda.so", RTLD_LAZY | RTLD_NOLOAD)) {
        ::dlclose(h);
        return "no CUDA device is visible";
    }
    return std::string("this build's LibTorch (") + TORCH_VERSION + ") has no CUDA";
}

// The CUDA driver's own account of a device (name, memory, compute capability), through libcuda,
// which every CUDA LibTorch loads: LibTorch's C++ API does not say, and CUDA's headers are not
// needed to build this. The five entry points are the driver's stable C ABI.
struct CudaDriver {
    using Init = int (*)(unsigned);
    using Get = int (*)(int *, int);
    using Name = int (*)(char *, int, int);
    using TotalMem = int (*)(std::size_t *, int);
    using Attribute = int (*)(int *, int, int);
    Init init = nullptr;
    Get get = nullptr;
    Name name = nullptr;
    TotalMem totalMem = nullptr;
    Attribute attribute = nullptr;
    bool ready = false;

    static const CudaDriver &instance()
    {
        static const CudaDriver d = [] {
            CudaDriver c;
            void *h = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
            if (!h)
                return c;
            c.init = reinterpret_cast<Init>(::dlsym(h, "cuInit"));
            c.get = reinterpret_cast<Get>(::dlsym(h, "cuDeviceGet"));
            c.name = reinterpret_cast<Name>(::dlsym(h, "cuDeviceGetName"));
            c.totalMem = reinterpret_cast<TotalMem>(::dlsym(h, "cuDeviceTotalMem_v2"));
            c.attribute = reinterpret_cast<Attribute>(::dlsym(h, "cuDeviceGetAttribute"));
            c.ready = c.init && c.get && c.name && c.totalMem && c.attribute && c.init(0) == 0;
            return c;
        }();
        return d;
    }

    // Fills name, memory and capability for CUDA device `index`; leaves them empty when it cannot.
    void describe(int index, DeviceInfo &d) const
    {
        int dev = 0;
        if (!ready || get(&dev, index) != 0)
            return;
        char buf[256] = {};
        if (name(buf, sizeof buf - 1, dev) == 0)
            d.name = buf;
        std::size_t bytes = 0;
        if (totalMem(&bytes, dev) == 0)
            d.memoryBytes = bytes;
        int major = 0, minor = 0;
        constexpr int kMajor = 75, kMinor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR/MINOR
        if (attribute(&major, kMajor, dev) == 0 && attribute(&minor, kMinor, dev) == 0)
            d.capability = std::to_string(major) + "." + std::to_string(minor);
    }
};

std::string gibText(std::uint64_t bytes)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
    return buf;
}

c10::ScalarType precisionType(const std::string &dtype)
{
    if (dtype == "float32" || dtype.empty())
        return at::kFloat;
    if (dtype == "float16")
        return at::kHalf;
    if (dtype == "bfloat16")
        return at::kBFloat16;
    throw std::runtime_error("unknown precision '" + dtype + "' (float32, float16 or bfloat16)");
}

// Whether this LibTorch runs a linear layer in `type` on the CPU (LibTorch 1.13 has no float16
// matrix product there; 2.x has).
bool cpuRuns(c10::ScalarType type)
{
    try {
        c10::InferenceMode guard;
        const at::Tensor x = at::ones({1, 2}, at::TensorOptions().dtype(type));
        (void)at::linear(x, at::ones({2, 2}, x.options()));
        return true;
    } catch (const c10::Error &) {
        return false;
    }
}

std::vector<std::string> cpuPrecisions()
{
    std::vector<std::string> out{"float32"};
    if (cpuRuns(at::kHalf))
        out.push_back("float16");
    if (cpuRuns(at::kBFloat16))
        out.push_back("bfloat16");
    return out;
}

// float16 on every CUDA device LibTorch supports; bfloat16 from compute capability 8.0 (Ampere),
// as torch.cuda.is_bf16_supported() says.
std::vector<std::string> cudaPrecisions(const DeviceInfo &d)
{
    std::vector<std::string> out{"float32", "float16"};
    if (d.capability.empty() || std::stoi(d.capability) >= 8)
        out.push_back("bfloat16");
    return out;
}

// The processor's model name and the machine's memory, where Linux tells, and the precisions.
DeviceInfo describeCpu()
{
    DeviceInfo d;
    d.id = "cpu";
    d.available = true;
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);)
        if (line.starts_with("model name")) {
            const auto colon = line.find(':');
            if (colon != std::string::npos)
                d.name = line.substr(line.find_first_not_of(' ', colon + 1));
            break;
        }
    const long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && pageSize > 0)
        d.memoryBytes = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(pageSize);
    d.label = "CPU";
    if (!d.name.empty())
        d.label += " — " + d.name;
    if (d.memoryBytes)
        d.label += ", " + gibText(d.memoryBytes);
    d.dtypes = cpuPrecisions();
    return d;
}

// Each prediction checks its device and names it in errors: the CPU is described once.
DeviceInfo describeDevice(const c10::Device &device)
{
    if (device.is_cpu()) {
        static const DeviceInfo cpu = describeCpu();
        return cpu;
    }
    DeviceInfo d;
    d.available = true;
    const int index = device.has_index() ? device.index() : 0;
    d.id = "cuda:" + std::to_string(index);
    CudaDriver::instance().describe(index, d);
    d.label = d.id;
    if (!d.name.empty())
        d.label += " — " + d.name;
    if (d.memoryBytes)
        d.label += ", " + gibText(d.memoryBytes);
    if (!d.capability.empty())
        d.label += ", compute " + d.capability;
    d.dtypes = cudaPrecisions(d);
    return d;
}

std::string deviceText(const DeviceInfo &d) { return d.label.empty() ? d.id : d.label; }

std::string firstLine(const std::string &s)
{
    const auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
}

// A TorchScript literal.
std::string lit(const json &v)
{
    if (v.is_null())
        return "None";
    if (v.is_boolean())
        return v.get<bool>() ? "True" : "False";
    if (v.is_string())
        return "\"" + v.get<std::string>() + "\"";
    if (v.is_number_float())
        return formatFloat(v.get<double>());
    if (v.is_array()) {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i)
            s += (i ? ", " : "") + lit(v[i]);
        return s + "]";
    }
    return v.dump();
}

std::string flit(const json &v) { return formatFloat(v.get<double>()); }

// BatchNorm's momentum (None: a cumulative average). Evaluation never updates the statistics, so
// the value only has to be a number.
std::string momentumLiteral(const json &v) { return v.is_null() ? std::string("0.0") : flit(v); }

// A child's attribute name in the generated source: names come from the file, so only letters,
// digits and underscores pass (a name is spliced into getattr(self, "...")).
std::string attributeName(const std::string &name)
{
    std::string s = name.empty() ? std::string("_") : name;
    for (char &c : s)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
            c = '_';
    return s;
}

bool isBuffer(const std::string &local) { return local.starts_with("running_") || local == "num_batches_tracked"; }

// The body of a leaf's forward: `x` in, a return statement out.
std::string leafBody(const Layer &l, const std::map<std::string, bool> &has)
{
    const json &o = l.options;
    const std::string &ty = l.type;
    auto p = [&](const char *name) { return has.count(name) ? std::string("self.") + name : std::string("None"); };
    if (ty == "Linear")
        return "return torch.linear(x, self.weight, " + p("bias") + ")";
    if (ty == "Conv1d" || ty == "Conv2d") {
        const std::string op = ty == "Conv1d" ? "torch.conv1d" : "torch.conv2d";
        return "return " + op + "(x, self.weight, " + p("bias") + ", " + lit(o["stride"]) + ", " + lit(o["padding"]) +
               ", " + lit(o["dilation"]) + ", " + lit(o["groups"]) + ")";
    }
    if (ty == "ConvTranspose1d" || ty == "ConvTranspose2d") {
        const std::string op = ty == "ConvTranspose1d" ? "torch.conv_transpose1d" : "torch.conv_transpose2d";
        return "return " + op + "(x, self.weight, " + p("bias") + ", " + lit(o["stride"]) + ", " + lit(o["padding"]) +
               ", " + lit(o["output_padding"]) + ", " + lit(o["groups"]) + ", " + lit(o["dilation"]) + ")";
    }
    if (ty == "BatchNorm1d" || ty == "BatchNorm2d") {
        // Eval mode: the running statistics; without them PyTorch normalises with the batch's own.
        const bool track = has.count("running_mean") > 0;
        return "return torch.batch_norm(x, " + p("weight") + ", " + p("bias") + ", " + p("running_mean") + ", " +
               p("running_var") + ", " + (track ? "False" : "True") + ", " + momentumLiteral(o["momentum"]) + ", " +
               flit(o["eps"]) + ", False)";
    }
    if (ty == "InstanceNorm1d" || ty == "InstanceNorm2d") {
        const bool track = has.count("running_mean") > 0;
        return "return torch.instance_norm(x, " + p("weight") + ", " + p("bias") + ", " + p("running_mean") + ", " +
               p("running_var") + ", " + (track ? "False" : "True") + ", " + momentumLiteral(o["momentum"]) + ", " +
               flit(o["eps"]) + ", False)";
    }
    if (ty == "LayerNorm")
        return "return torch.layer_norm(x, " + lit(o["normalized_shape"]) + ", " + p("weight") + ", " + p("bias") +
               ", " + flit(o["eps"]) + ", False)";
    if (ty == "GroupNorm")
        return "return torch.group_norm(x, " + lit(o["num_groups"]) + ", " + p("weight") + ", " + p("bias") + ", " +
               flit(o["eps"]) + ", False)";
    if (ty == "Embedding")
        return "return torch.embedding(self.weight, x, " +
               (o["padding_idx"].is_null() ? std::string("-1") : lit(o["padding_idx"])) + ", False, False)";
    if (ty == "Flatten")
        return "return torch.flatten(x, " + lit(o["start_dim"]) + ", " + lit(o["end_dim"]) + ")";
    if (ty == "ReLU")
        return "return torch.relu(x)";
    if (ty == "ReLU6" || ty == "Hardtanh")
        return "return torch.hardtanh(x, " + flit(o["min_val"]) + ", " + flit(o["max_val"]) + ")";
    if (ty == "LeakyReLU")
        return "return torch.leaky_relu(x, " + flit(o["negative_slope"]) + ")";
    if (ty == "PReLU")
        return "return torch.prelu(x, self.weight)";
    if (ty == "GELU")
        return "return torch.gelu(x, approximate=" + lit(o["approximate"]) + ")";
    if (ty == "SiLU")
        return "return torch.silu(x)";
    if (ty == "Mish")
        return "return torch.mish(x)";
    if (ty == "ELU")
        return "return torch.elu(x, " + flit(o["alpha"]) + ", 1.0, 1.0)";
    if (ty == "Softplus")
        return "return torch.softplus(x, " + flit(o["beta"]) + ", " + flit(o["threshold"]) + ")";
    if (ty == "Hardswish")
        return "return torch.hardswish(x)";
    if (ty == "Hardsigmoid")
        return "return torch.hardsigmoid(x)";
    if (ty == "Softsign")
        return "return x / (torch.abs(x) + 1)";
    if (ty == "Sigmoid")
        return "return torch.sigmoid(x)";
    if (ty == "Tanh")
        return "return torch.tanh(x)";
    if (ty == "Softmax" || ty == "LogSoftmax") {
        const std::string op = ty == "Softmax" ? "torch.softmax" : "torch.log_softmax";
        if (!o["dim"].is_null())
            return "return " + op + "(x, " + lit(o["dim"]) + ")";
        // dim=None: PyTorch's legacy choice (_get_softmax_dim: dim 0 for a 0-, 1- or 3-d input, else
        // 1). Continuation lines are indented as the method body (4 spaces), which forward's
        // first line gets from the caller.
        return "d = 1\n    if x.dim() == 0 or x.dim() == 1 or x.dim() == 3:\n        d = 0\n    return " + op +
               "(x, d)";
    }
    if (ty == "MaxPool1d" || ty == "MaxPool2d")
        return "return torch." + std::string(ty == "MaxPool1d" ? "max_pool1d" : "max_pool2d") + "(x, " +
               lit(o["kernel_size"]) + ", " + lit(o["stride"]) + ", " + lit(o["padding"]) + ", " + lit(o["dilation"]) +
               ", " + lit(o["ceil_mode"]) + ")";
    if (ty == "AvgPool1d")
        return "return torch.avg_pool1d(x, " + lit(o["kernel_size"]) + ", " + lit(o["stride"]) + ", " +
               lit(o["padding"]) + ", " + lit(o["ceil_mode"]) + ", " + lit(o["count_include_pad"]) + ")";
    if (ty == "AvgPool2d")
        return "return torch.avg_pool2d(x, " + lit(o["kernel_size"]) + ", " + lit(o["stride"]) + ", " +
               lit(o["padding"]) + ", " + lit(o["ceil_mode"]) + ", " + lit(o["count_include_pad"]) + ", " +
               lit(o["divisor_override"]) + ")";
    if (ty.starts_with("Adaptive")) {
        const json &os = o["output_size"];
        std::string size = "[";
        for (std::size_t i = 0; i < os.size(); ++i)
            size += (i ? ", " : "") +
                    (os[i].is_null() ? "x.size(" + std::to_string(static_cast<int>(i) - static_cast<int>(os.size())) + ")"
                                     : lit(os[i]));
        size += "]";
        const bool max = ty.starts_with("AdaptiveMax");
        const std::string op = std::string("torch.adaptive_") + (max ? "max" : "avg") + "_pool" +
                               (os.size() == 1 ? "1d" : "2d");
        return "return " + op + "(x, " + size + ")" + (max ? "[0]" : "");
    }
    if (ty == "Identity" || ty == "Dropout" || ty == "Dropout1d" || ty == "Dropout2d" || ty == "AlphaDropout")
        return "return x";
    throw std::runtime_error("layer " + l.path + ": type " + ty + " cannot be run");
}

// Children with dotted names ("module.fc1", a wrapper's prefix or a spec's nesting) grouped as the
// state dict nests them: consecutive children under one first part become a Sequential of that
// name, so the module's state_dict() keeps the file's names. Nullopt when a first part comes back
// after other children, or is also a plain child's name: then the names are flattened instead.
std::optional<std::vector<Layer>> nestDotted(const std::vector<Layer> &children)
{
    std::vector<Layer> out;
    std::set<std::string> used;
    bool lastIsGroup = false;
    for (const Layer &c : children) {
        const auto dot = c.name.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == c.name.size()) {
            if (!used.insert(c.name).second)
                return std::nullopt;
            out.push_back(c);
            lastIsGroup = false;
            continue;
        }
        const std::string head = c.name.substr(0, dot);
        Layer inner = c;
        inner.name = c.name.substr(dot + 1);
        if (lastIsGroup && out.back().name == head) {
            out.back().children.push_back(std::move(inner));
            continue;
        }
        if (!used.insert(head).second)
            return std::nullopt;
        Layer group;
        group.name = head;
        group.path = c.path.ends_with("." + inner.name) ? c.path.substr(0, c.path.size() - inner.name.size() - 1) : head;
        group.type = "Sequential";
        group.children.push_back(std::move(inner));
        out.push_back(std::move(group));
        lastIsGroup = true;
    }
    return out;
}

struct Builder {
    std::shared_ptr<torch::jit::CompilationUnit> cu = std::make_shared<torch::jit::CompilationUnit>();
    std::map<std::string, at::Tensor> weights;
    std::set<std::string> frozen;  // parameters the file recorded with requires_grad=False
    std::vector<std::string> notes;
    int counter = 0;

    torch::jit::Module build(const Layer &l)
    {
        const std::string type = l.isContainer() ? (l.type == "Sequential" ? std::string("Sequential") : "Container") : l.type;
        torch::jit::Module m(c10::QualifiedName("__torch__.ckpt_studio." + type + "_" + std::to_string(counter++)), cu,
                             false);
        // Every module torch.jit.script writes has its `training` flag; saved in eval mode.
        m.register_attribute("training", c10::BoolType::get(), false);
        std::string src = "def forward(self, x):\n";
        if (l.isContainer()) {
            int i = 0;
            std::set<std::string> taken;
            const auto nested = nestDotted(l.children);
            if (!nested && std::any_of(l.children.begin(), l.children.end(),
                                       [](const Layer &c) { return c.name.find('.') != std::string::npos; }))
                notes.push_back("layer names with dots under " + (l.path.empty() ? std::string("the model") : l.path) +
                                " cannot nest in the order the layers run; the module names them with '_' for '.', "
                                "so its state_dict() keys differ from the file's");
            for (const auto &c : nested ? *nested : l.children) {
                std::string attr = attributeName(c.name);
                while (!taken.insert(attr).second)
                    attr += "_";
                m.register_module(attr, build(c));
                src += "    _" + std::to_string(i) + " = getattr(self, \"" + attr + "\")\n";
                src += "    x = _" + std::to_string(i) + ".forward(x)\n";
                ++i;
            }
            src += "    return x\n";
        } else {
            std::map<std::string, bool> has;
            for (const auto &local : l.tensors) {
                auto it = weights.find(l.tensorName(local));
                if (it == weights.end())
                    throw std::runtime_error("weight " + l.tensorName(local) + " is missing");
                if (isBuffer(local)) {
                    m.register_buffer(local, it->second);
                } else {
                    // As torch.jit.script writes a module: its parameters require grad, so the
                    // exported file fine-tunes; one the file saved frozen stays frozen.
                    at::Tensor p = it->second;
                    if (p.is_floating_point() || p.is_complex())
                        p.set_requires_grad(!frozen.count(l.tensorName(local)));
                    m.register_parameter(local, p, false);
                }
                has[local] = true;
            }
            // leafBody's further lines are indented for the method body already.
            src += "    " + leafBody(l, has) + "\n";
        }
        // The TorchScript compiler reports with torch::jit::ErrorReport, a std::exception and no
        // c10::Error; its text quotes the generated source, so only its first line is said.
        const auto compileError = [&l](const std::string &why) {
            return std::runtime_error("layer " + (l.path.empty() ? std::string("(model)") : l.path) + " (" + l.type +
                                      "): LibTorch could not compile it: " +
                                      firstLine(why.substr(std::min(why.find_first_not_of("\n "), why.size()))));
        };
        try {
            m.define(src);
        } catch (const c10::Error &e) {
            throw compileError(e.what_without_backtrace());
        } catch (const std::exception &e) {
            throw compileError(e.what());
        }
        return m;
    }
};

std::string lastLine(const std::string &s)
{
    std::string t = s;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' '))
        t.pop_back();
    const auto nl = t.rfind('\n');
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

torch::jit::Module loadScript(const std::string &path)
{
    try {
        return torch::jit::load(path, c10::Device(c10::kCPU));
    } catch (const c10::Error &e) {
        const std::string msg = e.what_without_backtrace();
        std::string hint;
        if (msg.find("version") != std::string::npos || msg.find("Unknown builtin op") != std::string::npos ||
            msg.find("Unknown type name") != std::string::npos || msg.find("unknown") != std::string::npos)
            hint = std::string(" (it probably needs a newer LibTorch than ") + TORCH_VERSION + ")";
        throw std::runtime_error(path + ": LibTorch cannot load this TorchScript file" + hint + ": " + firstLine(msg));
    }
}

// A floating type as PyTorch's Python names it (c10 says "Half", "BFloat16").
std::string floatingName(c10::ScalarType type)
{
    switch (type) {
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    default: return c10::toString(type);
    }
}

// A checkpoint tensor as the model computes with it: float32 for every floating type but float64.
// A parameter pruned with torch.nn.utils.prune is X_orig * X_mask, multiplied in its own dtype
// as torch's forward pre-hook does, before any cast.
at::Tensor weightTensor(const NamedTensor &w, std::vector<std::string> &notes, const NamedTensor *mask = nullptr)
{
    at::Tensor t = mask ? (toDenseValues(w.ref()) * toDenseValues(mask->ref())).contiguous()
                        : toDenseValues(w.ref()).contiguous().clone();
    if (t.is_floating_point() && t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble) {
        notes.push_back(w.name + " is stored as " + floatingName(t.scalar_type()) + ", computed as float32");
        t = t.to(at::kFloat);
    }
    return t;
}

// As Python's Module.to(dtype): the floating parameters and buffers only (LibTorch's Module::to
// casts integer ones too: num_batches_tracked, position ids).
void castFloatingState(torch::jit::Module &module, c10::ScalarType type)
{
    for (auto sub : module.modules())
        for (const auto &slot : sub.named_attributes(false))
            if (slot.value.isTensor() && slot.value.toTensor().is_floating_point() &&
                slot.value.toTensor().scalar_type() != type) {
                // In place, as Python's Module._apply does (param.data = fn(param)): whatever holds
                // the same tensor follows it, as an RNN's _flat_weights must; a parameter that
                // requires grad still does.
                at::Tensor t = slot.value.toTensor();
                t.set_data(t.to(type).detach());
            }
}

// The floating types of a module's parameters and buffers.
std::set<c10::ScalarType> floatingStateTypes(const torch::jit::Module &module)
{
    std::set<c10::ScalarType> out;
    for (const auto &sub : module.modules())
        for (const auto &slot : sub.named_attributes(false))
            if (slot.value.isTensor() && slot.value.toTensor().is_floating_point())
                out.insert(slot.value.toTensor().scalar_type());
    return out;
}

// The X_mask of a parameter pruned with torch.nn.utils.prune, by the parameter's name; null for others.
const NamedTensor *maskOf(const Architecture &arch, const std::string &name)
{
    const auto it = std::find_if(arch.masks.begin(), arch.masks.end(), [&](const NamedTensor &m) { return m.name == name; });
    return it == arch.masks.end() ? nullptr : &*it;
}

class TorchPredictor final : public Predictor {
public:
    TorchPredictor(const Document &doc, const Architecture &arch) : m_arch(arch)
    {
        m_arch.weights.clear();  // the document's tensors are copied below; nothing refers to it later
        torch::NoGradGuard noGrad;
        switch (arch.source) {
        case Architecture::Source::TorchScript:
            m_module = loadScript(arch.scriptPath);
            break;
        case Architecture::Source::ScriptArchitecture:
            m_module = loadScript(arch.scriptPath);
            loadWeightsInto(arch.weights);
            break;
        default: {
            Builder b;
            // Names that are one tensor in the file (a tied weight) become one at::Tensor, as
            // torch.jit.script keeps a tied parameter one: an export then writes it once, and
            // fine-tuning the exported module trains one weight, not two copies.
            std::map<TensorIdentity, at::Tensor> made;
            for (const auto &w : arch.weights) {
                // A pickled full model's nn.Parameter carries its flag; a state dict's tensors
                // (detached by state_dict()) carry none, and become parameters that train.
                if (w.ref().isParameter && !w.ref().requiresGrad)
                    b.frozen.insert(w.name);
                const NamedTensor *mask = maskOf(arch, w.name);
                const auto identity = mask ? std::nullopt : tensorIdentity(w.ref());
                const auto it = identity ? made.find(*identity) : made.end();
                if (it != made.end()) {
                    b.weights[w.name] = it->second;
                    continue;
                }
                b.weights[w.name] = weightTensor(w, m_notes, mask);
                if (identity)
                    made.emplace(*identity, b.weights[w.name]);
            }
            m_module = b.build(arch.root);
            m_notes.insert(m_notes.end(), b.notes.begin(), b.notes.end());
            break;
        }
        }
        (void)doc;
        if (!arch.masks.empty() && arch.source != Architecture::Source::TorchScript) {
            std::string names;
            for (const auto &m : arch.masks)
                names += (names.empty() ? "" : ", ") + m.name;
            m_notes.push_back(names + (arch.masks.size() == 1 ? " is" : " are") +
                              " pruned with torch.nn.utils.prune: computed as X_orig * X_mask, as the model's pruning "
                              "hook does in Python");
        }
        m_arch.masks.clear();  // copied into the module above
        m_module.eval();
        // A TorchScript module saved in float16 or bfloat16 computes in float32, as a checkpoint's
        // narrow weights do: LibTorch's CPU has no float16 matrix product, and an input is float32.
        // The file's own module stays as it is for an export.
        m_float32 = m_module;
        auto types = floatingStateTypes(m_module);
        for (const auto narrow : {at::kHalf, at::kBFloat16})
            if (types.count(narrow)) {
                m_float32 = m_module.deepcopy();
                castFloatingState(m_float32, at::kFloat);
                m_float32.eval();
                m_notes.push_back("the TorchScript module's weights are stored as " + floatingName(narrow) +
                                  ", computed as float32");
                types = floatingStateTypes(m_float32);
                break;
            }
        // A model whose weights are all float64 takes float64 input, as it does in Python.
        if (types.size() == 1 && *types.begin() == at::kDouble)
            m_inputType = at::kDouble;
    }

    std::vector<std::string> notes() const override
    {
        std::vector<std::string> out = m_notes;
        out.insert(out.end(), m_runNotes.begin(), m_runNotes.end());
        return out;
    }

    std::string torchScriptBytes(const std::string &dtype) const override
    {
        std::ostringstream os;
        if (dtype.empty()) {
            m_module.save(os);
            return os.str();
        }
        const c10::ScalarType type = dtype == "float64" ? at::kDouble : precisionType(dtype);
        torch::jit::Module copy = m_module.deepcopy();
        castFloatingState(copy, type);
        copy.eval();
        copy.save(os);
        return os.str();
    }

    PredictionResult run(const PredictionInput &input, const PredictOptions &o) override
    {
        PredictionResult r;
        m_runNotes.clear();
        c10::Device device(c10::kCPU);
        try {
            device = c10::Device(o.device);
        } catch (const c10::Error &) {
            throw std::runtime_error("unknown device '" + o.device + "' (cpu, cuda or cuda:N)");
        }
        if (device.is_cuda()) {
            if (!torch::cuda::is_available())
                throw std::runtime_error(o.device + ": " + cudaUnavailableReason());
            const auto count = static_cast<int>(torch::cuda::device_count());
            if (device.has_index() && device.index() >= count)
                throw std::runtime_error(o.device + ": LibTorch sees " + std::to_string(count) + " CUDA device(s)");
            if (!device.has_index())
                device = c10::Device(c10::kCUDA, 0);
        } else if (!device.is_cpu()) {
            throw std::runtime_error(o.device + ": only cpu and cuda devices are supported");
        }
        const c10::ScalarType precision = precisionType(o.dtype);
        const DeviceInfo info = describeDevice(device);
        if (std::find(info.dtypes.begin(), info.dtypes.end(), o.dtype) == info.dtypes.end())
            throw std::runtime_error(o.dtype + " inference is not available on " + deviceText(info) +
                                     (device.is_cpu() ? std::string(" with LibTorch ") + TORCH_VERSION : std::string()) +
                                     "; it offers " + joinText(info.dtypes));
        r.device = device.str();
        // What it computes in: a float64 model at the default precision in float64, and said so.
        r.dtype = m_inputType == at::kDouble && precision == at::kFloat ? "float64" : o.dtype;

        at::Tensor x = makeInput(input);
        if (o.normalize && !o.mean.empty() && !m_arch.integerInput) {
            x = normalise(x, o.mean, o.std);
            r.normalized = true;
        }
        if (!m_arch.integerInput)
            x = x.to(m_inputType);

        c10::InferenceMode guard;
        auto outOfMemory = [&](const std::string &why, const char *doing) {
            return std::runtime_error("out of memory on " + deviceText(info) + " while " + doing + " (" + why +
                                      "); try a smaller batch, float16 or bfloat16, or another device");
        };
        auto failed = [&](const std::string &what) {
            return isOutOfMemory(what) ? outOfMemory(what, "running the model")
                                       : refused(x, precision, o.dtype, info, what);
        };
        torch::jit::Module *placed = nullptr;
        try {
            placed = &moduleFor(device, precision);
            x = x.to(device);
            if (precision != at::kFloat && x.is_floating_point())
                x = x.to(precision);
        } catch (const c10::OutOfMemoryError &e) {
            throw outOfMemory(firstLine(e.what_without_backtrace()), "moving the weights and inputs there");
        }
        torch::jit::Module &m = *placed;
        at::Tensor y;
        try {
            // A prediction by hand is one call: the graph executor's profiling and optimising runs
            // would cost it tens of milliseconds before the first answer and never pay back.
            torch::jit::GraphOptimizerEnabledGuard runAsWritten(false);
            for (int i = 0; i < std::max(1, o.repeat); ++i) {
                const auto start = std::chrono::steady_clock::now();
                const c10::IValue out = m.forward({x});
                y = outputTensor(out).to(at::kCPU);  // waits for the device
                const auto end = std::chrono::steady_clock::now();
                r.runsMs.push_back(std::chrono::duration<double, std::milli>(end - start).count());
            }
        } catch (const c10::OutOfMemoryError &e) {
            throw outOfMemory(firstLine(e.what_without_backtrace()), "running the model");
        } catch (const UnreadableOutput &) {
            throw;
        } catch (const c10::Error &e) {
            const std::string why = firstLine(e.what_without_backtrace());
            if (m_arch.integerInput && why.find("index out of range in self") != std::string::npos)
                if (auto bad = badTokenId(input))
                    throw std::runtime_error(*bad);
            throw failed(why);
        } catch (const std::exception &e) {
            // The TorchScript interpreter's error: a traceback whose last line says what went wrong
            // (an allocation that failed inside the graph comes this way too). An id past the
            // Embedding's rows is said as such when the first weight's Embedding is the one.
            const std::string why = lastLine(e.what());
            if (m_arch.integerInput && why.find("index out of range in self") != std::string::npos)
                if (auto bad = badTokenId(input))
                    throw std::runtime_error(*bad);
            throw failed(why);
        }
        std::vector<double> sorted = r.runsMs;
        std::sort(sorted.begin(), sorted.end());
        r.latencyMs = sorted[sorted.size() / 2];
        fillOutputs(r, y.to(at::kDouble), input.shape.empty() ? 1 : input.shape[0], o);
        return r;
    }

private:
    Architecture m_arch;
    torch::jit::Module m_module;   // on the CPU, as the file or the architecture stores it: the master copy
    torch::jit::Module m_float32;  // the same in float32 where the file's is narrower (else m_module)
    c10::ScalarType m_inputType = at::kFloat;  // float64 for a model of float64 weights
    // Copies on other devices or in other precisions, made at first use and kept: the weights
    // move to a device once, however many predictions follow.
    std::map<std::string, torch::jit::Module> m_placed;
    std::vector<std::string> m_notes;     // what loading noticed
    std::vector<std::string> m_runNotes;  // what the last run noticed about its outputs

    // A failed allocation, as LibTorch words it: CUDA's caching allocator ("CUDA out of memory"),
    // the CPU allocator (1.13 throws a plain error: "can't allocate memory"; 2.x "not enough memory").
    static bool isOutOfMemory(const std::string &what)
    {
        for (const char *s : {"out of memory", "can't allocate memory", "not enough memory", "OutOfMemoryError"})
            if (what.find(s) != std::string::npos)
                return true;
        return false;
    }

    // A forward pass that failed. In float16 or bfloat16 a layer's kernel may lack that type on the
    // device (LibTorch 1.13's CPU Mish in bfloat16, say): the message says the precision was the cause.
    static std::runtime_error refused(const at::Tensor &x, c10::ScalarType precision, const std::string &dtype,
                                      const DeviceInfo &info, const std::string &why)
    {
        std::string msg = "the model refused an input of shape " + shapeText(x.sizes().vec()) + ": " + why;
        if (x.dim() == 4 && !x.is_complex() && x.is_floating_point())
            // A picture's size is the usual cause (a ViT's patches and positions fix it): which one
            // ran, and how to give another.
            msg += " (the input ran at " + std::to_string(x.size(3)) + "x" + std::to_string(x.size(2)) +
                   " pixels, " + std::to_string(x.size(1)) + (x.size(1) == 1 ? " channel" : " channels") +
                   "; a model of one input size needs that size: give it as the sample shape C,H,W with "
                   "--input-shape)";
        if (precision != at::kFloat) {
            if (why.find("not implemented for") != std::string::npos)
                msg = "a layer of this model has no " + dtype + " kernel on " + deviceText(info) + " (" + why +
                      "); run it in float32";
            else
                msg += " (running in " + dtype + "; float32 may work)";
        }
        return std::runtime_error(msg);
    }

    torch::jit::Module &moduleFor(const c10::Device &device, c10::ScalarType precision)
    {
        if (device.is_cpu() && precision == at::kFloat)
            return m_float32;
        // A float64 model at the default precision stays float64 on the device, as its input is.
        const bool keepFloat64 = m_inputType == at::kDouble && precision == at::kFloat;
        const std::string key = device.str() + "/" + c10::toString(keepFloat64 ? at::kDouble : precision);
        auto it = m_placed.find(key);
        if (it == m_placed.end()) {
            torch::jit::Module copy = m_float32.deepcopy();
            if (keepFloat64)
                copy.to(device);  // as map_location does
            else
                copy.to(device, precision);  // as map_location does, then .half() / .bfloat16()
            copy.eval();
            it = m_placed.emplace(key, std::move(copy)).first;
        }
        return it->second;
    }

    void loadWeightsInto(const std::vector<NamedTensor> &weights)
    {
        std::vector<std::pair<std::string, at::Tensor>> slots;
        for (const auto &p : m_module.named_parameters(true))
            slots.emplace_back(p.name, p.value);
        const std::size_t parameters = slots.size();
        for (const auto &b : m_module.named_buffers(true))
            slots.emplace_back(b.name, b.value);
        std::vector<std::string> ours, theirs;
        for (const auto &w : weights)
            ours.push_back(w.name);
        for (const auto &s : slots)
            theirs.push_back(s.first);
        const KeyAlignment al = alignKeys(ours, theirs);
        std::vector<std::string> missing, unexpected, mismatched, kept;
        // A buffer the weights lack is most often a non-persistent one (register_buffer(...,
        // persistent=False): a cache, a mask), which state_dict() leaves out but a TorchScript file
        // keeps without saying it was non-persistent. It keeps the architecture's value, said in a
        // note; a missing parameter is an error.
        auto persistent = [](const std::string &name) {  // a norm's statistics are always saved
            for (const char *stat : {"running_mean", "running_var", "num_batches_tracked"})
                if (name == stat || name.ends_with(std::string(".") + stat))
                    return true;
            return false;
        };
        for (auto i : al.onlyB)
            (i < parameters || persistent(theirs[i]) ? missing : kept).push_back(theirs[i]);
        for (auto i : al.onlyA)
            if (!ours[i].ends_with("num_batches_tracked"))
                unexpected.push_back(ours[i]);
        for (auto [i, j] : al.pairs)
            if (weights[i].ref().shape != slots[j].second.sizes().vec())
                mismatched.push_back(ours[i] + " " + shapeText(weights[i].ref().shape) + " vs " +
                                     shapeText(slots[j].second.sizes().vec()) + " in the architecture");
        if (!missing.empty() || !mismatched.empty()) {
            std::string msg = "the weights do not fit the architecture " + m_arch.scriptPath + ":";
            if (!missing.empty())
                msg += " missing keys: " + joinText(missing) + ";";
            if (!unexpected.empty())
                msg += " unexpected keys: " + joinText(unexpected) + ";";
            if (!mismatched.empty())
                msg += " shape mismatches: " + joinText(mismatched) + ";";
            msg.pop_back();
            throw std::runtime_error(msg);
        }
        if (!unexpected.empty())
            m_notes.push_back("unexpected keys ignored: " + joinText(unexpected));
        if (!kept.empty())
            m_notes.push_back("buffers the weights do not have keep the values " + m_arch.scriptPath + " holds: " +
                              joinText(kept) + " (a buffer registered with persistent=False is left out of a state dict)");
        if (!al.prefixA.empty())
            m_notes.push_back("the checkpoint's key prefix '" + al.prefixA + "' was stripped");
        for (auto [i, j] : al.pairs) {
            const NamedTensor *mask = maskOf(m_arch, weights[i].name);
            at::Tensor src = mask ? toDenseValues(weights[i].ref()) * toDenseValues(mask->ref())
                                  : toDenseValues(weights[i].ref());
            slots[j].second.copy_(src);  // the architecture's dtype stays, as load_state_dict keeps it
        }
    }

    at::Tensor makeInput(const PredictionInput &in) const
    {
        if (in.shape.empty())
            throw std::runtime_error("the input has no shape");
        std::int64_t n = 1;
        for (auto d : in.shape) {
            if (d < 0 || (d > 0 && n > (std::int64_t{1} << 40) / d))
                throw std::runtime_error("input shape " + shapeText(in.shape) + " is invalid or too large");
            n *= d;
        }
        if (n != static_cast<std::int64_t>(in.values.size()))
            throw std::runtime_error("input shape " + shapeText(in.shape) + " needs " + std::to_string(n) + " values, got " +
                                     std::to_string(in.values.size()));
        at::Tensor t = at::from_blob(const_cast<double *>(in.values.data()), in.shape, at::kDouble).clone();
        if (m_arch.integerInput) {
            if (!at::equal(t, t.round()))
                throw std::runtime_error("this model takes integer indices (it starts with an Embedding)");
            t = t.to(at::kLong);
            // Layers read from the file: the Embedding the ids meet is known, so a bad id is
            // named before anything runs (torch would only say "index out of range in self").
            if (!m_arch.inputShapeGuessed)
                if (auto bad = badTokenId(in))
                    throw std::runtime_error(*bad);
        }
        // Layers this application built check the shape before anything runs, naming the layer.
        if (!m_arch.root.type.empty()) {
            try {
                propagateShape(m_arch.root, in.shape);
            } catch (const std::exception &e) {
                std::vector<std::int64_t> sample(in.shape.begin() + 1, in.shape.end());
                std::string want;
                if (!m_arch.inputShape.empty()) {
                    // -1 is "any size" in a shape, and so is a size picked among those the layers
                    // take (Architecture::inputSizeChosen): said in words.
                    std::string shape = "[";
                    for (std::size_t i = 0; i < m_arch.inputShape.size(); ++i)
                        shape += (i ? ", " : "") + (m_arch.inputShape[i] < 0 || (i > 0 && m_arch.inputSizeChosen)
                                                        ? std::string("any size")
                                                        : std::to_string(m_arch.inputShape[i]));
                    want = " (the model takes samples of shape " + shape + "]";
                    if (!m_arch.exact)
                        want += ", as far as its layers run in the order the file lists them; give the model's own "
                                "TorchScript file with --arch, or its layers with --arch-spec, if that is not its forward";
                    want += ")";
                }
                throw std::runtime_error("input samples of shape " + shapeText(sample) + " do not fit" + want + ": " +
                                         e.what());
            }
        }
        return t;
    }

    // The first id outside the Embedding's rows, said with where it is and what the rows are;
    // nullopt when every id fits (or the rows are not known).
    std::optional<std::string> badTokenId(const PredictionInput &in) const
    {
        const std::int64_t rows = m_arch.embeddingRows;
        if (rows <= 0 || in.shape.empty())
            return std::nullopt;
        const std::size_t perSample = in.shape[0] > 0 ? in.values.size() / static_cast<std::size_t>(in.shape[0]) : 1;
        for (std::size_t i = 0; i < in.values.size(); ++i) {
            const double id = in.values[i];
            if (id >= 0 && id < static_cast<double>(rows))
                continue;
            std::ostringstream text;
            text << std::llround(id);
            const std::string name = m_arch.embeddingName.empty() ? std::string() : " (" + m_arch.embeddingName + ")";
            return "token id " + text.str() + " (sample " + std::to_string(i / std::max<std::size_t>(perSample, 1) + 1) +
                   ", position " + std::to_string(i % std::max<std::size_t>(perSample, 1) + 1) +
                   ") is out of range: the Embedding" + name + " has " + std::to_string(rows) + " rows (ids 0 to " +
                   std::to_string(rows - 1) + ")";
        }
        return std::nullopt;
    }

    static at::Tensor normalise(const at::Tensor &x, const std::vector<double> &mean, const std::vector<double> &stdev)
    {
        if (mean.size() != stdev.size())
            throw std::runtime_error("the normalisation has " + std::to_string(mean.size()) + " means but " +
                                     std::to_string(stdev.size()) + " standard deviations");
        for (double s : stdev)
            if (s == 0 || !std::isfinite(s))
                throw std::runtime_error("the normalisation has a zero or non-finite standard deviation");
        const auto k = static_cast<std::int64_t>(mean.size());
        at::Tensor m = at::tensor(mean, at::kDouble), s = at::tensor(stdev, at::kDouble);
        at::Tensor xd = x.to(at::kDouble);
        if (k == 1)
            return (xd - m) / s;
        if (x.dim() >= 3 && x.size(1) == k) {  // per channel: [N, C, ...]
            std::vector<std::int64_t> shape(static_cast<std::size_t>(x.dim()), 1);
            shape[1] = k;
            return (xd - m.reshape(shape)) / s.reshape(shape);
        }
        if (x.dim() >= 1 && x.size(-1) == k)  // per feature
            return (xd - m) / s;
        throw std::runtime_error("the normalisation has " + std::to_string(k) + " values, the input of shape " +
                                 shapeText(x.sizes().vec()) + " has neither that many features nor channels; run without it");
    }

    // The model ran, but gave something predict does not read: not the input's fault.
    struct UnreadableOutput : std::runtime_error {
        using std::runtime_error::runtime_error;
    };

    // "a dict (GenericDict)", "a tuple whose first item is a string (String)".
    static std::string outputKind(const c10::IValue &v)
    {
        std::string what;
        if (v.isGenericDict())
            what = "a dict";
        else if (v.isTuple())
            what = v.toTupleRef().elements().empty() ? "an empty tuple"
                                                     : "a tuple whose first item is " + outputKind(v.toTupleRef().elements()[0]);
        else if (v.isList())
            what = v.toListRef().empty() ? "an empty list" : "a list whose first item is " + outputKind(v.toListRef()[0]);
        else if (v.isNone())
            return "None";
        else if (v.isString())
            what = "a string";
        else if (v.isInt() || v.isDouble() || v.isBool())
            what = "a number";
        else if (v.isTensor())
            return "a tensor";
        else
            what = "a value";
        return v.isTuple() || v.isList() ? what : what + " (" + v.tagKind() + ")";
    }

    // A tensor, or the first item of a tuple or list (the logits of a model that returns more).
    static at::Tensor outputTensor(const c10::IValue &out)
    {
        if (out.isTensor())
            return out.toTensor();
        if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor())
            return out.toTupleRef().elements()[0].toTensor();
        if (out.isList() && out.toListRef().size() > 0 && out.toListRef()[0].isTensor())
            return out.toListRef()[0].toTensor();
        throw UnreadableOutput("the model ran but returned " + outputKind(out) +
                               "; predict reads a tensor, or a tuple or list whose first item is a tensor");
    }

    // What a reader of the outputs should know: a sample's output that is not one score per class
    // (and why a guessed architecture may give one), class names that do not count the outputs.
    void noteOutputs(const PredictionResult &r, const PredictOptions &o)
    {
        const std::vector<std::int64_t> sample = sampleOutputShape(r);
        const std::size_t width = r.outputs.empty() ? 0 : r.outputs.front().logits.size();
        if (!isScorePerClass(sample)) {
            std::string note = "each sample's output has shape " + shapeText(sample) + ", not one score per class: its " +
                               std::to_string(width) + " values are shown flattened (row-major) as values, not as class "
                               "probabilities";
            if (!m_arch.exact && m_arch.source == Architecture::Source::ModuleTree) {
                const std::string cls = m_arch.root.pythonClass.substr(m_arch.root.pythonClass.rfind('.') + 1);
                note += ". The file does not carry " + (cls.empty() ? std::string("the model") : cls) +
                        "'s forward, and running its children in registration order gives this shape: its forward "
                        "probably does more (a pooling or a flatten between layers). Give a TorchScript export of the "
                        "model (--arch) or its layers as a spec (--arch-spec)";
            } else if (!m_arch.exact) {
                note += ". The architecture was partly guessed (see its assumptions): check that it is the model's";
            }
            m_runNotes.push_back(note);
            return;
        }
        const std::size_t names = o.classNames.size();
        if (names == 0 || names == width)
            return;
        const std::string counted = "the file names " + std::to_string(names) + " classes but the model gives " +
                                    std::to_string(width) + (width == 1 ? " output" : " outputs") + " a sample";
        if (width == 1 && names == 2)
            m_runNotes.push_back(counted + " (a binary classifier's logit): its probability is sigmoid(output), usually "
                                           "of the second class ('" + o.classNames[1] + "'), though it is listed under the "
                                           "first name");
        else if (names < width)
            m_runNotes.push_back(counted + ": the names may not belong to these outputs, and outputs #" + std::to_string(names) +
                                 (width - names > 1 ? " to #" + std::to_string(width - 1) : std::string()) +
                                 " have none (shown by index)");
        else
            m_runNotes.push_back(counted + ": the names may not belong to these outputs (the first " + std::to_string(width) +
                                 " are used)");
    }

    void fillOutputs(PredictionResult &r, const at::Tensor &y, std::int64_t batch, const PredictOptions &o)
    {
        r.outputShape = y.sizes().vec();
        const at::Tensor rows =
            (y.dim() >= 1 && y.size(0) == batch ? y.reshape({batch, -1}) : y.reshape({1, -1})).contiguous();
        const std::int64_t k = rows.size(1);
        for (std::int64_t i = 0; i < rows.size(0); ++i) {
            SampleOutput s;
            const double *lp = rows[i].data_ptr<double>();
            s.logits.assign(lp, lp + k);
            r.outputs.push_back(std::move(s));
        }
        readOutputs(r, m_arch.output, o.probabilities, o.topK, o.classNames);
        noteOutputs(r, o);
    }
};

} // namespace

std::vector<DeviceInfo> listDevices()
{
    std::vector<DeviceInfo> out;
    out.push_back(describeDevice(c10::Device(c10::kCPU)));
    if (torch::cuda::is_available()) {
        const auto n = torch::cuda::device_count();
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(describeDevice(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(i))));
    } else {
        DeviceInfo cuda;
        cuda.id = "cuda";
        cuda.label = "CUDA";
        cuda.reason = cudaUnavailableReason();
        out.push_back(cuda);
    }
    return out;
}

std::unique_ptr<Predictor> makePredictor(const Document &doc, const Architecture &arch)
{
    try {
        return std::make_unique<TorchPredictor>(doc, arch);
    } catch (const c10::Error &e) {
        throw std::runtime_error(firstLine(e.what_without_backtrace()));
    }
}

} // namespace ckpt
