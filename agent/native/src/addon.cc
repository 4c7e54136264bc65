// Registers the addon's modules. Each module lives in its own file and exports
// its functions onto `exports` from an Init function declared in modules.h.
#include <napi.h>

#include "modules.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  berth::InitFs(env, exports);
  berth::InitLayer(env, exports);
  berth::InitContainer(env, exports);
  berth::InitNet(env, exports);
  return exports;
}

NODE_API_MODULE(berth_native, Init)
