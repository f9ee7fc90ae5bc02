import { execFileSync } from 'child_process';
import * as fs from 'fs';
import type * as grpc from '@grpc/grpc-js';
import { startControlServer, type RunningControlServer } from '../../src/server/control-server';
import { silentLogger } from '../../src/log';
import { TypeUrl } from '../../src/resource/type-urls';
import { callFrom, eventually } from './grpc-shop';
import { startShopXdsServer } from './grpc-xds-server';
import type { CallResult, PlannedCall, RunnerPlan, RunnerReport } from './grpc-world';

/**
 * Runs a grpc-world plan inside a network namespace of its own (`unshare --net`), so that every
 * address of the plan can sit on that namespace's lo (some of the table's are this machine's
 * real network): meshaccel's control server in grpc mode serves the world's files, real
 * XdsServers bind each destination proxy's ports, and each case is one real call from its
 * source address. Prints a RunnerReport as JSON.
 */

/** The host the XdsServers bind: grpc-js-xds 1.14 listens on [::] whatever host it is given. */
export const GRPC_HOST = '::';

/** Rounds of servers (node → ports): in one round each port is bound by one server only. */
function rounds(calls: readonly PlannedCall[]): { servers: Map<string, number[]>; calls: PlannedCall[]; ports: Set<number> }[] {
  const out: { servers: Map<string, number[]>; calls: PlannedCall[]; ports: Set<number> }[] = [];
  for (const c of calls) {
    let r = out.find((x) => x.servers.get(c.node)?.includes(c.port) || !x.ports.has(c.port));
    if (!r) {
      r = { servers: new Map(), calls: [], ports: new Set() };
      out.push(r);
    }
    const ports = r.servers.get(c.node) ?? [];
    if (!ports.includes(c.port)) ports.push(c.port);
    r.servers.set(c.node, ports);
    r.ports.add(c.port);
    r.calls.push(c);
  }
  return out;
}

function addAddresses(calls: readonly PlannedCall[]): void {
  const addresses = [...new Set(calls.flatMap((c) => [c.from, c.to]))];
  const batch = ['link set lo up', ...addresses.map((a) => (a.includes(':') ? `addr add ${a}/128 dev lo nodad` : `addr add ${a}/32 dev lo`))];
  execFileSync('ip', ['-batch', '-'], { input: batch.join('\n') + '\n' });
}

/**
 * Whether `node` ACKed its Listeners and NACKed none. Per node, not per stream: an earlier
 * round's XdsServer of the same node may still hold its ADS stream, so versions are not compared.
 */
function listenersAcked(server: RunningControlServer, node: string): boolean {
  const lds = server.xds.controlPlane.status.get(node)?.types.find((t) => t.typeUrl === TypeUrl.Listener);
  return lds?.ackedVersion !== undefined && lds.lastNack === undefined;
}

async function run(plan: RunnerPlan): Promise<RunnerReport> {
  const startedAt = Date.now();
  addAddresses(plan.calls);
  const control = await startControlServer({
    directories: [plan.dir],
    mode: 'grpc',
    host: '127.0.0.1',
    port: 0,
    grpcServerHost: plan.grpcHost,
    servedPorts: plan.servedPorts,
    // The table's semantics as grpc-go/java servers are served them (see grpc-world.ts).
    grpcServerImplementation: 'other',
    log: silentLogger,
  });
  const bind = (port: number): string => (plan.grpcHost.includes(':') ? `[${plan.grpcHost}]:${port}` : `${plan.grpcHost}:${port}`);
  const results: CallResult[] = [];
  const unacked = new Set<string>();
  const planned = rounds(plan.calls);
  let servers = 0;
  try {
    for (const round of planned) {
      const paths = [...new Set(round.calls.map((c) => c.path))];
      const started: grpc.Server[] = [];
      try {
        await Promise.all(
          [...round.servers].map(async ([node, ports]) => {
            started.push(await startShopXdsServer({ xdsPort: control.xds.port, nodeId: node, paths, binds: ports.map(bind) }));
          }),
        );
        servers += started.length;
        for (const node of round.servers.keys())
          await eventually(`${node} ACKs its Listeners`, async () => listenersAcked(control, node), 5000).catch(() => unacked.add(node));
        const answers = await Promise.all(
          round.calls.map(async (c): Promise<CallResult> => {
            try {
              return { id: c.id, ...(await callFrom({ localAddress: c.from, host: c.to, port: c.port, path: c.path, authority: c.authority })) };
            } catch (err) {
              return { id: c.id, code: -1, details: (err as Error).message };
            }
          }),
        );
        results.push(...answers);
      } finally {
        for (const s of started) s.forceShutdown();
      }
    }
  } finally {
    await control.close();
  }
  return { results, rounds: planned.length, servers, ms: Date.now() - startedAt, unacked: [...unacked] };
}

if (require.main === module) {
  const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as RunnerPlan;
  run(plan).then(
    (report) => {
      process.stdout.write(JSON.stringify(report) + '\n');
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
