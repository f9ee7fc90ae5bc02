// meshaccel_sockets: the two socket operations Node's net module cannot do and a transparent
// proxy needs. Both return a plain fd that Node adopts (net.Server.listen({fd}) /
// new net.Socket({fd})), so everything after creation is ordinary Node networking.
//
//  - listenTransparent: a TCP listener with IP_TRANSPARENT (IPV6_TRANSPARENT), so TPROXY can
//    hand it connections addressed to any destination; accepted sockets keep that original
//    destination as their local address (getsockname).
//  - connectMarked: an outgoing TCP connect with SO_MARK (so the redirect rules recognise the
//    proxy's own upstream traffic and never capture it again), optionally IP_TRANSPARENT and
//    bound to a foreign source address. The connect is non-blocking: completion is observed
//    with a uv_poll on the loop and SO_ERROR, and reported through a callback.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

namespace {

// An Error whose message names the failed step and whose `code`/`errno`/`syscall` match
// Node's own system errors, so callers handle both the same way.
Napi::Error SysError(Napi::Env env, const std::string& what, const char* syscall, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + syscall + " failed: " + std::strerror(err));
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;
  int family = AF_INET;
};

// Parses a numeric IPv4/IPv6 literal; no name resolution happens in the addon.
bool ParseAddress(const std::string& host, int port, Address* out) {
  std::memset(&out->storage, 0, sizeof(out->storage));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in);
    out->family = AF_INET;
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof(sockaddr_in6);
    out->family = AF_INET6;
    return true;
  }
  return false;
}

int SetIntOpt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof(value));
}

int SetTransparent(int fd, int family) {
  return family == AF_INET6 ? SetIntOpt(fd, SOL_IPV6, IPV6_TRANSPARENT, 1)
                            : SetIntOpt(fd, SOL_IP, IP_TRANSPARENT, 1);
}

std::string OptString(const Napi::Object& o, const char* key, const std::string& dflt) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}

int64_t OptInt(const Napi::Object& o, const char* key, int64_t dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : dflt;
}

bool OptBool(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

// listenTransparent({host, port, backlog?, mark?, transparent?, v6only?}) -> fd
Napi::Value ListenTransparent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "listenTransparent: options object expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string host = OptString(o, "host", "0.0.0.0");
  int64_t port = OptInt(o, "port", 0);
  int64_t backlog = OptInt(o, "backlog", 511);
  int64_t mark = OptInt(o, "mark", 0);
  bool transparent = OptBool(o, "transparent", true);
  bool v6only = OptBool(o, "v6only", false);
  Address addr;
  if (port < 0 || port > 65535 || !ParseAddress(host, static_cast<int>(port), &addr)) {
    Napi::TypeError::New(env, "listenTransparent: bad address " + host + ":" + std::to_string(port))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string what = "transparent listener on " + host + ":" + std::to_string(port);
  int fd = socket(addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    SysError(env, what, "socket", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* failed = nullptr;
  if (SetIntOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (transparent && SetTransparent(fd, addr.family) < 0) failed = "setsockopt(IP_TRANSPARENT)";
  else if (mark != 0 && SetIntOpt(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark)) < 0) failed = "setsockopt(SO_MARK)";
  else if (addr.family == AF_INET6 && SetIntOpt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? 1 : 0) < 0)
    failed = "setsockopt(IPV6_V6ONLY)";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&addr.storage), addr.len) < 0) failed = "bind";
  else if (listen(fd, static_cast<int>(backlog)) < 0) failed = "listen";
  if (failed) {
    int err = errno;
    close(fd);
    SysError(env, what, failed, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// One in-flight non-blocking connect: a poll for writability and a timer, both on the loop.
struct ConnectReq {
  uv_poll_t poll;
  uv_timer_t timer;
  int fd = -1;
  int openHandles = 0;
  bool done = false;
  std::string what;
  Napi::FunctionReference callback;
  Napi::AsyncContext* context = nullptr;
  napi_env env = nullptr;
};

void OnHandleClosed(uv_handle_t* h) {
  auto* req = static_cast<ConnectReq*>(h->data);
  if (--req->openHandles == 0) {
    delete req->context;
    delete req;
  }
}

// Reports the outcome once (err == 0: connected) and releases the loop handles.
void Finish(ConnectReq* req, int err, const char* syscall) {
  if (req->done) return;
  req->done = true;
  uv_poll_stop(&req->poll);
  uv_timer_stop(&req->timer);
  {
    Napi::Env env(req->env);
    Napi::HandleScope scope(env);
    std::vector<napi_value> args;
    if (err == 0) {
      args = {env.Null(), Napi::Number::New(env, req->fd)};
    } else {
      close(req->fd);
      req->fd = -1;
      args = {SysError(env, req->what, syscall, err).Value()};
    }
    // MakeCallback so promise continuations queued by the callback run now.
    req->callback.MakeCallback(env.Global(), args, *req->context);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&req->poll), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&req->timer), OnHandleClosed);
}

void OnWritable(uv_poll_t* handle, int status, int /*events*/) {
  auto* req = static_cast<ConnectReq*>(handle->data);
  // libuv reports POLLERR (e.g. a refused connect) as status UV_EBADF: the real outcome is
  // in SO_ERROR either way.
  int soErr = 0;
  socklen_t len = sizeof(soErr);
  if (getsockopt(req->fd, SOL_SOCKET, SO_ERROR, &soErr, &len) < 0) soErr = errno;
  if (soErr == 0 && status < 0) {
    Finish(req, -status, "poll");
    return;
  }
  Finish(req, soErr, "connect");
}

void OnTimeout(uv_timer_t* handle) {
  Finish(static_cast<ConnectReq*>(handle->data), ETIMEDOUT, "connect");
}

// connectMarked({host, port, mark?, transparent?, localHost?, localPort?, timeoutMs?}, cb)
// cb(err, fd) once the connection is established (or failed).
Napi::Value ConnectMarked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "connectMarked: (options, callback) expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  std::string host = OptString(o, "host", "");
  int64_t port = OptInt(o, "port", 0);
  int64_t mark = OptInt(o, "mark", 0);
  bool transparent = OptBool(o, "transparent", false);
  std::string localHost = OptString(o, "localHost", "");
  int64_t localPort = OptInt(o, "localPort", 0);
  int64_t timeoutMs = OptInt(o, "timeoutMs", 10000);
  Address remote;
  if (port < 1 || port > 65535 || !ParseAddress(host, static_cast<int>(port), &remote)) {
    Napi::TypeError::New(env, "connectMarked: bad address " + host + ":" + std::to_string(port))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Address local;
  bool bindLocal = !localHost.empty() || localPort != 0;
  if (bindLocal) {
    std::string lh = localHost.empty() ? (remote.family == AF_INET6 ? "::" : "0.0.0.0") : localHost;
    if (localPort < 0 || localPort > 65535 || !ParseAddress(lh, static_cast<int>(localPort), &local) ||
        local.family != remote.family) {
      Napi::TypeError::New(env, "connectMarked: bad local address " + lh).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  std::string what = "connect to " + host + ":" + std::to_string(port) +
                     (mark ? " with SO_MARK " + std::to_string(mark) : std::string());
  int fd = socket(remote.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    SysError(env, what, "socket", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const char* failed = nullptr;
  if (mark != 0 && SetIntOpt(fd, SOL_SOCKET, SO_MARK, static_cast<int>(mark)) < 0) failed = "setsockopt(SO_MARK)";
  else if (transparent && SetTransparent(fd, remote.family) < 0) failed = "setsockopt(IP_TRANSPARENT)";
  else if (bindLocal && SetIntOpt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (bindLocal && bind(fd, reinterpret_cast<sockaddr*>(&local.storage), local.len) < 0) failed = "bind";
  if (failed) {
    int err = errno;
    close(fd);
    SysError(env, what, failed, err).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&remote.storage), remote.len);
  int connectErr = rc == 0 ? 0 : errno;
  if (rc < 0 && connectErr != EINPROGRESS) {
    close(fd);
    SysError(env, what, "connect", connectErr).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    close(fd);
    Napi::Error::New(env, "connectMarked: no event loop").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* req = new ConnectReq();
  req->fd = fd;
  req->what = what;
  req->env = env;
  req->callback = Napi::Persistent(info[1].As<Napi::Function>());
  req->context = new Napi::AsyncContext(env, "meshaccel.connectMarked");
  req->poll.data = req;
  req->timer.data = req;
  uv_timer_init(loop, &req->timer);
  req->openHandles = 1;
  int prc = uv_poll_init(loop, &req->poll, fd);
  if (prc < 0) {
    // Release the timer and report the failure asynchronously like any other outcome.
    req->done = true;
    close(fd);
    uv_close(reinterpret_cast<uv_handle_t*>(&req->timer), OnHandleClosed);
    SysError(env, what, "uv_poll_init", -prc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  req->openHandles = 2;
  // Even an immediately completed connect (rc == 0, e.g. loopback) goes through the poll, so
  // the callback is always asynchronous.
  uv_poll_start(&req->poll, UV_WRITABLE, OnWritable);
  if (timeoutMs > 0) uv_timer_start(&req->timer, OnTimeout, static_cast<uint64_t>(timeoutMs), 0);
  return env.Undefined();
}

// closeFd(fd): for fds never handed to Node (error paths in the TypeScript wrapper).
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (info.Length() >= 1 && info[0].IsNumber()) close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// socketMark(fd) -> SO_MARK of a socket (tests check that accepted/upstream sockets carry it).
Napi::Value SocketMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "socketMark: fd expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int mark = 0;
  socklen_t len = sizeof(mark);
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_MARK, &mark, &len) < 0) {
    SysError(env, "socketMark", "getsockopt(SO_MARK)", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<uint32_t>(mark));
}

// originalDst(fd) -> {address, port}: the pre-NAT destination of a connection that iptables
// REDIRECT/DNAT rewrote (SO_ORIGINAL_DST), for comparing REDIRECT capture with TPROXY, where
// getsockname already is the original destination.
Napi::Value OriginalDst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "originalDst: fd expected").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  constexpr int kSoOriginalDst = 80;  // SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST
  sockaddr_storage ss{};
  socklen_t len = sizeof(sockaddr_in);
  int rc = getsockopt(fd, SOL_IP, kSoOriginalDst, &ss, &len);
  if (rc < 0) {
    len = sizeof(sockaddr_in6);
    rc = getsockopt(fd, SOL_IPV6, kSoOriginalDst, &ss, &len);
  }
  if (rc < 0) {
    SysError(env, "originalDst", "getsockopt(SO_ORIGINAL_DST)", errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  char text[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    port = ntohs(a->sin6_port);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    port = ntohs(a->sin_port);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::String::New(env, text));
  out.Set("port", Napi::Number::New(env, port));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("originalDst", Napi::Function::New(env, OriginalDst));
  exports.Set("listenTransparent", Napi::Function::New(env, ListenTransparent));
  exports.Set("connectMarked", Napi::Function::New(env, ConnectMarked));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("socketMark", Napi::Function::New(env, SocketMark));
  return exports;
}

}  // namespace

NODE_API_MODULE(meshaccel_sockets, Init)
