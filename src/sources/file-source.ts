import { EventEmitter } from 'events';
import * as fs from 'fs';
import type { CompiledProxyPolicy } from '../policy/compiled';
import type { Diagnostic } from '../policy/diagnostics';
import { listYamlFiles } from '../policy/loader';
import type { PolicyObject } from '../store/events';
import { PolicyStore, type ApplyResult, type PolicyState, type PolicyUpdate } from '../store/policy-store';
import type { PolicySource } from './policy-source';

export { nodeAffected, type PolicyState, type PolicyUpdate } from '../store/policy-store';

export interface FilePolicySourceOptions {
  /** Directories of policy and workload YAML (any mix of kinds; searched recursively). */
  directories: string[];
  /** Quiet period after the last file event before reloading; editors write in bursts. */
  debounceMs?: number;
  /** For a store of its own (when `store` is not given). */
  trustDomain?: string;
  /** Watch the directories; off for one-shot use (`policy compile`). */
  watch?: boolean;
  /** The store to feed; by default one of its own. */
  store?: PolicyStore;
  /** Tag of its events in the store (default `file`). */
  name?: string;
}

export type ReloadResult = ApplyResult;

export interface FilePolicySourceEvents {
  update: [PolicyUpdate];
  error: [Diagnostic[]];
}

/**
 * The embedded policy source: directories of multi-document YAML, watched. Every reload sends
 * all files to the store as one batch (`replace-all`), which the store validates and applies
 * as one set: only if every file passes does the change reach the engine, and `update` names
 * the proxies whose policy changed. Otherwise `error` carries file:line diagnostics and the last
 * good state of every file keeps serving — never a half-applied directory.
 */
export class FilePolicySource extends EventEmitter<FilePolicySourceEvents> implements PolicySource {
  readonly name: string;
  readonly store: PolicyStore;
  private readonly debounceMs: number;
  private readonly watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastDiagnostics: Diagnostic[] = [];
  private stopped = false;

  constructor(private readonly options: FilePolicySourceOptions) {
    super();
    this.name = options.name ?? 'file';
    this.store = options.store ?? new PolicyStore({ trustDomain: options.trustDomain });
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
    return this.store.current();
  }

  /** Diagnostics of the last failed reload; empty once a reload succeeds. */
  errors(): readonly Diagnostic[] {
    return this.lastDiagnostics;
  }

  /** The policy for a connecting node (node-id binding plus matching metadata bindings). */
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined {
    return this.store.policyForNode(nodeId, nodeMetadata);
  }

  /** Reads the directories and sends them to the store as one batch now. Synchronous, so no reload interleaves with another. */
  reload(): ReloadResult {
    const objects: PolicyObject[] = [];
    const unreadable: PolicyObject[] = [];
    for (const dir of this.options.directories) {
      let files: string[];
      try {
        files = listYamlFiles(dir);
      } catch (err) {
        unreadable.push({ id: dir, unreadable: `cannot read directory: ${(err as Error).message}` });
        continue;
      }
      for (const file of files) {
        try {
          objects.push({ id: file, text: fs.readFileSync(file, 'utf8') });
        } catch (err) {
          objects.push({ id: file, unreadable: `cannot read: ${(err as Error).message}` });
        }
      }
    }
    const result = this.store.apply([
      ...unreadable.map((o) => ({ type: 'upsert' as const, source: this.name, ...o })),
      { type: 'replace-all', source: this.name, objects },
    ]);
    if (result.applied) {
      this.lastDiagnostics = [];
      if (result.update) this.emit('update', result.update);
    } else {
      this.lastDiagnostics = result.diagnostics;
      this.report(result.diagnostics);
    }
    return result;
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
