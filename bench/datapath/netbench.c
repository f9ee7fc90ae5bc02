/* netbench: the C side of `make bench-datapath`.
 *   netbench server PORT                   thread per connection; a 8-byte header picks the shape
 *   netbench rr HOST PORT SIZE SECONDS     request/response of SIZE bytes; prints ops/s and latency
 *   netbench bulk HOST PORT WRITE SECONDS  one-way writes of WRITE bytes; prints MB/s
 * Output is one JSON line. Blocking sockets: with sk_msg redirection a blocking recv can return
 * a spurious EAGAIN on this kernel, so every read retries EAGAIN after poll(). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { SHAPE_RR = 1, SHAPE_BULK = 2 };
struct hdr { uint32_t shape; uint32_t size; };

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static ssize_t read_some(int fd, void *buf, size_t len) {
	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n >= 0) return n;
		if (errno == EINTR) continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) { /* spurious with sk_msg redirect */
			struct pollfd p = {.fd = fd, .events = POLLIN};
			poll(&p, 1, 100);
			continue;
		}
		return -1;
	}
}

static int read_full(int fd, void *buf, size_t len) {
	size_t got = 0;
	while (got < len) {
		ssize_t n = read_some(fd, (char *)buf + got, len - got);
		if (n <= 0) return -1;
		got += n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len) {
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR) continue;
			if (errno == EAGAIN) { struct pollfd p = {.fd = fd, .events = POLLOUT}; poll(&p, 1, 100); continue; }
			return -1;
		}
		done += n;
	}
	return 0;
}

static void *serve_conn(void *arg) {
	int fd = (int)(intptr_t)arg;
	struct hdr h;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (read_full(fd, &h, sizeof(h)) == 0) {
		size_t cap = h.size > (1u << 20) ? h.size : (1u << 20);
		char *buf = malloc(cap);
		if (h.shape == SHAPE_RR) {
			while (read_full(fd, buf, h.size) == 0 && write_full(fd, buf, h.size) == 0) {}
		} else if (h.shape == SHAPE_BULK) {
			uint64_t total = 0;
			ssize_t n;
			while ((n = read_some(fd, buf, cap)) > 0) total += n;
			write_full(fd, &total, sizeof(total));
		}
		free(buf);
	}
	close(fd);
	return NULL;
}

static int server(int port) {
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 128)) { perror("bind/listen"); return 1; }
	printf("listening %d\n", port);
	fflush(stdout);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0) { if (errno == EINTR) continue; perror("accept"); return 1; }
		pthread_t t;
		pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static int dial(const char *host, int port) {
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, host, &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) { perror("connect"); exit(1); }
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int rr(const char *host, int port, uint32_t size, double seconds) {
	int fd = dial(host, port);
	struct hdr h = {SHAPE_RR, size};
	write_full(fd, &h, sizeof(h));
	char *buf = calloc(1, size);
	size_t cap = 1 << 22, n = 0;
	double *lat = malloc(cap * sizeof(double));
	/* warm-up, then measure */
	for (int i = 0; i < 200; i++) if (write_full(fd, buf, size) || read_full(fd, buf, size)) return 1;
	double start = now(), end = start + seconds, t = start;
	while (t < end) {
		double t0 = t;
		if (write_full(fd, buf, size) || read_full(fd, buf, size)) { fprintf(stderr, "rr io error\n"); return 1; }
		t = now();
		if (n < cap) lat[n] = t - t0;
		n++;
	}
	double el = t - start;
	size_t m = n < cap ? n : cap;
	qsort(lat, m, sizeof(double), cmp_double);
	printf("{\"ops\":%.1f,\"p50us\":%.2f,\"p99us\":%.2f}\n", n / el, lat[m / 2] * 1e6, lat[(size_t)(m * 0.99)] * 1e6);
	close(fd);
	return 0;
}

static int bulk(const char *host, int port, uint32_t wsize, double seconds) {
	int fd = dial(host, port);
	struct hdr h = {SHAPE_BULK, wsize};
	write_full(fd, &h, sizeof(h));
	char *buf = calloc(1, wsize);
	uint64_t sent = 0, acked = 0;
	double start = now(), end = start + seconds;
	int k = 0;
	for (;;) {
		if (write_full(fd, buf, wsize)) { fprintf(stderr, "bulk io error\n"); return 1; }
		sent += wsize;
		if ((++k & 15) == 0 && now() >= end) break;
	}
	shutdown(fd, SHUT_WR);
	if (read_full(fd, &acked, sizeof(acked))) { fprintf(stderr, "no ack\n"); return 1; }
	double el = now() - start;
	if (acked != sent) { fprintf(stderr, "bulk mismatch sent %llu acked %llu\n", (unsigned long long)sent, (unsigned long long)acked); return 1; }
	printf("{\"MBps\":%.1f}\n", sent / el / 1e6);
	close(fd);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && !strcmp(argv[1], "server")) return server(atoi(argv[2]));
	if (argc >= 6 && !strcmp(argv[1], "rr")) return rr(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
	if (argc >= 6 && !strcmp(argv[1], "bulk")) return bulk(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
	fprintf(stderr, "usage: netbench server PORT | rr HOST PORT SIZE SECONDS | bulk HOST PORT WRITE SECONDS\n");
	return 2;
}
