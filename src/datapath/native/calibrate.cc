// See calibrate.h. Every trial uses a fresh connection: the writer sends SIZE-byte writes, the
// reader (another process) reads with a 1 MiB buffer, and throughput is what the reader got over
// trial_ms once warm_ms have passed. The two paths run back to back for each size and round, in
// alternating order, and the decision reads the median of those pairs' ratios: drift in the
// machine's other load lands on both halves of a pair, and a disturbed pair is outvoted.
#include "calibrate.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "../../../bpf/include/meshaccel_abi.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace meshaccel {
namespace {

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

// The key sockops would give this socket (IPv4 loopback): see struct meshaccel_sock_key.
bool KeyOf(int fd, meshaccel_sock_key* key) {
  sockaddr_in local{}, remote{};
  socklen_t len = sizeof(local);
  if (getsockname(fd, (sockaddr*)&local, &len)) return false;
  len = sizeof(remote);
  if (getpeername(fd, (sockaddr*)&remote, &len)) return false;
  __u64 cookie = 0;
  socklen_t clen = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &clen)) return false;
  memset(key, 0, sizeof(*key));
  key->netns = cookie;
  key->family = AF_INET;
  key->local_ip4 = local.sin_addr.s_addr;
  key->remote_ip4 = remote.sin_addr.s_addr;
  key->local_port = ntohs(local.sin_port);
  key->remote_port = ntohs(remote.sin_port);
  return true;
}

struct Pair {
  int client = -1, server = -1;
  ~Pair() {
    if (client >= 0) close(client);
    if (server >= 0) close(server);
  }
};

bool Connect(int listener, const sockaddr_in& addr, Pair* p, std::string* error) {
  p->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->client < 0) return *error = Errno("calibrate: socket"), false;
  if (connect(p->client, (const sockaddr*)&addr, sizeof(addr))) return *error = Errno("calibrate: connect"), false;
  p->server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (p->server < 0) return *error = Errno("calibrate: accept"), false;
  int one = 1;
  setsockopt(p->client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(p->server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return true;
}

// Takes both ends out of the live maps (they were inserted there at establishment if this
// process is in the accelerated cgroup) and, for the redirected path, puts them in the private
// sockhash with empty flow state.
bool Prepare(const CalibrateOptions& o, const Pair& p, bool redirected, std::string* error) {
  int fds[2] = {p.client, p.server};
  for (int fd : fds) {
    meshaccel_sock_key key;
    if (!KeyOf(fd, &key)) return *error = Errno("calibrate: socket key"), false;
    if (o.live_socks_fd >= 0) bpf_map_delete_elem(o.live_socks_fd, &key);
    if (o.live_flows_fd >= 0) bpf_map_delete_elem(o.live_flows_fd, &key);
    if (!redirected) continue;
    meshaccel_flow flow;
    memset(&flow, 0, sizeof(flow));
    if (bpf_map_update_elem(o.flows_fd, &key, &flow, BPF_ANY)) return *error = Errno("calibrate: flow state"), false;
    __u64 sock = (__u64)fd;
    if (bpf_map_update_elem(o.socks_fd, &key, &sock, BPF_ANY)) return *error = Errno("calibrate: sockhash insert"), false;
  }
  return true;
}

void Forget(const CalibrateOptions& o, const Pair& p) {
  int fds[2] = {p.client, p.server};
  for (int fd : fds) {
    meshaccel_sock_key key;
    if (KeyOf(fd, &key)) bpf_map_delete_elem(o.flows_fd, &key);
  }
}

// Redirected blocking sockets can return a spurious EAGAIN (see PEERS.md): wait and retry.
bool WaitFd(int fd, short events) {
  pollfd pf = {fd, events, 0};
  return poll(&pf, 1, 100) >= 0 || errno == EINTR;
}

// The reader's side of a trial, in a forked child so that writer and reader are separate
// processes as they are between an application and its sidecar (a switch between threads of one
// process is cheaper, which would favour whichever path switches more). Only async-signal-safe
// calls here: the parent is multi-threaded. The rate is taken over a steady window that starts
// warm_ms after the first byte (TCP's receive window grows over the first milliseconds); at its
// end the child writes (bytes, seconds) to the pipe and drains to the writer's FIN.
[[noreturn]] void ReaderChild(int fd, int cpu, int nice, unsigned warm_ms, unsigned ms, char* buf, size_t len, int out) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
  setpriority(PRIO_PROCESS, 0, nice);  // best effort: without the privilege the trial runs as is
  double t1 = 0, t2 = 0, first = 0;
  unsigned long long got = 0, got1 = 0, got2 = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, len, 0);
    if (n > 0) {
      got += (unsigned long long)n;
      double t = Now();
      if (first == 0) first = t;
      if (t1 == 0 && t >= first + warm_ms / 1000.0) t1 = t, got1 = got;
      if (t1 != 0 && t2 == 0 && t >= t1 + ms / 1000.0) {
        t2 = t, got2 = got;
        double r[2] = {(double)(got2 - got1), t2 - t1};
        if (write(out, r, sizeof(r)) != (ssize_t)sizeof(r)) _exit(1);
      }
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR || ((errno == EAGAIN || errno == EWOULDBLOCK) && WaitFd(fd, POLLIN))) continue;
    _exit(1);
  }
  _exit(t2 == 0 ? 1 : 0);
}

// One trial; returns bytes per second, or -1 on a socket error.
double Trial(const Pair& p, unsigned size, int writer_cpu, int reader_cpu, int nice, unsigned warm_ms, unsigned ms) {
  std::vector<char> rbuf(1 << 20), wbuf(size, 'm');
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC)) return -1;
  pid_t child = fork();
  if (child < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    return -1;
  }
  if (child == 0) ReaderChild(p.server, reader_cpu, nice, warm_ms, ms, rbuf.data(), rbuf.size(), pipefd[1]);
  close(pipefd[1]);
  std::atomic<bool> stop{false};
  bool write_failed = false;
  std::thread writer([&] {
    Pin(writer_cpu);
    // Per thread on Linux; the thread ends with the trial, so nothing needs restoring.
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
    while (!stop.load(std::memory_order_relaxed)) {
      size_t done = 0;
      while (done < size) {
        ssize_t n = send(p.client, wbuf.data() + done, size - done, MSG_NOSIGNAL);
        if (n >= 0) {
          done += (size_t)n;
          continue;
        }
        if (errno == EINTR || (errno == EAGAIN && WaitFd(p.client, POLLOUT))) continue;
        write_failed = true;
        return;
      }
    }
  });
  double r[2] = {0, 0};
  ssize_t n;
  do n = read(pipefd[0], r, sizeof(r)); while (n < 0 && errno == EINTR);
  stop = true;
  writer.join();
  shutdown(p.client, SHUT_WR);
  int wstatus = 0;
  while (waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {}
  close(pipefd[0]);
  if (write_failed || n != (ssize_t)sizeof(r) || r[1] <= 0) return -1;
  return r[0] / r[1];
}

double Median(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  size_t n = xs.size();
  return n == 0 ? 0 : n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

}  // namespace

bool Calibrate(const CalibrateOptions& o, std::vector<std::vector<CalibratePoint>>* points, std::string* error) {
  if (o.cpus.empty()) return *error = "calibrate: no CPU to run on", false;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return *error = Errno("calibrate: socket"), false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof(addr);
  if (bind(listener, (sockaddr*)&addr, sizeof(addr)) || listen(listener, 8) || getsockname(listener, (sockaddr*)&addr, &alen)) {
    *error = Errno("calibrate: listen on 127.0.0.1");
    close(listener);
    return false;
  }
  // The calling thread forks, connects and accepts between trials: at the trials' priority
  // those steps do not wait behind other load either. Restored on return.
  id_t self = (id_t)syscall(SYS_gettid);
  errno = 0;
  int old_nice = getpriority(PRIO_PROCESS, self);
  bool restore = errno == 0 && setpriority(PRIO_PROCESS, self, o.nice) == 0;
  size_t layouts = o.cpus.size() >= 2 ? 2 : 1;
  points->assign(layouts, std::vector<CalibratePoint>(o.sizes.size()));
  unsigned max_rounds = std::max(o.rounds, o.max_rounds);
  bool ok = true;
  for (size_t layout = 0; ok && layout < layouts; layout++) {
    int wcpu = o.cpus[0], rcpu = layout == 0 ? o.cpus[0] : o.cpus[1];
    std::vector<std::vector<double>> tcp(o.sizes.size()), redir(o.sizes.size()), ratio(o.sizes.size());
    // Settled: at least three in four of the pairs so far fall on one side of the size's cut.
    auto settled = [&](size_t i) {
      double cut = i < o.cuts.size() ? o.cuts[i] : 1.0;
      size_t above = 0;
      for (double r : ratio[i]) above += r >= cut ? 1 : 0;
      size_t below = ratio[i].size() - above;
      return std::min(above, below) * 3 <= std::max(above, below);
    };
    for (unsigned round = 0; ok && round < max_rounds; round++) {
      for (size_t i = 0; ok && i < o.sizes.size(); i++) {
        if (round >= o.rounds && settled(i)) continue;
        for (int step = 0; ok && step < 2; step++) {
          bool redirected = (step + round) % 2 == 1;
          Pair p;
          if (!Connect(listener, addr, &p, error) || !Prepare(o, p, redirected, error)) {
            ok = false;
            break;
          }
          double bps = Trial(p, o.sizes[i], wcpu, rcpu, o.nice, o.warm_ms, o.trial_ms);
          if (redirected) Forget(o, p);
          if (bps < 0) {
            *error = "calibrate: a " + std::to_string(o.sizes[i]) + "-byte trial failed: " + strerror(errno);
            ok = false;
            break;
          }
          (redirected ? redir : tcp)[i].push_back(bps);
        }
        if (ok) ratio[i].push_back(tcp[i].back() > 0 ? redir[i].back() / tcp[i].back() : 1.0);
      }
    }
    for (size_t i = 0; ok && i < o.sizes.size(); i++) {
      CalibratePoint& pt = (*points)[layout][i];
      pt.tcp_Bps = Median(tcp[i]);
      pt.ratio = Median(ratio[i]);
      pt.redirect_Bps = pt.tcp_Bps * pt.ratio;
    }
  }
  close(listener);
  if (restore) setpriority(PRIO_PROCESS, self, old_nice);
  return ok;
}

}  // namespace meshaccel
