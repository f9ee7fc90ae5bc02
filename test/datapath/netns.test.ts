import * as assert from 'assert';
import { kernelSuite, Peer, testPort } from './helpers';

/**
 * The reason the keys carry the netns cookie: two pods using the very same loopback 4-tuple at
 * the same time. Without the cookie the second insert overwrites the first and messages cross
 * between pods.
 */
describe('datapath: two network namespaces with identical loopback 4-tuples (real kernel)', function () {
  const k = kernelSuite({ attach: true });

  it('delivers every message to its own peer and keeps four entries with two netns cookies', async function () {
    const [serverPort, clientPort] = [testPort(), testPort()];
    const nsA = k.env.makeNetns('a');
    const nsB = k.env.makeNetns('b');
    const clients: Peer[] = [];
    for (const ns of [nsA, nsB]) {
      await k.env.server('127.0.0.1', serverPort, { cgroup: k.env.cgroup, netns: ns });
      clients.push(k.env.client('127.0.0.1', serverPort, { cgroup: k.env.cgroup, netns: ns }));
    }
    // The same client port in both namespaces: identical 4-tuples.
    const opened = await Promise.all(clients.map((c) => c.cmd(`open 1 ${clientPort}`)));
    for (const o of opened) assert.ok(o.ok, o.error);
    assert.deepStrictEqual(
      opened.map((o) => o.localPorts![0]),
      [clientPort, clientPort],
    );

    const before = k.env.status().counters!;
    // Both pairs busy at once, with random payloads: any cross-delivery shows as a hash
    // mismatch (or a short read) in one of the two clients.
    for (const size of [1, 64, 4096, 65536, 1 << 20]) {
      const results = await Promise.all(clients.map((c) => c.cmd(`exchange ${size}`)));
      for (const r of results) assert.ok(r.ok, `exchange ${size}: ${r.error ?? `${r.mismatches} mismatches`}`);
    }
    const st = k.env.status();
    const entries = st.sockets.filter((s) => s.localPort === serverPort || s.remotePort === serverPort);
    assert.strictEqual(entries.length, 4, 'four sockhash entries');
    const cookies = new Set(entries.map((e) => e.netnsCookie));
    assert.strictEqual(cookies.size, 2, 'two distinct netns cookies');
    for (const cookie of cookies) {
      const mine = entries.filter((e) => e.netnsCookie === cookie);
      assert.deepStrictEqual(mine.map((e) => `${e.localPort}>${e.remotePort}`).sort(), [`${clientPort}>${serverPort}`, `${serverPort}>${clientPort}`].sort());
    }
    const after = st.counters!;
    assert.ok(after.redirectedMessages - before.redirectedMessages >= 20, 'traffic was redirected, not passed');
    assert.strictEqual(after.misses - before.misses, 0);
  });
});
