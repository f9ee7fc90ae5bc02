# meshaccel build, test and benchmark entry points. `make run` and `make test` are the two
# commands the README opens with; both work on a fresh Debian 12 machine as root.

SHELL := /bin/bash
NODE_BIN := node_modules/.bin
APT_PACKAGES := clang-14 llvm-14 libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config \
                linux-libc-dev nftables iptables iproute2 g++ make python3 openssl \
                librdkafka-dev kcat
NPM_STAMP := node_modules/.meshaccel-installed
XDS_PORT ?= 18000
ADMIN_PORT ?= 18001
# `make test SPEC='dist/test/xds/**/*.test.js'` runs some suites only.
SPEC ?=

.PHONY: all setup deps build ts bpf addon test-addon wasm kafka-mock run serve test test-unit lint format-check clean FORCE \
        bench-xds bench-policy bench-envoy bench-datapath bench-redirect bench-kafka soak-kafka

all: build

# System packages for the BPF programs, the libbpf addon and the redirect tests. Installs only
# what is missing, so a second run costs one dpkg query.
setup:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "meshaccel setup: missing Debian packages: $$missing (run as root or install them)" >&2; exit 1; fi; \
	  echo "meshaccel setup: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: setup $(NPM_STAMP)

# tsc runs only when a TypeScript source changed. When files were added or removed the output
# is rebuilt from scratch, so a deleted test never lingers in dist/ to be run.
TS_SOURCES := $(shell find src test bench examples -name '*.ts' -not -name '*.d.ts' 2>/dev/null | LC_ALL=C sort)
TS_STAMP := dist/.meshaccel-built
TS_LIST := dist/.meshaccel-sources

ts: $(TS_STAMP)

$(TS_LIST): FORCE
	@mkdir -p dist
	@printf '%s\n' $(TS_SOURCES) > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else [ ! -f $@ ] || echo "meshaccel build: sources added or removed, rebuilding dist/"; \
	  find dist -mindepth 1 -not -name '$(notdir $@).new' -delete; mv $@.new $@; fi

$(TS_STAMP): $(TS_LIST) $(TS_SOURCES) tsconfig.json $(NPM_STAMP)
	$(NODE_BIN)/tsc -p tsconfig.json
	@touch $@

bpf: setup
	$(MAKE) -C bpf

# Node's headers ship with Debian's nodejs (/usr/include/node); this network reaches no
# headers download, so point node-gyp at them when present.
NODEDIR := $(shell [ -f /usr/include/node/node.h ] && echo --nodedir=/usr)
ADDON_DIR := src/datapath/native
ADDON_STAMP := $(ADDON_DIR)/build/.meshaccel-built
addon: setup $(ADDON_STAMP)

$(ADDON_STAMP): $(wildcard $(ADDON_DIR)/*.cc) $(ADDON_DIR)/binding.gyp $(NPM_STAMP)
	cd $(ADDON_DIR) && ../../../$(NODE_BIN)/node-gyp rebuild $(NODEDIR) --loglevel=error >/dev/null
	@touch $@

# The test tools' addon (IP_TRANSPARENT listeners, marked connects), which only the redirect
# tests and bench-redirect use.
test-addon: setup $(NPM_STAMP)
	cd test/tools/native && ../../../$(NODE_BIN)/node-gyp rebuild $(NODEDIR) --loglevel=error >/dev/null

# The Kafka proxy-wasm filter (AssemblyScript), shipped in the package.
KAFKA_WASM := wasm/kafka-filter/build/kafka-filter.wasm
$(KAFKA_WASM): $(NPM_STAMP) wasm/kafka-filter/asconfig.json $(wildcard wasm/kafka-filter/assembly/*.ts)
	cd wasm/kafka-filter && ../../$(NODE_BIN)/asc --config asconfig.json
wasm: $(KAFKA_WASM)

# librdkafka's mock cluster as its own process, for the Kafka tests and benchmark, and the
# librdkafka clients steered through the relay by their connect callback (one operation per
# process, and the soak's long-lived producer and consumer group).
KAFKA_MOCK := test/kafka/build/mock-cluster test/kafka/build/rdkafka-client test/kafka/build/rdkafka-soak
test/kafka/build/%: test/kafka/%.c | setup
	mkdir -p $(dir $@)
	cc -O2 -Wall -o $@ $< $$(pkg-config --cflags --libs rdkafka)
kafka-mock: $(KAFKA_MOCK)

build: deps ts bpf addon wasm kafka-mock

# eslint over src, test, bench and examples; the import-cycle check is a test (test/layout).
lint: $(NPM_STAMP)
	$(NODE_BIN)/eslint --max-warnings 0 .

# The formatter's verdict, without rewriting anything (`prettier --write .` to apply).
format-check: $(NPM_STAMP)
	$(NODE_BIN)/prettier --check .

# The control server on its embedded file store with the example policies and workloads.
run serve: build
	exec node bin/meshaccel serve --port $(XDS_PORT) --admin-port $(ADMIN_PORT) --policies examples/policies --workloads examples/workloads

test: build test-addon lint format-check
	SPEC='$(SPEC)' $(NODE_BIN)/mocha --config .mocharc.js

clean:
	rm -rf dist src/datapath/native/build test/tools/native/build wasm/kafka-filter/build test/kafka/build
	-$(MAKE) -C bpf clean

bench-xds: build
	taskset -c 0 node --expose-gc dist/bench/xds/bench-xds.js

# bench-policy runs this tree and, side by side in the same process, main as it was before the
# selector cache and RBAC fragments were reworked (BENCH_POLICY_BASELINE), built once under build/.
BENCH_POLICY_BASELINE ?= aaf9e6b
BENCH_POLICY_BASELINE_DIR := build/bench-baseline-$(BENCH_POLICY_BASELINE)

$(BENCH_POLICY_BASELINE_DIR)/.built: | $(NPM_STAMP)
	rm -rf $(BENCH_POLICY_BASELINE_DIR) && mkdir -p $(BENCH_POLICY_BASELINE_DIR)
	git archive $(BENCH_POLICY_BASELINE) src proto package.json tsconfig.json | tar -x -C $(BENCH_POLICY_BASELINE_DIR)
	cd $(BENCH_POLICY_BASELINE_DIR) && $(CURDIR)/$(NODE_BIN)/tsc -p tsconfig.json
	@touch $@

bench-policy: build $(BENCH_POLICY_BASELINE_DIR)/.built
	node dist/bench/policy/bench-policy.js --baseline $(BENCH_POLICY_BASELINE_DIR)/dist

bench-envoy: build
	node dist/bench/envoy/bench-envoy.js

bench-datapath: build
	bash bench/datapath/run.sh

bench-redirect: build test-addon
	bash bench/redirect/run.sh

# bench-kafka measures the filter alone side by side with BENCH_KAFKA_BASELINE's host and filter
# (main before the hot path was reworked), built once under build/.
BENCH_KAFKA_BASELINE ?= c02b73d
BENCH_KAFKA_BASELINE_DIR := build/bench-kafka-baseline-$(BENCH_KAFKA_BASELINE)

$(BENCH_KAFKA_BASELINE_DIR)/.built: | $(NPM_STAMP)
	rm -rf $(BENCH_KAFKA_BASELINE_DIR) && mkdir -p $(BENCH_KAFKA_BASELINE_DIR)
	git archive $(BENCH_KAFKA_BASELINE) wasm/kafka-filter src/wasm-host/proxy-wasm-host.ts src/wasm-host/webassembly.d.ts | tar -x -C $(BENCH_KAFKA_BASELINE_DIR)
	cd $(BENCH_KAFKA_BASELINE_DIR)/wasm/kafka-filter && $(CURDIR)/$(NODE_BIN)/asc --config asconfig.json
	$(NODE_BIN)/tsc --strict --target es2022 --lib es2022 --module commonjs --types node --outDir $(BENCH_KAFKA_BASELINE_DIR) $(BENCH_KAFKA_BASELINE_DIR)/src/wasm-host/*.ts
	@touch $@

bench-kafka: build $(BENCH_KAFKA_BASELINE_DIR)/.built
	node dist/bench/kafka/bench-kafka.js --baseline $(BENCH_KAFKA_BASELINE_DIR)

# The Kafka soak test for longer than make test's 150 s: make soak-kafka MINUTES=30
MINUTES ?= 10
soak-kafka: build
	SOAK_SECONDS=$$(( $(MINUTES) * 60 )) SPEC='dist/test/kafka/soak.test.js' $(NODE_BIN)/mocha --config .mocharc.js
