#include "modules.h"

namespace berth {
void InitFs(Napi::Env, Napi::Object) {}
}  // namespace berth
