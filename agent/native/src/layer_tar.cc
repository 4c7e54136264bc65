// The layer tar extractor (see layer_tar.h).
//
// Parsing follows tar-stream 3.2, which Berth used before: ustar and GNU
// headers (anything else is refused), base-256 numbers, zero blocks skipped
// wherever they are, PAX records (local and global: path, linkpath, size,
// mtime, atime, SCHILY.xattr.* byte for byte) and GNU long names. Long
// headers over 1 MiB are refused from their header block, before their body
// is held (Go's archive/tar limit, which containerd and Docker use).
//
// Writing: whiteouts become char 0/0 devices, opaque markers the
// trusted.overlay.opaque xattr; devices and trusted.overlay.* xattrs from the
// image are dropped (DROP_REASONS in JS says why). Every path is resolved with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from the root's O_PATH fd,
// so a symlink in the tree can never carry an entry outside it, and the last
// component is never followed. The parent directory of the last entry stays
// open (tar streams list a directory's files together) until anything is
// removed, which is the only way its resolution could change. A regular file
// gets its owner, xattrs, mode and times through the fd it was written with.
#include "layer_tar.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace berth {
namespace {

constexpr uint64_t kMaxLongHeaderBytes = 1 << 20;
constexpr size_t kPathMax = 4096;
// Bytes of names kept per layer (created paths, directories whose times are
// set last, whiteouts, dropped entries): with names up to PATH_MAX, the entry
// cap alone would still let a layer make the agent keep GiBs.
constexpr uint64_t kMaxKeptNameBytes = 16 << 20;
constexpr const char* kOpaqueXattr = "trusted.overlay.opaque";
constexpr const char* kXattrPrefix = "SCHILY.xattr.";
constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

// JSON.stringify of a name, for messages that match the JS ones.
std::string Quote(const std::string& s, size_t max = 200) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max; i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') out += '\\', out += static_cast<char>(c);
    else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  if (s.size() > max) out += "…";
  return out + "\"";
}

std::pair<std::string, std::string> SplitParent(const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash == std::string::npos) return {"", rel};
  return {rel.substr(0, slash), rel.substr(slash + 1)};
}

std::string JoinPath(const std::string& dir, const std::string& base) { return dir.empty() ? base : dir + "/" + base; }

// A tar name as a clean relative path ("" is the layer root). A leading `/`
// means the root (as containerd and umoci read it); a `..` that climbs above
// the root is refused rather than clamped.
std::string CleanEntryPath(const std::string& name, const std::string& what) {
  if (name.find('\0') != std::string::npos) Refuse("PATH_ESCAPE", what + " " + Quote(name) + " contains a NUL byte");
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t next = name.find('/', pos);
    if (next == std::string::npos) next = name.size();
    std::string part = name.substr(pos, next - pos);
    pos = next + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) Refuse("PATH_ESCAPE", what + " " + Quote(name) + " leaves the layer root");
      parts.pop_back();
    } else parts.push_back(std::move(part));
  }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

// OCI whiteouts (image-spec layer.md): ".wh..wh..opq" makes its directory
// opaque, ".wh..wh.*" is AUFS bookkeeping, ".wh.NAME" hides NAME.
enum class WhiteoutKind { kNone, kOpaque, kAufs, kWhiteout };
WhiteoutKind ParseWhiteout(const std::string& rel, std::string* dir, std::string* target) {
  auto [d, base] = SplitParent(rel);
  if (base.rfind(".wh.", 0) != 0) return WhiteoutKind::kNone;
  *dir = d;
  if (base == ".wh..wh..opq") return WhiteoutKind::kOpaque;
  if (base.rfind(".wh..wh.", 0) == 0) return WhiteoutKind::kAufs;
  *target = base.substr(4);
  if (target->empty() || *target == "." || *target == "..")
    Refuse("BAD_WHITEOUT", "whiteout " + Quote(rel) + " does not name an entry of its directory");
  return WhiteoutKind::kWhiteout;
}

// A NUL-terminated field.
std::string Str(const uint8_t* b, size_t len) {
  size_t n = 0;
  while (n < len && b[n] != 0) n++;
  return std::string(reinterpret_cast<const char*>(b), n);
}

// A numeric field as tar-stream reads it: base-256 when the top bit is set,
// else octal after leading spaces and NULs. False when it holds no number.
bool Number(const uint8_t* b, size_t len, int64_t* out) {
  if (b[0] & 0x80) {
    if (b[0] != 0x80 && b[0] != 0xff) return false;
    bool positive = b[0] == 0x80;
    int64_t sum = 0;
    for (size_t i = 1; i < len; i++) sum = sum * 256 + (positive ? b[i] : 0xff - b[i]);
    *out = positive ? sum : -sum;
    return true;
  }
  size_t i = 0;
  while (i < len && b[i] == ' ') i++;
  size_t end = i;
  while (end < len && b[end] != ' ') end++;
  while (i < end && b[i] == 0) i++;
  if (i == end) {
    *out = 0;
    return true;
  }
  if (b[i] < '0' || b[i] > '7') return false;
  int64_t v = 0;
  while (i < end && b[i] >= '0' && b[i] <= '7') v = v * 8 + (b[i++] - '0');
  *out = v;
  return true;
}

// Leading decimal digits, as JS parseInt(s, 10) reads them.
bool Decimal(const std::string& s, int64_t* out) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') i++;
  if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
  int64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && v < (int64_t{1} << 56)) v = v * 10 + (s[i++] - '0');
  *out = v;
  return true;
}

const char* LongKind(char type) {
  switch (type) {
    case 'x': return "pax-header";
    case 'g': return "pax-global-header";
    case 'K': return "gnu-long-link-path";
    case 'L':
    case 'N': return "gnu-long-path";
  }
  return nullptr;
}

// PAX records "LEN KEY=VALUE\n", later keys replacing earlier ones in place.
void DecodePax(const std::string& buf, std::vector<std::pair<std::string, std::string>>* out) {
  size_t off = 0;
  while (off < buf.size()) {
    size_t space = buf.find(' ', off);
    if (space == std::string::npos || space == off) break;
    int64_t len;
    if (!Decimal(buf.substr(off, space - off), &len)) break;
    if (!(static_cast<uint64_t>(len) > space - off + 1) || static_cast<uint64_t>(len) > buf.size() - off) break;
    std::string record = buf.substr(space + 1, off + len - 1 - (space + 1));
    size_t eq = record.find('=');
    if (eq == std::string::npos) break;
    std::string key = record.substr(0, eq), value = record.substr(eq + 1);
    bool replaced = false;
    for (auto& kv : *out)
      if (kv.first == key) kv.second = value, replaced = true;
    if (!replaced) out->emplace_back(std::move(key), std::move(value));
    off += len;
  }
}

const std::string* PaxGet(const std::vector<std::pair<std::string, std::string>>& pax, const char* key) {
  for (const auto& kv : pax)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

// PAX times are decimal seconds with up to nanosecond fractions ("1700000000.123456789").
bool PaxTimeNs(const std::string* v, int64_t* out) {
  if (!v || v->empty()) return false;
  size_t i = (*v)[0] == '-' ? 1 : 0, digits = i;
  while (i < v->size() && isdigit(static_cast<unsigned char>((*v)[i]))) i++;
  if (i == digits) return false;
  std::string sec = v->substr(0, i), frac;
  if (i < v->size()) {
    if ((*v)[i] != '.') return false;
    size_t f = ++i;
    while (i < v->size() && isdigit(static_cast<unsigned char>((*v)[i]))) i++;
    if (i == f || i != v->size()) return false;
    frac = v->substr(f);
  }
  frac = (frac + "000000000").substr(0, 9);
  *out = std::stoll(sec) * 1000000000 + std::stoll(frac) * (sec[0] == '-' ? -1 : 1);
  return true;
}

int OpenInRoot(int root, const std::string& rel, uint64_t flags, const char* step) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = kResolve;
  for (;;) {
    int fd = static_cast<int>(syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how));
    if (fd >= 0) return fd;
    // EAGAIN: a concurrent rename raced the resolution; retrying is what the man page asks.
    if (errno == EAGAIN || errno == EINTR) continue;
    Fail(step, "openat2", errno, rel);
  }
}

// The parent directory of rel inside root, creating missing directories
// (mode 0755, owned by the caller) as tar streams may omit them.
Fd OpenParent(int root, const std::string& rel, bool create) {
  std::string dir = SplitParent(rel).first;
  struct open_how how = {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = kResolve;
  for (;;) {
    int fd = static_cast<int>(syscall(SYS_openat2, root, dir.empty() ? "." : dir.c_str(), &how, sizeof how));
    if (fd >= 0) return Fd(fd);
    if (errno == EAGAIN || errno == EINTR) continue;
    if (errno != ENOENT || !create) Fail("open parent", "openat2", errno, dir);
    break;
  }
  // Walk the prefixes, each resolved from the root, creating what is missing.
  Fd cur(OpenInRoot(root, "", O_PATH | O_DIRECTORY, "open root"));
  size_t pos = 0;
  while (pos <= dir.size()) {
    size_t next = dir.find('/', pos);
    if (next == std::string::npos) next = dir.size();
    std::string prefix = dir.substr(0, next);
    std::string comp = dir.substr(pos, next - pos);
    int fd = static_cast<int>(syscall(SYS_openat2, root, prefix.c_str(), &how, sizeof how));
    if (fd < 0 && errno == ENOENT) {
      if (mkdirat(cur.get(), comp.c_str(), 0755) < 0 && errno != EEXIST) Fail("create parent", "mkdirat", errno, prefix);
      fd = static_cast<int>(syscall(SYS_openat2, root, prefix.c_str(), &how, sizeof how));
    }
    if (fd < 0) Fail("open parent", "openat2", errno, prefix);
    cur = Fd(fd);
    pos = next + 1;
  }
  return cur;
}

bool RemoveAt(int parent, const std::string& name, const std::string& shown);

void RemoveTree(int parent, const std::string& name, const std::string& shown) {
  int dfd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) Fail("remove existing directory", "openat", errno, shown);
  DIR* d = fdopendir(dfd);
  if (!d) {
    int e = errno;
    close(dfd);
    Fail("remove existing directory", "fdopendir", e, shown);
  }
  std::vector<std::string> names;
  while (struct dirent* ent = readdir(d)) {
    if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
    names.emplace_back(ent->d_name);
  }
  try {
    for (const auto& n : names) RemoveAt(dirfd(d), n, shown + "/" + n);
  } catch (...) {
    closedir(d);
    throw;
  }
  closedir(d);
  if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT)
    Fail("remove existing directory", "unlinkat", errno, shown);
}

// Removes whatever is at parent/name (a directory recursively); whether anything was there.
bool RemoveAt(int parent, const std::string& name, const std::string& shown) {
  if (unlinkat(parent, name.c_str(), 0) == 0) return true;
  if (errno == ENOENT) return false;
  if (errno != EISDIR) Fail("remove existing entry", "unlinkat", errno, shown);
  RemoveTree(parent, name, shown);
  return true;
}

struct timespec Timespec(int64_t ns) {
  struct timespec ts;
  ts.tv_sec = ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  if (ts.tv_nsec < 0) {
    ts.tv_nsec += 1000000000;
    ts.tv_sec -= 1;
  }
  return ts;
}

// The process's umask, which file and directory creation applies (read, not
// set: umask(2) would change it for every thread).
uint32_t ProcessUmask() {
  FILE* f = fopen("/proc/self/status", "re");
  unsigned int mask = 022;
  if (!f) return mask;
  char line[256];
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Umask: %o", &mask) == 1) break;
  fclose(f);
  return mask;
}

}  // namespace

TarExtractor::TarExtractor(int root, TarLimits limits)
    : root_(root), limits_(limits), umask_(ProcessUmask()), euid_(geteuid()), egid_(getegid()) {}

void ImageCounters::TakeEntry() const {
  if (!entries) return;
  if (std::atomic_ref<int64_t>(*entries).fetch_add(1) + 1 > maxEntries)
    Refuse("IMAGE_TOO_LARGE", "the image holds more than " + std::to_string(maxEntries) + " entries over its layers");
}

void ImageCounters::TakeBytes(int64_t n) const {
  if (!bytes) return;
  if (std::atomic_ref<int64_t>(*bytes).fetch_add(n) + n > maxBytes)
    Refuse("IMAGE_TOO_LARGE", "the image holds more than " + std::to_string(maxBytes) + " uncompressed bytes over its layers");
}

// k bytes or as many as the allowance leaves, each charged to the image's budget before it is used.
size_t TarExtractor::Take(size_t k) {
  k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(k), std::max<int64_t>(allowance_, 0)));
  allowance_ -= static_cast<int64_t>(k);
  if (k) limits_.image.TakeBytes(static_cast<int64_t>(k));
  return k;
}

size_t TarExtractor::Feed(const uint8_t* p, size_t n) {
  const size_t total = n;
  for (;;) {
    if (pending_) {
      if (allowance_ < limits_.entryDiskBytes) return total - n;
      allowance_ -= limits_.entryDiskBytes;
      pending_ = false;
      StartEntry(std::move(pendingHeader_), std::move(pendingPax_));
    }
    if (n == 0) return total;
    size_t want = state_ == State::kHeader ? sizeof block_ - blockFill_ : static_cast<size_t>(std::min<uint64_t>(n, missing_));
    size_t k = Take(std::min(n, want));
    if (k == 0) return total - n;
    switch (state_) {
      case State::kHeader: {
        memcpy(block_ + blockFill_, p, k);
        blockFill_ += k, p += k, n -= k;
        if (blockFill_ == sizeof block_) {
          blockFill_ = 0;
          OnHeaderBlock();
        }
        break;
      }
      case State::kLong: {
        longBody_.append(reinterpret_cast<const char*>(p), k);
        p += k, n -= k, missing_ -= k;
        if (missing_ == 0) {
          OnLongHeader();
          Skip(pad_);
        }
        break;
      }
      case State::kBody: {
        for (size_t off = 0; off < k;) {
          ssize_t w = write(file_.get(), p + off, k - off);
          if (w < 0 && errno == EINTR) continue;
          if (w < 0) Fail("write file", "write", errno, fileRel_);
          off += static_cast<size_t>(w);
        }
        fileBytes_ += k;
        p += k, n -= k, missing_ -= k;
        if (missing_ == 0) {
          EndFileBody();
          Skip(pad_);
        }
        break;
      }
      case State::kSkip: {
        p += k, n -= k, missing_ -= k;
        if (missing_ == 0) state_ = State::kHeader;
        break;
      }
    }
  }
}

void TarExtractor::Skip(uint64_t n) {
  missing_ = n;
  state_ = n ? State::kSkip : State::kHeader;
}

void TarExtractor::Finish() {
  if (pending_ || state_ != State::kHeader || blockFill_ != 0) Refuse("CORRUPT_LAYER", "invalid layer tar: unexpected end of data");
  for (auto it = dirMeta_.rbegin(); it != dirMeta_.rend(); ++it) {
    const auto& [rel, meta] = *it;
    Fd fd(OpenInRoot(root_, rel, O_PATH | O_NOFOLLOW, "set times"));
    struct timespec times[2] = {Timespec(meta.atimeNs), Timespec(meta.mtimeNs)};
    if (utimensat(fd.get(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) Fail("set times", "utimensat", errno, rel);
  }
}

void TarExtractor::OnHeaderBlock() {
  const uint8_t* b = block_;
  int64_t sum = 8 * 32;
  for (int i = 0; i < 148; i++) sum += b[i];
  for (int i = 156; i < 512; i++) sum += b[i];
  if (sum == 8 * 32) return;  // a zero block: end-of-archive marker or padding
  int64_t stored;
  if (!Number(b + 148, 8, &stored) || stored != sum)
    Refuse("CORRUPT_LAYER", "invalid layer tar: Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?");
  bool ustar = memcmp(b + 257, "ustar\0", 6) == 0;
  bool gnu = memcmp(b + 257, "ustar ", 6) == 0 && memcmp(b + 263, " \0", 2) == 0;
  if (!ustar && !gnu) Refuse("CORRUPT_LAYER", "invalid layer tar: Invalid tar header: unknown format.");
  Header h;
  h.type = b[156] == 0 ? '0' : static_cast<char>(b[156]);
  h.name = Str(b, 100);
  if (ustar && b[345]) h.name = Str(b + 345, 155) + "/" + h.name;
  if (b[157]) h.linkname = Str(b + 157, 100);
  bool sizeOk = Number(b + 124, 12, &h.size);
  if (!Number(b + 100, 8, &h.mode)) h.mode = 0;
  if (!Number(b + 108, 8, &h.uid)) h.uid = 0;
  if (!Number(b + 116, 8, &h.gid)) h.gid = 0;
  if (!Number(b + 136, 12, &h.mtime)) h.mtime = 0;
  // Old tars mark directories with a trailing slash.
  if (h.type == '0' && !h.name.empty() && h.name.back() == '/') h.type = '5';
  if (const char* kind = LongKind(h.type)) {
    if (!sizeOk || h.size < 0) Refuse("CORRUPT_LAYER", "invalid layer tar: Invalid header");
    if (static_cast<uint64_t>(h.size) > kMaxLongHeaderBytes)
      Refuse("HEADER_TOO_LARGE", std::string("a ") + kind + " entry of " + std::to_string(h.size) + " bytes is over the cap of " +
                                     std::to_string(kMaxLongHeaderBytes) + " for long names and PAX records");
    long_ = std::move(h);
    longBody_.clear();
    longBody_.reserve(static_cast<size_t>(long_.size));
    missing_ = static_cast<uint64_t>(long_.size);
    pad_ = (512 - missing_ % 512) % 512;
    state_ = State::kLong;
    if (missing_ == 0) {
      OnLongHeader();
      Skip(0);
    }
    return;
  }
  Pax pax;
  if (haveGnuLongPath_) h.name = std::move(gnuLongPath_), haveGnuLongPath_ = false;
  if (haveGnuLongLink_) h.linkname = std::move(gnuLongLink_), haveGnuLongLink_ = false;
  if (havePax_) {
    pax = std::move(pax_);
    pax_.clear();
    havePax_ = false;
    if (auto* v = PaxGet(pax, "path"); v && !v->empty()) h.name = *v;
    if (auto* v = PaxGet(pax, "linkpath"); v && !v->empty()) h.linkname = *v;
    if (auto* v = PaxGet(pax, "size"); v && !v->empty()) sizeOk = Decimal(*v, &h.size);
  }
  if (!sizeOk || h.size < 0) Refuse("CORRUPT_LAYER", "invalid layer tar: Invalid header");
  // Written once its block is granted (Feed).
  pendingHeader_ = std::move(h);
  pendingPax_ = std::move(pax);
  pending_ = true;
}

void TarExtractor::OnLongHeader() {
  switch (long_.type) {
    case 'L':
    case 'N':
      gnuLongPath_ = Str(reinterpret_cast<const uint8_t*>(longBody_.data()), longBody_.size());
      haveGnuLongPath_ = true;
      break;
    case 'K':
      gnuLongLink_ = Str(reinterpret_cast<const uint8_t*>(longBody_.data()), longBody_.size());
      haveGnuLongLink_ = true;
      break;
    case 'g':
      paxGlobal_.clear();
      DecodePax(longBody_, &paxGlobal_);
      break;
    case 'x':
      pax_ = paxGlobal_;
      DecodePax(longBody_, &pax_);
      havePax_ = true;
      break;
  }
  longBody_.clear();
  longBody_.shrink_to_fit();
}

void TarExtractor::Count(const std::string& name) {
  if (++entries_ > limits_.maxEntries)
    Refuse("TOO_MANY_ENTRIES", "the layer holds more than " + std::to_string(limits_.maxEntries) + " entries");
  limits_.image.TakeEntry();
  if (name.size() > kPathMax)
    Refuse("NAME_TOO_LONG", "entry " + Quote(name, 64) + " has a name over " + std::to_string(kPathMax) + " bytes");
}

const std::string& TarExtractor::Keep(const std::string& rel) {
  keptNameBytes_ += rel.size();
  if (keptNameBytes_ > kMaxKeptNameBytes)
    Refuse("TOO_MANY_ENTRIES", "the layer's entries name more than " + std::to_string(kMaxKeptNameBytes) + " bytes of paths");
  return rel;
}

void TarExtractor::Drop(const std::string& path, const char* reason) { dropped_.emplace_back(Keep(path), reason); }

EntryMeta TarExtractor::MetaOf(const Header& h, const Pax& pax) const {
  EntryMeta m;
  m.uid = static_cast<uint32_t>(h.uid) + limits_.idShift;
  m.gid = static_cast<uint32_t>(h.gid) + limits_.idShift;
  m.mode = static_cast<uint32_t>(h.mode) & 07777;
  if (!PaxTimeNs(PaxGet(pax, "mtime"), &m.mtimeNs)) m.mtimeNs = h.mtime * 1000000000;
  if (!PaxTimeNs(PaxGet(pax, "atime"), &m.atimeNs)) m.atimeNs = m.mtimeNs;
  size_t prefix = strlen(kXattrPrefix);
  for (const auto& [key, value] : pax)
    if (key.compare(0, prefix, kXattrPrefix) == 0) m.xattrs.emplace_back(key.substr(prefix), value);
  return m;
}

void TarExtractor::StartEntry(Header h, Pax pax) {
  Count(h.name);
  uint64_t size = static_cast<uint64_t>(h.size);
  uint64_t pad = (512 - size % 512) % 512;
  std::string rel = CleanEntryPath(h.name, "entry");
  std::string dir, target;
  WhiteoutKind wh = rel.empty() ? WhiteoutKind::kNone : ParseWhiteout(rel, &dir, &target);
  if (wh != WhiteoutKind::kNone || rel.empty()) {
    if (wh == WhiteoutKind::kOpaque) MarkOpaque(dir);
    else if (wh == WhiteoutKind::kWhiteout) Whiteout(dir, target);
    else if (wh == WhiteoutKind::kAufs) Drop(rel, "aufs");
    // rel "" is the layer root itself ("./"): overlay takes the root's attributes from the upper dir.
    return Skip(size + pad);
  }
  EntryMeta meta = MetaOf(h, pax);
  switch (h.type) {
    case '5': {
      {
        // Created with its mode; owner, xattrs and special bits only where creating did not give them. Times come last.
        bool created = MakeDir(rel, meta.mode);
        bool chown = !created || NeedsChown(meta), chmod = !created || NeedsChmod(meta.mode, true);
        if (chown || chmod || !meta.xattrs.empty() || opaque_.count(rel)) {
          Fd fd(openat(Parent(rel, true), SplitParent(rel).second.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
          if (fd.get() < 0) Fail("set metadata", "openat", errno, rel);
          ApplyMeta(fd.get(), rel, meta, chown, chmod, false);
        }
      }
      auto it = dirIndex_.find(rel);
      if (it != dirIndex_.end()) dirMeta_.erase(it->second);
      else Keep(rel);
      meta.xattrs.clear();
      dirMeta_.emplace_back(rel, std::move(meta));
      dirIndex_[rel] = std::prev(dirMeta_.end());
      Skip(size + pad);
      break;
    }
    case '0':
    case '7':
      if (size > limits_.maxFileBytes)
        Refuse("FILE_TOO_LARGE", "file " + Quote(rel) + " is " + std::to_string(size) + " bytes, over the disk limit of " +
                                     std::to_string(limits_.maxFileBytes));
      file_ = Fd(CreateFile(rel, meta.mode));
      fileRel_ = rel;
      fileChown_ = NeedsChown(meta);
      fileChmod_ = NeedsChmod(meta.mode, false);
      fileMeta_ = std::move(meta);
      pad_ = pad;
      missing_ = size;
      if (size == 0) {
        EndFileBody();
        Skip(pad);
      } else state_ = State::kBody;
      break;
    case '2': {
      std::string base = ClearedTarget(rel);
      if (symlinkat(h.linkname.c_str(), parentFd_.get(), base.c_str()) < 0) Fail("create symlink", "symlinkat", errno, rel);
      if (NeedsChown(meta) && fchownat(parentFd_.get(), base.c_str(), meta.uid, meta.gid, AT_SYMLINK_NOFOLLOW) < 0)
        Fail("set owner", "fchownat", errno, rel);
      struct timespec times[2] = {Timespec(meta.atimeNs), Timespec(meta.mtimeNs)};
      if (utimensat(parentFd_.get(), base.c_str(), times, AT_SYMLINK_NOFOLLOW) < 0) Fail("set times", "utimensat", errno, rel);
      Skip(size + pad);
      break;
    }
    case '1': {
      std::string linkTarget = CleanEntryPath(h.linkname, "hard link target of " + Quote(h.name));
      try {
        Fd oldParent = OpenParent(root_, linkTarget, false);
        std::string oldBase = SplitParent(linkTarget).second;
        struct stat st;
        if (fstatat(oldParent.get(), oldBase.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) Fail("create hard link", "fstatat", errno, linkTarget);
        if (S_ISDIR(st.st_mode)) Fail("create hard link", "linkat", EPERM, linkTarget);
        std::string base = ClearedTarget(rel);
        if (linkat(oldParent.get(), oldBase.c_str(), parentFd_.get(), base.c_str(), 0) < 0) Fail("create hard link", "linkat", errno, rel);
      } catch (const SysError& e) {
        if (e.err != ENOENT && e.err != EPERM) throw;
        // Hard links across layers "may fail" (image-spec layer.md); links to directories never work.
        Refuse("HARDLINK_TARGET", "hard link " + Quote(rel) + " points to " + Quote(linkTarget) + ", which is not a file of this layer");
      }
      Skip(size + pad);
      break;
    }
    case '6': {
      std::string base = ClearedTarget(rel);
      if (mknodat(parentFd_.get(), base.c_str(), S_IFIFO | 0600, 0) < 0) Fail("create fifo", "mknodat", errno, rel);
      SetMetaInRoot(rel, meta);
      Skip(size + pad);
      break;
    }
    case '3':
    case '4':
      Drop(rel, "device");
      return Skip(size + pad);
    default:
      Refuse("UNSUPPORTED_ENTRY", "entry " + Quote(rel) + " has unsupported tar type " + Quote(std::string(1, h.type)));
  }
  if (!created_.count(rel)) created_.insert(Keep(rel));
}

void TarExtractor::EndFileBody() {
  ApplyMeta(file_.get(), fileRel_, fileMeta_, fileChown_, fileChmod_, true);
  if (close(file_.release()) < 0) Fail("write file", "close", errno, fileRel_);
}

std::vector<std::pair<std::string, std::string>> TarExtractor::XattrsFor(const std::string& rel, const EntryMeta& meta) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [name, value] : meta.xattrs) {
    // They would let an image forge overlayfs metadata (redirects, opaque flags, origins).
    if (name.rfind("trusted.overlay.", 0) == 0) Drop(rel + " (" + name + ")", "overlay-xattr");
    else out.emplace_back(name, value);
  }
  if (opaque_.count(rel)) out.emplace_back(kOpaqueXattr, "y");
  return out;
}

// Owner first (chown clears setuid/setgid and security.capability), then
// xattrs, mode and times, all through fd (a file or directory open for I/O).
// Each is an inode update in the filesystem's journal, so the owner and mode
// creation already gave are not set again.
void TarExtractor::ApplyMeta(int fd, const std::string& rel, const EntryMeta& meta, bool chown, bool chmod, bool times) {
  if (chown && fchown(fd, meta.uid, meta.gid) < 0) Fail("set owner", "fchown", errno, rel);
  for (const auto& [name, value] : XattrsFor(rel, meta)) {
    if (fsetxattr(fd, name.c_str(), value.data(), value.size(), 0) == 0) continue;
    // Tolerated like containerd does.
    if (errno == ENOTSUP || errno == EPERM) Drop(rel + " (" + name + ")", "xattr-refused");
    else Fail("set xattr " + name, "fsetxattr", errno, rel);
  }
  if ((chmod || (chown && (meta.mode & 07000))) && fchmod(fd, meta.mode) < 0) Fail("set mode", "fchmod", errno, rel);
  struct timespec ts[2] = {Timespec(meta.atimeNs), Timespec(meta.mtimeNs)};
  if (times && futimens(fd, ts) < 0) Fail("set times", "futimens", errno, rel);
}

// Whether a new entry under the current parent is not yet owned as meta asks:
// it belongs to the agent's ids, or to the parent's group under a setgid parent.
bool TarExtractor::NeedsChown(const EntryMeta& meta) const {
  return meta.uid != euid_ || meta.gid != (parentSetgid_ ? parentGid_ : egid_);
}

// Whether creating with mode left it other than asked: special bits are set
// apart, the umask may clear bits, and a setgid parent passes its bit to directories.
bool TarExtractor::NeedsChmod(uint32_t mode, bool dir) const { return (mode & 07000) || (mode & umask_) || (dir && parentSetgid_); }

// The same by path, for what cannot be opened for I/O (symlinks, fifos) and
// for directories at the end, whatever rel has become by then.
void TarExtractor::SetMetaInRoot(const std::string& rel, const EntryMeta& meta) {
  Fd fd(OpenInRoot(root_, rel, O_PATH | O_NOFOLLOW, "set metadata"));
  struct stat st;
  if (fstat(fd.get(), &st) < 0) Fail("set metadata", "fstat", errno, rel);
  bool isLink = S_ISLNK(st.st_mode);
  if (fchownat(fd.get(), "", meta.uid, meta.gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) Fail("set owner", "fchownat", errno, rel);
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (!isLink) {
    for (const auto& [name, value] : XattrsFor(rel, meta)) {
      if (setxattr(proc.c_str(), name.c_str(), value.data(), value.size(), 0) == 0) continue;
      if (errno == ENOTSUP || errno == EPERM) Drop(rel + " (" + name + ")", "xattr-refused");
      else Fail("set xattr " + name, "setxattr", errno, rel);
    }
    if (chmod(proc.c_str(), meta.mode) < 0) Fail("set mode", "chmod", errno, rel);
  }
  struct timespec times[2] = {Timespec(meta.atimeNs), Timespec(meta.mtimeNs)};
  if (utimensat(fd.get(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) Fail("set times", "utimensat", errno, rel);
}

void TarExtractor::Whiteout(const std::string& dir, const std::string& target) {
  std::string rel = JoinPath(dir, target);
  // A whiteout hides lower layers only; this layer's own entry (or an opaque dir) wins.
  if (created_.count(rel) || opaque_.count(dir)) return;
  std::string base = ClearedTarget(rel);
  if (mknodat(parentFd_.get(), base.c_str(), S_IFCHR, makedev(0, 0)) < 0) Fail("create whiteout", "mknodat", errno, rel);
  whiteouts_[dir].push_back(Keep(rel));
}

void TarExtractor::MarkOpaque(const std::string& dir) {
  if (!dir.empty() && !created_.count(dir)) {
    MakeDir(dir, 0755);
    created_.insert(Keep(dir));
  }
  // Plain whiteouts under an opaque directory would show up in readdir (umoci's overlayfsWhiteout).
  if (auto it = whiteouts_.find(dir); it != whiteouts_.end()) {
    for (const auto& rel : it->second) RemoveIn(Parent(rel, false), SplitParent(rel).second, rel);
    whiteouts_.erase(it);
  }
  if (!opaque_.count(dir)) opaque_.insert(Keep(dir));
  Fd fd(OpenInRoot(root_, dir, O_PATH | O_NOFOLLOW, "set xattr"));
  std::string proc = "/proc/self/fd/" + std::to_string(fd.get());
  if (setxattr(proc.c_str(), kOpaqueXattr, "y", 1, 0) < 0) Fail(std::string("set xattr ") + kOpaqueXattr, "setxattr", errno, dir);
}

int TarExtractor::Parent(const std::string& rel, bool create) {
  std::string dir = SplitParent(rel).first;
  if (parentFd_.get() >= 0 && parentRel_ == dir) return parentFd_.get();
  parentFd_ = OpenParent(root_, rel, create);
  parentRel_ = dir;
  struct stat st;
  if (fstat(parentFd_.get(), &st) < 0) Fail("open parent", "fstat", errno, dir);
  parentSetgid_ = st.st_mode & S_ISGID;
  parentGid_ = st.st_gid;
  return parentFd_.get();
}

bool TarExtractor::RemoveIn(int parent, const std::string& base, const std::string& rel) {
  if (!RemoveAt(parent, base, rel)) return false;
  // Something was replaced: the kept parent may no longer be what its path names.
  parentRel_ = std::string(1, '\0');
  return true;
}

// A directory (created with the permission bits of mode); whether it is new.
// An existing directory is kept (its metadata is for the caller to replace),
// anything else there is replaced.
bool TarExtractor::MakeDir(const std::string& rel, uint32_t mode) {
  int parent = Parent(rel, true);
  std::string base = SplitParent(rel).second;
  for (int attempt = 0;; attempt++) {
    if (mkdirat(parent, base.c_str(), mode & 0777) == 0) return true;
    if (errno != EEXIST || attempt > 0) Fail("create directory", "mkdirat", errno, rel);
    struct stat st;
    if (fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) Fail("create directory", "fstatat", errno, rel);
    if (S_ISDIR(st.st_mode)) return false;
    RemoveIn(parent, base, rel);
  }
}

// A new regular file with the permission bits of mode (the layer directory
// is the agent's alone until it is verified): whatever was at rel is replaced.
int TarExtractor::CreateFile(const std::string& rel, uint32_t mode) {
  int parent = Parent(rel, true);
  std::string base = SplitParent(rel).second;
  for (int attempt = 0; attempt < 2; attempt++) {
    int fd = openat(parent, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
    if (fd >= 0) return fd;
    if (errno != EEXIST) Fail("create file", "openat", errno, rel);
    RemoveIn(parent, base, rel);
  }
  Fail("create file", "openat", EEXIST, rel);
}

// The parent of rel (kept in parentFd_) with whatever was at rel removed: where a new symlink, link or node goes.
std::string TarExtractor::ClearedTarget(const std::string& rel) {
  int parent = Parent(rel, true);
  std::string base = SplitParent(rel).second;
  RemoveIn(parent, base, rel);
  return base;
}

}  // namespace berth
