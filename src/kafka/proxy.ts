import * as fs from 'fs';
import type { Diagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';
import { ProxyWasmVm, type LogLevel } from '../wasm-host/proxy-wasm-host';
import { startRelay, type Relay } from '../wasm-host/tcp-relay';
import { encodeKafkaFilterConfig, kafkaFilterConfigs, kafkaFilterName, type KafkaFilterConfig } from './filter-config';
import { kafkaFilterWasmPath } from './wasm-path';

export { kafkaFilterWasmPath } from './wasm-path';

export function loadKafkaFilter(log?: (level: LogLevel, message: string) => void): ProxyWasmVm {
  const file = kafkaFilterWasmPath();
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`make wasm\``);
  return ProxyWasmVm.fromFile(file, { log });
}

export type PolicyResult = { ok: true; config: KafkaFilterConfig } | { ok: false; errors: Diagnostic[] | string[] };

/**
 * The Kafka filter configuration of `node`'s port `port` in `direction`, compiled from policy
 * and workload files (or directories). A port without Kafka rules gets a configuration that
 * allows everything: the policy does not restrict it at L7.
 */
export function compileKafkaPort(inputs: readonly string[], node: string, port: number, direction: 'ingress' | 'egress'): PolicyResult {
  const files = inputs.flatMap((p) => (fs.existsSync(p) && fs.statSync(p).isDirectory() ? listYamlFiles(p) : [p]));
  const loaded = loadFiles(files);
  if (loaded.diagnostics.length) return { ok: false, errors: loaded.diagnostics };
  const engine = new PolicyEngine();
  engine.sync(loaded.resources);
  const { conflicts } = engine.commit();
  if (conflicts.length) return { ok: false, errors: conflicts };
  const policy = engine.policyForNode(node);
  if (!policy) return { ok: false, errors: [`no workload is served by node ${node}`] };
  const config = kafkaFilterConfigs(policy).find((c) => c.direction === direction && c.port === port);
  if (config) return { ok: true, config };
  const l7 = policy[direction].find((p) => p.port === port && p.l7 !== undefined);
  if (l7) return { ok: false, errors: [`port ${port} of node ${node} has ${l7.l7} rules, not Kafka rules`] };
  return {
    ok: true,
    config: {
      name: kafkaFilterName(direction, port),
      direction,
      port,
      maxFrameBytes: 100 * 1024 * 1024,
      rules: [{ origin: 'no Kafka rules on this port', anyPeer: true, peers: [], principals: [], kafka: [] }],
    },
  };
}

export interface KafkaProxyOptions {
  listenHost: string;
  listenPort: number;
  upstreamHost: string;
  upstreamPort: number;
  config?: KafkaFilterConfig;
  /** Relay without the filter (for comparison in benchmarks). */
  noFilter?: boolean;
  principal?: string;
  log?: (level: LogLevel, message: string) => void;
}

/** The relay with the Kafka filter, whose configuration can be replaced while connections stay open. */
export class KafkaProxy {
  private constructor(
    readonly vm: ProxyWasmVm,
    readonly relay: Relay,
    private readonly holder: { root: number | undefined },
  ) {}

  static async start(opts: KafkaProxyOptions): Promise<KafkaProxy> {
    const vm = loadKafkaFilter(opts.log);
    const holder: { root: number | undefined } = { root: undefined };
    if (!opts.noFilter) {
      if (!opts.config) throw new Error('KafkaProxy needs a configuration unless noFilter is set');
      holder.root = vm.configure(encodeKafkaFilterConfig(opts.config));
      if (holder.root === undefined) throw new Error('the Kafka filter refused its configuration');
    }
    const relay = await startRelay({
      vm,
      root: () => holder.root,
      listenHost: opts.listenHost,
      listenPort: opts.listenPort,
      upstreamHost: opts.upstreamHost,
      upstreamPort: opts.upstreamPort,
      extraProperties: opts.principal ? { 'connection.uri_san_peer_certificate': opts.principal } : undefined,
    });
    return new KafkaProxy(vm, relay, holder);
  }

  /**
   * A new configuration, as an ECDS update gives Envoy a new filter config: a new root
   * context in the same VM. New connections use it, and because the filter judges every
   * request against the newest configuration of its port, so do the open ones.
   */
  update(config: KafkaFilterConfig): boolean {
    const root = this.vm.configure(encodeKafkaFilterConfig(config));
    if (root === undefined) return false;
    this.holder.root = root;
    return true;
  }

  close(): Promise<void> {
    return this.relay.close();
  }
}
