#include "modules.h"

namespace berth {
void InitContainer(Napi::Env, Napi::Object) {}
}  // namespace berth
