// Container networking primitives: a persistent network namespace with a veth
// pair to the host (rtnetlink through libmnl), and nftables commands run
// in-process through libnftables. Spawning `ip`/`nft` costs 15–40 ms per call
// on a loaded cell; these calls take about a millisecond.
//
// Every function validates its arguments on the JS thread (TypeError), does
// its work off the JS thread and settles a promise; a failure is a SysError
// (sys.h) naming the step, the call (a syscall or rtnetlink message) and the
// interface or path.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "modules.h"
#include "sys.h"

namespace berth {
namespace {

// The container side of every veth pair is called eth0 inside its namespace.
constexpr const char* kContainerIfname = "eth0";

// One rtnetlink socket, bound to the network namespace of the thread that
// opened it for its whole life.
class Rtnl {
 public:
  Rtnl() {
    nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (nl_ && mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
      mnl_socket_close(nl_);
      nl_ = nullptr;
    }
  }
  Rtnl(const Rtnl&) = delete;
  Rtnl& operator=(const Rtnl&) = delete;
  ~Rtnl() {
    if (nl_) mnl_socket_close(nl_);
  }
  bool ok() const { return nl_ != nullptr; }

  nlmsghdr* begin(uint16_t type, uint16_t flags) {
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf_);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    nlh->nlmsg_seq = ++seq_;
    return nlh;
  }

  // Sends one request and waits for its acknowledgement; `on_data` sees any
  // reply messages (RTM_GETLINK). Returns 0 or -1 with errno set.
  int talk(nlmsghdr* nlh, mnl_cb_t on_data = nullptr, void* data = nullptr) {
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return -1;
    const unsigned int portid = mnl_socket_get_portid(nl_);
    for (;;) {
      ssize_t n = mnl_socket_recvfrom(nl_, rbuf_, sizeof(rbuf_));
      if (n < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      int ret = mnl_cb_run(rbuf_, n, seq_, portid, on_data, data);
      if (ret <= MNL_CB_STOP) return ret < 0 ? -1 : 0;
    }
  }

 private:
  mnl_socket* nl_ = nullptr;
  uint32_t seq_ = 0;
  char buf_[8192];
  char rbuf_[8192];
};

int LinkIndexCb(const nlmsghdr* nlh, void* data) {
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  *static_cast<int*>(data) = ifm->ifi_index;
  return MNL_CB_OK;
}

// Index of the link called `name` in the socket's namespace, or -1 (errno).
int LinkIndex(Rtnl& rt, const char* name) {
  nlmsghdr* nlh = rt.begin(RTM_GETLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
  int index = -1;
  if (rt.talk(nlh, LinkIndexCb, &index) < 0) return -1;
  return index;
}

int LinkUp(Rtnl& rt, const char* name) {
  nlmsghdr* nlh = rt.begin(RTM_NEWLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
  return rt.talk(nlh);
}

int LinkDelete(Rtnl& rt, const char* name) {
  nlmsghdr* nlh = rt.begin(RTM_DELLINK, 0);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
  return rt.talk(nlh);
}

// A veth pair created from inside the new namespace: `local` stays there,
// `peer` is moved to the namespace open at `peer_ns_fd`.
int VethCreate(Rtnl& rt, const char* local, const char* peer, int peer_ns_fd) {
  nlmsghdr* nlh = rt.begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, local);
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer_info = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // VETH_INFO_PEER carries a whole ifinfomsg followed by the peer's attributes.
  mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, peer);
  mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_ns_fd));
  mnl_attr_nest_end(nlh, peer_info);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return rt.talk(nlh);
}

int AddressAdd(Rtnl& rt, int index, in_addr addr, uint8_t prefix_len) {
  nlmsghdr* nlh = rt.begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<unsigned int>(index);
  mnl_attr_put(nlh, IFA_LOCAL, sizeof(addr), &addr);
  mnl_attr_put(nlh, IFA_ADDRESS, sizeof(addr), &addr);
  return rt.talk(nlh);
}

int DefaultRouteAdd(Rtnl& rt, int index, in_addr gateway) {
  nlmsghdr* nlh = rt.begin(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = AF_INET;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  mnl_attr_put(nlh, RTA_GATEWAY, sizeof(gateway), &gateway);
  mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(index));
  return rt.talk(nlh);
}

struct NetSpec {
  std::string netns_path;
  std::string host_ifname;
  in_addr host_address{};
  in_addr container_address{};
  uint8_t prefix_len = 0;
};

// Removes what NetSetup may have made; each part may already be gone, and an
// empty name skips that part (recovery removes orphans one kind at a time).
void NetTeardown(const std::string& netns_path, const std::string& host_ifname) {
  if (!host_ifname.empty()) {
    Rtnl rt;
    if (rt.ok()) LinkDelete(rt, host_ifname.c_str());
  }
  if (!netns_path.empty()) {
    umount2(netns_path.c_str(), MNT_DETACH);
    unlink(netns_path.c_str());
  }
}

// Lets every user of the namespace bind ports below 1024, as Docker and
// containerd do for a container's own network namespace. The namespace
// belongs to the host's user namespace, so the container's root holds no
// CAP_NET_BIND_SERVICE over it; and this way a non-root USER binds 80 too.
// /proc/sys/net resolves to the namespace of the thread that opens it.
int AllowLowPorts() {
  Fd fd(open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC));
  if (fd.get() < 0) return -1;
  return write(fd.get(), "0", 1) == 1 ? 0 : -1;
}

// Runs on a thread of its own: unshare(CLONE_NEWNET) changes only the calling
// thread, which then ends, so no thread of the process is left in the new
// namespace. The bind mount keeps the namespace alive, as `ip netns add` does.
void SetupInNewNamespace(const NetSpec& spec, bool& veth_created) {
  const char* host = spec.host_ifname.c_str();
  Fd host_ns(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (host_ns.get() < 0) Fail("open host netns", "open", errno, "/proc/thread-self/ns/net");
  Rtnl host_rt;
  if (!host_rt.ok()) Fail("open host rtnetlink", "mnl_socket_open2", errno);
  if (unshare(CLONE_NEWNET) < 0) Fail("new netns", "unshare(CLONE_NEWNET)", errno);
  if (mount("/proc/thread-self/ns/net", spec.netns_path.c_str(), nullptr, MS_BIND, nullptr) < 0)
    Fail("bind-mount netns", "mount", errno, spec.netns_path);
  if (AllowLowPorts() < 0) Fail("set net.ipv4.ip_unprivileged_port_start=0", "write", errno);
  Rtnl inner;
  if (!inner.ok()) Fail("open netns rtnetlink", "mnl_socket_open2", errno);
  if (LinkUp(inner, "lo") < 0) Fail("set link up", "RTM_NEWLINK", errno, "lo");
  if (VethCreate(inner, kContainerIfname, host, host_ns.get()) < 0) Fail("create veth", "RTM_NEWLINK", errno, host);
  veth_created = true;
  int host_index = LinkIndex(host_rt, host);
  if (host_index < 0) Fail("find link", "RTM_GETLINK", errno, host);
  if (AddressAdd(host_rt, host_index, spec.host_address, spec.prefix_len) < 0) Fail("add address", "RTM_NEWADDR", errno, host);
  if (LinkUp(host_rt, host) < 0) Fail("set link up", "RTM_NEWLINK", errno, host);
  int index = LinkIndex(inner, kContainerIfname);
  if (index < 0) Fail("find link", "RTM_GETLINK", errno, kContainerIfname);
  if (AddressAdd(inner, index, spec.container_address, spec.prefix_len) < 0)
    Fail("add address", "RTM_NEWADDR", errno, kContainerIfname);
  if (LinkUp(inner, kContainerIfname) < 0) Fail("set link up", "RTM_NEWLINK", errno, kContainerIfname);
  if (DefaultRouteAdd(inner, index, spec.host_address) < 0) Fail("add default route", "RTM_NEWROUTE", errno, kContainerIfname);
}

void NetSetup(const NetSpec& spec) {
  // The mount point must exist; O_EXCL refuses to reuse a namespace file.
  Fd file(open(spec.netns_path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (file.get() < 0) Fail("create netns file", "open", errno, spec.netns_path);
  file.reset();
  std::optional<SysError> failed;
  bool veth_created = false;
  std::thread worker([&] {
    try {
      SetupInNewNamespace(spec, veth_created);
    } catch (const SysError& e) {
      failed = e;
    }
  });
  worker.join();
  if (!failed) return;
  // Undo only what this call made: a taken interface name belongs to someone else.
  NetTeardown(spec.netns_path, veth_created ? spec.host_ifname : "");
  throw *failed;
}

class SetupWorker : public SysWorker {
 public:
  SetupWorker(Napi::Env env, NetSpec spec) : SysWorker(env), spec_(std::move(spec)) {}

 private:
  void Run() override { NetSetup(spec_); }
  NetSpec spec_;
};

class TeardownWorker : public SysWorker {
 public:
  TeardownWorker(Napi::Env env, std::string path, std::string ifname)
      : SysWorker(env), path_(std::move(path)), ifname_(std::move(ifname)) {}

 private:
  void Run() override { NetTeardown(path_, ifname_); }
  std::string path_, ifname_;
};

// libnftables keeps some global parser state: one command at a time.
std::mutex nft_mutex;

class NftWorker : public SysWorker {
 public:
  NftWorker(Napi::Env env, std::string script, bool json) : SysWorker(env), script_(std::move(script)), json_(json) {}

 private:
  void Run() override {
    std::lock_guard<std::mutex> lock(nft_mutex);
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) Fail("nft", "nft_ctx_new", ENOMEM);
    if (json_) nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    errno = 0;
    int ret = nft_run_cmd_from_buffer(ctx, script_.c_str());
    // A refused command (a syntax error) leaves no errno: its text says why.
    int err = errno != 0 ? errno : EINVAL;
    output_ = nft_ctx_get_output_buffer(ctx);
    std::string error = nft_ctx_get_error_buffer(ctx);
    nft_ctx_free(ctx);
    if (ret != 0) Fail("nft", "nft_run_cmd_from_buffer", err, "", error);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, output_); }
  std::string script_;
  bool json_;
  std::string output_;
};

std::string StringArg(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos)
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a non-empty string");
  return s;
}

std::string PathArg(const Napi::Object& o, const char* key) {
  std::string s = StringArg(o, key);
  if (s[0] != '/') throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an absolute path");
  return s;
}

std::string IfnameArg(const Napi::Object& o, const char* key) {
  std::string s = StringArg(o, key);
  if (s.size() >= IFNAMSIZ || s.find('/') != std::string::npos)
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a valid interface name");
  return s;
}

in_addr AddressArg(const Napi::Object& o, const char* key) {
  in_addr a{};
  if (inet_pton(AF_INET, StringArg(o, key).c_str(), &a) != 1)
    throw Napi::TypeError::New(o.Env(), std::string(key) + " must be an IPv4 address");
  return a;
}

Napi::Object ObjectArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "expected an options object");
  return info[0].As<Napi::Object>();
}

Napi::Value NetSetupJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info);
  NetSpec spec;
  spec.netns_path = PathArg(o, "netnsPath");
  spec.host_ifname = IfnameArg(o, "hostIfname");
  spec.host_address = AddressArg(o, "hostAddress");
  spec.container_address = AddressArg(o, "containerAddress");
  Napi::Value p = o.Get("prefixLength");
  if (!p.IsNumber()) throw Napi::TypeError::New(info.Env(), "prefixLength must be a number");
  int32_t prefix = p.As<Napi::Number>().Int32Value();
  if (prefix < 1 || prefix > 31) throw Napi::TypeError::New(info.Env(), "prefixLength must be 1..31");
  spec.prefix_len = static_cast<uint8_t>(prefix);
  return (new SetupWorker(info.Env(), std::move(spec)))->Start();
}

Napi::Value NetTeardownJs(const Napi::CallbackInfo& info) {
  Napi::Object o = ObjectArg(info);
  std::string path = o.Has("netnsPath") ? PathArg(o, "netnsPath") : "";
  std::string ifname = o.Has("hostIfname") ? IfnameArg(o, "hostIfname") : "";
  return (new TeardownWorker(info.Env(), std::move(path), std::move(ifname)))->Start();
}

Napi::Value NftRunJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "script must be a string");
  bool json = info.Length() > 1 && info[1].ToBoolean().Value();
  return (new NftWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), json))->Start();
}

// Makes `dir` a shared mount (binding it onto itself first if it is not a
// mount point), as `ip netns` does for /run/netns: namespace mounts made
// there later propagate into mount namespaces cloned from the host, so
// unmounting one here releases those copies too.
Napi::Value NetnsShareDirJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "dir must be a string");
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  if (dir.empty() || dir[0] != '/') throw Napi::TypeError::New(info.Env(), "dir must be an absolute path");
  if (mount(nullptr, dir.c_str(), nullptr, MS_SHARED | MS_REC, nullptr) == 0) return info.Env().Undefined();
  if (errno != EINVAL ||
      mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) < 0 ||
      mount(nullptr, dir.c_str(), nullptr, MS_SHARED | MS_REC, nullptr) < 0)
    Fail("share netns dir", "mount", errno, dir);
  return info.Env().Undefined();
}

}  // namespace

void InitNet(Napi::Env env, Napi::Object exports) {
  exports.Set("netSetup", Napi::Function::New(env, NetSetupJs));
  exports.Set("netTeardown", Napi::Function::New(env, NetTeardownJs));
  exports.Set("nftRun", Napi::Function::New(env, NftRunJs));
  exports.Set("netnsShareDir", Napi::Function::New(env, Wrap<NetnsShareDirJs>));
}

}  // namespace berth
