import { EventEmitter } from 'events';
import * as fs from 'fs';
import type { CompiledProxyPolicy } from '../policy/compiled';
import { compareDiagnostics, type Diagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';
import type { Resource } from '../policy/model';
import { keyMatchesNode } from '../policy/proxy-binding';

export interface FilePolicySourceOptions {
  /** Directories of policy and workload YAML (any mix of kinds; searched recursively). */
  directories: string[];
  /** Quiet period after the last file event before reloading; editors write in bursts. */
  debounceMs?: number;
  trustDomain?: string;
  /** Watch the directories; off for one-shot use (`policy compile`). */
  watch?: boolean;
}

/** One consistent, fully validated configuration. */
export interface PolicyState {
  /** Increases by one with every applied change. */
  readonly version: number;
  /** Compiled policy per proxy key: the xDS node id, or `metadata:{...}` for a metadata binding. */
  readonly proxies: ReadonlyMap<string, CompiledProxyPolicy>;
  readonly files: readonly string[];
}

export interface PolicyUpdate {
  state: PolicyState;
  /** Proxy keys whose policy is new or different. Use `nodeAffected` to map them onto connected nodes. */
  changed: string[];
  /** Proxy keys that serve no workload any more. */
  removed: string[];
}

export interface ReloadResult {
  applied: boolean;
  diagnostics: Diagnostic[];
  update?: PolicyUpdate;
}

export interface FilePolicySourceEvents {
  update: [PolicyUpdate];
  error: [Diagnostic[]];
}

/** Whether a change to these proxy keys concerns a node with this id and metadata. */
export function nodeAffected(keys: readonly string[], nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): boolean {
  return keys.some((k) => keyMatchesNode(k, nodeId, nodeMetadata));
}

/**
 * The embedded policy source: a directory of multi-document YAML, watched. Every reload validates
 * all files as one set; only if all pass does it apply the change to the incremental engine and
 * emit `update` with the proxies whose policy changed. Otherwise it emits `error` with
 * file:line diagnostics and the last good state keeps serving — never a half-applied directory.
 */
export class FilePolicySource extends EventEmitter<FilePolicySourceEvents> {
  private readonly engine: PolicyEngine;
  private readonly debounceMs: number;
  private readonly watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private state: PolicyState = { version: 0, proxies: new Map(), files: [] };
  private lastGood: Resource[] = [];
  private lastDiagnostics: Diagnostic[] = [];
  private stopped = false;

  constructor(private readonly options: FilePolicySourceOptions) {
    super();
    this.engine = new PolicyEngine({ trustDomain: options.trustDomain });
    this.debounceMs = options.debounceMs ?? 100;
  }

  /** Loads once and starts watching. The result says whether the initial load was applied. */
  start(): ReloadResult {
    const result = this.reload();
    if (this.options.watch !== false) {
      for (const dir of this.options.directories) {
        try {
          const w = fs.watch(dir, { recursive: true }, () => this.schedule());
          w.on('error', (err) => this.report([{ file: dir, line: 1, column: 1, path: '', message: `watch failed: ${err.message}` }]));
          this.watchers.push(w);
        } catch (err) {
          this.report([{ file: dir, line: 1, column: 1, path: '', message: `cannot watch: ${(err as Error).message}` }]);
        }
      }
    }
    return result;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }

  current(): PolicyState {
    return this.state;
  }

  /** Diagnostics of the last failed reload; empty once a reload succeeds. */
  errors(): readonly Diagnostic[] {
    return this.lastDiagnostics;
  }

  /** The policy for a connecting node (node-id binding plus matching metadata bindings). */
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined {
    return this.engine.policyForNode(nodeId, nodeMetadata);
  }

  /** Reads, validates and (if everything passes) applies the directories now. Synchronous, so no reload interleaves with another. */
  reload(): ReloadResult {
    const files: string[] = [];
    const missing: Diagnostic[] = [];
    for (const dir of this.options.directories) {
      try {
        files.push(...listYamlFiles(dir));
      } catch (err) {
        missing.push({ file: dir, line: 1, column: 1, path: '', message: `cannot read directory: ${(err as Error).message}` });
      }
    }
    const loaded = loadFiles(files);
    const diagnostics = [...missing, ...loaded.diagnostics];
    if (diagnostics.length === 0) {
      this.engine.sync(loaded.resources);
      const commit = this.engine.commit();
      if (commit.conflicts.length === 0) {
        this.lastGood = loaded.resources;
        this.lastDiagnostics = [];
        const first = this.state.version === 0;
        if (!first && commit.changed.length === 0 && commit.removed.length === 0) {
          this.state = { ...this.state, files };
          return { applied: true, diagnostics: [] };
        }
        this.state = { version: this.state.version + 1, proxies: this.engine.proxies(), files };
        const update: PolicyUpdate = { state: this.state, changed: commit.changed, removed: commit.removed };
        this.emit('update', update);
        return { applied: true, diagnostics: [], update };
      }
      // Roll the engine back to the last good resources; its compiled policies were never replaced.
      this.engine.sync(this.lastGood);
      this.engine.commit();
      diagnostics.push(...commit.conflicts);
    }
    diagnostics.sort(compareDiagnostics);
    this.lastDiagnostics = diagnostics;
    this.report(diagnostics);
    return { applied: false, diagnostics };
  }

  private report(diagnostics: Diagnostic[]): void {
    // An 'error' event with no listener would throw; the diagnostics stay readable via errors().
    if (this.listenerCount('error') > 0) this.emit('error', diagnostics);
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      // Whatever a reload throws must not take the server down: the last good state stays.
      try {
        this.reload();
      } catch (err) {
        this.report([{ file: this.options.directories.join(', '), line: 1, column: 1, path: '', message: `reload failed: ${(err as Error).message}` }]);
      }
    }, this.debounceMs);
  }
}
