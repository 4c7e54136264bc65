// Reading an options object that the TypeScript side built and validated
// (agent/runtime's container config, agent/images' layer options): a missing
// or mistyped field is a TypeError naming it, never undefined behaviour.
#pragma once
#include <napi.h>
#include <stdint.h>

#include <string>

namespace berth {

inline Napi::Value Field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) throw Napi::TypeError::New(o.Env(), std::string("missing option ") + name);
  return v;
}

inline std::string Str(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

inline double Num(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

// A count or byte size: negative reads as 0, beyond uint64_t as its maximum (no cap is "unlimited" by overflow).
inline uint64_t U64(const Napi::Object& o, const char* name) {
  double d = Num(o, name);
  return d < 0 ? 0 : d > 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(d);
}

inline Napi::Array Arr(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(name) + " must be an array");
  return v.As<Napi::Array>();
}

}  // namespace berth
