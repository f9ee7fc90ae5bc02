import { EventEmitter } from 'events';
import type { CompiledProxyPolicy } from '../policy/compiled';
import { compareDiagnostics, type Diagnostic } from '../policy/diagnostics';
import { PolicyEngine, type BoundWorkload, type CommitResult, type NodePolicy } from '../policy/engine';
import type { EnforcementMode } from '../policy/enforceability';
import { crossDocumentChecks } from '../policy/loader';
import type { Resource } from '../policy/model';
import { keyMatchesNode } from '../policy/proxy-binding';
import type { ObjectContent, ResourceEvent } from './events';
import { nextTurn, runInSlices } from './time-slices';
import { sharedValidationPool, ValidationPool, type ValidationPoolOptions } from './validation-pool';

export interface PolicyStoreOptions {
  /** Trust domain of mTLS principals. */
  trustDomain?: string;
  /** The Envoy mode the policies are served in: an object with rules it cannot enforce is refused (default standalone). */
  mode?: EnforcementMode;
  /** The worker threads objects are parsed and validated in: a given pool, one of its own with these options, or (default) the process's shared pool. */
  validation?: ValidationPool | ValidationPoolOptions;
  /** istio: the ports the deployed EnvoyFilter patches per port; L7 rules on another port are refused. */
  coveredPorts?: readonly number[];
}

/** One consistent, fully validated configuration. */
export interface PolicyState {
  /** Increases by one with every applied change. */
  readonly version: number;
  /** Compiled policy per proxy key: the xDS node id, or `metadata:{...}` for a metadata binding. */
  readonly proxies: ReadonlyMap<string, CompiledProxyPolicy>;
  /** Ids of the objects (for the file source: the files) this state was built from, sorted. */
  readonly files: readonly string[];
}

export interface PolicyUpdate {
  state: PolicyState;
  /** Proxy keys whose policy is new or different. Use `nodeAffected` to map them onto connected nodes. */
  changed: string[];
  /** Proxy keys that serve no workload any more. */
  removed: string[];
  /** Tracked nodes served by several bindings whose policy changed (or is now refused). */
  nodes: string[];
}

export interface ApplyResult {
  /** Whether the batch was applied (it may have changed nothing). */
  applied: boolean;
  /** Every problem of the batch, per object, sorted by file and position; empty when applied. */
  diagnostics: Diagnostic[];
  /** Present when the batch changed what some proxy is served. */
  update?: PolicyUpdate;
}

export interface PolicyStoreEvents {
  update: [PolicyUpdate];
  rejected: [Diagnostic[]];
  /** Every applied batch, whether or not it changed what a proxy is served (a comment edit does not). */
  committed: [PolicyState];
  /** A batch has left the engine (applied or not): node queries (`trackNode`, `nodePolicy`) may be made again. */
  idle: [];
}

/** Whether a change to these proxy keys concerns a node with this id and metadata. */
export function nodeAffected(keys: readonly string[], nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): boolean {
  return keys.some((k) => keyMatchesNode(k, nodeId, nodeMetadata));
}

interface StoredObject {
  readonly source: string;
  readonly id: string;
  readonly text: string;
  readonly resources: readonly Resource[];
}

type Parsed = { text: string; resources: Resource[]; diagnostics: Diagnostic[] };

/** A validator that failed (not the text): the object is refused with the reason, and not remembered. */
function notValidated(file: string, reason: string): Parsed {
  const message = `not validated: ${reason}; the last good configuration keeps serving`;
  return { text: '', resources: [], diagnostics: [{ file, line: 1, column: 1, path: '', message }] };
}

const objectKey = (source: string, id: string): string => `${source}\u0000${id}`;

/**
 * The one place policy becomes state: sources send batches of resource events; the store
 * validates each object (YAML, CRD schema, RE2 and the other semantic checks), then the checks
 * across objects, applies the batch to the incremental engine and commits. A batch is atomic:
 * if any of its objects fails, or the result has an L7 conflict (clashes between the bindings of
 * a connected node included), nothing of it applies, every failing object is named in the
 * diagnostics, and the last good state keeps serving. A source that wants its objects accepted
 * one by one (a Kubernetes watch) sends one batch per object. `update` says which proxies changed.
 *
 * None of it holds the event loop: objects are validated in worker threads, and the engine
 * applies and compiles a batch in slices of SLICE_MS. While a batch is in the engine
 * (`committing()`), its nodes must not be queried; `idle` says when they may be again.
 */
export class PolicyStore extends EventEmitter<PolicyStoreEvents> {
  private readonly engine: PolicyEngine;
  /** Accepted objects, in the order their sources listed them (diagnostics follow that order). */
  private objects = new Map<string, StoredObject>();
  /** Parse results by object, reused while the text is unchanged (a reload re-sends every file). */
  private readonly parsed = new Map<string, Parsed>();
  private state: PolicyState = { version: 0, proxies: new Map(), files: [] };

  private readonly mode: EnforcementMode;
  private readonly validator: ValidationPool;
  /** The batch being applied, or the last one: each batch waits for the one before it. */
  private queue: Promise<unknown> = Promise.resolve();
  private inEngine = false;
  private readonly coveredPorts: readonly number[] | undefined;

  constructor(options: PolicyStoreOptions = {}) {
    super();
    this.engine = new PolicyEngine({ trustDomain: options.trustDomain });
    this.mode = options.mode ?? 'standalone';
    const v = options.validation;
    this.validator = v instanceof ValidationPool ? v : v ? new ValidationPool(v) : sharedValidationPool();
    this.coveredPorts = options.coveredPorts;
  }

  current(): PolicyState {
    return this.state;
  }

  /** Validates and applies one batch, all or nothing. Batches are applied one after another, in the order they were given. */
  apply(events: readonly ResourceEvent[]): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(events));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Whether a batch is in the engine now: until `idle`, nodes must not be tracked or queried. */
  committing(): boolean {
    return this.inEngine;
  }

  /** The worker threads this store validates in. */
  get validation(): ValidationPool {
    return this.validator;
  }

  private async applyNow(events: readonly ResourceEvent[]): Promise<ApplyResult> {
    const next = new Map(this.objects);
    const diagnostics: Diagnostic[] = [];
    const parsing: { key: string; placeholder: StoredObject; parsed: Promise<Parsed> }[] = [];
    const upsert = (source: string, id: string, content: ObjectContent): void => {
      const key = objectKey(source, id);
      if ('unreadable' in content) {
        diagnostics.push({ file: id, line: 1, column: 1, path: '', message: content.unreadable });
        return;
      }
      // Re-inserted now so the object takes the position its source lists it at; its resources come when parsed.
      const placeholder: StoredObject = { source, id, text: content.text, resources: [] };
      next.delete(key);
      next.set(key, placeholder);
      parsing.push({ key, placeholder, parsed: this.parse(key, id, content.text) });
    };
    for (const ev of events) {
      if (ev.type === 'upsert') upsert(ev.source, ev.id, ev);
      else if (ev.type === 'remove') next.delete(objectKey(ev.source, ev.id));
      else {
        const keep = new Set(ev.objects.map((o) => objectKey(ev.source, o.id)));
        for (const [key, o] of next) if (o.source === ev.source && !keep.has(key)) next.delete(key);
        for (const o of ev.objects) upsert(ev.source, o.id, o);
      }
    }
    for (const { key, placeholder, parsed } of parsing) {
      const { resources, diagnostics: problems } = await parsed;
      diagnostics.push(...problems);
      // Unless a later event of the batch replaced or removed it.
      if (next.get(key) === placeholder) next.set(key, { ...placeholder, resources });
    }
    // Each stage in a turn of its own: receiving the last results may have taken one already.
    await nextTurn();
    const resources = [...next.values()].flatMap((o) => o.resources);
    if (diagnostics.length === 0) diagnostics.push(...crossDocumentChecks(resources));
    if (diagnostics.length > 0) return this.reject(diagnostics);
    await nextTurn();

    let commit: CommitResult;
    this.inEngine = true;
    try {
      commit = await this.compile(resources);
    } finally {
      // Left before the events, so their listeners may query nodes.
      this.inEngine = false;
      this.emit('idle');
    }
    return commit.conflicts.length > 0 ? this.reject([...commit.conflicts]) : this.commit(next, commit);
  }

  /** The engine made to hold `resources`, compiled; on a conflict rolled back to the accepted objects. */
  private async compile(resources: Resource[]): Promise<CommitResult> {
    await runInSlices(this.engine.syncSteps(resources));
    const commit = await runInSlices(this.engine.commitSteps());
    if (commit.conflicts.length > 0) {
      // Its compiled policies were never replaced: the next commit restores exactly the last good ones.
      await runInSlices(this.engine.syncSteps([...this.objects.values()].flatMap((o) => o.resources)));
      await runInSlices(this.engine.commitSteps());
    }
    return commit;
  }

  private commit(next: Map<string, StoredObject>, commit: CommitResult): ApplyResult {
    this.objects = next;
    this.forgetUnused();
    const files = [...next.values()].map((o) => o.id).sort();
    const first = this.state.version === 0;
    if (!first && commit.changed.length === 0 && commit.removed.length === 0 && commit.nodes.length === 0) {
      this.state = { ...this.state, files };
      this.emit('committed', this.state);
      return { applied: true, diagnostics: [] };
    }
    this.state = { version: this.state.version + 1, proxies: this.engine.proxies(), files };
    const update: PolicyUpdate = { state: this.state, changed: commit.changed, removed: commit.removed, nodes: commit.nodes };
    this.emit('update', update);
    this.emit('committed', this.state);
    return { applied: true, diagnostics: [], update };
  }

  /** Whether any batch has been applied yet: before that there is no configuration at all, not an empty one. */
  hasCommitted(): boolean {
    return this.state.version > 0;
  }

  /** The accepted text of every object of a source (id → text), in the order the source listed them. */
  texts(source: string): Map<string, string> {
    const out = new Map<string, string>();
    for (const o of this.objects.values()) if (o.source === source) out.set(o.id, o.text);
    return out;
  }

  /**
   * A node connected: from now on it is compiled as one proxy with every binding that serves it,
   * and kept current by each batch. Returns what it is served (or the clashes that refuse it).
   */
  trackNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): NodePolicy {
    return this.engine.trackNode(nodeId, nodeMetadata);
  }

  /** The node is gone; it is no longer compiled. */
  untrackNode(nodeId: string): void {
    this.engine.untrackNode(nodeId);
  }

  /** What a node is served now: its policy, or the clashes between its bindings that refuse it. */
  nodePolicy(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): NodePolicy {
    return this.engine.nodePolicy(nodeId, nodeMetadata);
  }

  /** The workloads a node with this id and metadata is served, each with the binding that brings it. */
  workloadsBoundTo(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): BoundWorkload[] {
    return this.engine.workloadsBoundTo(nodeId, nodeMetadata);
  }

  /** The policy for a node (its node-id binding plus matching metadata bindings); undefined if none or refused. */
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined {
    return this.engine.policyForNode(nodeId, nodeMetadata);
  }

  private reject(diagnostics: Diagnostic[]): ApplyResult {
    diagnostics.sort(compareDiagnostics);
    if (this.listenerCount('rejected') > 0) this.emit('rejected', diagnostics);
    return { applied: false, diagnostics };
  }

  private async parse(key: string, id: string, text: string): Promise<Parsed> {
    const cached = this.parsed.get(key);
    if (cached?.text === text) return cached;
    const loaded = await this.validator.load(id, text, { mode: this.mode, coveredPorts: this.coveredPorts });
    if (!loaded.ok) return notValidated(id, loaded.reason);
    const parsed = { text, resources: loaded.value.resources, diagnostics: loaded.value.diagnostics };
    this.parsed.set(key, parsed);
    return parsed;
  }

  /** Parse results of objects no longer stored, except a rejected one's (it is likely re-sent as is). */
  private forgetUnused(): void {
    if (this.parsed.size <= this.objects.size * 2 + 16) return;
    for (const key of this.parsed.keys()) if (!this.objects.has(key)) this.parsed.delete(key);
  }
}
