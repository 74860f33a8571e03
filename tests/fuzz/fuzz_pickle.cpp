// The pickle machine on arbitrary bytes, with a persistent-id loader that hands back storages.
#include "error.h"
#include "jsonexport.h"
#include "picklemachine.h"
#include "tensorref.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    ckpt::PickleMachine m;
    m.setPersistentLoad([](const ckpt::ValuePtr &, std::uint64_t) {
        auto s = std::make_shared<ckpt::StorageRef>();
        s->key = "0";
        s->dtype = ckpt::DType::Float32;
        return ckpt::Value::storage(s);
    });
    try {
        auto r = m.run({data, size});
        (void)ckpt::valueToJson(r.value).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    } catch (const ckpt::FormatError &) {
    }
    return 0;
}
