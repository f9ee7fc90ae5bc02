// The measurement behind `datapath attach --calibrate`: one-way loopback throughput for a set
// of write sizes, over plain TCP and over sk_msg redirection, with writer and reader on one
// CPU and on two. Plain C++ (no N-API), so the figures come from the same kind of blocking
// socket loop as the C bench client, not from a JavaScript event loop.
#ifndef MESHACCEL_CALIBRATE_H
#define MESHACCEL_CALIBRATE_H

#include <string>
#include <vector>

namespace meshaccel {

struct CalibrateOptions {
  // Maps of a private load of the programs (sockhash with sk_msg attached, flows, config set to
  // redirect everything without hand-off): redirected pairs are inserted there by hand.
  int socks_fd = -1;
  int flows_fd = -1;
  // The live attachment's maps, or -1: if the calling process is in an accelerated cgroup, its
  // sockops has put the measuring sockets there; they are taken out before any byte is sent so
  // the "plain TCP" side stays plain.
  int live_socks_fd = -1;
  int live_flows_fd = -1;
  std::vector<unsigned> sizes;  // write sizes in bytes
  std::vector<int> cpus;        // one or two CPUs: [writer/reader] or [writer, reader]
  unsigned warm_ms = 20;  // not counted: TCP's window grows over the first milliseconds
  unsigned trial_ms = 40;
  // Each size runs `rounds` paired trials (TCP and redirected back to back), then more, up to
  // max_rounds, while its redirected/TCP ratios fall on both sides of its cut (cuts[i], the
  // ratio the hand-off decision separates at) with fewer than three in four on one side: one
  // trial disturbed by other load must not decide a size.
  unsigned rounds = 3;
  unsigned max_rounds = 0;  // 0: rounds
  std::vector<double> cuts;  // per size; empty: 1
  // Scheduling priority of the writer thread and the reader process during trials (root may
  // raise it): at -20 other load on the machine takes little of their CPU, so the figures
  // describe the machine's copy and wakeup costs more than the moment's load.
  int nice = -20;
};

struct CalibratePoint {
  double tcp_Bps = 0;       // median over rounds
  double redirect_Bps = 0;  // tcp_Bps x ratio, so the two figures carry the decision's ratio
  double ratio = 0;         // median of the per-round redirected/TCP ratios
};

// points[layout][size]: layout 0 = both on cpus[0], layout 1 = writer cpus[0], reader cpus[1]
// (only when two CPUs are given). Returns false with *error set when a socket step fails.
bool Calibrate(const CalibrateOptions& opts, std::vector<std::vector<CalibratePoint>>* points, std::string* error);

}  // namespace meshaccel

#endif
