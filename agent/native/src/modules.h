// Module entry points of the native addon (see addon.cc).
#pragma once
#include <napi.h>

namespace berth {
// Filesystem primitives Node lacks: openat2-confined writes, whiteouts, xattrs, mounts.
void InitFs(Napi::Env env, Napi::Object exports);
// Container creation, waiting and destruction.
void InitContainer(Napi::Env env, Napi::Object exports);
// Container networking: namespaces with a veth pair (rtnetlink), nftables (libnftables).
void InitNet(Napi::Env env, Napi::Object exports);
}  // namespace berth
