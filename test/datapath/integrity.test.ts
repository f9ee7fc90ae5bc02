import * as path from 'path';
import * as assert from 'assert';
import * as fs from 'fs';
import { packageRoot } from '../../src/paths';
import { SocketEntry } from '../../src/datapath/bpf/datapath';
import { eventually } from '../helpers/echo-backend';
import { kernelSuite, testPort } from './helpers';

/** Byte-exact delivery under redirection, and connections that outlive attach and detach. */
describe('datapath: stream integrity (real kernel)', function () {
  const k = kernelSuite({ perTest: true });

  it('delivers 1 B to 16 MiB messages intact (sha256 compared)', async function () {
    k.env.attach();
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 1')).ok);
    const before = k.env.status().counters!;
    for (const size of [1, 2, 100, 1460, 4096, 65535, 65536, 65537, 1 << 20, 16 << 20]) {
      const r = await client.cmd(`exchange ${size}`);
      assert.ok(r.ok, `size ${size}: ${r.error ?? 'hash mismatch'}`);
    }
    const after = k.env.status().counters!;
    assert.ok(after.redirectedBytes - before.redirectedBytes > 16 << 20, 'the large messages were redirected');
  });

  it('handles half-close: payload then FIN each way, nothing lost', async function () {
    k.env.attach();
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 5')).ok);
    assert.ok((await client.cmd('exchange 1000')).ok);
    const ours = (): number => k.env.status().sockets.filter((s) => s.localPort === port || s.remotePort === port).length;
    assert.strictEqual(ours(), 10, 'both ends of the five connections are in the sockhash');
    const before = k.env.status().counters!;
    const r = await client.cmd('halfclose 200000');
    assert.ok(r.ok, r.error);
    // The payloads went both ways through redirection, across the half-closed state.
    assert.ok(k.env.status().counters!.redirectedBytes - before.redirectedBytes >= 2 * 5 * 200000, 'the half-close payloads were redirected');
    assert.ok((await client.cmd('close')).ok);
    // Closed sockets leave the map (the kernel unlinks them on close).
    assert.strictEqual(ours(), 0);
  });

  it('serves 200 concurrent connections', async function () {
    k.env.attach();
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 200')).ok);
    assert.strictEqual(k.env.status().sockets.filter((s) => s.localPort === port || s.remotePort === port).length, 400);
    for (const size of [17, 3000, 70000]) {
      const r = await client.cmd(`exchange ${size}`);
      assert.ok(r.ok, `size ${size}: ${r.error ?? `${r.mismatches} mismatches`}`);
    }
  });

  it('keeps a connection opened before attach working (it stays plain TCP)', async function () {
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    const early = await client.cmd('open 1');
    assert.ok((await client.cmd('exchange 100')).ok);
    k.env.attach();
    for (const size of [1, 5000, 1 << 20]) assert.ok((await client.cmd(`exchange ${size}`)).ok, `early connection, size ${size}`);
    let st = k.env.status();
    assert.strictEqual(st.sockets.filter((s) => s.localPort === early.localPorts![0] || s.remotePort === early.localPorts![0]).length, 0);
    assert.strictEqual(st.counters!.redirectedMessages, 0);
    // A connection opened after attach is accelerated, next to the old one.
    const late = await client.cmd('open 1');
    assert.ok((await client.cmd('exchange 4096')).ok);
    st = k.env.status();
    assert.strictEqual(st.sockets.filter((s) => s.localPort === late.localPorts![0] || s.remotePort === late.localPorts![0]).length, 2);
    assert.ok(st.counters!.redirectedMessages >= 2);
  });

  it('keeps live connections working over plain TCP after detach', async function () {
    k.env.attach();
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 10')).ok);
    assert.ok((await client.cmd('exchange 4096')).ok);
    assert.ok(k.env.status().counters!.redirectedMessages >= 20);
    const removed = k.env.detach();
    assert.ok(removed.includes('link_sockops') && removed.includes('prog_sk_msg'), `removed ${removed.join(',')}`);
    assert.ok(!fs.existsSync(k.env.pinDir), 'pin directory removed');
    assert.strictEqual(k.env.status().loaded, false);
    for (const size of [1, 64, 65536, 1 << 20, 4 << 20]) {
      const r = await client.cmd(`exchange ${size}`);
      assert.ok(r.ok, `after detach, size ${size}: ${r.error ?? `${r.mismatches} mismatches`}`);
    }
    const hc = await client.cmd('halfclose 1000');
    assert.ok(hc.ok, `halfclose after detach: ${hc.error ?? `${hc.mismatches} mismatches`}`);
    assert.ok((await client.cmd('close')).ok);
    // New connections after detach are plain TCP and fine too.
    assert.ok((await client.cmd('open 3')).ok);
    const ex = await client.cmd('exchange 3000');
    assert.ok(ex.ok, ex.error);
  });

  it('hands a one-way small-write run to TCP, then out of the sockhash, without losing or reordering bytes', async function () {
    k.env.attach({ bulkStreak: 8, bulkSmallMax: 16384 });
    assert.strictEqual(k.env.status().leaveDelayMs, 0, 'by default a socket leaves as soon as that is safe');
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup, sink: true });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 4')).ok);
    // 4000 separate 1 KiB writes per connection, the sink silent until the FIN: each run is
    // handed to TCP after 8 writes and then leaves the sockhash; the sink's hash proves every
    // byte arrived once and in order across all three paths.
    const r = await client.cmd('sink 1024 4000');
    assert.ok(r.ok, r.error ?? `${r.mismatches} mismatches`);
    const c = k.env.status().counters!;
    assert.strictEqual(c.bulkHandoffs, 4, 'one hand-off per connection');
    assert.ok(c.redirectedMessages >= 4 * 7, 'the first writes of each run were redirected');
    assert.ok(c.passedMessages >= 4, 'writes after the hand-off went over TCP');
    assert.ok(c.socketsLeft >= 4, `handed-off sockets left the sockhash (${c.socketsLeft}; run took ${r.ms} ms)`);
    assert.ok((await client.cmd('close')).ok);
  });

  it('keeps large one-way writes intact whether they stay redirected or are handed to TCP with the reader on another CPU', async function () {
    // A low large-write floor so 256 KiB writes qualify with the reader on another CPU: where
    // the unpinned peers run depends on scheduling, so this checks the bytes on either path and
    // that a hand-off, if any, happened once per direction.
    k.env.attach({ bulkStreak: 4, bulkLargeMin: 65536 });
    assert.strictEqual(k.env.status().bulkLargeMin, 65536);
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup, sink: true });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 2')).ok);
    const before = k.env.status().counters!;
    const r = await client.cmd('sink 262144 96');
    assert.ok(r.ok, r.error ?? `${r.mismatches} mismatches`);
    const after = k.env.status().counters!;
    assert.ok(after.bulkHandoffs - before.bulkHandoffs <= 2, `at most one hand-off per connection (${JSON.stringify(after)})`);
    // A window of bulkStreak (4) sends hands off on its last send, which goes to TCP: when the
    // first window already reads the reader on another CPU, 3 writes per connection were redirected.
    assert.ok(after.redirectedMessages - before.redirectedMessages >= 2 * 3, `the first writes were redirected (${JSON.stringify(after)})`);
    assert.ok((await client.cmd('close')).ok);
  });

  it('keeps both directions intact when both ends send at once across hand-offs and leaves', async function () {
    // Small pipelined writes against an echo server: the echoes break some one-way windows and
    // not others, so hand-offs happen while the peer is itself sending, which is when a socket
    // leaving the sockhash too early would cost the peer an EPIPE or lose redirected bytes.
    k.env.attach({ bulkStreak: 4 });
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 16')).ok);
    const before = k.env.status().counters!;
    const r = await client.cmd('pipeline 2048 1500', 120000);
    assert.ok(r.ok, r.error ?? `${r.mismatches} mismatches`);
    const after = k.env.status().counters!;
    assert.ok(after.redirectedMessages - before.redirectedMessages > 0);
    assert.ok(after.bulkHandoffs - before.bulkHandoffs > 0, `some runs were handed off (${JSON.stringify(after)})`);
    assert.ok((await client.cmd('close')).ok);
  });

  it('a handed-off socket stays in the sockhash while its peer is inside a send, and leaves once that send is done', async function () {
    // The peer's send is a blocking sendall the socket does not read yet, so it sits in the
    // kernel holding the peer's psock: exactly the state in which a redirect it decided before
    // the hand-off could still be on its way. The 300 ms floor keeps the socket from leaving
    // before that send has started.
    k.env.attach({ bulkStreak: 8, leaveDelayMs: 300 });
    const port = testPort();
    const pair = k.env.spawnProgram(['python3', path.join(packageRoot(), 'test/datapath/blocked_sender.py'), String(port)], { cgroup: k.env.cgroup });
    const { client_port: clientPort } = await pair.json<{ client_port: number }>(20000);
    const clientEnd = (): SocketEntry | undefined => k.env.status().sockets.find((s) => s.localPort === clientPort && s.remotePort === port);
    assert.ok(clientEnd(), 'both ends start in the sockhash');
    const before = k.env.status().counters!;
    assert.ok((await pair.cmd('handoff 32')).ok);
    assert.strictEqual(k.env.status().counters!.bulkHandoffs - before.bulkHandoffs, 1);
    const blocked = await pair.cmd<{ ok: boolean; blocked: boolean }>('block 16777216');
    assert.ok(blocked.ok && blocked.blocked, 'the server is blocked in its send');
    // Past the floor, each poke the client end sends is ACKed, and its RTT callback runs the
    // leave check, which must wait on the busy peer.
    await eventually(
      'the leave check waits on the peer',
      async () => ((await pair.cmd('poke')).ok ? k.env.status().counters!.leaveWaits - before.leaveWaits : -1),
      (n) => n > 0,
      10000,
    );
    assert.ok(clientEnd()?.tcpOnly, 'the client end is TCP-only and still in the sockhash');
    const drained = await pair.cmd('drain', 60000);
    assert.ok(drained.ok, drained.error ?? 'the 16 MiB arrived intact');
    assert.ok((await pair.cmd('ping')).ok);
    await eventually(
      'the client end leaves once the send is done',
      async () => (clientEnd() ? 1 : 0) + ((await pair.cmd('ping')).ok ? 0 : 10),
      (n) => n === 0,
      10000,
    );
    assert.ok((await pair.cmd('quit')).ok);
  });

  it('with leaving turned off, handed-off sockets stay in the sockhash and pass every write to TCP, in order', async function () {
    k.env.attach({ bulkStreak: 8, bulkSmallMax: 16384, leaveDelayMs: 'never' });
    assert.strictEqual(k.env.status().leaveDelayMs, 'never');
    const port = testPort();
    await k.env.server('127.0.0.1', port, { cgroup: k.env.cgroup, sink: true });
    const client = k.env.client('127.0.0.1', port, { cgroup: k.env.cgroup });
    assert.ok((await client.cmd('open 2')).ok);
    const before = k.env.status().counters!;
    const r = await client.cmd('sink 1024 2000');
    assert.ok(r.ok, r.error ?? `${r.mismatches} mismatches`);
    const after = k.env.status().counters!;
    assert.strictEqual(after.bulkHandoffs - before.bulkHandoffs, 2);
    assert.ok(after.passedMessages - before.passedMessages >= 2 * 1900, 'the rest of each run went over TCP');
    assert.strictEqual(after.socketsLeft - before.socketsLeft, 0, 'no socket left the sockhash');
    assert.ok((await client.cmd('close')).ok);
  });
});
