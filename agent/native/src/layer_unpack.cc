// One pass over a layer blob, off the main thread (typed in ../layer.d.ts):
// count and hash the compressed bytes, decompress (gzip, zstd or none), count
// and hash the uncompressed tar (the diff_id) under its caps, and extract it
// (layer_tar.cc). JS hands the blob's chunks as they arrive; each batch runs
// on a libuv worker thread, so the agent's event loop keeps its heartbeats
// while a big image unpacks, and the network read of the next chunks overlaps
// the work on this one. JS checks the digests against the descriptor.
//
// SHA-256/512 come from the OpenSSL inside Node (its symbols are exported for
// addons; SHA-NI where the CPU has it), inflate from the zlib inside Node,
// zstd from libzstd.
#include <errno.h>
#include <fcntl.h>
#include <napi.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

#include <time.h>

#include <functional>
#include <memory>
#include <vector>

#include "js_fields.h"
#include "layer_tar.h"
#include "sys.h"
#include "modules.h"

namespace berth {
namespace {

// Output pieces handed to the tar extractor: large, so a big file is written in few syscalls.
constexpr size_t kOutChunk = 256 * 1024;
// zstd frames may ask for windows up to 2^31; 2^27 (128 MiB) is containerd's and zstd's CLI default cap.
constexpr int kZstdWindowLogMax = 27;

// Takes an output piece; false when the extractor waits for a grant (it keeps what it did not take).
using Sink = std::function<bool(const uint8_t*, size_t)>;

int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

class Digest {
 public:
  explicit Digest(const std::string& algorithm) : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_, algorithm == "sha512" ? EVP_sha512() : EVP_sha256(), nullptr) != 1)
      throw std::runtime_error("cannot start a " + algorithm + " digest");
  }
  ~Digest() { EVP_MD_CTX_free(ctx_); }
  void Update(const uint8_t* p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; i++) out += digits[md[i] >> 4], out += digits[md[i] & 15];
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

class Decompressor {
 public:
  virtual ~Decompressor() = default;
  // Returns the input bytes consumed: all of them, unless out() said to stop
  // (then what was not consumed, and any output still inside, come on the next call).
  virtual size_t Feed(const uint8_t* p, size_t n, const Sink& out) = 0;
  // The end of the blob: refuses a cut stream.
  virtual void Finish(const Sink& out) = 0;
};

class Plain : public Decompressor {
 public:
  size_t Feed(const uint8_t* p, size_t n, const Sink& out) override {
    if (n) out(p, n);
    return n;
  }
  void Finish(const Sink&) override {}
};

// gzip as Node's gunzip reads it: concatenated members are read on, zero
// bytes after the last member are padding.
class Gunzip : public Decompressor {
 public:
  explicit Gunzip(std::string what) : what_(std::move(what)), buf_(kOutChunk) {
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  }
  ~Gunzip() override { inflateEnd(&z_); }
  size_t Feed(const uint8_t* p, size_t n, const Sink& out) override {
    z_.next_in = const_cast<uint8_t*>(p);
    z_.avail_in = static_cast<uInt>(n);
    for (;;) {
      if (ended_) {
        if (z_.avail_in == 0 || z_.next_in[0] == 0) return n;
        inflateReset(&z_);
        ended_ = false;
      }
      z_.next_out = buf_.data();
      z_.avail_out = static_cast<uInt>(buf_.size());
      int rc = inflate(&z_, Z_NO_FLUSH);
      size_t have = buf_.size() - z_.avail_out;
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        Refuse("CORRUPT_LAYER", what_ + " (gzip) is corrupt or truncated: " + (z_.msg ? z_.msg : "zlib error " + std::to_string(rc)));
      if (rc == Z_STREAM_END) ended_ = true;
      if (have && !out(buf_.data(), have)) return n - z_.avail_in;
      if (rc == Z_STREAM_END) continue;
      if (rc == Z_BUF_ERROR || (z_.avail_in == 0 && z_.avail_out != 0)) return n;
    }
  }
  void Finish(const Sink&) override {
    if (!ended_) Refuse("CORRUPT_LAYER", what_ + " (gzip) is corrupt or truncated: unexpected end of file");
  }

 private:
  std::string what_;
  z_stream z_ = {};
  std::vector<uint8_t> buf_;
  bool ended_ = false;
};

class Unzstd : public Decompressor {
 public:
  explicit Unzstd(std::string what) : what_(std::move(what)), d_(ZSTD_createDCtx()), buf_(kOutChunk) {
    if (!d_) throw std::runtime_error("ZSTD_createDCtx failed");
    ZSTD_DCtx_setParameter(d_, ZSTD_d_windowLogMax, kZstdWindowLogMax);
  }
  ~Unzstd() override { ZSTD_freeDCtx(d_); }
  size_t Feed(const uint8_t* p, size_t n, const Sink& out) override {
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
      ZSTD_outBuffer o = {buf_.data(), buf_.size(), 0};
      size_t before = in.pos;
      size_t r = ZSTD_decompressStream(d_, &o, &in);
      if (ZSTD_isError(r)) Refuse("CORRUPT_LAYER", what_ + " (zstd) is corrupt or truncated: " + ZSTD_getErrorName(r));
      // A call with nothing to read or flush (resuming after a frame ended) says nothing of the frame.
      if (in.pos > before || o.pos > 0) frameLeft_ = r;
      if (o.pos && !out(buf_.data(), o.pos)) return in.pos;
      if (in.pos == in.size && o.pos < o.size) return n;
    }
  }
  // Feed returns only once all output is out, so nothing is left to flush.
  void Finish(const Sink&) override {
    if (frameLeft_ != 0) Refuse("CORRUPT_LAYER", what_ + " (zstd) is corrupt or truncated: the last frame is cut short");
  }

 private:
  std::string what_;
  ZSTD_DCtx* d_;
  std::vector<uint8_t> buf_;
  size_t frameLeft_ = 1;  // ZSTD_decompressStream's hint: 0 once a frame is complete
};

struct Options {
  std::string name;  // the layer's digest, for messages
  std::string compression, blobAlgorithm, diffAlgorithm;
  uint64_t maxCompressedBytes, maxUncompressedBytes;
  TarLimits tar;
};

class Unpack {
 public:
  Unpack(Fd root, const Options& o)
      : opts_(o), root_(std::move(root)), blob_(o.blobAlgorithm), diff_(o.diffAlgorithm), tar_(root_.get(), o.tar) {
    std::string what = "layer " + o.name;
    if (o.compression == "gzip") inflater_ = std::make_unique<Gunzip>(what);
    else if (o.compression == "zstd") inflater_ = std::make_unique<Unzstd>(what);
    else inflater_ = std::make_unique<Plain>();
    sink_ = [this](const uint8_t* p, size_t n) { return Uncompressed(p, n); };
  }

  // The next compressed chunks and more of the cache's room. Returns 0 once
  // all of them are extracted, else what the extractor needs granted to go on
  // (it keeps the rest; the next call, with no chunks, resumes).
  int64_t Write(const std::vector<std::pair<const uint8_t*, size_t>>& chunks, int64_t grant) {
    tar_.Grant(grant);
    for (const auto& [p, n] : chunks) {
      compressed_ += n;
      if (compressed_ > opts_.maxCompressedBytes)
        Refuse("SIZE_MISMATCH", "layer " + opts_.name + " is longer than its descriptor's " + std::to_string(opts_.maxCompressedBytes) + " bytes");
      int64_t t0 = NowNs();
      blob_.Update(p, n);
      hashNs_ += NowNs() - t0;
    }
    if (!Resume()) return Stall(chunks);
    for (size_t i = 0; i < chunks.size(); i++) {
      size_t used = Inflate(chunks[i].first, chunks[i].second);
      if (waiting_) {
        std::vector<std::pair<const uint8_t*, size_t>> rest = {{chunks[i].first + used, chunks[i].second - used}};
        rest.insert(rest.end(), chunks.begin() + static_cast<long>(i) + 1, chunks.end());
        return Stall(rest);
      }
    }
    return 0;
  }

  void Finish() {
    if (waiting_) Refuse("CORRUPT_LAYER", "layer " + opts_.name + " was finished while its extraction waited for room");
    inflater_->Finish(sink_);
    int64_t t0 = NowNs();
    tar_.Finish();
    extractNs_ += NowNs() - t0;
    blobHex_ = blob_.Hex();
    diffHex_ = diff_.Hex();
  }

  Napi::Object Result(Napi::Env env) const {
    Napi::Object r = Napi::Object::New(env);
    r.Set("compressedBytes", Napi::Number::New(env, static_cast<double>(compressed_)));
    r.Set("blobDigest", blobHex_);
    r.Set("uncompressedBytes", Napi::Number::New(env, static_cast<double>(uncompressed_)));
    r.Set("diffDigest", diffHex_);
    r.Set("entries", Napi::Number::New(env, static_cast<double>(tar_.entries())));
    r.Set("bytes", Napi::Number::New(env, static_cast<double>(tar_.fileBytes())));
    Napi::Array dropped = Napi::Array::New(env, tar_.dropped().size());
    for (size_t i = 0; i < tar_.dropped().size(); i++) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("path", tar_.dropped()[i].first);
      d.Set("reason", tar_.dropped()[i].second);
      dropped.Set(static_cast<uint32_t>(i), d);
    }
    r.Set("dropped", dropped);
    Napi::Object ms = Napi::Object::New(env);
    ms.Set("hash", Napi::Number::New(env, hashNs_ / 1e6));
    ms.Set("decompress", Napi::Number::New(env, inflateNs_ / 1e6));
    ms.Set("extract", Napi::Number::New(env, extractNs_ / 1e6));
    r.Set("workerMs", ms);
    return r;
  }

  private:
  size_t Inflate(const uint8_t* p, size_t n) {
    int64_t t0 = NowNs(), inner = sinkNs_;
    size_t used = inflater_->Feed(p, n, sink_);
    inflateNs_ += NowNs() - t0 - (sinkNs_ - inner);
    return used;
  }

  // Output first counted against the layer's cap, then handed to the extractor.
  bool Uncompressed(const uint8_t* p, size_t n) {
    uncompressed_ += n;
    if (uncompressed_ > opts_.maxUncompressedBytes)
      Refuse("LAYER_TOO_LARGE", "layer " + opts_.name + " expands past the cap of " + std::to_string(opts_.maxUncompressedBytes) +
                                    " bytes (decompression bomb?)");
    size_t used = Extract(p, n);
    if (used == n && !tar_.Waiting()) return true;
    restOut_.assign(p + used, p + n);
    waiting_ = true;
    return false;
  }

  // The tar takes what its allowance lets it; the diff_id covers exactly what it took, in order.
  size_t Extract(const uint8_t* p, size_t n) {
    int64_t t0 = NowNs();
    size_t used = tar_.Feed(p, n);
    int64_t t1 = NowNs();
    diff_.Update(p, used);
    int64_t t2 = NowNs();
    extractNs_ += t1 - t0;
    hashNs_ += t2 - t1;
    sinkNs_ += t2 - t0;
    return used;
  }

  // Whether what an earlier call kept is extracted now: output first, then the input behind it.
  bool Resume() {
    if (!waiting_) return true;
    size_t used = Extract(restOut_.data(), restOut_.size());
    restOut_.erase(restOut_.begin(), restOut_.begin() + static_cast<long>(used));
    if (!restOut_.empty() || tar_.Waiting()) return false;
    waiting_ = false;
    std::vector<uint8_t> in = std::move(restIn_);
    restIn_.clear();
    // The decompressor may hold output for this input even when none is left.
    size_t consumed = Inflate(in.data(), in.size());
    if (waiting_) restIn_.assign(in.begin() + static_cast<long>(consumed), in.end());
    return !waiting_;
  }

  // Keeps the input not yet decompressed (copied: the caller's chunks are only lent) and says what is needed.
  int64_t Stall(const std::vector<std::pair<const uint8_t*, size_t>>& rest) {
    for (const auto& [p, n] : rest) restIn_.insert(restIn_.end(), p, p + n);
    waiting_ = true;
    return std::max<int64_t>(tar_.Need(), 1);
  }

  Options opts_;
  Fd root_;
  Digest blob_, diff_;
  TarExtractor tar_;
  std::unique_ptr<Decompressor> inflater_;
  Sink sink_;
  uint64_t compressed_ = 0, uncompressed_ = 0;
  // Waiting for a grant: the output the extractor did not take, and the input not yet decompressed.
  bool waiting_ = false;
  std::vector<uint8_t> restOut_, restIn_;
  // Where the worker's time goes (wall time on its thread): the digests, decompression, parsing and writing the tar.
  int64_t hashNs_ = 0, inflateNs_ = 0, extractNs_ = 0, sinkNs_ = 0;
  std::string blobHex_, diffHex_;
};

// What JS holds: the unpack until it is closed, and whether a call is running or has failed.
struct Slot {
  std::unique_ptr<Unpack> unpack;
  bool busy = false;
  bool failed = false;
};

// One batch of chunks (or the finish) on a worker thread. Execute() touches no
// JS: the chunks' bytes stay alive through the reference to their array.
class UnpackWorker : public Napi::AsyncWorker {
 public:
  UnpackWorker(Napi::Env env, Napi::External<Slot> handle, Napi::Array chunks, int64_t grant, bool finish)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), slot_(handle.Data()), unpack_(slot_->unpack.get()), finish_(finish), grant_(grant) {
    handle_ = Napi::Persistent(handle);
    if (!finish) {
      chunks_ = Napi::Persistent(chunks);
      for (uint32_t i = 0; i < chunks.Length(); i++) {
        Napi::Value v = chunks.Get(i);
        if (!v.IsTypedArray()) throw Napi::TypeError::New(env, "chunks must be Uint8Arrays");
        Napi::Uint8Array a = v.As<Napi::Uint8Array>();
        pieces_.emplace_back(a.Data(), a.ByteLength());
      }
    }
    slot_->busy = true;
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      if (finish_) unpack_->Finish();
      else need_ = unpack_->Write(pieces_, grant_);
    } catch (const LayerFail& e) {
      layerFail_ = e;
      SetError(e.message);
    } catch (const SysError& e) {
      sysError_ = e;
      isSys_ = true;
      SetError(e.step);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    slot_->busy = false;
    deferred_.Resolve(finish_ ? unpack_->Result(Env()) : Napi::Number::New(Env(), static_cast<double>(need_)));
  }
  void OnError(const Napi::Error& err) override {
    slot_->busy = false;
    slot_->failed = true;
    if (isSys_) return deferred_.Reject(ToJsError(Env(), sysError_).Value());
    if (layerFail_.code.empty()) return deferred_.Reject(err.Value());
    Napi::Error e = Napi::Error::New(Env(), layerFail_.message);
    e.Set("layerCode", layerFail_.code);
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Slot* slot_;
  Unpack* unpack_;
  bool finish_;
  int64_t grant_, need_ = 0;
  Napi::Reference<Napi::External<Slot>> handle_;
  Napi::Reference<Napi::Array> chunks_;
  std::vector<std::pair<const uint8_t*, size_t>> pieces_;
  LayerFail layerFail_;
  SysError sysError_;
  bool isSys_ = false;
};

// layerUnpackOpen(dir, options) -> handle. The caller keeps the image counters
// (a BigInt64Array on a SharedArrayBuffer) alive until the unpack is closed.
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsObject()) throw Napi::TypeError::New(env, "layerUnpackOpen(dir, options)");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  Options opts;
  opts.name = Str(o, "name");
  opts.compression = Str(o, "compression");
  opts.blobAlgorithm = Str(o, "blobAlgorithm");
  opts.diffAlgorithm = Str(o, "diffAlgorithm");
  opts.maxCompressedBytes = U64(o, "maxCompressedBytes");
  opts.maxUncompressedBytes = U64(o, "maxUncompressedBytes");
  opts.tar.maxFileBytes = U64(o, "maxFileBytes");
  opts.tar.maxEntries = U64(o, "maxEntries");
  opts.tar.idShift = static_cast<uint32_t>(U64(o, "idShift"));
  opts.tar.entryDiskBytes = static_cast<int64_t>(U64(o, "entryDiskBytes"));
  Napi::Value counters = o.Get("imageCounters");
  if (counters.IsTypedArray()) {
    auto a = counters.As<Napi::TypedArray>();
    if (a.TypedArrayType() != napi_bigint64_array || a.ElementLength() < 2) throw Napi::TypeError::New(env, "imageCounters must be a BigInt64Array of 2");
    auto* data = reinterpret_cast<int64_t*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
    opts.tar.image = {data, data + 1, static_cast<int64_t>(U64(o, "imageMaxEntries")), static_cast<int64_t>(U64(o, "imageMaxBytes"))};
  }
  int fd = open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Fail("open layer root", "open", errno, dir);
  auto* slot = new Slot{std::make_unique<Unpack>(Fd(fd), opts)};
  return Napi::External<Slot>::New(env, slot, [](Napi::Env, Slot* s) { delete s; });
}

Napi::External<Slot> Handle(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "handle must come from layerUnpackOpen");
  Napi::External<Slot> h = info[0].As<Napi::External<Slot>>();
  if (h.Data()->busy) throw Napi::Error::New(info.Env(), "the layer unpack is busy: await the previous call");
  if (h.Data()->failed || !h.Data()->unpack) throw Napi::Error::New(info.Env(), "the layer unpack has failed or is closed");
  return h;
}

// layerUnpackWrite(handle, chunks, grant) -> Promise of what the extraction
// needs granted to go on (0: all written): the next compressed bytes, in order.
Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::External<Slot> h = Handle(info);
  if (!info[1].IsArray() || !info[2].IsNumber()) throw Napi::TypeError::New(info.Env(), "layerUnpackWrite(handle, chunks, grant)");
  double grant = info[2].As<Napi::Number>().DoubleValue();
  auto* worker = new UnpackWorker(info.Env(), h, info[1].As<Napi::Array>(), grant > 1e18 ? int64_t{1} << 60 : static_cast<int64_t>(grant), false);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// layerUnpackFinish(handle) -> Promise of the result: the blob has ended.
Napi::Value Finish(const Napi::CallbackInfo& info) {
  Napi::External<Slot> h = Handle(info);
  auto* worker = new UnpackWorker(info.Env(), h, Napi::Array(), 0, true);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// layerUnpackClose(handle): closes the layer root and any file still open
// (after a failure); a call still running keeps them until it ends.
Napi::Value Close(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "handle must come from layerUnpackOpen");
  Slot* slot = info[0].As<Napi::External<Slot>>().Data();
  if (!slot->busy) slot->unpack.reset();
  return info.Env().Undefined();
}

}  // namespace

void InitLayer(Napi::Env env, Napi::Object exports) {
  exports.Set("layerUnpackOpen", Napi::Function::New(env, Wrap<Open>, "layerUnpackOpen"));
  exports.Set("layerUnpackWrite", Napi::Function::New(env, Wrap<Write>, "layerUnpackWrite"));
  exports.Set("layerUnpackFinish", Napi::Function::New(env, Wrap<Finish>, "layerUnpackFinish"));
  exports.Set("layerUnpackClose", Napi::Function::New(env, Wrap<Close>, "layerUnpackClose"));
}

}  // namespace berth
