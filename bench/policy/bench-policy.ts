/**
 * make bench-policy: 1,000 policy rules over 3,000 identities (one workload, one proxy each),
 * run on this tree and, side by side, on a baseline build (main at aaf9e6b, built by
 * `make bench-policy` under build/; `--baseline DIR` names its dist/). Each tree runs in its own
 * child process (so neither's garbage is collected on the other's time, by GC threads this
 * process-CPU figure counts), and the parent interleaves their rounds, one message each, so
 * both see the same machine load.
 *
 *  - full regeneration: a new SelectorCache (the class PolicyEngine uses) fed every identity,
 *    then every selector in use, in the order `PolicyEngine.sync` feeds them on a restart: the L3
 *    part of a from-scratch build;
 *  - engine from scratch: `sync` of every workload and policy into a new PolicyEngine (identity
 *    allocation, selector cache, policy compilation; no per-proxy IR);
 *  - identity add → resources rebuilt: a workload with a new label set arrives; identity
 *    allocation, selector cache update, commit (the affected proxies' IR recompiled) and, for
 *    every proxy the commit changed, its standalone Envoy resources built, schema-checked and
 *    encoded into a snapshot, as NodeSnapshotBuilder serves them;
 *  - the network RBAC (L3/L4 ECDS) share of that, and of a proxy's first (cold) resource build.
 *
 * Times are process CPU time (the machine is shared; wall time mostly measures the neighbours),
 * garbage collection included, medians of repeated runs.
 */
import * as path from 'path';
import { fork, type ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import type { PolicyEngine } from '../../src/policy/engine';
import type { SelectorCache } from '../../src/policy/selector-cache';
import { IDENTITIES, RULES, RESOURCES, arrival } from './world';
import type { buildProxyResourceJson, encodeGenerated } from '../../src/envoy/proxy-resources';
import type { Snapshot } from '../../src/xds/snapshot';
import type { RedirectConfig } from '../../src/net/capture-config';

const NETWORK_RBAC_PREFIX = 'meshaccel.l4';

/** The parts of a tree's dist/ the bench drives; equal in both trees. */
interface Tree {
  name: string;
  PolicyEngine: new () => PolicyEngine;
  SelectorCache: new () => SelectorCache;
  buildProxyResourceJson: typeof buildProxyResourceJson;
  encodeGenerated: typeof encodeGenerated;
  Snapshot: typeof Snapshot;
  redirect: RedirectConfig;
}

function loadTree(name: string, dist: string): Tree {
  const load = <T>(module: string): T => require(path.join(dist, module)) as T;
  const engine = load<{ PolicyEngine: Tree['PolicyEngine'] }>('src/policy/engine');
  const cache = load<{ SelectorCache: Tree['SelectorCache'] }>('src/policy/selector-cache');
  const resources = load<{ buildProxyResourceJson: Tree['buildProxyResourceJson']; encodeGenerated: Tree['encodeGenerated'] }>('src/envoy/proxy-resources');
  const snapshot = load<{ Snapshot: Tree['Snapshot'] }>('src/xds/snapshot');
  const capture = load<{ DEFAULT_REDIRECT_CONFIG: RedirectConfig }>('src/net/capture-config');
  return {
    name,
    PolicyEngine: engine.PolicyEngine,
    SelectorCache: cache.SelectorCache,
    buildProxyResourceJson: resources.buildProxyResourceJson,
    encodeGenerated: resources.encodeGenerated,
    Snapshot: snapshot.Snapshot,
    redirect: capture.DEFAULT_REDIRECT_CONFIG,
  };
}

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function fmt(ms: number): string {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

/** One tree's engine with the bench's state, and its measurements. */
class Run {
  readonly engine: PolicyEngine;
  readonly full: number[] = [];
  readonly fromScratch: number[] = [];
  readonly add: number[] = [];
  readonly addNetwork: number[] = [];
  readonly changed: number[] = [];
  readonly networkShare: { resources: number; all: number }[] = [];
  readonly cold: number[] = [];
  readonly coldNetwork: number[] = [];
  private coldNext = 0;

  constructor(readonly tree: Tree) {
    this.engine = new tree.PolicyEngine();
    this.engine.sync(RESOURCES);
    this.engine.commit();
  }

  /** Selections of every selector in use, by selector key (to compare trees and caches). */
  static selections(cache: SelectorCache): Map<string, number[]> {
    return new Map([...cache.entries()].map((cs) => [cs.selector.key, [...cs.selected].sort((a, b) => a - b)]));
  }

  fullRegeneration(): SelectorCache {
    const identities = [...this.engine.identities.all()];
    const selectors = [...this.engine.selectors.entries()].map((cs) => cs.selector);
    let fresh = new this.tree.SelectorCache();
    this.full.push(
      cpuMs(() => {
        fresh = new this.tree.SelectorCache();
        for (const id of identities) fresh.addIdentity(id);
        for (const s of selectors) fresh.acquire(s);
      }),
    );
    return fresh;
  }

  engineFromScratch(): void {
    this.fromScratch.push(
      cpuMs(() => {
        new this.tree.PolicyEngine().sync(RESOURCES);
      }),
    );
  }

  /** The add, timed through the served resources; removed (untimed) afterwards. */
  identityAdd(j: number): void {
    const w = arrival(j);
    const { tree, engine } = this;
    let network = 0;
    let resources = 0;
    let all = 0;
    let changed = 0;
    const t = cpuMs(() => {
      engine.upsertWorkload(w);
      const commit = engine.commit();
      changed = commit.changed.length;
      for (const key of commit.changed) {
        const built = tree.buildProxyResourceJson(engine.proxy(key) as CompiledProxyPolicy, { mode: 'standalone', redirect: tree.redirect });
        const l4 = built.resources.filter((r) => r.name.startsWith(NETWORK_RBAC_PREFIX));
        const rest = built.resources.filter((r) => !r.name.startsWith(NETWORK_RBAC_PREFIX));
        // The network share is timed inside the add, on the one encoding the snapshot is made of.
        let encodedL4: ReturnType<Tree['encodeGenerated']> = [];
        network += cpuMs(() => {
          encodedL4 = tree.encodeGenerated(l4);
        });
        tree.Snapshot.fromResources([...encodedL4, ...tree.encodeGenerated(rest)]);
        resources += l4.length;
        all += built.resources.length;
      }
    });
    this.add.push(t);
    this.addNetwork.push(network);
    this.changed.push(changed);
    this.networkShare.push({ resources, all });
    engine.removeWorkload(`Workload/${w.namespace}/${w.name}`);
    engine.commit();
  }

  /** A proxy whose resources this process has not built yet: every resource is checked and encoded. */
  coldBuild(): void {
    const { tree, engine } = this;
    const proxy = engine.proxy(`node-${(this.coldNext++ * 61 + 7) % IDENTITIES}`) as CompiledProxyPolicy;
    let network = 0;
    this.cold.push(
      cpuMs(() => {
        const built = tree.buildProxyResourceJson(proxy, { mode: 'standalone', redirect: tree.redirect });
        const l4 = built.resources.filter((r) => r.name.startsWith(NETWORK_RBAC_PREFIX));
        network = cpuMs(() => tree.encodeGenerated(l4));
        tree.encodeGenerated(built.resources.filter((r) => !r.name.startsWith(NETWORK_RBAC_PREFIX)));
      }),
    );
    this.coldNetwork.push(network);
  }
}

/** A digest of selections (selector key → sorted identities), to compare trees across processes. */
function selectionsDigest(selections: Map<string, number[]>): string {
  const h = createHash('sha256');
  for (const key of [...selections.keys()].sort()) h.update(`${key}\0${(selections.get(key) as number[]).join(',')}\n`);
  return `${selections.size} selectors ${h.digest('hex').slice(0, 16)}`;
}

/** What the parent asks a tree's process to do, one step at a time. */
type Step = { op: 'selections' } | { op: 'full' } | { op: 'scratch' } | { op: 'add'; j: number } | { op: 'cold' } | { op: 'results' };

/** A tree's measurements as its process reports them: Run's, with the figures the table prints beside them. */
type Results = Pick<Run, 'full' | 'fromScratch' | 'add' | 'addNetwork' | 'changed' | 'networkShare' | 'cold' | 'coldNetwork'> & {
  name: string;
  selectorCount: number;
  pairs: number;
};

/** A tree's process: loads the tree, builds its engine, and runs the steps it is sent. */
function child(name: string, dist: string): void {
  const run = new Run(loadTree(name, dist));
  process.on('message', (step: Step) => {
    let reply: unknown = null;
    switch (step.op) {
      case 'selections': {
        // Both ways of building must agree on every selection, or nothing is compared.
        const engine = selectionsDigest(Run.selections(run.engine.selectors));
        const full = selectionsDigest(Run.selections(run.fullRegeneration()));
        if (engine !== full) throw new Error(`${name}: full regeneration selects ${full}, the engine ${engine}`);
        reply = engine;
        break;
      }
      case 'full':
        run.fullRegeneration();
        break;
      case 'scratch':
        run.engineFromScratch();
        break;
      case 'add':
        run.identityAdd(step.j);
        break;
      case 'cold':
        run.coldBuild();
        break;
      case 'results': {
        const results: Results = {
          name,
          full: run.full,
          fromScratch: run.fromScratch,
          add: run.add,
          addNetwork: run.addNetwork,
          changed: run.changed,
          networkShare: run.networkShare,
          cold: run.cold,
          coldNetwork: run.coldNetwork,
          selectorCount: run.engine.selectors.selectorCount,
          pairs: [...run.engine.selectors.entries()].reduce((n, cs) => n + cs.selected.size, 0),
        };
        reply = results;
        break;
      }
    }
    (process.send as (m: unknown) => boolean)({ reply });
  });
  (process.send as (m: unknown) => boolean)({ ready: true });
}

/** A tree's process, seen from the parent: one step at a time, answered in order. */
class TreeProcess {
  private readonly proc: ChildProcess;
  private waiting: ((value: unknown) => void)[] = [];
  readonly ready: Promise<unknown>;

  constructor(name: string, dist: string) {
    this.proc = fork(__filename, ['--child', name, dist], { stdio: 'inherit' });
    this.ready = new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.proc.once('exit', (code) => reject(new Error(`${name}: its process exited (${code})`)));
    });
    this.proc.on('message', (m: { ready?: true; reply?: unknown }) => (this.waiting.shift() as (value: unknown) => void)(m.reply));
    this.proc.on('exit', (code) => {
      if (code !== 0) {
        console.error(`bench-policy: ${name}: its process exited (${code})`);
        process.exit(1);
      }
    });
  }

  step(s: Step): Promise<unknown> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.proc.send(s);
    });
  }

  stop(): void {
    this.proc.disconnect();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    child(args[1], args[2]);
    return;
  }
  const at = args.indexOf('--baseline');
  const trees: { name: string; dist: string }[] = [];
  // build/bench-baseline-<commit>/dist: named after the commit it was built from.
  if (at >= 0)
    trees.push({ name: `main ${path.basename(path.dirname(path.resolve(args[at + 1]))).replace('bench-baseline-', '')}`, dist: path.resolve(args[at + 1]) });
  trees.push({ name: 'this tree', dist: path.resolve(__dirname, '../..') });
  const procs = trees.map((t) => new TreeProcess(t.name, t.dist));
  for (const p of procs) await p.ready;
  /** One step on every tree, in turn: the rounds stay interleaved. */
  const each = async (s: Step): Promise<unknown[]> => {
    const out: unknown[] = [];
    for (const p of procs) out.push(await p.step(s));
    return out;
  };

  const digests = (await each({ op: 'selections' })) as string[];
  digests.forEach((d, i) => {
    if (d !== digests[digests.length - 1]) throw new Error(`${trees[i].name} selects ${d}, this tree ${digests[digests.length - 1]}`);
  });
  for (let j = 0; j < 5; j++) await each({ op: 'add', j });

  const ROUNDS = 31;
  for (let i = 0; i < ROUNDS; i++) await each({ op: 'full' });
  for (let i = 0; i < 5; i++) await each({ op: 'scratch' });
  const ADDS = 40;
  for (let j = 0; j < ADDS; j++) await each({ op: 'add', j: 5 + j });
  for (let i = 0; i < 20; i++) await each({ op: 'cold' });
  const runs = (await each({ op: 'results' })) as Results[];
  for (const p of procs) p.stop();
  const ours = runs[runs.length - 1];

  console.log(`bench-policy: ${RULES} rules, ${IDENTITIES} identities, ${ours.selectorCount} distinct selectors, ${ours.pairs} selector→identity entries`);
  console.log(
    `  process CPU time (GC included), medians (${ROUNDS} regenerations, ${ADDS} identity adds), one process per tree; a shared, loaded 2-core machine`,
  );
  const header = runs.map((r) => r.name.padStart(14)).join('');
  console.log(`  ${''.padEnd(62)}${header}`);
  const row = (label: string, value: (r: Results) => string): void => console.log(`  ${label.padEnd(62)}${runs.map((r) => value(r).padStart(14)).join('')}`);
  row('full regeneration, L3 (new selector cache, as on a restart)', (r) => fmt(median(r.full)));
  row('  minimum of the regenerations (least disturbed by neighbours)', (r) => fmt(Math.min(...r.full)));
  row('engine from scratch (sync of every workload and policy)', (r) => fmt(median(r.fromScratch)));
  row('identity add → affected proxies\u2019 resources rebuilt', (r) => fmt(median(r.add)));
  row('  proxies changed per add (median; min–max)', (r) => `${median(r.changed)} (${Math.min(...r.changed)}–${Math.max(...r.changed)})`);
  row('  per proxy changed (add time / proxies changed, median)', (r) => fmt(median(r.add.map((t, i) => t / Math.max(1, r.changed[i])))));
  row('  of which network RBAC resources (check + encode)', (r) => fmt(median(r.addNetwork)));
  row('  network RBAC resources / all rebuilt (median add)', (r) => {
    const s = [...r.networkShare].sort((a, b) => a.all - b.all)[Math.floor(r.networkShare.length / 2)];
    return `${s.resources}/${s.all}`;
  });
  row('one proxy\u2019s first resource build (cold: check + encode all)', (r) => fmt(median(r.cold)));
  row('  of which network RBAC', (r) => fmt(median(r.coldNetwork)));
  if (runs.length > 1) {
    const base = runs[0];
    console.log(
      `  ratios (${base.name} / this tree): full regeneration ${(median(base.full) / median(ours.full)).toFixed(1)}x, ` +
        `engine from scratch ${(median(base.fromScratch) / median(ours.fromScratch)).toFixed(1)}x, identity add → resources ${(median(base.add) / median(ours.add)).toFixed(1)}x`,
    );
  }
  const fullMs = median(ours.full);
  const addMs = median(ours.add);
  console.log(
    `  full regeneration of ${RULES} rules x ${IDENTITIES} identities < 1 ms: ${fullMs < 1 ? 'MET' : 'MISSED'} (${fmt(fullMs)}; Cilium, Go: ~2.15 ms)`,
  );
  console.log(`  identity add → affected proxies\u2019 resources rebuilt < 1 ms: ${addMs < 1 ? 'MET' : 'MISSED'} (${fmt(addMs)})`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
