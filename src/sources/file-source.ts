import { EventEmitter } from 'events';
import * as fs from 'fs';
import type { CompiledProxyPolicy } from '../policy/compiled';
import type { Diagnostic } from '../policy/diagnostics';
import { listYamlFiles } from '../policy/loader';
import type { PolicyObject } from '../store/events';
import { PolicyStore, type ApplyResult, type PolicyState, type PolicyUpdate } from '../store/policy-store';
import type { ValidationPool } from '../store/validation-pool';
import type { PolicySource } from './policy-source';

export { nodeAffected, type PolicyState, type PolicyUpdate } from '../store/policy-store';

export interface FilePolicySourceOptions {
  /** Directories of policy and workload YAML (any mix of kinds; searched recursively). */
  directories: string[];
  /** Quiet period after the last file event before reloading; editors write in bursts. */
  debounceMs?: number;
  /**
   * A changed file is read only once its size and mtime have stayed the same for this long, so a
   * file being written (copied, truncated and rewritten, uploaded) is not served half-written.
   * Default 200 ms. Writing a file elsewhere and renaming it into place is atomic and always safe.
   */
  settleMs?: number;
  /**
   * A file that shrinks to nothing or loses most of its documents is suspect (a truncated write,
   * an editor crash): its last good content keeps serving and the change is reported. Unchanged
   * for this long, it is accepted as meant. Default 30 s. Deleting a file is never suspect.
   */
  suspectHoldMs?: number;
  /**
   * Every so often the directories are rescanned whatever the watch reported: a lost or replaced
   * directory gets a new watch and a missed change is loaded. Default 5 s; 0 turns it off.
   */
  rescanMs?: number;
  /** For a store of its own (when `store` is not given). */
  trustDomain?: string;
  /** Watch the directories; off for one-shot use (`policy compile`). */
  watch?: boolean;
  /** The store to feed; by default one of its own. */
  store?: PolicyStore;
  /** Tag of its events in the store (default `file`). */
  name?: string;
  /** Where lost and re-created watches are reported. */
  log?: { warn(message: string): void };
}

export type ReloadResult = ApplyResult;

export interface FilePolicySourceEvents {
  update: [PolicyUpdate];
  error: [Diagnostic[]];
}

interface WatchedDirectory {
  watcher?: fs.FSWatcher;
  /** The directory the watch is on (a replaced directory is a new inode under the same path). */
  inode?: string;
}

const noop = (): void => undefined;

const dirDiagnostic = (dir: string, message: string): Diagnostic => ({ file: dir, line: 1, column: 1, path: '', message });

function inodeOf(dir: string): string | undefined {
  try {
    const st = fs.statSync(dir);
    return st.isDirectory() ? `${st.dev}:${st.ino}` : undefined;
  } catch {
    return undefined;
  }
}

function statKey(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return 'missing';
  }
}

/**
 * Why a new text of a file looks like a damaged write rather than an edit: it is empty, or it
 * has lost most of its documents. Counting needs a parse (in a worker), so it runs only when the
 * text shrank to less than half.
 */
async function suspicion(previous: string, text: string, validation: ValidationPool): Promise<string | undefined> {
  if (text.length * 2 >= previous.length) return undefined;
  const count = async (t: string): Promise<number | undefined> => {
    const r = await validation.countDocuments(t);
    return r.ok ? r.value : undefined;
  };
  const before = (await count(previous)) ?? 0;
  if (before === 0) return undefined;
  const after = await count(text);
  if (after === undefined) return undefined;
  if (after === 0) return `the file shrank to no documents (it had ${before})`;
  if (before >= 2 && after * 2 < before) return `the file lost ${before - after} of its ${before} documents`;
  return undefined;
}

/**
 * The embedded policy source: directories of multi-document YAML, watched. Every reload sends
 * all files to the store as one batch (`replace-all`), which the store validates and applies
 * as one set: only if every file passes does the change reach the engine, and `update` names
 * the proxies whose policy changed. Otherwise `error` carries file:line diagnostics and the last
 * good state of every file keeps serving — never a half-applied directory. Files still being
 * written are waited for, suspect shrinks are held, and lost watches are re-created.
 */
export class FilePolicySource extends EventEmitter<FilePolicySourceEvents> implements PolicySource {
  readonly name: string;
  readonly store: PolicyStore;
  private readonly debounceMs: number;
  private readonly settleMs: number;
  private readonly suspectHoldMs: number;
  private readonly rescanMs: number;
  private readonly watched = new Map<string, WatchedDirectory>();
  private timer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  /** File stats when the settle window opened; a reload waits until they stop changing. */
  private settling: string | undefined;
  /** File stats the last reload read, to notice changes a watch missed. */
  private loaded: string | undefined;
  /** The text the store last accepted, per file. */
  private readonly accepted = new Map<string, string>();
  /** Suspect texts held back, per file, since when. */
  private readonly suspects = new Map<string, { text: string; since: number }>();
  private lastDiagnostics: Diagnostic[] = [];
  private stopped = false;
  /** The reload running now; another waits for it. */
  private reloading: Promise<void> | undefined;
  /** A change was noticed while a reload ran: one more follows it. */
  private reloadAgain = false;

  constructor(private readonly options: FilePolicySourceOptions) {
    super();
    this.name = options.name ?? 'file';
    this.store = options.store ?? new PolicyStore({ trustDomain: options.trustDomain });
    this.debounceMs = options.debounceMs ?? 100;
    this.settleMs = options.settleMs ?? 200;
    this.suspectHoldMs = options.suspectHoldMs ?? 30_000;
    this.rescanMs = options.rescanMs ?? 5_000;
  }

  /** Loads once and starts watching. The result says whether the initial load was applied. */
  async start(): Promise<ReloadResult> {
    const result = await this.reload();
    if (this.options.watch !== false) {
      for (const dir of this.options.directories) this.watchDirectory(dir);
      if (this.rescanMs > 0) {
        this.rescanTimer = setInterval(() => this.rescan(), this.rescanMs);
        this.rescanTimer.unref();
      }
    }
    return result;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.holdTimer) clearTimeout(this.holdTimer);
    for (const w of this.watched.values()) w.watcher?.close();
    this.watched.clear();
  }

  current(): PolicyState {
    return this.store.current();
  }

  /** Diagnostics of the last reload that was rejected or held a suspect file; empty once one succeeds cleanly. */
  errors(): readonly Diagnostic[] {
    return this.lastDiagnostics;
  }

  /** The policy for a connecting node (node-id binding plus matching metadata bindings). */
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined {
    return this.store.policyForNode(nodeId, nodeMetadata);
  }

  /** Reads the directories and sends them to the store as one batch, after the reload running now if any: reloads never interleave. */
  reload(): Promise<ReloadResult> {
    const run = (this.reloading ?? Promise.resolve()).then(
      () => this.reloadNow(),
      () => this.reloadNow(),
    );
    const settled = run.then(noop, noop).then(() => {
      if (this.reloading !== settled) return;
      this.reloading = undefined;
      if (!this.reloadAgain) return;
      this.reloadAgain = false;
      this.schedule();
    });
    this.reloading = settled;
    return run;
  }

  private async reloadNow(): Promise<ReloadResult> {
    const objects: PolicyObject[] = [];
    const unreadable: PolicyObject[] = [];
    const held: Diagnostic[] = [];
    const now = Date.now();
    const seen = new Set<string>();
    this.loaded = this.fingerprint();
    for (const dir of this.options.directories) {
      let files: string[];
      try {
        files = listYamlFiles(dir);
      } catch (err) {
        unreadable.push({ id: dir, unreadable: `cannot read directory: ${(err as Error).message}` });
        continue;
      }
      for (const file of files) {
        seen.add(file);
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (err) {
          objects.push({ id: file, unreadable: `cannot read: ${(err as Error).message}` });
          continue;
        }
        const previous = this.accepted.get(file);
        const why = previous === undefined ? undefined : await suspicion(previous, text, this.store.validation);
        const suspect = this.suspects.get(file);
        if (previous !== undefined && why !== undefined && (suspect?.text !== text || now - suspect.since < this.suspectHoldMs)) {
          if (suspect?.text !== text) this.suspects.set(file, { text, since: now });
          const since = this.suspects.get(file)?.since ?? now;
          held.push(
            dirDiagnostic(
              file,
              `suspect change held, its last good content keeps serving: ${why}; unchanged for ${Math.round(this.suspectHoldMs / 1000)} s it is accepted (write files by renaming a complete copy into place)`,
            ),
          );
          this.holdUntil(since + this.suspectHoldMs);
          objects.push({ id: file, text: previous });
          continue;
        }
        this.suspects.delete(file);
        objects.push({ id: file, text });
      }
    }
    for (const file of this.suspects.keys()) if (!seen.has(file)) this.suspects.delete(file);
    const result = await this.store.apply([
      ...unreadable.map((o) => ({ type: 'upsert' as const, source: this.name, ...o })),
      { type: 'replace-all', source: this.name, objects },
    ]);
    if (result.applied) {
      this.accepted.clear();
      for (const o of objects) if ('text' in o) this.accepted.set(o.id, o.text);
      this.lastDiagnostics = held;
      if (result.update) this.emit('update', result.update);
      if (held.length > 0) this.report(held);
    } else {
      this.lastDiagnostics = [...result.diagnostics, ...held];
      this.report(this.lastDiagnostics);
    }
    return result;
  }

  /**
   * The texts the files had when last accepted, by an earlier run (file → text), for the first
   * reload to judge suspect shrinks against as later reloads do: a file truncated while the
   * server was down is held like one truncated while it runs. Only before the first reload.
   */
  assumeAccepted(texts: ReadonlyMap<string, string>): void {
    if (this.loaded !== undefined) return;
    for (const [file, text] of texts) this.accepted.set(file, text);
  }

  /**
   * Sends a set of texts kept from an earlier run (file → text, as a reload would have read them)
   * to the store as this source's complete set, for when the files on disk fail at start-up. The
   * store validates it like any reload. Applied, it is what later reloads compare against (a
   * suspect shrink is held against it) and what they replace once the files pass; the
   * diagnostics of the files on disk stay in errors().
   */
  async restore(texts: ReadonlyMap<string, string>): Promise<ReloadResult> {
    const objects: PolicyObject[] = [...texts].map(([id, text]) => ({ id, text }));
    const result = await this.store.apply([{ type: 'replace-all', source: this.name, objects }]);
    if (result.applied) {
      this.accepted.clear();
      for (const [file, text] of texts) this.accepted.set(file, text);
      if (result.update) this.emit('update', result.update);
    }
    return result;
  }

  private report(diagnostics: Diagnostic[]): void {
    // An 'error' event with no listener would throw; the diagnostics stay readable via errors().
    if (this.listenerCount('error') > 0) this.emit('error', diagnostics);
  }

  private warn(message: string): void {
    this.options.log?.warn(`policy source: ${message}`);
  }

  private watchDirectory(dir: string): void {
    const entry: WatchedDirectory = { inode: inodeOf(dir) };
    this.watched.set(dir, entry);
    if (entry.inode === undefined) {
      this.report([dirDiagnostic(dir, 'cannot watch: no such directory (watched again once it exists)')]);
      return;
    }
    try {
      const w = fs.watch(dir, { recursive: true }, () => this.schedule());
      w.on('error', (err) => {
        this.warn(`watch of ${dir} lost (${err.message}); watching it again`);
        this.report([dirDiagnostic(dir, `watch failed: ${err.message}`)]);
        w.close();
        if (entry.watcher === w) entry.watcher = undefined;
        this.checkWatches();
      });
      entry.watcher = w;
    } catch (err) {
      entry.inode = undefined;
      this.report([dirDiagnostic(dir, `cannot watch: ${(err as Error).message}`)]);
    }
  }

  /** Re-creates the watch of a directory that was deleted, recreated or replaced by a rename. */
  private checkWatches(): void {
    if (this.stopped) return;
    for (const dir of this.options.directories) {
      const entry = this.watched.get(dir) ?? {};
      const inode = inodeOf(dir);
      if (entry.watcher && entry.inode === inode) continue;
      if (!entry.watcher && inode === undefined) continue; // still gone; the reload reported it
      if (entry.watcher) {
        this.warn(
          inode === undefined
            ? `watch of ${dir} lost: the directory is gone (watched again once it is back)`
            : `watch of ${dir} lost: the directory was replaced; watching the new one`,
        );
        entry.watcher.close();
        entry.watcher = undefined;
      } else this.warn(`watching ${dir} again`);
      if (inode !== undefined) this.watchDirectory(dir);
      else this.watched.set(dir, {});
      this.schedule();
    }
  }

  /** What a reload would read: every file's size, mtime and inode, and unreadable directories. */
  private fingerprint(): string {
    const parts: string[] = [];
    for (const dir of this.options.directories) {
      let files: string[];
      try {
        files = listYamlFiles(dir);
      } catch {
        parts.push(`${dir}\0unreadable`);
        continue;
      }
      for (const f of files) parts.push(`${f}\0${statKey(f)}`);
    }
    return parts.join('\n');
  }

  private rescan(): void {
    if (this.stopped) return;
    this.checkWatches();
    if (this.timer === undefined && this.fingerprint() !== this.loaded) this.schedule();
  }

  private holdUntil(at: number): void {
    if (this.holdTimer || this.options.watch === false || this.stopped) return;
    this.holdTimer = setTimeout(
      () => {
        this.holdTimer = undefined;
        this.schedule();
      },
      Math.max(0, at - Date.now()) + 10,
    );
    this.holdTimer.unref();
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.settling = undefined;
    this.timer = setTimeout(() => this.settle(), this.debounceMs);
  }

  /** Reloads once the files have stopped changing for `settleMs`. */
  private settle(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const now = this.fingerprint();
    if (this.settleMs > 0 && now !== this.settling) {
      this.settling = now;
      this.timer = setTimeout(() => this.settle(), this.settleMs);
      return;
    }
    this.settling = undefined;
    if (this.reloading) {
      // Read once the running reload is done, so it sees the files as they are then.
      this.reloadAgain = true;
      return;
    }
    // Whatever a reload throws must not take the server down: the last good state stays.
    this.reload().catch((err: Error) => this.report([dirDiagnostic(this.options.directories.join(', '), `reload failed: ${err.message}`)]));
  }
}
