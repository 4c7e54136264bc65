// Module entry points of the native addon (see addon.cc).
#pragma once
#include <napi.h>

namespace berth {
// Filesystem primitives Node lacks: user namespaces, idmapped and overlay mounts, loop mounts, xattrs.
void InitFs(Napi::Env env, Napi::Object exports);
// Layer blobs: hash, decompress and extract in one pass off the main thread (layer_unpack.cc, layer_tar.cc).
void InitLayer(Napi::Env env, Napi::Object exports);
// Container creation, waiting and destruction.
void InitContainer(Napi::Env env, Napi::Object exports);
// Container networking: namespaces with a veth pair (rtnetlink), nftables (libnftables).
void InitNet(Napi::Env env, Napi::Object exports);
}  // namespace berth
