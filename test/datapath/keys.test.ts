import * as assert from 'assert';
import { execFileSync } from 'child_process';
import { kernelSuite, testPort } from './helpers';
import { eventually } from '../helpers/echo-backend';
import type { Counters } from '../../src/datapath/bpf/abi';
import type { SocketEntry } from '../../src/datapath/bpf/datapath';

/** Socket keys as the programs build them: byte order, families, netns, misses, ports mode. */
describe('datapath: sockhash keys and redirection (real kernel)', function () {
  const k = kernelSuite({ attach: true });

  afterEach(async function () {
    if (k.env) await k.env.killPeers();
  });

  const counters = (): Counters => {
    const c = k.env.status().counters;
    assert.ok(c, 'counters readable');
    return c;
  };
  const entriesFor = (port: number): SocketEntry[] => k.env.status().sockets.filter((s) => s.localPort === port || s.remotePort === port);

  it('stores both ends of an IPv4 pair with host-order ports, swapped, under one netns cookie', async function () {
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    const opened = await client.cmd('open 1');
    assert.ok(opened.ok, opened.error);
    const local = opened.localPorts![0];
    const before = counters();
    const ex = await client.cmd('exchange 100');
    assert.ok(ex.ok, ex.error);
    const after = counters();

    const entries = entriesFor(port);
    assert.strictEqual(
      entries.length,
      2,
      JSON.stringify(entries, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)),
    );
    const c = entries.find((e) => e.localPort === local);
    const s = entries.find((e) => e.localPort === port);
    assert.ok(c && s, 'client and server ends present');
    assert.deepStrictEqual([c.remotePort, s.remotePort], [port, local]);
    assert.deepStrictEqual([c.localAddress, c.remoteAddress, c.family], ['127.0.0.1', '127.0.0.1', 4]);
    assert.strictEqual(c.netnsCookie, s.netnsCookie);
    assert.ok(c.netnsCookie > 0n);
    assert.notStrictEqual(c.socketCookie, s.socketCookie);
    // One request and one echo, both redirected; nothing passed to TCP.
    assert.ok(after.redirectedMessages - before.redirectedMessages >= 2, 'both directions redirected');
    assert.ok(after.redirectedBytes - before.redirectedBytes >= 200);
    assert.strictEqual(after.misses - before.misses, 0);
    assert.strictEqual(after.passedMessages - before.passedMessages, 0);
  });

  it('keys IPv6 ::1 pairs as AF_INET6', async function () {
    const port = testPort();
    await k.env.server('::1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('::1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 1')).ok);
    const before = counters();
    assert.ok((await client.cmd('exchange 5000')).ok);
    const entries = entriesFor(port);
    assert.strictEqual(entries.length, 2);
    for (const e of entries) assert.deepStrictEqual([e.family, e.localAddress, e.remoteAddress], [6, '::1', '::1']);
    assert.ok(counters().redirectedMessages - before.redirectedMessages >= 2);
  });

  it('normalises a dual-stack listener (::ffff:127.0.0.1) to the IPv4 key of its client', async function () {
    const port = testPort();
    await k.env.server('::', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 1')).ok);
    const before = counters();
    assert.ok((await client.cmd('exchange 64')).ok);
    const entries = entriesFor(port);
    assert.strictEqual(entries.length, 2);
    for (const e of entries) assert.strictEqual(e.family, 4);
    const after = counters();
    assert.ok(after.redirectedMessages - before.redirectedMessages >= 2);
    assert.strictEqual(after.misses - before.misses, 0);
  });

  it('passes to TCP when the peer is outside the cgroup (server outside, client inside), then leaves the sockhash', async function () {
    const port = testPort();
    await k.env.server('127.0.0.1', port); // not in the cgroup
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    const opened = await client.cmd('open 1');
    const before = counters();
    for (const size of [1, 4096, 1 << 20]) assert.ok((await client.cmd(`exchange ${size}`)).ok, `exchange ${size}`);
    const after = counters();
    assert.strictEqual(after.socketsInserted - before.socketsInserted, 0, 'only the client end was inserted, at open');
    assert.ok(opened.localPorts!.length === 1);
    assert.strictEqual(after.misses - before.misses, 1, 'one miss pins the client end to TCP');
    assert.strictEqual(after.redirectedMessages - before.redirectedMessages, 0);
    // With no peer that could redirect into it and nothing queued, the TCP-only end leaves the
    // sockhash on the next ACK, and so gets TCP's own send path back.
    await eventually(
      'the client end leaves the sockhash',
      async () => entriesFor(port).length,
      (n) => n === 0,
      5000,
    );
    assert.strictEqual(counters().socketsLeft - before.socketsLeft, 1);
  });

  it('passes to TCP when the client is outside the cgroup (server inside)', async function () {
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port);
    assert.ok((await client.cmd('open 2')).ok);
    const before = counters();
    for (const size of [10, 70000]) assert.ok((await client.cmd(`exchange ${size}`)).ok);
    const after = counters();
    assert.strictEqual(after.redirectedMessages - before.redirectedMessages, 0);
    assert.strictEqual(after.misses - before.misses, 2, 'one miss per accepted server socket');
    await eventually(
      'both server ends leave the sockhash',
      async () => entriesFor(port).length,
      (n) => n === 0,
      5000,
    );
    assert.strictEqual(counters().socketsLeft - before.socketsLeft, 2);
  });

  it('leaves non-loopback traffic alone (two namespaces over a veth pair, both in the cgroup)', async function () {
    const [nsA, nsB] = [k.env.makeNetns('va'), k.env.makeNetns('vb')];
    execFileSync('ip', ['-n', nsA, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', nsB]);
    execFileSync('ip', ['-n', nsA, 'addr', 'add', '10.77.0.1/24', 'dev', 'va']);
    execFileSync('ip', ['-n', nsB, 'addr', 'add', '10.77.0.2/24', 'dev', 'vb']);
    execFileSync('ip', ['-n', nsA, 'link', 'set', 'va', 'up']);
    execFileSync('ip', ['-n', nsB, 'link', 'set', 'vb', 'up']);
    const port = testPort();
    await k.env.server('10.77.0.1', port, { cgroup: k.env.cgroup, netns: nsA });
    const client = k.env.client('10.77.0.1', port, { cgroup: k.env.cgroup, netns: nsB });
    const before = counters();
    const opened = await client.cmd('open 3');
    assert.ok(opened.ok, opened.error);
    for (const size of [1, 65536, 1 << 20]) assert.ok((await client.cmd(`exchange ${size}`)).ok);
    const after = counters();
    assert.strictEqual(entriesFor(port).length, 0);
    assert.strictEqual(after.socketsInserted - before.socketsInserted, 0);
    assert.strictEqual(after.redirectedMessages - before.redirectedMessages, 0);
  });

  it('in ports mode inserts only pairs using a configured port', async function () {
    const [pOn, pOff] = [testPort(), testPort()];
    try {
      const r = k.env.attach({ ports: [pOn] });
      assert.strictEqual(r.mode, 'ports');
      assert.ok(r.adopted && r.alreadyAttached, 'second attach adopts and only reconfigures');
      assert.deepStrictEqual(k.env.status().ports, [pOn]);
      await k.env.server('127.0.0.1', pOn, { cgroup: k.env.cgroup });
      await k.env.server('127.0.0.1', pOff, { cgroup: k.env.cgroup });
      const a = k.env.client('127.0.0.1', pOn, { cgroup: k.env.cgroup });
      const b = k.env.client('127.0.0.1', pOff, { cgroup: k.env.cgroup });
      assert.ok((await a.cmd('open 1')).ok && (await b.cmd('open 1')).ok);
      assert.ok((await a.cmd('exchange 300')).ok && (await b.cmd('exchange 300')).ok);
      assert.strictEqual(entriesFor(pOn).length, 2);
      assert.strictEqual(entriesFor(pOff).length, 0);
    } finally {
      k.env.attach();
    }
    assert.deepStrictEqual(k.env.status().ports, []);
    assert.strictEqual(k.env.status().mode, 'all');
  });
});
