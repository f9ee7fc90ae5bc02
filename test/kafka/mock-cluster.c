/*
 * librdkafka's mock Kafka cluster as a process of its own: prints its bootstrap servers on
 * the first line of stdout, serves until stdin closes or a signal arrives.
 * usage: mock-cluster BROKERS TOPIC[:PARTITIONS]...
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char errstr[512];
    int brokers = argc > 1 ? atoi(argv[1]) : 1;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "mock-cluster: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers > 0 ? brokers : 1);
    if (!mc) {
        fprintf(stderr, "mock-cluster: cannot create the mock cluster\n");
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        char name[256];
        int partitions = 1;
        const char *colon = strchr(argv[i], ':');
        size_t n = colon ? (size_t)(colon - argv[i]) : strlen(argv[i]);
        if (n >= sizeof name) n = sizeof name - 1;
        memcpy(name, argv[i], n);
        name[n] = 0;
        if (colon) partitions = atoi(colon + 1);
        if (rd_kafka_mock_topic_create(mc, name, partitions, 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "mock-cluster: cannot create topic %s\n", name);
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    char buf[256];
    signal(SIGPIPE, SIG_IGN);
    while (read(0, buf, sizeof buf) > 0) {
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
