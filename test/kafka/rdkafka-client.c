/*
 * A librdkafka client whose every broker connection goes to one relay (connect_cb), since the
 * mock cluster advertises its own address.
 * usage: rdkafka-client RELAY_PORT produce TOPIC COUNT
 *        rdkafka-client RELAY_PORT consume TOPIC COUNT GROUP SECONDS
 * Prints one line: `delivered=N failed=M error=NAME` or `consumed=N error=NAME`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static int relay_port;
static int delivered, failed;
static rd_kafka_resp_err_t first_error;

static int connect_to_relay(int fd, const struct sockaddr *addr, int addrlen, const char *id, void *opaque) {
    (void)addr; (void)addrlen; (void)id; (void)opaque;
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(relay_port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) == -1 && errno != EINPROGRESS) return errno;
    return 0;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk; (void)opaque;
    if (m->err) {
        failed++;
        if (!first_error) first_error = m->err;
    } else delivered++;
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)rk; (void)reason; (void)opaque;
    if (!first_error && err != RD_KAFKA_RESP_ERR__TRANSPORT && err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) first_error = err;
}

static rd_kafka_conf_t *base_conf(const char *client_id) {
    char errstr[256], bootstrap[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(bootstrap, sizeof bootstrap, "127.0.0.1:%d", relay_port);
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "client.id", client_id, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof errstr);
    rd_kafka_conf_set_connect_cb(conf, connect_to_relay);
    rd_kafka_conf_set_error_cb(conf, on_error);
    return conf;
}

int main(int argc, char **argv) {
    char errstr[256];
    if (argc < 5) {
        fprintf(stderr, "usage: rdkafka-client RELAY_PORT produce|consume TOPIC COUNT [GROUP SECONDS]\n");
        return 2;
    }
    relay_port = atoi(argv[1]);
    const char *topic = argv[3];
    int count = atoi(argv[4]);
    if (strcmp(argv[2], "produce") == 0) {
        rd_kafka_conf_t *conf = base_conf("rdkafka-producer");
        rd_kafka_conf_set(conf, "message.timeout.ms", "10000", errstr, sizeof errstr);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
        if (!rk) { fprintf(stderr, "%s\n", errstr); return 1; }
        for (int i = 0; i < count; i++) {
            char value[64];
            int n = snprintf(value, sizeof value, "rd-%d", i);
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(value, n), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            rd_kafka_poll(rk, 0);
        }
        rd_kafka_flush(rk, 15000);
        printf("delivered=%d failed=%d error=%s\n", delivered, failed, first_error ? rd_kafka_err2name(first_error) : "none");
        rd_kafka_destroy(rk);
        return 0;
    }
    const char *group = argc > 5 ? argv[5] : "rd-group";
    int seconds = argc > 6 ? atoi(argv[6]) : 20;
    rd_kafka_conf_t *conf = base_conf("rdkafka-consumer");
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "auto.commit.interval.ms", "500", errstr, sizeof errstr);
    rd_kafka_conf_set(conf, "heartbeat.interval.ms", "500", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) { fprintf(stderr, "%s\n", errstr); return 1; }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    int consumed = 0;
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end && consumed < count) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !first_error) first_error = m->err;
        } else consumed++;
        rd_kafka_message_destroy(m);
        if (first_error == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) break;
    }
    /* Keep the group alive a while longer: heartbeats and commits over the same connections. */
    time_t linger = time(NULL) + (seconds > 3 ? 3 : 0);
    while (!first_error && time(NULL) < linger) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m) rd_kafka_message_destroy(m);
    }
    rd_kafka_commit(rk, NULL, 0);
    printf("consumed=%d error=%s\n", consumed, first_error ? rd_kafka_err2name(first_error) : "none");
    fflush(stdout);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
