import * as fs from 'fs';
import type { Command } from './command';
import { optionList, optionValue, parseArgs, parsePort, UsageError, type OptionSpec } from './args';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics';

const PROXY_SPEC: Record<string, OptionSpec> = {
  policy: { value: true, repeated: true, description: 'policy and workload YAML files or directories (watched)' },
  node: { value: true, description: 'xDS node id of the proxy whose policy applies' },
  listen: { value: true, description: 'HOST:PORT to accept Kafka clients on' },
  upstream: { value: true, description: 'HOST:PORT of the Kafka broker' },
  port: { value: true, description: 'policy port (default: the upstream port)' },
  direction: { value: true, description: 'ingress (default) or egress' },
  principal: { value: true, description: 'peer identity to present to the filter (URI SAN, spiffe://...)' },
  help: { description: 'show this help' },
};

function splitHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]*)\]?:([0-9]+)$/.exec(text);
  if (!m) throw new UsageError(`--${what} must be HOST:PORT`);
  return { host: m[1], port: parsePort(m[2], `--${what}`) };
}

function describe(errors: Diagnostic[] | string[]): string[] {
  return errors.map((e) => (typeof e === 'string' ? e : formatDiagnostic(e)));
}

async function proxy(argv: string[]): Promise<number> {
  const args = parseArgs(argv, PROXY_SPEC, {
    command: 'kafka proxy --policy DIR --node ID --listen HOST:PORT --upstream HOST:PORT',
    summary: 'Relay Kafka through the Kafka filter (.wasm) on a built-in proxy-wasm host. A test host, not a data plane.',
  });
  const inputs = optionList(args, 'policy');
  const node = optionValue(args, 'node');
  const listen = optionValue(args, 'listen');
  const upstreamText = optionValue(args, 'upstream');
  if (!inputs.length || !node || !listen || !upstreamText) throw new UsageError('kafka proxy needs --policy, --node, --listen and --upstream');
  const direction = optionValue(args, 'direction') ?? 'ingress';
  if (direction !== 'ingress' && direction !== 'egress') throw new UsageError('--direction must be ingress or egress');
  const at = splitHostPort(listen, 'listen');
  const upstream = splitHostPort(upstreamText, 'upstream');
  const portText = optionValue(args, 'port');
  const port = portText === undefined ? upstream.port : parsePort(portText, '--port');
  const { compileKafkaPort, KafkaProxy } = await import('../kafka/proxy');
  const first = compileKafkaPort(inputs, node, port, direction);
  if (!first.ok) {
    for (const line of describe(first.errors)) console.error(line);
    return 1;
  }
  const proxy = await KafkaProxy.start({
    listenHost: at.host,
    listenPort: at.port,
    upstreamHost: upstream.host,
    upstreamPort: upstream.port,
    config: first.config,
    principal: optionValue(args, 'principal'),
  });
  console.log(
    `kafka proxy (test host, not a data plane): ${at.host}:${proxy.relay.address.port} -> ${upstream.host}:${upstream.port}, ${first.config.name}, ${first.config.rules.length} rules`,
  );
  let timer: NodeJS.Timeout | undefined;
  const reload = (): void => {
    const next = compileKafkaPort(inputs, node, port, direction);
    if (!next.ok) {
      for (const line of describe(next.errors)) console.error(line);
      console.error('kafka proxy: policy not applied; the last good policy keeps serving');
      return;
    }
    if (proxy.update(next.config)) console.log(`kafka proxy: policy reloaded (${next.config.rules.length} rules), applies to open connections too`);
  };
  const watchers = inputs
    .filter((p) => fs.existsSync(p))
    .map((p) =>
      fs.watch(p, { recursive: false }, () => {
        clearTimeout(timer);
        timer = setTimeout(reload, 100);
      }),
    );
  process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  watchers.forEach((w) => w.close());
  const counters = [...proxy.vm.counters].map(([k, v]) => `${k}=${v}`).join(' ');
  console.log(`kafka proxy: stopping (${counters})`);
  await proxy.close();
  return 0;
}

export const command: Command = {
  summary: 'run the Kafka filter on a test host (kafka proxy)',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'proxy') return proxy(rest);
    if (sub === undefined || sub === '--help' || sub === 'help') {
      console.log(
        'usage: meshaccel kafka proxy --policy DIR --node ID --listen HOST:PORT --upstream HOST:PORT\n\n  proxy   relay Kafka through the Kafka filter on a built-in proxy-wasm host (a test host, not a data plane)',
      );
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown kafka subcommand "${sub}" (expected proxy)`);
  },
};
