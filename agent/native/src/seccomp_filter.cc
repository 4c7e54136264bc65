// Turns the seccomp rule list built in agent/runtime/seccomp.ts into a BPF
// program with libseccomp, which handles the x86_64/x86/x32 ABIs and the
// socketcall/ipc multiplexers for us. The program is loaded by the child with
// a raw seccomp(2), so the child needs no libseccomp call. Compiling costs
// milliseconds, so each distinct profile is compiled once per process.
#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>

#include "container_config.h"

namespace berth {
namespace {

scmp_compare CompareOp(const std::string& op) {
  if (op == "ne") return SCMP_CMP_NE;
  if (op == "lt") return SCMP_CMP_LT;
  if (op == "le") return SCMP_CMP_LE;
  if (op == "eq") return SCMP_CMP_EQ;
  if (op == "ge") return SCMP_CMP_GE;
  if (op == "gt") return SCMP_CMP_GT;
  if (op == "masked_eq") return SCMP_CMP_MASKED_EQ;
  Fail("seccomp", "seccomp_rule_add", EINVAL, "", "unknown comparison " + op);
}

// libseccomp returns -errno.
void Check(int rc, const char* call, const std::string& what = "") {
  if (rc < 0) Fail("seccomp", call, -rc, what);
}

struct Context {
  scmp_filter_ctx ctx;
  ~Context() { seccomp_release(ctx); }
};

std::vector<sock_filter> Compile(const SeccompProfile& profile) {
  Context c{seccomp_init(SCMP_ACT_ERRNO(profile.default_errno))};
  if (!c.ctx) Fail("seccomp", "seccomp_init", ENOMEM);
  // We set no_new_privs ourselves, in the order runc does.
  Check(seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set");
  for (const std::string& name : profile.architectures) {
    uint32_t arch = seccomp_arch_resolve_name(name.c_str());
    if (arch == 0) Fail("seccomp", "seccomp_arch_resolve_name", EINVAL, name);
    int rc = seccomp_arch_add(c.ctx, arch);
    if (rc != -EEXIST) Check(rc, "seccomp_arch_add", name);
  }
  for (const SeccompRule& rule : profile.rules) {
    uint32_t action = rule.allow ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(rule.err);
    std::vector<scmp_arg_cmp> args;
    for (const SeccompArg& a : rule.args)
      args.push_back(scmp_arg_cmp{a.index, CompareOp(a.op), a.value, a.value_two});
    for (const std::string& name : rule.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      // A name this libseccomp does not know cannot be called through it either (Docker skips them too).
      if (nr == __NR_SCMP_ERROR) continue;
      Check(seccomp_rule_add_array(c.ctx, action, nr, static_cast<unsigned>(args.size()), args.data()),
            "seccomp_rule_add_array", name);
    }
  }
  Fd fd(memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (fd.get() < 0) Fail("seccomp", "memfd_create", errno);
  Check(seccomp_export_bpf(c.ctx, fd.get()), "seccomp_export_bpf");
  off_t size = lseek(fd.get(), 0, SEEK_END);
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  ssize_t n = pread(fd.get(), program.data(), program.size() * sizeof(sock_filter), 0);
  if (n != size) Fail("seccomp", "pread", n < 0 ? errno : EIO);
  return program;
}

}  // namespace

std::vector<sock_filter> CompileSeccomp(const SeccompProfile& profile) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<sock_filter>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(profile.cache_key);
  if (it != cache.end()) return it->second;
  std::vector<sock_filter> program = Compile(profile);
  cache.emplace(profile.cache_key, program);
  return program;
}

}  // namespace berth
