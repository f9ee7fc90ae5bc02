import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { SpawnSyncReturns, spawnSync } from 'child_process';
import * as os from 'os';
import { kernelSuite, testPort } from './helpers';
import { loadNative } from '../../src/datapath/bpf/native';
import { preflight } from '../../src/datapath/bpf/preflight';
import { packageRoot } from '../../src/paths';

const CLI = path.join(packageRoot(), 'bin/meshaccel');

function cli(args: string[], asUser?: number): { code: number | null; stdout: string; stderr: string } {
  const cmd =
    asUser === undefined
      ? [process.execPath, CLI, ...args]
      : ['setpriv', `--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', process.execPath, CLI, ...args];
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('datapath: preflight (no kernel needed)', function () {
  it('names missing BPF objects and a missing cgroup', function () {
    const reqs = preflight({ cgroup: '/nonexistent/cgroup', objects: { sockops: '/nonexistent/sockops.o', skMsg: '/nonexistent/sk_msg.o' } });
    const objects = reqs.find((r) => r.name === 'objects');
    assert.ok(objects && !objects.ok && /make bpf/.test(objects.detail) && objects.detail.includes('/nonexistent/sockops.o'));
    const cg = reqs.find((r) => r.name === 'cgroup-v2');
    assert.ok(cg && !cg.ok && cg.detail.includes('/nonexistent/cgroup') && /does not exist/.test(cg.detail));
  });

  it('names a missing addon', function () {
    const reqs = preflight({ addon: '/nonexistent/meshaccel_bpf.node' });
    const addon = reqs.find((r) => r.name === 'addon');
    assert.ok(addon && !addon.ok);
    assert.match(addon.detail, /\/nonexistent\/meshaccel_bpf.node is missing \(run `make addon`\)/);
  });
});

describe('datapath: load, adopt, detach and the CLI (real kernel)', function () {
  const k = kernelSuite();

  it('adopts the pinned programs on a second start instead of loading twice', function () {
    const first = k.env.attach();
    assert.strictEqual(first.adopted, false);
    assert.strictEqual(first.alreadyAttached, false);
    const ids = k.env.status().programs;
    const second = k.env.attach();
    assert.strictEqual(second.adopted, true);
    assert.strictEqual(second.alreadyAttached, true);
    assert.strictEqual(second.linkId, first.linkId);
    const again = k.env.status();
    assert.deepStrictEqual([again.programs.sockops?.id, again.programs.skMsg?.id], [ids.sockops?.id, ids.skMsg?.id]);
    assert.strictEqual(again.cgroup?.path, k.env.cgroup);
    assert.deepStrictEqual(again.skMsgAttachedIds, [ids.skMsg?.id]);
  });

  it('replaces pinned programs of another build in place (link and sockhash switched), then adopts them', async function () {
    // Another build of the same source: -Os instead of -O2 gives other instructions, so other
    // program tags, over the same maps.
    const clang = ['clang-14', 'clang'].find((c) => spawnSync(c, ['--version']).status === 0);
    if (!clang) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-build-'));
    const objects = { sockops: path.join(dir, 'sockops.o'), skMsg: path.join(dir, 'sk_msg.o') };
    for (const [src, out] of [
      ['sockops', objects.sockops],
      ['sk_msg', objects.skMsg],
    ] as const) {
      const r: SpawnSyncReturns<string> = spawnSync(
        clang as string,
        [
          '-Os',
          '-g',
          '-target',
          'bpf',
          '-mcpu=v3',
          '-I/usr/include/x86_64-linux-gnu',
          `-I${packageRoot()}/bpf/include`,
          '-c',
          `${packageRoot()}/bpf/${src}.bpf.c`,
          '-o',
          out,
        ],
        { encoding: 'utf8' },
      );
      assert.strictEqual(r.status, 0, r.stderr);
    }
    try {
      k.env.attach();
      const old = k.env.status();
      const up = k.env.attach({ objects });
      assert.deepStrictEqual([up.adopted, up.upgraded, up.alreadyAttached, up.linkId], [false, true, true, old.cgroup?.linkId]);
      const now = k.env.status();
      assert.notStrictEqual(now.programs.sockops?.id, old.programs.sockops?.id);
      assert.notStrictEqual(now.programs.skMsg?.id, old.programs.skMsg?.id);
      assert.deepStrictEqual(now.skMsgAttachedIds, [now.programs.skMsg?.id], 'the sockhash runs the new sk_msg program alone');
      assert.strictEqual(loadNative().status(k.env.pinDir, 0).link?.progId, now.programs.sockops?.id, 'the cgroup link runs the new sockops program');
      // New connections go through the new programs (the only ones on the link and the sockhash).
      const redirectedBefore = now.counters!.redirectedMessages;
      const port = testPort();
      await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
      const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
      assert.ok((await client.cmd('open 1')).ok);
      assert.ok((await client.cmd('exchange 4096')).ok);
      assert.ok(k.env.status().counters!.redirectedMessages - redirectedBefore >= 2, 'the exchange was redirected');
      // The next start of the same build adopts what is pinned.
      const again = k.env.attach({ objects });
      assert.deepStrictEqual([again.adopted, again.upgraded], [true, false]);
      assert.strictEqual(k.env.status().programs.sockops?.id, now.programs.sockops?.id);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to move an attachment to another cgroup without a detach', function () {
    const other = k.env.makeCgroup(`${k.env.cgroup}-other`);
    assert.throws(() => k.env.attach({ cgroup: other }), /already attached/);
  });

  it('reports status through the CLI as JSON', function () {
    const r = cli(['datapath', 'status', '--pin-dir', k.env.pinDir, '--json']);
    assert.strictEqual(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { attached: boolean; mode: string; cgroup: { path: string } };
    assert.strictEqual(s.attached, true);
    assert.strictEqual(s.mode, 'all');
    assert.strictEqual(s.cgroup.path, k.env.cgroup);
  });

  it('detaches through the CLI, removing every pin; a second detach is a no-op', function () {
    const r = cli(['datapath', 'detach', '--pin-dir', k.env.pinDir]);
    assert.strictEqual(r.code, 0, r.stderr);
    assert.match(r.stdout, /detached/);
    assert.ok(!fs.existsSync(k.env.pinDir));
    const again = cli(['datapath', 'detach', '--pin-dir', k.env.pinDir]);
    assert.strictEqual(again.code, 0);
    assert.match(again.stdout, /not attached/);
    const st = cli(['datapath', 'status', '--pin-dir', k.env.pinDir]);
    assert.match(st.stdout, /nothing loaded/);
  });

  it('exits 1 naming the missing cgroup v2 directory', function () {
    const r = cli(['datapath', 'attach', '--pin-dir', k.env.pinDir, '--cgroup', '/sys/fs/cgroup/unified/meshaccel-does-not-exist']);
    assert.strictEqual(r.code, 1);
    assert.match(r.stderr, /cgroup-v2: no cgroup v2 at \/sys\/fs\/cgroup\/unified\/meshaccel-does-not-exist/);
    assert.ok(!fs.existsSync(k.env.pinDir), 'nothing was loaded');
  });

  it('exits 1 naming root and bpf() when run unprivileged', function () {
    if (spawnSync('setpriv', ['--version']).status !== 0) {
      console.log('    skipping: setpriv (util-linux) not installed');
      this.skip();
    }
    const r = cli(['datapath', 'attach', '--pin-dir', k.env.pinDir, '--cgroup', k.env.cgroup], 65534);
    assert.strictEqual(r.code, 1, r.stderr);
    assert.match(r.stderr, /root: not root \(uid 65534\)/);
    assert.match(r.stderr, /bpf-syscall: bpf\(\) syscall unavailable/);
  });

  it('rejects bad usage with exit 2', function () {
    assert.strictEqual(cli(['datapath', 'attach', '--ports', '70000']).code, 2);
    assert.strictEqual(cli(['datapath', 'frobnicate']).code, 2);
    const soon = cli(['datapath', 'attach', '--leave-delay-ms', 'soon']);
    assert.strictEqual(soon.code, 2);
    assert.match(soon.stderr, /--leave-delay-ms \(or never\): "soon" is not a non-negative integer/);
  });
});
