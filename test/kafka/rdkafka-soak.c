/*
 * The librdkafka side of the Kafka soak (test/kafka/rdkafka-soak.ts): one long-lived producer
 * and a consumer group, every broker connection steered to one relay (connect_cb), since the
 * mock cluster advertises its own address.
 * usage: rdkafka-soak RELAY_PORT TOPIC DENIED_TOPIC GROUP
 *
 * The producer sends one record every 100 ms to TOPIC; consumer 1 (and consumer 2 while it is
 * a member) consume TOPIC in GROUP with automatic commits. Commands on stdin, one per line:
 *   join    a second consumer joins the group        leave   it leaves (consumer_close)
 *   probe   the producer sends one record to DENIED_TOPIC
 *   status  print the counters                        stop    stop producing, drain, print `final`
 * Output, one line each: `event KIND client=NAME ...` as things happen, and `status|final k=v ...`.
 * Connections are counted where librdkafka opens and closes them (connect_cb, closesocket_cb)
 * and from its own statistics (per-broker `connects`/`disconnects`, `req.Heartbeat`).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECORDS (1 << 22)

struct client {
    const char *name;
    rd_kafka_t *rk;
    /* Updated from librdkafka's threads. */
    int connects, closes;
    /* Updated on the polling thread. */
    long stats_heartbeats, stats_connects, stats_disconnects;
    int assigns, revokes, commits, commit_errors, fetch_errors, errors;
};

static int relay_port;
static const char *topic, *denied_topic;
static struct client producer = {.name = "producer"}, consumer1 = {.name = "consumer-1"}, consumer2 = {.name = "consumer-2"};
static int produced, delivered, failed, probe_failed;
static long consumed, duplicates;
static unsigned char seen[MAX_RECORDS / 8];

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int connect_to_relay(int fd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque) {
    (void)addr; (void)addrlen;
    struct client *c = opaque;
    __atomic_add_fetch(&c->connects, 1, __ATOMIC_SEQ_CST);
    emit("event connect client=%s broker=%s", c->name, id);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(relay_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 && errno != EINPROGRESS) return errno;
    return 0;
}

static int close_socket(int fd, void *opaque) {
    struct client *c = opaque;
    __atomic_add_fetch(&c->closes, 1, __ATOMIC_SEQ_CST);
    emit("event close client=%s", c->name);
    return close(fd);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk;
    struct client *c = opaque;
    c->errors++;
    emit("event error client=%s err=%s reason=%s", c->name, rd_kafka_err2name(err), reason);
}

/* Sums every `"KEY": N` in librdkafka's statistics JSON (one per broker). */
static long sum_of(const char *json, const char *key) {
    long sum = 0;
    size_t n = strlen(key);
    for (const char *p = strstr(json, key); p; p = strstr(p + n, key)) {
        const char *q = p + n;
        while (*q == ' ' || *q == ':') q++;
        sum += strtol(q, NULL, 10);
    }
    return sum;
}

static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk; (void)len;
    struct client *c = opaque;
    c->stats_heartbeats = sum_of(json, "\"Heartbeat\"");
    c->stats_connects = sum_of(json, "\"connects\"");
    c->stats_disconnects = sum_of(json, "\"disconnects\"");
    return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    const char *t = rd_kafka_topic_name(m->rkt);
    if (strcmp(t, denied_topic) == 0) {
        if (m->err) probe_failed++;
        emit("event delivery client=producer topic=%s err=%s", t, m->err ? rd_kafka_err2name(m->err) : "none");
        return;
    }
    if (m->err) {
        failed++;
        emit("event delivery client=producer topic=%s err=%s", t, rd_kafka_err2name(m->err));
    } else delivered++;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque) {
    struct client *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        c->assigns++;
        rd_kafka_assign(rk, parts);
    } else {
        c->revokes++;
        rd_kafka_assign(rk, NULL);
    }
    emit("event rebalance client=%s what=%s partitions=%d", c->name, err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assign" : "revoke", parts->cnt);
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)rk;
    struct client *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) return; /* nothing new to commit */
    rd_kafka_resp_err_t part_err = 0;
    for (int i = 0; offsets && i < offsets->cnt && !part_err; i++) part_err = offsets->elems[i].err;
    if (!err) err = part_err;
    if (err) {
        c->commit_errors++;
        emit("event commit client=%s err=%s", c->name, rd_kafka_err2name(err));
    } else c->commits++;
}

static rd_kafka_t *new_client(struct client *c, rd_kafka_type_t type, const char *group) {
    char errstr[256], bootstrap[64], client_id[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", relay_port);
    snprintf(client_id, sizeof client_id, "rdkafka-soak-%s", c->name);
    const char *settings[][2] = {
        {"bootstrap.servers", bootstrap},
        {"client.id", client_id},
        {"log_level", "3"},
        {"statistics.interval.ms", "1000"},
        {"reconnect.backoff.ms", "100"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "rdkafka-soak: %s\n", errstr);
            exit(2);
        }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_connect_cb(conf, connect_to_relay);
    rd_kafka_conf_set_closesocket_cb(conf, close_socket);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof errstr);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    } else {
        const char *group_settings[][2] = {
            {"group.id", group},
            {"auto.offset.reset", "earliest"},
            {"enable.auto.commit", "true"},
            {"auto.commit.interval.ms", "1000"},
            {"heartbeat.interval.ms", "1000"},
            {"session.timeout.ms", "10000"},
            {"fetch.wait.max.ms", "250"},
        };
        for (size_t i = 0; i < sizeof group_settings / sizeof group_settings[0]; i++)
            rd_kafka_conf_set(conf, group_settings[i][0], group_settings[i][1], errstr, sizeof errstr);
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "rdkafka-soak: %s\n", errstr);
        exit(1);
    }
    c->rk = rk;
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (err) {
            fprintf(stderr, "rdkafka-soak: subscribe: %s\n", rd_kafka_err2name(err));
            exit(1);
        }
    }
    return rk;
}

static void consume(struct client *c, int timeout_ms) {
    if (!c->rk) return;
    for (rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms); m; m = rd_kafka_consumer_poll(c->rk, 0)) {
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                c->fetch_errors++;
                emit("event consume client=%s err=%s topic=%s", c->name, rd_kafka_err2name(m->err), m->rkt ? rd_kafka_topic_name(m->rkt) : "-");
            }
        } else {
            char value[32] = {0};
            size_t n = m->len < sizeof value - 1 ? m->len : sizeof value - 1;
            memcpy(value, m->payload, n);
            long i = strncmp(value, "r-", 2) == 0 ? strtol(value + 2, NULL, 10) : -1;
            if (i >= 0 && i < MAX_RECORDS) {
                if (seen[i / 8] & (1 << (i % 8))) duplicates++;
                else {
                    seen[i / 8] |= 1 << (i % 8);
                    consumed++;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
}

static void print_counters(const char *what) {
    const struct client *cs[] = {&producer, &consumer1, &consumer2};
    char line[2048];
    int n = snprintf(line, sizeof line, "%s produced=%d delivered=%d failed=%d probe_failed=%d consumed=%ld duplicates=%ld", what, produced, delivered, failed,
                     probe_failed, consumed, duplicates);
    for (int i = 0; i < 3; i++) {
        const struct client *c = cs[i];
        const char *k = i == 0 ? "p" : i == 1 ? "c1" : "c2";
        n += snprintf(line + n, sizeof line - n,
                      " %s_connects=%d %s_closes=%d %s_stats_connects=%ld %s_stats_disconnects=%ld %s_heartbeats=%ld %s_assigns=%d %s_revokes=%d %s_commits=%d "
                      "%s_commit_errors=%d %s_fetch_errors=%d %s_errors=%d",
                      k, __atomic_load_n(&c->connects, __ATOMIC_SEQ_CST), k, __atomic_load_n(&c->closes, __ATOMIC_SEQ_CST), k, c->stats_connects, k,
                      c->stats_disconnects, k, c->stats_heartbeats, k, c->assigns, k, c->revokes, k, c->commits, k, c->commit_errors, k, c->fetch_errors, k,
                      c->errors);
    }
    emit("%s", line);
}

static void produce(const char *to, int i) {
    char value[32];
    char key[8];
    int n = snprintf(value, sizeof value, "r-%d", i);
    int kn = snprintf(key, sizeof key, "%d", i % 8);
    rd_kafka_resp_err_t err = rd_kafka_producev(producer.rk, RD_KAFKA_V_TOPIC(to), RD_KAFKA_V_KEY(key, kn), RD_KAFKA_V_VALUE(value, n),
                                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) emit("event produce client=producer topic=%s err=%s", to, rd_kafka_err2name(err));
}

/* One command from stdin, or -1 at its end. */
static int command(char *buf, size_t cap, size_t *have) {
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    if (poll(&pfd, 1, 0) > 0) {
        ssize_t r = read(0, buf + *have, cap - 1 - *have);
        if (r <= 0) return -1;
        *have += (size_t)r;
    }
    buf[*have] = 0;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: rdkafka-soak RELAY_PORT TOPIC DENIED_TOPIC GROUP\n");
        return 2;
    }
    relay_port = atoi(argv[1]);
    topic = argv[2];
    denied_topic = argv[3];
    const char *group = argv[4];
    new_client(&producer, RD_KAFKA_PRODUCER, NULL);
    new_client(&consumer1, RD_KAFKA_CONSUMER, group);
    emit("ready");
    char buf[1024];
    size_t have = 0;
    long next_send = now_ms();
    int stopping = 0;
    while (!stopping) {
        if (now_ms() >= next_send) {
            produce(topic, produced++);
            next_send += 100;
        }
        rd_kafka_poll(producer.rk, 0);
        consume(&consumer1, 20);
        consume(&consumer2, 0);
        if (command(buf, sizeof buf, &have) < 0) stopping = 1;
        char *nl;
        while ((nl = strchr(buf, '\n'))) {
            *nl = 0;
            if (strcmp(buf, "join") == 0 && !consumer2.rk) new_client(&consumer2, RD_KAFKA_CONSUMER, group);
            else if (strcmp(buf, "leave") == 0 && consumer2.rk) {
                rd_kafka_consumer_close(consumer2.rk);
                rd_kafka_destroy(consumer2.rk);
                consumer2.rk = NULL;
                emit("event left client=consumer-2");
            } else if (strcmp(buf, "probe") == 0) produce(denied_topic, 0);
            else if (strcmp(buf, "status") == 0) print_counters("status");
            else if (strcmp(buf, "stop") == 0) stopping = 1;
            size_t used = (size_t)(nl + 1 - buf);
            memmove(buf, nl + 1, have - used + 1);
            have -= used;
        }
    }
    /* Drain: everything delivered is consumed (bounded by 30 s). */
    rd_kafka_flush(producer.rk, 10000);
    long deadline = now_ms() + 30000;
    while (consumed < delivered && now_ms() < deadline) {
        rd_kafka_poll(producer.rk, 0);
        consume(&consumer1, 100);
        consume(&consumer2, 0);
    }
    print_counters("final");
    if (consumer2.rk) {
        rd_kafka_consumer_close(consumer2.rk);
        rd_kafka_destroy(consumer2.rk);
    }
    rd_kafka_consumer_close(consumer1.rk);
    rd_kafka_destroy(consumer1.rk);
    rd_kafka_destroy(producer.rk);
    return 0;
}
