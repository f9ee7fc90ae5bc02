import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics';
import { loadTexts, type LoadResult } from '../policy/loader';

/**
 * The last good configuration, kept across restarts. Whenever the policy files pass as a set,
 * their exact texts are written to a state directory; when `serve` starts and the files on disk
 * do not pass (one invalid, unreadable or half-written), the persisted texts are validated and
 * compiled instead, so proxies keep the policy they had rather than an empty configuration.
 *
 * Texts are kept, not the compiled policy: they are re-validated by the running version's
 * loader, so a persisted set is enforced exactly as written or refused like any file, and no
 * compiled format has to stay readable across upgrades.
 */

/** Bumped if the record's shape changes; a record of another format is ignored, never misread. */
const FORMAT = 'meshaccel.last-good/v1';
/** A state file larger than this is neither written nor read (a set of files at their 4 MiB cap is far below). */
export const MAX_STATE_BYTES = 64 * 1024 * 1024;

export interface PersistedFile {
  file: string;
  sha256: string;
  text: string;
}

export interface LastGoodRecord {
  format: typeof FORMAT;
  /** The watched directories the files came from (absolute), as `serve` was started. */
  directories: string[];
  /** When this set was saved (after it passed). */
  savedAt: string;
  /** Digest of all files (names and digests), to skip rewriting an unchanged set. */
  digest: string;
  files: PersistedFile[];
}

/** A persisted set, validated again now: its resources, or why it cannot stand in. */
export type PersistedLoad = { ok: true; record: LastGoodRecord; loaded: LoadResult } | { ok: false; reason: string };

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

function setDigest(files: readonly { file: string; sha256: string }[]): string {
  return sha256(files.map((f) => `${f.file}\0${f.sha256}`).join('\n'));
}

/**
 * `$XDG_STATE_HOME/meshaccel`; for root without it `/var/lib/meshaccel` (the FHS place for a
 * daemon's state); otherwise `~/.local/state/meshaccel` (XDG's default); with no home directory
 * at all, a per-user directory under the system's tmp dir (which a reboot may clear).
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1): string {
  if (env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME)) return path.join(env.XDG_STATE_HOME, 'meshaccel');
  if (uid === 0) return '/var/lib/meshaccel';
  const home = env.HOME || os.homedir();
  if (home && path.isAbsolute(home)) return path.join(home, '.local', 'state', 'meshaccel');
  return path.join(os.tmpdir(), `meshaccel-${uid}`);
}

export interface LastGoodStoreOptions {
  stateDir: string;
  /** The watched directories; one state file per set, so two servers on other dirs never mix. */
  directories: readonly string[];
}

export class LastGoodStore {
  readonly file: string;
  private readonly directories: string[];
  private lastDigest: string | undefined;

  constructor(private readonly options: LastGoodStoreOptions) {
    this.directories = options.directories.map((d) => path.resolve(d));
    const key = sha256(JSON.stringify(this.directories)).slice(0, 16);
    this.file = path.join(options.stateDir, `last-good-${key}.json`);
  }

  /**
   * Records a set that passed (file name → the exact text validated). Written atomically (temp
   * file, fsync, rename), so a crash leaves the previous record or the new one, never half of
   * one. Returns why it could not be written, or undefined; never throws, since failing to
   * persist must not fail a reload that has already been applied.
   */
  save(texts: ReadonlyMap<string, string>): string | undefined {
    const files: PersistedFile[] = [...texts].map(([file, text]) => ({ file, sha256: sha256(text), text }));
    const digest = setDigest(files);
    if (digest === this.lastDigest) return undefined;
    const record: LastGoodRecord = { format: FORMAT, directories: this.directories, savedAt: new Date().toISOString(), digest, files };
    const body = JSON.stringify(record);
    if (Buffer.byteLength(body) > MAX_STATE_BYTES) return `not persisted: the set is over the ${MAX_STATE_BYTES}-byte state limit`;
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      fs.mkdirSync(this.options.stateDir, { recursive: true, mode: 0o700 });
      const fd = fs.openSync(tmp, 'w', 0o600);
      try {
        fs.writeFileSync(fd, body);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, this.file);
      syncDirectory(this.options.stateDir);
    } catch (err) {
      try {
        fs.rmSync(tmp, { force: true });
      } catch {
        // Whatever stands at the temp path is not ours to remove.
      }
      return `not persisted to ${this.file}: ${(err as Error).message}`;
    }
    this.lastDigest = digest;
    return undefined;
  }

  /** The persisted record, checked for shape and integrity; a reason when there is none to use. */
  read(): { record: LastGoodRecord } | { reason: string } {
    let body: string;
    try {
      const stat = fs.statSync(this.file);
      if (!stat.isFile()) return { reason: `${this.file} is not a regular file` };
      if (stat.size > MAX_STATE_BYTES) return { reason: `${this.file} is over the ${MAX_STATE_BYTES}-byte state limit` };
      body = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { reason: code === 'ENOENT' ? `no configuration persisted in ${this.file}` : `cannot read ${this.file}: ${(err as Error).message}` };
    }
    let record: LastGoodRecord;
    try {
      record = JSON.parse(body) as LastGoodRecord;
    } catch (err) {
      return { reason: `${this.file} is corrupt: ${(err as Error).message}` };
    }
    const problem = checkRecord(record, this.directories);
    if (problem) return { reason: `${this.file} ${problem}` };
    this.lastDigest = record.digest;
    return { record };
  }

  /** The persisted set validated and loaded by this version's loader, for use when the files on disk fail. */
  load(): PersistedLoad {
    const read = this.read();
    if ('reason' in read) return { ok: false, reason: read.reason };
    const texts = new Map(read.record.files.map((f) => [f.file, f.text]));
    const loaded = loadTexts(texts);
    if (loaded.diagnostics.length > 0) {
      return {
        ok: false,
        reason: `the configuration persisted at ${read.record.savedAt} no longer passes: ${loaded.diagnostics.slice(0, 3).map(formatDiagnostic).join('; ')}`,
      };
    }
    return { ok: true, record: read.record, loaded };
  }
}

function checkRecord(record: LastGoodRecord, directories: readonly string[]): string | undefined {
  if (!record || typeof record !== 'object' || record.format !== FORMAT) return `is not a ${FORMAT} record`;
  if (!Array.isArray(record.files) || !Array.isArray(record.directories) || typeof record.savedAt !== 'string' || typeof record.digest !== 'string')
    return 'is corrupt: fields missing';
  if (JSON.stringify(record.directories) !== JSON.stringify(directories)) return `was persisted for other directories (${record.directories.join(', ')})`;
  for (const f of record.files) {
    if (!f || typeof f.file !== 'string' || typeof f.text !== 'string' || typeof f.sha256 !== 'string') return 'is corrupt: a file entry is malformed';
    if (sha256(f.text) !== f.sha256) return `is corrupt: the text of ${f.file} does not match its digest`;
  }
  if (setDigest(record.files) !== record.digest) return 'is corrupt: the file list does not match its digest';
  return undefined;
}

/** Makes a rename durable: without it a power loss can forget the new directory entry. */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Not every file system lets a directory be opened or synced; the rename itself is atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** The line `serve` logs when it starts on a persisted set, saying what and why. */
export function describePersistedUse(record: LastGoodRecord, failures: readonly Diagnostic[]): string {
  const why =
    failures.length === 0
      ? 'the files on disk did not load'
      : `the files on disk fail (${failures.length} error${failures.length === 1 ? '' : 's'}; first: ${formatDiagnostic(failures[0])})`;
  return `serving the last good configuration persisted at ${record.savedAt} (${record.files.length} file${record.files.length === 1 ? '' : 's'}) because ${why}; it is replaced as soon as the files pass again`;
}
