// meshaccel_bpf: the thin libbpf layer under src/datapath/bpf. It loads sockops.o and
// sk_msg.o with their maps pinned under one bpffs directory, attaches sockops to a cgroup v2
// through a pinned bpf_link (so the attachment outlives this process) and sk_msg to the
// sockhash, reads maps for status, and tears everything down. Every call is stateless: it
// reopens what it needs from the pins, so a second agent start adopts what the first left.
// Every failing libbpf or syscall return becomes a JS Error naming the step and errno.

#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "../../../bpf/include/meshaccel_abi.h"
#include "calibrate.h"

namespace {

// libbpf reports verifier logs and load errors through its print callback; keep the tail so
// an Error can say why a program was rejected rather than just "EINVAL".
std::string g_libbpf_log;

int CaptureLibbpfLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // The verifier log arrives as one large message: size it first instead of truncating.
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string buf((size_t)n + 1, '\0');
  vsnprintf(&buf[0], buf.size(), fmt, args);
  buf.resize((size_t)n);
  g_libbpf_log.append(buf);
  if (g_libbpf_log.size() > 16384) g_libbpf_log.erase(0, g_libbpf_log.size() - 16384);
  return n;
}

// Closes an fd on scope exit; -1 means "none".
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

class ObjectGuard {
 public:
  explicit ObjectGuard(bpf_object* obj) : obj_(obj) {}
  ~ObjectGuard() {
    if (obj_) bpf_object__close(obj_);
  }
  ObjectGuard(const ObjectGuard&) = delete;
  ObjectGuard& operator=(const ObjectGuard&) = delete;
  bpf_object* get() const { return obj_; }

 private:
  bpf_object* obj_;
};

// Throws `what: strerror (errno N)` with .errno and .code set, plus libbpf's last messages.
Napi::Value Fail(Napi::Env env, const std::string& what, int err) {
  if (err < 0) err = -err;
  std::string msg = what + ": " + strerror(err) + " (errno " + std::to_string(err) + ")";
  if (!g_libbpf_log.empty()) {
    std::string tail = g_libbpf_log.size() > 3000 ? g_libbpf_log.substr(g_libbpf_log.size() - 3000) : g_libbpf_log;
    msg += "\nlibbpf: " + tail;
  }
  g_libbpf_log.clear();
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  const char* code = err == EPERM ? "EPERM" : err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES"
                   : err == EINVAL ? "EINVAL" : err == EEXIST ? "EEXIST" : err == ENOSYS ? "ENOSYS"
                   : err == EBUSY ? "EBUSY" : "EBPF";
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value FailMsg(Napi::Env env, const std::string& msg) {
  Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

std::string PinPath(const std::string& dir, const char* name) { return dir + "/" + name; }

bool PinExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool GetString(const Napi::Object& o, const char* key, std::string* out) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) return false;
  *out = v.As<Napi::String>().Utf8Value();
  return true;
}

// Opens a pinned object; ENOENT is reported as "not loaded" by callers that expect it.
int OpenPin(const std::string& dir, const char* name) { return bpf_obj_get(PinPath(dir, name).c_str()); }

// Each pinned map's name and the key and value sizes this build reads and writes it with.
struct MapLayout {
  const char* name;
  __u32 key_size, value_size;
};
const MapLayout kSocks{MESHACCEL_MAP_SOCKS, sizeof(meshaccel_sock_key), sizeof(__u64)};
const MapLayout kFlows{MESHACCEL_MAP_FLOWS, sizeof(meshaccel_sock_key), sizeof(meshaccel_flow)};
const MapLayout kConfig{MESHACCEL_MAP_CONFIG, sizeof(__u32), sizeof(meshaccel_config)};
const MapLayout kPorts{MESHACCEL_MAP_PORTS, sizeof(__u16), sizeof(__u8)};
const MapLayout kCounters{MESHACCEL_MAP_COUNTERS, sizeof(__u32), sizeof(__u64)};
const MapLayout kReaders{MESHACCEL_MAP_READERS, sizeof(int), sizeof(meshaccel_reader)};
const MapLayout* const kMaps[] = {&kSocks, &kFlows, &kConfig, &kPorts, &kCounters, &kReaders};

// A map pinned by another build of the programs may have other key or value sizes; lookups and
// updates with this build's structs would then read or write past them. Such a map is refused
// for I/O with EPROTO.
int OpenPinnedMap(const std::string& dir, const MapLayout& map) {
  int fd = OpenPin(dir, map.name);
  if (fd < 0) return fd;
  bpf_map_info info;
  memset(&info, 0, sizeof(info));
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  if (info.key_size != map.key_size || info.value_size != map.value_size) {
    close(fd);
    errno = EPROTO;
    return -1;
  }
  return fd;
}

// What to say when a pinned map cannot be opened for I/O.
std::string OpenMapWhat(const char* name) {
  if (errno == EPROTO)
    return std::string("pinned map ") + name + " has another build's layout (run `meshaccel datapath detach`, then attach again)";
  return std::string("open pinned map ") + name;
}

// probeBpf(): whether the bpf() syscall works here (creates and frees a one-slot array).
Napi::Value ProbeBpf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ma_probe", 4, 4, 1, nullptr);
  Napi::Object r = Napi::Object::New(env);
  r.Set("ok", Napi::Boolean::New(env, fd >= 0));
  if (fd >= 0) {
    close(fd);
  } else {
    int err = errno;
    r.Set("errno", Napi::Number::New(env, err));
    r.Set("message", Napi::String::New(env, strerror(err)));
  }
  return r;
}

// Opens and loads one object with its maps pinned (or reused) under pinDir. Returns its single
// program's fd via *prog_fd_out (caller closes); the object itself is closed, the fd keeps the
// program alive.
bool LoadProgram(Napi::Env env, const std::string& file, const std::string& pin_dir, int* prog_fd_out) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.c_str());
  bpf_object* raw = bpf_object__open_file(file.c_str(), &opts);
  if (!raw) {
    Fail(env, "open BPF object " + file, errno);
    return false;
  }
  ObjectGuard obj(raw);
  int err = bpf_object__load(obj.get());
  if (err) {
    Fail(env, "load BPF object " + file, err);
    return false;
  }
  bpf_program* prog = bpf_object__next_program(obj.get(), nullptr);
  if (!prog) {
    FailMsg(env, "BPF object " + file + " holds no program");
    return false;
  }
  int fd = dup(bpf_program__fd(prog));
  if (fd < 0) {
    Fail(env, "keep program of " + file, errno);
    return false;
  }
  *prog_fd_out = fd;
  return true;
}

// The kernel's tag of a loaded program: a hash of its instructions with map references
// blanked, so the same source built the same way has the same tag whichever maps it uses.
bool ProgTag(int fd, unsigned char tag[BPF_TAG_SIZE]) {
  bpf_prog_info info;
  memset(&info, 0, sizeof(info));
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return false;
  memcpy(tag, info.tag, BPF_TAG_SIZE);
  return true;
}

// Pins fd at pin_dir/name, replacing whatever was pinned there.
bool Repin(Napi::Env env, int fd, const std::string& pin_dir, const char* name) {
  std::string pin = PinPath(pin_dir, name);
  if (unlink(pin.c_str()) && errno != ENOENT) {
    Fail(env, "unpin " + pin, errno);
    return false;
  }
  if (bpf_obj_pin(fd, pin.c_str())) {
    Fail(env, "pin program at " + pin, errno);
    return false;
  }
  return true;
}

// load({pinDir, sockopsObject, skMsgObject, readerCpuObject?}) -> {adopted, upgraded}
// Loads the programs from this build's objects (maps are created and pinned, or reused from
// the pins by name; libbpf refuses a pinned map whose definition differs). When programs are
// already pinned (a previous start), their tags are compared with the fresh ones: the same
// code is adopted and the fresh copies dropped; different code (another build) replaces the
// pinned programs in place: the cgroup link is switched to the new sockops program atomically
// and the new sk_msg program replaces the old one on the sockhash, so sockets established from
// then on run the new code while live ones keep what they started with.
Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) return FailMsg(env, "load: expected an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  std::string pin_dir, sockops_obj, sk_msg_obj;
  if (!GetString(o, "pinDir", &pin_dir) || !GetString(o, "sockopsObject", &sockops_obj) ||
      !GetString(o, "skMsgObject", &sk_msg_obj))
    return FailMsg(env, "load: pinDir, sockopsObject and skMsgObject must be strings");
  // Optional: without it (the bench's reference program) no reader CPU is recorded.
  std::string reader_obj;
  GetString(o, "readerCpuObject", &reader_obj);
  g_libbpf_log.clear();

  // A map pinned by a build with other layouts would make libbpf's reuse fail with a bare
  // EINVAL: say which map and what to do instead.
  for (const MapLayout* m : kMaps) {
    if (!PinExists(PinPath(pin_dir, m->name))) continue;
    Fd map(OpenPinnedMap(pin_dir, *m));
    if (!map.ok()) return Fail(env, OpenMapWhat(m->name), errno);
  }

  int fd = -1;
  if (!LoadProgram(env, sockops_obj, pin_dir, &fd)) return env.Undefined();
  Fd sockops_fd(fd);
  if (!LoadProgram(env, sk_msg_obj, pin_dir, &fd)) return env.Undefined();
  Fd sk_msg_fd(fd);
  Fd reader_fd;
  if (!reader_obj.empty()) {
    if (!LoadProgram(env, reader_obj, pin_dir, &fd)) return env.Undefined();
    reader_fd.reset(fd);
  }

  // Per program: adopt the pinned one when its tag matches, else (re)pin the fresh one.
  bool adopted = true, upgraded = false;
  struct Slot {
    const char* pin;
    Fd* fresh;
  } slots[] = {{MESHACCEL_PIN_SOCKOPS, &sockops_fd}, {MESHACCEL_PIN_SK_MSG, &sk_msg_fd}, {MESHACCEL_PIN_READER_CPU, &reader_fd}};
  bool reader_fresh = false;
  for (Slot& slot : slots) {
    if (!slot.fresh->ok()) continue;
    Fd pinned(OpenPin(pin_dir, slot.pin));
    unsigned char want[BPF_TAG_SIZE], have[BPF_TAG_SIZE];
    if (!ProgTag(slot.fresh->get(), want)) return Fail(env, std::string("read tag of fresh ") + slot.pin, errno);
    if (pinned.ok() && ProgTag(pinned.get(), have) && memcmp(want, have, BPF_TAG_SIZE) == 0) {
      slot.fresh->reset(pinned.release());
      continue;
    }
    adopted = false;
    if (pinned.ok()) upgraded = true;
    if (slot.fresh == &reader_fd) reader_fresh = true;
    if (!Repin(env, slot.fresh->get(), pin_dir, slot.pin)) return env.Undefined();
  }

  // The reader program's attachment: a tracing link, pinned so it outlives this process. A
  // fresh program gets a fresh link (tracing links cannot switch programs); the old link goes
  // with its pin, after the new one is in place, so no read goes unrecorded meanwhile.
  if (reader_fd.ok()) {
    std::string link_pin = PinPath(pin_dir, MESHACCEL_PIN_READER_LINK);
    if (reader_fresh || !PinExists(link_pin)) {
      Fd link(bpf_raw_tracepoint_open(nullptr, reader_fd.get()));
      if (!link.ok()) return Fail(env, "attach the reader CPU program to the sock_recv_length tracepoint", errno);
      if (!Repin(env, link.get(), pin_dir, MESHACCEL_PIN_READER_LINK)) return env.Undefined();
    }
  }

  if (upgraded) {
    // An existing cgroup link keeps running the old sockops program until told otherwise.
    std::string link_pin = PinPath(pin_dir, MESHACCEL_PIN_LINK);
    if (PinExists(link_pin)) {
      Fd link(bpf_obj_get(link_pin.c_str()));
      if (!link.ok()) return Fail(env, "open pinned link " + link_pin, errno);
      int err = bpf_link_update(link.get(), sockops_fd.get(), nullptr);
      // ENOLINK: the link's cgroup is gone; attachCgroup replaces the link.
      if (err && err != -ENOLINK) return Fail(env, "switch the cgroup link to the new sockops program", err);
    }
  }

  Fd socks(OpenPin(pin_dir, MESHACCEL_MAP_SOCKS));
  if (!socks.ok()) return Fail(env, "open pinned sockhash " MESHACCEL_MAP_SOCKS, errno);
  // Attaching replaces the sockhash's sk_msg program (a no-op when it is the same one), so
  // this also repairs a state where the pins exist but the attachment was lost.
  int err = bpf_prog_attach(sk_msg_fd.get(), socks.get(), BPF_SK_MSG_VERDICT, 0);
  if (err) return Fail(env, "attach sk_msg program to sockhash", err);

  Napi::Object r = Napi::Object::New(env);
  r.Set("adopted", Napi::Boolean::New(env, adopted));
  r.Set("upgraded", Napi::Boolean::New(env, upgraded));
  return r;
}

bool LinkCgroupId(int link_fd, __u64* cgroup_id, __u32* link_id, __u32* prog_id) {
  bpf_link_info li;
  memset(&li, 0, sizeof(li));
  __u32 len = sizeof(li);
  if (bpf_obj_get_info_by_fd(link_fd, &li, &len)) return false;
  *cgroup_id = li.cgroup.cgroup_id;
  *link_id = li.id;
  *prog_id = li.prog_id;
  return true;
}

// attachCgroup(pinDir, cgroupPath) -> {linkId, cgroupId, already}
// A cgroup bpf_link (multi-attach, so other sockops users of the cgroup are unaffected),
// pinned so the attachment survives the agent process.
Napi::Value AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString())
    return FailMsg(env, "attachCgroup: expected (pinDir, cgroupPath)");
  std::string pin_dir = info[0].As<Napi::String>().Utf8Value();
  std::string cg_path = info[1].As<Napi::String>().Utf8Value();
  std::string link_pin = PinPath(pin_dir, MESHACCEL_PIN_LINK);

  Fd cg(open(cg_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.ok()) return Fail(env, "open cgroup " + cg_path, errno);
  struct stat st;
  if (fstat(cg.get(), &st)) return Fail(env, "stat cgroup " + cg_path, errno);

  Napi::Object r = Napi::Object::New(env);
  if (PinExists(link_pin)) {
    Fd link(bpf_obj_get(link_pin.c_str()));
    if (!link.ok()) return Fail(env, "open pinned link " + link_pin, errno);
    __u64 cgid = 0;
    __u32 link_id = 0, prog_id = 0;
    if (!LinkCgroupId(link.get(), &cgid, &link_id, &prog_id)) return Fail(env, "read link info " + link_pin, errno);
    // On cgroup2 the cgroup id is the directory's inode number.
    if (cgid != (__u64)st.st_ino && cgid != 0) {
      return FailMsg(env, "sockops is already attached to cgroup id " + std::to_string(cgid) +
                              " through " + link_pin + "; detach first to move it to " + cg_path);
    }
    if (cgid != 0) {
      r.Set("linkId", Napi::Number::New(env, link_id));
      r.Set("cgroupId", Napi::Number::New(env, (double)cgid));
      r.Set("already", Napi::Boolean::New(env, true));
      return r;
    }
    // cgroup id 0: the link was detached (cgroup removed); replace it.
    if (unlink(link_pin.c_str())) return Fail(env, "remove defunct link pin " + link_pin, errno);
  }

  Fd prog(OpenPin(pin_dir, MESHACCEL_PIN_SOCKOPS));
  if (!prog.ok()) return Fail(env, "open pinned sockops program (load first)", errno);
  Fd link(bpf_link_create(prog.get(), cg.get(), BPF_CGROUP_SOCK_OPS, nullptr));
  if (!link.ok()) return Fail(env, "attach sockops to cgroup " + cg_path, -link.get() > 0 ? -link.get() : errno);
  if (bpf_obj_pin(link.get(), link_pin.c_str())) return Fail(env, "pin link at " + link_pin, errno);
  __u64 cgid = 0;
  __u32 link_id = 0, prog_id = 0;
  if (!LinkCgroupId(link.get(), &cgid, &link_id, &prog_id)) return Fail(env, "read link info " + link_pin, errno);
  r.Set("linkId", Napi::Number::New(env, link_id));
  r.Set("cgroupId", Napi::Number::New(env, (double)cgid));
  r.Set("already", Napi::Boolean::New(env, false));
  return r;
}

// configure(pinDir, {mode, bulkStreak, bulkSmallMax, bulkLargeMin, leaveDelayMs}, ports[]): config slot and port set
// (the port set is replaced: stale ports are removed after the new ones are in).
Napi::Value Configure(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsArray())
    return FailMsg(env, "configure: expected (pinDir, config, ports)");
  std::string pin_dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Object c = info[1].As<Napi::Object>();
  Napi::Array ports = info[2].As<Napi::Array>();

  meshaccel_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  cfg.mode = c.Get("mode").ToNumber().Uint32Value();
  cfg.bulk_streak = c.Get("bulkStreak").ToNumber().Uint32Value();
  cfg.bulk_small_max = c.Get("bulkSmallMax").ToNumber().Uint32Value();
  cfg.bulk_large_min = c.Get("bulkLargeMin").ToNumber().Uint32Value();
  cfg.leave_delay_ms = c.Get("leaveDelayMs").ToNumber().Uint32Value();
  cfg.tcp_same_cpu_mask = c.Get("tcpSameCpuMask").ToNumber().Uint32Value();
  cfg.tcp_other_cpu_mask = c.Get("tcpOtherCpuMask").ToNumber().Uint32Value();
  cfg.threshold_source = c.Get("thresholdSource").ToNumber().Uint32Value();
  cfg.layout_hold_ms = c.Get("layoutHoldMs").ToNumber().Uint32Value();
  cfg.calibrated_at = (__u64)c.Get("calibratedAt").ToNumber().Int64Value();
  Napi::Value calib = c.Get("calib");
  if (calib.IsArray()) {
    Napi::Array layouts = calib.As<Napi::Array>();
    for (uint32_t l = 0; l < layouts.Length() && l < MESHACCEL_LAYOUTS; l++) {
      if (!layouts.Get(l).IsArray()) return FailMsg(env, "configure: calib must be an array of arrays");
      Napi::Array pts = layouts.Get(l).As<Napi::Array>();
      for (uint32_t i = 0; i < pts.Length() && i < MESHACCEL_CALIB_SIZES; i++) {
        if (!pts.Get(i).IsObject()) return FailMsg(env, "configure: calib points must be objects");
        Napi::Object pt = pts.Get(i).As<Napi::Object>();
        cfg.calib[l][i].tcp_kBps = pt.Get("tcpKBps").ToNumber().Uint32Value();
        cfg.calib[l][i].redirect_kBps = pt.Get("redirectKBps").ToNumber().Uint32Value();
      }
    }
  }

  Fd ports_fd(OpenPinnedMap(pin_dir, kPorts));
  if (!ports_fd.ok()) return Fail(env, OpenMapWhat(MESHACCEL_MAP_PORTS), errno);
  std::vector<__u16> wanted;
  for (uint32_t i = 0; i < ports.Length(); i++) {
    uint32_t p = ports.Get(i).ToNumber().Uint32Value();
    if (p == 0 || p > 65535) return FailMsg(env, "configure: port out of range: " + std::to_string(p));
    wanted.push_back((__u16)p);
    __u8 one = 1;
    __u16 key = (__u16)p;
    int err = bpf_map_update_elem(ports_fd.get(), &key, &one, BPF_ANY);
    if (err) return Fail(env, "add port " + std::to_string(p) + " to " MESHACCEL_MAP_PORTS, err);
  }
  std::vector<__u16> stale;
  __u16 cur, next;
  __u16* prev = nullptr;
  while (bpf_map_get_next_key(ports_fd.get(), prev, &next) == 0) {
    bool keep = false;
    for (__u16 w : wanted) keep = keep || w == next;
    if (!keep) stale.push_back(next);
    cur = next;
    prev = &cur;
  }
  for (__u16 p : stale) {
    int err = bpf_map_delete_elem(ports_fd.get(), &p);
    if (err && err != -ENOENT) return Fail(env, "remove port " + std::to_string(p) + " from " MESHACCEL_MAP_PORTS, err);
  }

  // Config last: switching to PORTS mode after the port set is complete.
  Fd cfg_fd(OpenPinnedMap(pin_dir, kConfig));
  if (!cfg_fd.ok()) return Fail(env, OpenMapWhat(MESHACCEL_MAP_CONFIG), errno);
  __u32 zero = 0;
  int err = bpf_map_update_elem(cfg_fd.get(), &zero, &cfg, BPF_ANY);
  if (err) return Fail(env, "write " MESHACCEL_MAP_CONFIG, err);
  return env.Undefined();
}

Napi::Object ProgInfo(Napi::Env env, int fd) {
  Napi::Object o = Napi::Object::New(env);
  bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  __u32 len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) == 0) {
    o.Set("id", Napi::Number::New(env, pi.id));
    o.Set("name", Napi::String::New(env, pi.name));
    o.Set("runCount", Napi::Number::New(env, (double)pi.run_cnt));
    o.Set("runTimeNs", Napi::Number::New(env, (double)pi.run_time_ns));
  }
  return o;
}

// A key's address as text: IPv4 from the key, and AF_INET6 keys are always ::1.
std::string IpText(__u32 family, __u32 ip4) {
  if (family == AF_INET6) return "::1";
  char text[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &ip4, text, sizeof(text));
  return text;
}

// status(pinDir, maxSockets) -> everything readable from the pins; missing pieces are null.
Napi::Value Status(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber())
    return FailMsg(env, "status: expected (pinDir, maxSockets)");
  std::string pin_dir = info[0].As<Napi::String>().Utf8Value();
  uint32_t max_sockets = info[1].As<Napi::Number>().Uint32Value();
  Napi::Object r = Napi::Object::New(env);

  const char* progs[] = {MESHACCEL_PIN_SOCKOPS, MESHACCEL_PIN_SK_MSG, MESHACCEL_PIN_READER_CPU};
  for (const char* name : progs) {
    Fd fd(OpenPin(pin_dir, name));
    r.Set(name, fd.ok() ? Napi::Value(ProgInfo(env, fd.get())) : env.Null());
  }

  Fd link(OpenPin(pin_dir, MESHACCEL_PIN_LINK));
  if (link.ok()) {
    __u64 cgid = 0;
    __u32 link_id = 0, prog_id = 0;
    if (!LinkCgroupId(link.get(), &cgid, &link_id, &prog_id)) return Fail(env, "read link info", errno);
    Napi::Object l = Napi::Object::New(env);
    l.Set("id", Napi::Number::New(env, link_id));
    l.Set("cgroupId", Napi::Number::New(env, (double)cgid));
    l.Set("progId", Napi::Number::New(env, prog_id));
    r.Set("link", l);
  } else {
    r.Set("link", env.Null());
  }

  Fd cfg_fd(OpenPinnedMap(pin_dir, kConfig));
  if (cfg_fd.ok()) {
    meshaccel_config cfg;
    __u32 zero = 0;
    int err = bpf_map_lookup_elem(cfg_fd.get(), &zero, &cfg);
    if (err) return Fail(env, "read " MESHACCEL_MAP_CONFIG, err);
    Napi::Object c = Napi::Object::New(env);
    c.Set("mode", Napi::Number::New(env, cfg.mode));
    c.Set("bulkStreak", Napi::Number::New(env, cfg.bulk_streak));
    c.Set("bulkSmallMax", Napi::Number::New(env, cfg.bulk_small_max));
    c.Set("bulkLargeMin", Napi::Number::New(env, cfg.bulk_large_min));
    c.Set("leaveDelayMs", Napi::Number::New(env, cfg.leave_delay_ms));
    c.Set("tcpSameCpuMask", Napi::Number::New(env, cfg.tcp_same_cpu_mask));
    c.Set("tcpOtherCpuMask", Napi::Number::New(env, cfg.tcp_other_cpu_mask));
    c.Set("thresholdSource", Napi::Number::New(env, cfg.threshold_source));
    c.Set("layoutHoldMs", Napi::Number::New(env, cfg.layout_hold_ms));
    c.Set("calibratedAt", Napi::Number::New(env, (double)cfg.calibrated_at));
    Napi::Array layouts = Napi::Array::New(env, MESHACCEL_LAYOUTS);
    for (uint32_t l = 0; l < MESHACCEL_LAYOUTS; l++) {
      Napi::Array pts = Napi::Array::New(env, MESHACCEL_CALIB_SIZES);
      for (uint32_t i = 0; i < MESHACCEL_CALIB_SIZES; i++) {
        Napi::Object pt = Napi::Object::New(env);
        pt.Set("tcpKBps", Napi::Number::New(env, cfg.calib[l][i].tcp_kBps));
        pt.Set("redirectKBps", Napi::Number::New(env, cfg.calib[l][i].redirect_kBps));
        pts.Set(i, pt);
      }
      layouts.Set(l, pts);
    }
    c.Set("calib", layouts);
    r.Set("config", c);
  } else {
    r.Set("config", env.Null());
  }

  Fd ports_fd(OpenPinnedMap(pin_dir, kPorts));
  if (ports_fd.ok()) {
    Napi::Array a = Napi::Array::New(env);
    __u16 cur, next;
    __u16* prev = nullptr;
    uint32_t n = 0;
    while (bpf_map_get_next_key(ports_fd.get(), prev, &next) == 0) {
      a.Set(n++, Napi::Number::New(env, next));
      cur = next;
      prev = &cur;
    }
    r.Set("ports", a);
  } else {
    r.Set("ports", env.Null());
  }

  Fd ctr_fd(OpenPinnedMap(pin_dir, kCounters));
  if (ctr_fd.ok()) {
    int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return Fail(env, "count possible CPUs", ncpu);
    std::vector<__u64> vals((size_t)ncpu);
    Napi::Array a = Napi::Array::New(env, MESHACCEL_CTR_MAX);
    for (__u32 i = 0; i < MESHACCEL_CTR_MAX; i++) {
      int err = bpf_map_lookup_elem(ctr_fd.get(), &i, vals.data());
      if (err) return Fail(env, "read counter " + std::to_string(i), err);
      __u64 sum = 0;
      for (__u64 v : vals) sum += v;
      a.Set(i, Napi::Number::New(env, (double)sum));
    }
    r.Set("counters", a);
  } else {
    r.Set("counters", env.Null());
  }

  // Sockets: sockhash keys plus socket cookies (an 8-byte value makes the kernel return the
  // cookie on a userspace lookup).
  Fd socks(OpenPinnedMap(pin_dir, kSocks));
  Fd flows(OpenPinnedMap(pin_dir, kFlows));
  if (socks.ok()) {
    Napi::Array a = Napi::Array::New(env);
    meshaccel_sock_key cur, next;
    meshaccel_sock_key* prev = nullptr;
    uint32_t n = 0, total = 0;
    while (bpf_map_get_next_key(socks.get(), prev, &next) == 0) {
      total++;
      cur = next;
      prev = &cur;
      if (n >= max_sockets) continue;
      __u64 cookie = 0;
      // An entry can vanish between next_key and lookup when its socket closes.
      if (bpf_map_lookup_elem(socks.get(), &next, &cookie)) continue;
      Napi::Object s = Napi::Object::New(env);
      s.Set("netnsCookie", Napi::BigInt::New(env, (uint64_t)next.netns));
      s.Set("family", Napi::Number::New(env, next.family));
      s.Set("localAddress", IpText(next.family, next.local_ip4));
      s.Set("remoteAddress", IpText(next.family, next.remote_ip4));
      s.Set("localPort", Napi::Number::New(env, next.local_port));
      s.Set("remotePort", Napi::Number::New(env, next.remote_port));
      s.Set("socketCookie", Napi::BigInt::New(env, (uint64_t)cookie));
      meshaccel_flow fl;
      if (flows.ok() && bpf_map_lookup_elem(flows.get(), &next, &fl) == 0) {
        s.Set("tcpOnly", Napi::Boolean::New(env, (fl.flags & MESHACCEL_FLOW_TCP_ONLY) != 0));
      }
      a.Set(n++, s);
    }
    r.Set("sockets", a);
    r.Set("socketCount", Napi::Number::New(env, total));
    // Whether sk_msg is attached to the map (BPF_PROG_QUERY on a sockmap; kernels before
    // 5.19 do not answer, reported as null).
    __u32 ids[4] = {0, 0, 0, 0};
    __u32 cnt = 4, flags = 0;
    if (bpf_prog_query(socks.get(), BPF_SK_MSG_VERDICT, 0, &flags, ids, &cnt) == 0) {
      Napi::Array q = Napi::Array::New(env, cnt);
      for (uint32_t i = 0; i < cnt && i < 4; i++) q.Set(i, Napi::Number::New(env, ids[i]));
      r.Set("skMsgAttachedIds", q);
    } else {
      r.Set("skMsgAttachedIds", env.Null());
    }
  } else {
    r.Set("sockets", env.Null());
    r.Set("socketCount", env.Null());
    r.Set("skMsgAttachedIds", env.Null());
  }
  return r;
}

// detach(pinDir) -> names removed. Order matters for live connections:
//  1. mode OFF: sockets already in the sockhash keep their sk_msg program, which now passes
//     every message to TCP (and marks the socket TCP-only, so it never redirects again);
//  2. the cgroup link is detached: no new sockets are inserted;
//  3. sk_msg is detached from the sockhash and every pin is removed.
// The sockhash entries are NOT deleted: deleting a socket's entry frees its psock, which
// discards redirected bytes its application has not read yet. The unpinned map lives on,
// invisible, until the last of those sockets closes, and meanwhile they run over plain TCP.
Napi::Value Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return FailMsg(env, "detach: expected (pinDir)");
  std::string pin_dir = info[0].As<Napi::String>().Utf8Value();
  Napi::Array removed = Napi::Array::New(env);
  uint32_t n = 0;

  Fd cfg_fd(OpenPinnedMap(pin_dir, kConfig));
  if (cfg_fd.ok()) {
    meshaccel_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = MESHACCEL_MODE_OFF;
    __u32 zero = 0;
    int err = bpf_map_update_elem(cfg_fd.get(), &zero, &cfg, BPF_ANY);
    if (err) return Fail(env, "switch " MESHACCEL_MAP_CONFIG " to off", err);
  }

  std::string link_pin = PinPath(pin_dir, MESHACCEL_PIN_LINK);
  Fd link(bpf_obj_get(link_pin.c_str()));
  if (link.ok()) {
    int err = bpf_link_detach(link.get());
    // ENOLINK: already detached (its cgroup was removed); the pin still has to go.
    if (err && err != -ENOLINK) return Fail(env, "detach sockops link", err);
    if (unlink(link_pin.c_str())) return Fail(env, "unpin " + link_pin, errno);
    removed.Set(n++, Napi::String::New(env, MESHACCEL_PIN_LINK));
  } else if (errno != ENOENT) {
    return Fail(env, "open pinned link " + link_pin, errno);
  }

  Fd sk_msg(OpenPin(pin_dir, MESHACCEL_PIN_SK_MSG));
  Fd socks(OpenPin(pin_dir, MESHACCEL_MAP_SOCKS));
  if (sk_msg.ok() && socks.ok()) {
    int err = bpf_prog_detach2(sk_msg.get(), socks.get(), BPF_SK_MSG_VERDICT);
    if (err && err != -ENOENT) return Fail(env, "detach sk_msg from sockhash", err);
  }

  // The reader link's last reference is its pin: unpinning it detaches the program.
  std::vector<const char*> pins = {MESHACCEL_PIN_READER_LINK, MESHACCEL_PIN_READER_CPU, MESHACCEL_PIN_SOCKOPS, MESHACCEL_PIN_SK_MSG};
  for (const MapLayout* m : kMaps) pins.push_back(m->name);
  for (const char* name : pins) {
    std::string p = PinPath(pin_dir, name);
    if (unlink(p.c_str()) == 0) {
      removed.Set(n++, Napi::String::New(env, name));
    } else if (errno != ENOENT) {
      return Fail(env, "unpin " + p, errno);
    }
  }
  return removed;
}

// calibrate(pinDir, livePinDir | "", {sizes[], cpus[], trialMs, rounds, maxRounds?, cuts[]?, nice?, warmMs?})
//   -> [[{tcpBps, redirectBps}]], redirectBps being tcpBps x the median paired ratio
// pinDir holds a private load of the programs configured to redirect without hand-off (see
// calibrate.h); livePinDir the attachment whose sockops may have taken the measuring sockets.
Napi::Value CalibrateFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsObject())
    return FailMsg(env, "calibrate: expected (pinDir, livePinDir, options)");
  std::string pin_dir = info[0].As<Napi::String>().Utf8Value();
  std::string live_dir = info[1].As<Napi::String>().Utf8Value();
  Napi::Object o = info[2].As<Napi::Object>();
  meshaccel::CalibrateOptions opts;
  for (const char* key : {"sizes", "cpus"}) {
    if (!o.Get(key).IsArray()) return FailMsg(env, std::string("calibrate: ") + key + " must be an array");
    Napi::Array a = o.Get(key).As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) {
      uint32_t v = a.Get(i).ToNumber().Uint32Value();
      if (key[0] == 's') {
        if (v == 0 || v > (64u << 20)) return FailMsg(env, "calibrate: write size out of range");
        opts.sizes.push_back(v);
      } else {
        opts.cpus.push_back((int)v);
      }
    }
  }
  opts.trial_ms = o.Get("trialMs").ToNumber().Uint32Value();
  opts.rounds = o.Get("rounds").ToNumber().Uint32Value();
  if (o.Get("warmMs").IsNumber()) opts.warm_ms = o.Get("warmMs").ToNumber().Uint32Value();
  if (o.Get("maxRounds").IsNumber()) opts.max_rounds = o.Get("maxRounds").ToNumber().Uint32Value();
  if (o.Get("nice").IsNumber()) opts.nice = o.Get("nice").ToNumber().Int32Value();
  if (o.Get("cuts").IsArray()) {
    Napi::Array a = o.Get("cuts").As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) opts.cuts.push_back(a.Get(i).ToNumber().DoubleValue());
  }
  if (opts.trial_ms == 0 || opts.trial_ms > 10000 || opts.rounds == 0 || opts.rounds > 50 || opts.max_rounds > 50)
    return FailMsg(env, "calibrate: trialMs must be 1..10000 and rounds and maxRounds 1..50");
  Fd socks(OpenPinnedMap(pin_dir, kSocks)), flows(OpenPinnedMap(pin_dir, kFlows));
  if (!socks.ok()) return Fail(env, OpenMapWhat(MESHACCEL_MAP_SOCKS), errno);
  if (!flows.ok()) return Fail(env, OpenMapWhat(MESHACCEL_MAP_FLOWS), errno);
  Fd live_socks, live_flows;
  if (!live_dir.empty()) {
    live_socks.reset(PinExists(PinPath(live_dir, kSocks.name)) ? OpenPinnedMap(live_dir, kSocks) : -1);
    live_flows.reset(PinExists(PinPath(live_dir, kFlows.name)) ? OpenPinnedMap(live_dir, kFlows) : -1);
  }
  opts.socks_fd = socks.get();
  opts.flows_fd = flows.get();
  opts.live_socks_fd = live_socks.get();
  opts.live_flows_fd = live_flows.get();
  std::vector<std::vector<meshaccel::CalibratePoint>> points;
  std::string error;
  if (!meshaccel::Calibrate(opts, &points, &error)) return FailMsg(env, error);
  Napi::Array r = Napi::Array::New(env, points.size());
  for (size_t l = 0; l < points.size(); l++) {
    Napi::Array pts = Napi::Array::New(env, points[l].size());
    for (size_t i = 0; i < points[l].size(); i++) {
      Napi::Object pt = Napi::Object::New(env);
      pt.Set("tcpBps", Napi::Number::New(env, points[l][i].tcp_Bps));
      pt.Set("redirectBps", Napi::Number::New(env, points[l][i].redirect_Bps));
      pts.Set(i, pt);
    }
    r.Set(l, pts);
  }
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(CaptureLibbpfLog);
  exports.Set("probeBpf", Napi::Function::New(env, ProbeBpf));
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("attachCgroup", Napi::Function::New(env, AttachCgroup));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("status", Napi::Function::New(env, Status));
  exports.Set("detach", Napi::Function::New(env, Detach));
  exports.Set("calibrate", Napi::Function::New(env, CalibrateFn));
  return exports;
}

}  // namespace

NODE_API_MODULE(meshaccel_bpf, Init)
