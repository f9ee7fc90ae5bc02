/**
 * Agent bookkeeping across applies: switching modes, changing marks/tables, removing twice, bad
 * interface names. One namespace the test creates, with a veth pair inside it.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import { applyRedirect, removeRedirect } from '../../src/datapath/redirect';
import { missingPrerequisites } from '../../src/datapath/redirect/preflight';
import { run, runIn, runRaw } from '../../src/datapath/redirect/exec';
import { readState } from '../../src/datapath/redirect/state';
import * as nft from '../../src/datapath/redirect/nft';
import { REDIRECT_BPFFS } from '../../src/datapath/redirect/bpf-tc';

describe('redirect agent lifecycle', function () {
  const ns = `ma-rd-${process.pid}-life`;
  const target = { netns: ns };
  let created = false;

  before(async function () {
    const missing = await missingPrerequisites('bpf');
    if (missing.length > 0) {
      console.log(`      skipping redirect lifecycle tests: ${missing.join('; ')}`);
      this.skip();
    }
    await runRaw(['ip', 'netns', 'del', ns]);
    await run(['ip', 'netns', 'add', ns]);
    created = true;
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    await run(['ip', '-n', ns, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1']);
  });

  after(async () => {
    if (!created) return;
    await removeRedirect(target).catch(() => undefined);
    await runRaw(['ip', 'netns', 'del', ns]);
  });

  const filters = async (dev: string): Promise<string> => (await runIn(target, ['tc', 'filter', 'show', 'dev', dev, 'ingress'])).stdout;
  const qdiscs = async (): Promise<string> => (await runIn(target, ['tc', 'qdisc', 'show'])).stdout;
  const rules = async (): Promise<string> => (await runIn(target, ['ip', 'rule', 'show'])).stdout;

  it('refuses a namespace whose lo is down, in its own words, and changes nothing', async () => {
    await run(['ip', '-n', ns, 'link', 'set', 'lo', 'down']);
    try {
      const before = await rules();
      await assert.rejects(
        applyRedirect({}, { netns: ns, mode: 'nft' }),
        new RegExp(`loopback \\(lo\\) is down in network namespace ${ns}: .*ip -n ${ns} link set lo up.*nothing was changed`),
      );
      assert.equal(await rules(), before, 'no rule added');
      assert.equal(readState(ns), undefined, 'no state recorded');
    } finally {
      await run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
  });

  it("refuses a route table that already holds someone else's routes, and changes nothing", async () => {
    await runIn(target, ['ip', 'route', 'add', 'unreachable', '10.77.0.0/16', 'table', '177']);
    try {
      await assert.rejects(
        applyRedirect({ routeTable: 177 }, { netns: ns, mode: 'nft' }),
        /routing table 177 .* not meshaccel's .*unreachable 10\.77\.0\.0\/16/,
      );
      assert.match((await runIn(target, ['ip', 'route', 'show', 'table', '177'])).stdout, /unreachable 10\.77\.0\.0\/16/);
      assert.doesNotMatch(await rules(), /lookup 177/, 'no rule added');
    } finally {
      await runIn(target, ['ip', 'route', 'del', 'unreachable', '10.77.0.0/16', 'table', '177']);
      await removeRedirect(target).catch(() => undefined);
    }
  });

  it('bpf mode attaches to every device and lo; nft mode afterwards detaches all of it', async () => {
    const state = await applyRedirect({}, { netns: ns, mode: 'bpf' });
    assert.deepEqual([...(state.devices ?? [])].sort(), ['lo', 'v0', 'v1']);
    for (const dev of ['lo', 'v0', 'v1']) assert.match(await filters(dev), /pref 4242 bpf/);
    await applyRedirect({}, { netns: ns, mode: 'nft' });
    for (const dev of ['lo', 'v0', 'v1']) assert.equal((await filters(dev)).trim(), '');
    assert.doesNotMatch(await qdiscs(), /clsact/);
    assert.match((await runIn(target, ['nft', 'list', 'chains', 'inet'])).stdout, /chain prerouting/);
  });

  it('--interfaces limits the bpf attachment; a clsact someone else created is kept', async () => {
    await runIn(target, ['tc', 'qdisc', 'add', 'dev', 'v1', 'clsact']);
    await applyRedirect({}, { netns: ns, mode: 'bpf', interfaces: ['v0'] });
    assert.match(await filters('v0'), /pref 4242 bpf/);
    assert.equal((await filters('v1')).trim(), '');
    await applyRedirect({}, { netns: ns, mode: 'bpf', interfaces: ['v1'] });
    assert.equal((await filters('v0')).trim(), '');
    assert.match(await filters('v1'), /pref 4242 bpf/);
    await removeRedirect(target);
    assert.match((await runIn(target, ['tc', 'qdisc', 'show', 'dev', 'v1'])).stdout, /clsact/, "v1's clsact was not ours");
    assert.doesNotMatch((await runIn(target, ['tc', 'qdisc', 'show', 'dev', 'v0'])).stdout, /clsact/);
    await runIn(target, ['tc', 'qdisc', 'del', 'dev', 'v1', 'clsact']);
  });

  it('changing the mark and table replaces the policy routing instead of adding to it', async () => {
    await applyRedirect({}, { netns: ns });
    assert.match(await rules(), /fwmark 0x1 lookup 100/);
    await applyRedirect({ tproxyMark: 0x2, routeTable: 101 }, { netns: ns });
    const now = await rules();
    assert.match(now, /fwmark 0x2 lookup 101/);
    assert.doesNotMatch(now, /fwmark 0x1 lookup 100/);
    assert.equal((await runIn(target, ['ip', 'route', 'show', 'table', '100'])).stdout.trim(), '');
    assert.equal(readState(ns)?.config.routeTable, 101);
    // Same table, new mark: the old rule goes, the table's local route stays.
    await applyRedirect({ tproxyMark: 0x4, routeTable: 101 }, { netns: ns });
    assert.match(await rules(), /fwmark 0x4 lookup 101/);
    assert.doesNotMatch(await rules(), /fwmark 0x2 /);
    assert.match((await runIn(target, ['ip', 'route', 'show', 'table', '101'])).stdout, /local default dev lo/);
    assert.match((await runIn(target, ['ip', '-6', 'route', 'show', 'table', '101'])).stdout, /local default dev lo/);
  });

  // The last step (the nft transaction) fails; every step before it ran for real against the
  // namespace. The agent calls the module's export at call time, so the test swaps it.
  async function withFailingNft<T>(body: () => Promise<T>): Promise<T> {
    const real = nft.applyNftTable;
    (nft as { applyNftTable: typeof real }).applyNftTable = async () => {
      throw new Error('nft: simulated failure of the transaction');
    };
    try {
      return await body();
    } finally {
      (nft as { applyNftTable: typeof real }).applyNftTable = real;
    }
  }
  const pinDirs = (): string[] =>
    fs.existsSync(REDIRECT_BPFFS) ? fs.readdirSync(REDIRECT_BPFFS).filter((e) => e.startsWith(`redirect-`) && e.includes(ns)) : [];
  const snapshot = async (): Promise<string[]> => [
    await rules(),
    (await runIn(target, ['ip', 'route', 'show', 'table', 'all'])).stdout,
    await qdiscs(),
    ...(await Promise.all(['lo', 'v0', 'v1'].map(filters))).map((f) => f.replace(/ id \d+/g, ' id N').replace(/ tag \w+/g, '')),
    (await runIn(target, ['nft', 'list', 'ruleset'])).stdout,
    JSON.stringify(pinDirs()),
    JSON.stringify(readState(ns) ?? null),
  ];

  it('a failed first apply (bpf mode) takes back its routing, tc filters and pins', async () => {
    await removeRedirect(target);
    const before = await snapshot();
    await withFailingNft(() => assert.rejects(applyRedirect({ routeTable: 123 }, { netns: ns, mode: 'bpf' }), /simulated failure .*rolled back/));
    assert.deepEqual(await snapshot(), before);
    assert.doesNotMatch(await rules(), /lookup 123/);
  });

  it('a failed re-apply keeps the previous apply intact: its filters, its program, its table', async () => {
    await applyRedirect({}, { netns: ns, mode: 'bpf', interfaces: ['v0'] });
    const before = await snapshot();
    const prevProg = (await filters('v0')).match(/ id (\d+)/)?.[1];
    // Another table and mark, every device: all of it must be taken back.
    await withFailingNft(() => assert.rejects(applyRedirect({ tproxyMark: 0x8, routeTable: 124 }, { netns: ns, mode: 'bpf' }), /rolled back/));
    assert.deepEqual(await snapshot(), before);
    assert.equal((await filters('v0')).match(/ id (\d+)/)?.[1], prevProg, 'v0 runs the previous program again');
    // And the previous apply still works as a base for the next one.
    await applyRedirect({}, { netns: ns, mode: 'nft' });
    assert.equal((await filters('v0')).trim(), '');
    await removeRedirect(target);
  });

  it('remove is idempotent and works without a state file', async () => {
    await removeRedirect(target);
    await removeRedirect(target);
    assert.doesNotMatch(await rules(), /fwmark/);
    await applyRedirect({}, { netns: ns, mode: 'bpf' });
    // Lose the agent's record: remove still finds the table, rules and tc filters.
    await runRaw(['rm', '-f', `/run/meshaccel/redirect/${ns}.json`]);
    await removeRedirect(target);
    assert.doesNotMatch(await rules(), /fwmark/);
    assert.equal((await runIn(target, ['nft', 'list', 'ruleset'])).stdout.trim(), '');
    for (const dev of ['lo', 'v0', 'v1']) assert.equal((await filters(dev)).trim(), '');
  });

  it('frees the record and BPF pins of a namespace that disappeared', async () => {
    const gone = `${ns}-gone`;
    await run(['ip', 'netns', 'add', gone]);
    let state;
    try {
      await run(['ip', '-n', gone, 'link', 'set', 'lo', 'up']);
      state = await applyRedirect({}, { netns: gone, mode: 'bpf' });
    } finally {
      await runRaw(['ip', 'netns', 'del', gone]);
    }
    assert.ok(state.pinDir && fs.existsSync(state.pinDir));
    assert.equal(await removeRedirect({ netns: gone }), 'namespace-gone');
    assert.equal(fs.existsSync(state.pinDir), false);
    assert.equal(readState(gone), undefined);
  });

  it('names a missing interface and a missing namespace', async () => {
    await assert.rejects(applyRedirect({}, { netns: ns, mode: 'bpf', interfaces: ['nope0'] }), /interface "nope0" does not exist/);
    assert.doesNotMatch(await rules(), /fwmark/, 'nothing installed by a rejected apply');
    await assert.rejects(applyRedirect({}, { netns: `${ns}-missing` }), /network namespace "ma-rd-\d+-life-missing"/);
    await removeRedirect(target);
  });
});
