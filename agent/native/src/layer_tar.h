// The layer tar extractor (layer_tar.cc): parses an uncompressed layer tar as
// it streams and writes it below a layer root, confined, in the form overlayfs
// reads as a lower layer. Fed by layer_unpack.cc on a worker thread; touches
// no JS.
#pragma once
#include <stdint.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <list>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sys.h"

namespace berth {

// A refused layer: `code` is a LayerErrorCode of agent/images/layer-error.ts.
struct LayerFail {
  std::string code;
  std::string message;
};

[[noreturn]] inline void Refuse(std::string code, std::string message) {
  throw LayerFail{std::move(code), std::move(message)};
}

// What the whole image may still take, shared by the layers of one pull
// (counters live in a SharedArrayBuffer the JS ImageBudget also charges).
struct ImageCounters {
  int64_t* entries = nullptr;  // counters[0]
  int64_t* bytes = nullptr;    // counters[1]
  int64_t maxEntries = 0;
  int64_t maxBytes = 0;
  void TakeEntry() const;
  void TakeBytes(int64_t n) const;
};

struct TarLimits {
  uint64_t maxFileBytes = 0;
  uint64_t maxEntries = 0;
  uint32_t idShift = 0;
  ImageCounters image;
  // What the layer cache charges per entry on top of the tar's bytes (a block).
  int64_t entryDiskBytes = 0;
};

struct EntryMeta {
  uint32_t uid = 0, gid = 0, mode = 0;
  int64_t mtimeNs = 0, atimeNs = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class TarExtractor {
 public:
  TarExtractor(int root, TarLimits limits);
  // Consumes the next bytes of the uncompressed tar, as far as the allowance
  // lets it: returns how many; fewer than n means it waits for a Grant.
  size_t Feed(const uint8_t* p, size_t n);
  // More of the layer cache's room: each byte consumed and each entry's block take from it.
  void Grant(int64_t bytes) { allowance_ = std::min<int64_t>(allowance_ + std::max<int64_t>(bytes, 0), int64_t{1} << 60); }
  // Whether it waits for a Grant (an entry's block, or bytes), and how much the next step needs.
  bool Waiting() const { return pending_ || allowance_ <= 0; }
  int64_t Need() const { return pending_ ? limits_.entryDiskBytes - allowance_ : 1; }
  // The end of the stream: refuses a cut tar, then sets directory metadata last.
  void Finish();

  uint64_t entries() const { return entries_; }
  uint64_t fileBytes() const { return fileBytes_; }
  // (path, reason) of entries deliberately not written (DROP_REASONS in JS).
  const std::vector<std::pair<std::string, std::string>>& dropped() const { return dropped_; }

 private:
  enum class State { kHeader, kLong, kBody, kSkip };
  struct Header {
    char type;  // '0' file, '1' link, '2' symlink, '3'/'4' devices, '5' dir, '6' fifo, '7' contiguous, or the long kinds
    std::string name, linkname;
    int64_t size = 0, mode = 0, uid = 0, gid = 0, mtime = 0;
  };
  using Pax = std::vector<std::pair<std::string, std::string>>;

  void OnHeaderBlock();
  size_t Take(size_t k);
  void OnLongHeader();
  void StartEntry(Header h, Pax pax);
  void EndFileBody();
  void Skip(uint64_t n);

  void Count(const std::string& name);
  const std::string& Keep(const std::string& rel);
  void Drop(const std::string& path, const char* reason);
  EntryMeta MetaOf(const Header& h, const Pax& pax) const;
  void ApplyMeta(int fd, const std::string& rel, const EntryMeta& meta, bool chown, bool chmod, bool times);
  bool NeedsChown(const EntryMeta& meta) const;
  bool NeedsChmod(uint32_t mode, bool dir) const;
  void SetMetaInRoot(const std::string& rel, const EntryMeta& meta);
  std::vector<std::pair<std::string, std::string>> XattrsFor(const std::string& rel, const EntryMeta& meta);
  void Whiteout(const std::string& dir, const std::string& target);
  void MarkOpaque(const std::string& dir);

  // Confined path operations below the root (openat2 RESOLVE_IN_ROOT), with
  // the parent directory of the last entry kept open.
  int Parent(const std::string& rel, bool create);
  bool RemoveIn(int parent, const std::string& base, const std::string& rel);
  bool MakeDir(const std::string& rel, uint32_t mode);
  int CreateFile(const std::string& rel, uint32_t mode);
  std::string ClearedTarget(const std::string& rel);

  int root_;
  TarLimits limits_;
  uint32_t umask_;
  uint32_t euid_, egid_;
  State state_ = State::kHeader;
  uint8_t block_[512];
  size_t blockFill_ = 0;
  uint64_t missing_ = 0;  // bytes left of the current long header, body or padding
  uint64_t pad_ = 0;      // padding after the current long header or body
  Header long_;           // the long header being read
  std::string longBody_;
  std::string gnuLongPath_, gnuLongLink_;
  bool haveGnuLongPath_ = false, haveGnuLongLink_ = false;
  Pax pax_, paxGlobal_;
  bool havePax_ = false;
  // An entry whose header is read, waiting for the allowance of its block.
  bool pending_ = false;
  Header pendingHeader_;
  Pax pendingPax_;
  int64_t allowance_ = 0;

  // The regular file being written, and what it gets when its body is done.
  Fd file_;
  std::string fileRel_;
  EntryMeta fileMeta_;
  bool fileChown_ = false, fileChmod_ = false;

  std::string parentRel_;
  Fd parentFd_;
  bool parentSetgid_ = false;
  uint32_t parentGid_ = 0;

  uint64_t entries_ = 0, fileBytes_ = 0, keptNameBytes_ = 0;
  std::vector<std::pair<std::string, std::string>> dropped_;
  // Paths this layer created, so a whiteout never hides the layer's own entry.
  std::unordered_set<std::string> created_;
  // Whiteout devices made per directory, removed again if the directory turns opaque.
  std::unordered_map<std::string, std::vector<std::string>> whiteouts_;
  std::unordered_set<std::string> opaque_;
  // Directories get their metadata again last (without xattrs): writing children changes their mtimes.
  std::list<std::pair<std::string, EntryMeta>> dirMeta_;
  std::unordered_map<std::string, std::list<std::pair<std::string, EntryMeta>>::iterator> dirIndex_;
};

}  // namespace berth
