/**
 * TPROXY capture on a real kernel, in namespaces the test creates (see fixtures/netns.ts), for
 * both modes: nftables tproxy and the tc program calling bpf_sk_assign. Requires root, nft,
 * iproute2 (+ tc, bpftool, clang for bpf mode); skips with the reason otherwise.
 */
import { strict as assert } from 'assert';
import { applyRedirect, redirectStatus, removeRedirect } from '../../src/datapath/redirect';
import { missingPrerequisites } from '../../src/datapath/redirect/preflight';
import { runIn, runRawIn } from '../../src/datapath/redirect/exec';
import { readState } from '../../src/datapath/redirect/state';
import type { RedirectConfig } from '../../src/net/capture-config';
import { clientFrom, createTopology, destroyTopology, startInNetns, type NsProcess, type Topology } from './fixtures/netns';

const PROXY_MARK = 0x539;
const PROXY_UID = 4242;

function config(over: Partial<RedirectConfig> = {}): Partial<RedirectConfig> {
  return {
    inboundProxyPort: 15006,
    outboundProxyPort: 15001,
    proxyMark: PROXY_MARK,
    proxyUid: PROXY_UID,
    excludeInboundPorts: [15000, 15001, 15006, 15020, 15021, 15090, 9090],
    excludeInboundCidrs: ['10.99.0.3/32'],
    excludeOutboundPorts: [9091],
    excludeOutboundCidrs: ['10.99.0.4/32', 'fd99::4/128'],
    ...over,
  };
}

for (const mode of ['nft', 'bpf'] as const) {
  describe(`redirect capture (${mode} mode)`, function () {
    let topo: Topology | undefined;
    const procs: NsProcess[] = [];
    let proxy: NsProcess | undefined;

    before(async function () {
      const missing = await missingPrerequisites(mode);
      if (missing.length > 0) {
        console.log(`      skipping redirect ${mode} tests: ${missing.join('; ')}`);
        this.skip();
      }
      topo = await createTopology(mode === 'nft' ? 'n' : 'b', ['10.99.0.3', '10.99.0.4']);
      await runIn({ netns: topo.b }, ['ip', '-6', 'addr', 'add', 'fd99::4/64', 'dev', 'b0', 'nodad']);
      procs.push(await startInNetns(topo.a, ['server', 'a', '8080', '8081', '9090']));
      procs.push(await startInNetns(topo.b, ['server', 'b', '8080', '9091']));
      proxy = await startInNetns(topo.a, ['proxy', '15006', '15001', String(PROXY_MARK), '10.99.0.,fd99::']);
      procs.push(proxy);
      await applyRedirect(config(), { netns: topo.a, mode });
    });

    after(async function () {
      for (const p of procs) await p.stop();
      if (topo) {
        await removeRedirect({ netns: topo.a }).catch((err: Error) => console.log(`      cleanup: ${err.message}`));
        await destroyTopology(topo);
      }
    });

    const A = (): string => topo!.a;
    const B = (): string => topo!.b;

    it('captures inbound TCP to the workload address; the proxy sees the original destination', async () => {
      const r = await clientFrom(B(), '10.99.0.1', 8080);
      assert.deepEqual(r, { ok: true, reply: 'proxy-in:10.99.0.1:8080:10.99.0.2' });
    });

    it('captures inbound TCP to an address that exists nowhere', async () => {
      const r = await clientFrom(B(), '198.18.0.10', 8080);
      assert.deepEqual(r, { ok: true, reply: 'proxy-in:198.18.0.10:8080:10.99.0.2' });
    });

    it('leaves excluded inbound ports to the workload', async () => {
      const r = await clientFrom(B(), '10.99.0.1', 9090);
      assert.deepEqual(r, { ok: true, reply: 'server:a:10.99.0.1:9090:10.99.0.2' });
    });

    it('leaves clients from excluded inbound CIDRs to the workload', async () => {
      const r = await clientFrom(B(), '10.99.0.1', 8080, { local: '10.99.0.3' });
      assert.deepEqual(r, { ok: true, reply: 'server:a:10.99.0.1:8080:10.99.0.3' });
    });

    it('captures outbound TCP; the proxy relays with SO_MARK and its upstream is not captured again', async () => {
      const before = proxy!.events.filter((e) => e.event === 'outbound').length;
      const r = await clientFrom(A(), '10.99.0.2', 8080);
      assert.deepEqual(r, { ok: true, reply: 'via-proxy-out:10.99.0.2:8080\nserver:b:10.99.0.2:8080:10.99.0.1' });
      const after = proxy!.events.filter((e) => e.event === 'outbound').length;
      assert.equal(after - before, 1, 'exactly one captured outbound connection');
      assert.equal(proxy!.events.filter((e) => e.event === 'loop').length, 0);
    });

    it('captures outbound TCP to an address that exists nowhere', async () => {
      const r = await clientFrom(A(), '198.18.0.10', 80);
      assert.deepEqual(r, { ok: true, reply: 'proxy-out:198.18.0.10:80' });
    });

    it('does not capture excluded outbound ports', async () => {
      const r = await clientFrom(A(), '10.99.0.2', 9091);
      assert.deepEqual(r, { ok: true, reply: 'server:b:10.99.0.2:9091:10.99.0.1' });
    });

    it('does not capture excluded outbound CIDRs', async () => {
      const r = await clientFrom(A(), '10.99.0.4', 8080);
      assert.deepEqual(r, { ok: true, reply: 'server:b:10.99.0.4:8080:10.99.0.1' });
    });

    it("does not capture traffic carrying the proxy's mark", async () => {
      const r = await clientFrom(A(), '10.99.0.2', 8080, { mark: PROXY_MARK });
      assert.deepEqual(r, { ok: true, reply: 'server:b:10.99.0.2:8080:10.99.0.1' });
    });

    it("does not capture traffic of the proxy's uid", async () => {
      const r = await clientFrom(A(), '10.99.0.2', 8080, { uid: PROXY_UID });
      assert.deepEqual(r, { ok: true, reply: 'server:b:10.99.0.2:8080:10.99.0.1' });
    });

    it('does not capture loopback traffic', async () => {
      const r = await clientFrom(A(), '127.0.0.1', 8080);
      assert.deepEqual(r, { ok: true, reply: 'server:a:127.0.0.1:8080:127.0.0.1' });
    });

    it('captures inbound IPv6 (dual-stack proxy listener), also to an address that exists nowhere', async () => {
      assert.deepEqual(await clientFrom(B(), 'fd99::1', 8080, { local: 'fd99::2' }), { ok: true, reply: 'proxy-in:fd99::1:8080:fd99::2' });
      assert.deepEqual(await clientFrom(B(), '2001:db8:ff::10', 8080, { local: 'fd99::2' }), { ok: true, reply: 'proxy-in:2001:db8:ff::10:8080:fd99::2' });
      assert.deepEqual(await clientFrom(B(), 'fd99::1', 9090, { local: 'fd99::2' }), { ok: true, reply: 'server:a:fd99::1:9090:fd99::2' });
    });

    it('captures outbound IPv6 and honours IPv6 exclusions', async () => {
      assert.deepEqual(await clientFrom(A(), 'fd99::2', 8080), { ok: true, reply: 'via-proxy-out:fd99::2:8080\nserver:b:fd99::2:8080:fd99::1' });
      assert.deepEqual(await clientFrom(A(), 'fd99::4', 8080), { ok: true, reply: 'server:b:fd99::4:8080:fd99::1' });
      assert.deepEqual(await clientFrom(A(), 'fd99::2', 9091), { ok: true, reply: 'server:b:fd99::2:9091:fd99::1' });
    });

    it('status shows the table, the policy routing and non-zero counters', async () => {
      const s = await redirectStatus({ netns: A() });
      assert.equal(s.installed, true);
      assert.equal(s.mode, mode);
      assert.deepEqual(s.warnings, []);
      assert.equal(s.routing.rules.filter((r) => r.startsWith('ipv4')).length, 1);
      assert.ok((s.nft.counters.outbound_marked?.packets ?? 0) > 0, 'outbound_marked counts packets');
      assert.ok((s.nft.counters.outbound_excluded?.packets ?? 0) > 0, 'outbound_excluded counts packets');
      assert.ok((s.nft.counters.proxy_bypass?.packets ?? 0) > 0, 'proxy_bypass counts packets');
      if (mode === 'nft') {
        assert.ok((s.nft.counters.inbound_captured?.packets ?? 0) > 0);
        assert.ok((s.nft.counters.outbound_captured?.packets ?? 0) > 0);
        assert.ok((s.nft.counters.inbound_excluded?.packets ?? 0) > 0);
      } else {
        assert.deepEqual(s.bpf?.devices.sort(), ['a0', 'lo']);
        assert.ok((s.bpf?.stats.inbound_captured ?? 0) > 0, 'bpf inbound_captured');
        assert.ok((s.bpf?.stats.outbound_captured ?? 0) > 0, 'bpf outbound_captured');
        assert.ok((s.bpf?.stats.inbound_excluded ?? 0) > 0, 'bpf inbound_excluded');
      }
    });

    it('with captureIpv6 false, IPv6 bypasses the proxy while IPv4 is still captured', async () => {
      await applyRedirect(config({ captureIpv6: false }), { netns: A(), mode });
      try {
        assert.deepEqual(await clientFrom(B(), 'fd99::1', 8080, { local: 'fd99::2' }), { ok: true, reply: 'server:a:fd99::1:8080:fd99::2' });
        assert.deepEqual(await clientFrom(A(), 'fd99::2', 8080), { ok: true, reply: 'server:b:fd99::2:8080:fd99::1' });
        assert.deepEqual(await clientFrom(B(), '10.99.0.1', 8080), { ok: true, reply: 'proxy-in:10.99.0.1:8080:10.99.0.2' });
      } finally {
        await applyRedirect(config(), { netns: A(), mode });
      }
    });

    it('apply twice equals apply once', async () => {
      const snapshot = async (): Promise<string> => {
        const nft = (await runIn({ netns: A() }, ['nft', '-s', 'list', 'table', 'inet', 'meshaccel'])).stdout;
        const rules = (await runIn({ netns: A() }, ['ip', 'rule', 'show'])).stdout;
        const rules6 = (await runIn({ netns: A() }, ['ip', '-6', 'rule', 'show'])).stdout;
        const routes = (await runIn({ netns: A() }, ['ip', 'route', 'show', 'table', '100'])).stdout;
        const tc = (await runIn({ netns: A() }, ['tc', 'filter', 'show', 'dev', 'a0', 'ingress'])).stdout.replace(/ id \d+| tag \w+/g, '');
        const qdisc = (await runIn({ netns: A() }, ['tc', 'qdisc', 'show'])).stdout;
        return [nft, rules, rules6, routes, tc, qdisc].join('\n---\n');
      };
      const once = await snapshot();
      await applyRedirect(config(), { netns: A(), mode });
      const twice = await snapshot();
      assert.equal(twice, once);
      const r = await clientFrom(B(), '10.99.0.1', 8080);
      assert.deepEqual(r, { ok: true, reply: 'proxy-in:10.99.0.1:8080:10.99.0.2' });
    });

    it('honours a list of captured inbound ports', async () => {
      await applyRedirect(config({ inboundPorts: [8080] }), { netns: A(), mode });
      try {
        assert.deepEqual(await clientFrom(B(), '10.99.0.1', 8081), { ok: true, reply: 'server:a:10.99.0.1:8081:10.99.0.2' });
        assert.deepEqual(await clientFrom(B(), '10.99.0.1', 8080), { ok: true, reply: 'proxy-in:10.99.0.1:8080:10.99.0.2' });
      } finally {
        await applyRedirect(config(), { netns: A(), mode });
      }
    });

    it('remove leaves nothing behind and restores direct connectivity', async () => {
      await removeRedirect({ netns: A() });
      const table = await runRawIn({ netns: A() }, ['nft', 'list', 'table', 'inet', 'meshaccel']);
      assert.notEqual(table.code, 0, 'table gone');
      assert.equal((await runIn({ netns: A() }, ['nft', 'list', 'ruleset'])).stdout.trim(), '');
      assert.doesNotMatch((await runIn({ netns: A() }, ['ip', 'rule', 'show'])).stdout, /fwmark/);
      assert.doesNotMatch((await runIn({ netns: A() }, ['ip', '-6', 'rule', 'show'])).stdout, /fwmark/);
      assert.equal((await runIn({ netns: A() }, ['ip', 'route', 'show', 'table', '100'])).stdout.trim(), '');
      assert.equal((await runIn({ netns: A() }, ['tc', 'qdisc', 'show', 'dev', 'a0'])).stdout.includes('clsact'), false);
      assert.equal((await runIn({ netns: A() }, ['tc', 'qdisc', 'show', 'dev', 'lo'])).stdout.includes('clsact'), false);
      assert.equal(readState(A()), undefined);
      assert.deepEqual(await clientFrom(B(), '10.99.0.1', 8080), { ok: true, reply: 'server:a:10.99.0.1:8080:10.99.0.2' });
      assert.deepEqual(await clientFrom(A(), '10.99.0.2', 8080), { ok: true, reply: 'server:b:10.99.0.2:8080:10.99.0.1' });
      const s = await redirectStatus({ netns: A() });
      assert.equal(s.installed, false);
    });
  });
}
