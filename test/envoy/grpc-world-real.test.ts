import * as assert from 'node:assert/strict';
import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { promisify } from 'util';
import * as grpc from '@grpc/grpc-js';
import { startControlServer } from '../../src/server/control-server';
import { silentLogger } from '../../src/log';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { tmpDir } from '../policy/helpers';
import { planGrpcWorld, WORLD_TABLE, type GrpcWorldCase, type RunnerReport } from '../helpers/grpc-world';
import { GRPC_HOST } from '../helpers/grpc-world-runner';

/**
 * The table of Cilium semantics (test/trace/fixtures/world, the standalone trace suite's) in gRPC
 * mode. Every case whose destination is a workload is a real call: meshaccel's control server in
 * grpc mode serves the table's world, as it serves gRPC servers other than grpc-js (every address;
 * what grpc-js nodes get: grpc-js-family-real.test.ts), to real XdsServers (@grpc/grpc-js-xds, RBAC
 * on), and a client bound to the case's source address calls the destination's address and port, in a network
 * namespace of its own (test/helpers/grpc-world-runner.ts). Each call's OK / PERMISSION_DENIED
 * must equal trace's verdict over the standalone resources, and trace's verdict over the very
 * Listener the XdsServer is served (gRPC's RBAC engine both times), so trace and enforcement
 * cannot drift apart. Each case whose source is selected on egress expects grpc mode's refusal
 * of that section, with its field path.
 */

const run = promisify(execFile);
const RUNNER = path.join(__dirname, '..', 'helpers', 'grpc-world-runner.js');
const STATUS: Record<number, 'ALLOWED' | 'DENIED'> = { [grpc.status.OK]: 'ALLOWED', [grpc.status.PERMISSION_DENIED]: 'DENIED' };

/** Why the real calls cannot run here, or undefined when they can. */
function cannotRun(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root: the calls run in a network namespace of their own (unshare --net) with the table addresses on its lo';
  try {
    execFileSync('unshare', ['--net', 'true'], { stdio: 'ignore' });
  } catch (err) {
    return `unshare --net fails here (${(err as Error).message})`;
  }
  return undefined;
}

describe('the table of Cilium semantics in gRPC mode: real calls to real XdsServers, trace over the served resources', function () {
  this.timeout(180000);
  const dir = tmpDir('grpc-world');
  const plan = planGrpcWorld(dir, GRPC_HOST);
  const calls = plan.cases.filter((c) => c.call);
  let report: RunnerReport | undefined;

  before(async function () {
    const reason = cannotRun();
    if (reason) {
      this.test?.parent?.tests.forEach((t) => (t.title += ` (skipped: ${reason})`));
      this.skip();
    }
    const planFile = path.join(dir, '..', `${path.basename(dir)}.plan.json`);
    fs.writeFileSync(planFile, JSON.stringify(plan.runner));
    try {
      const { stdout } = await run('unshare', ['--net', '--', process.execPath, RUNNER, planFile], {
        env: { ...process.env, GRPC_XDS_EXPERIMENTAL_RBAC: 'true' },
        timeout: 150000,
        maxBuffer: 16 << 20,
      });
      report = JSON.parse(stdout) as RunnerReport;
    } finally {
      fs.rmSync(planFile, { force: true });
    }
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('makes at least 60 of the cases real calls, each answered, on ACKed Listeners', () => {
    assert.ok(calls.length >= 60, `${calls.length} real-call cases`);
    assert.ok(report);
    assert.equal(report.results.length, calls.length);
    assert.deepEqual(report.unacked, []);
  });

  it("refuses the table's policies as written, at each egress section (the real control server serves nothing)", async () => {
    const egress = plan.refusals.filter((d) => /^spec\.egress(Deny)?$/.test(d.path));
    assert.ok(egress.length > 0, plan.refusals.map(formatDiagnostic).join('\n'));
    assert.deepEqual(plan.refusals.filter((d) => !egress.includes(d)).map(formatDiagnostic), [], 'grpc mode refuses nothing but the egress sections');
    const server = await startControlServer({ directories: [path.dirname(WORLD_TABLE)], mode: 'grpc', host: '127.0.0.1', port: 0, log: silentLogger });
    try {
      assert.match(server.serving(), /^no configuration/);
      assert.deepEqual(server.source.errors().map(formatDiagnostic), plan.refusals.map(formatDiagnostic));
    } finally {
      await server.close();
    }
  });

  const callCase = (c: GrpcWorldCase): void => {
    it(`${c.expected}: ${c.name} (IPv${c.call?.family}, ${c.call?.from} → ${c.call?.to}:${c.call?.port} ${c.call?.path})`, () => {
      const r = report?.results.find((x) => x.id === c.index);
      assert.ok(r, 'no call was made');
      const real = STATUS[r.code];
      assert.ok(real, `the call ended with status ${r.code} (${r.details}), neither OK nor PERMISSION_DENIED`);
      if (real === 'DENIED') assert.equal(r.details, 'Unauthorized RPC rejected');
      assert.equal(real, c.expected, 'the real call vs trace over the standalone resources');
      assert.equal(c.grpcTrace, real, `trace over the grpc-mode Listener vs the real call (${c.grpcTraceDetail})`);
      if (c.sourceEgress.length === 0) {
        assert.equal(c.asWritten, c.table.expect, "the table's verdict of the case as written, in the served world");
        if ((c.table.request?.method ?? 'POST') === 'POST') assert.equal(c.expected, c.table.expect, "the table's verdict");
      }
    });
  };

  const egressCase = (c: GrpcWorldCase): void => {
    it(`refused in grpc mode (the source's egress): ${c.name}`, () => {
      for (const o of c.sourceEgress) {
        const field = `spec.${o.rule?.section}`;
        const d = plan.refusals.find((x) => x.file === o.file && x.path === field && x.subject?.endsWith(` ${o.policy}`));
        assert.ok(d, `no refusal of ${o.policy} ${field} (${o.file}); refusals:\n${plan.refusals.map(formatDiagnostic).join('\n')}`);
        assert.match(d.message, /grpc mode enforces no egress rules/);
      }
    });
  };

  for (const c of plan.cases) {
    if (c.call) callCase(c);
    if (c.sourceEgress.length > 0) egressCase(c);
    if (!c.call && c.sourceEgress.length === 0) {
      it(`nothing to serve or refuse: ${c.name} (an unselected source, no destination workload)`, () => {
        // A proxyless client restricts nothing, which is exactly an unselected source's egress.
        assert.equal(c.table.expect, 'ALLOWED');
      });
    }
  }
});
