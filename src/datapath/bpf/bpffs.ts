import * as fs from 'fs';
import * as path from 'path';
import { execFileSync } from 'child_process';

const BPF_FS_MAGIC = 0xcafe4a11;

const KNOWN_FS: Record<number, string> = {
  0x62656572: 'sysfs',
  0x01021994: 'tmpfs',
  0xef53: 'ext4',
  0x794c7630: 'overlayfs',
  0x9123683e: 'btrfs',
  0x58465342: 'xfs',
  0x63677270: 'cgroup2',
};

export function isBpffs(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === BPF_FS_MAGIC;
  } catch {
    return false;
  }
}

/** A directory that cannot hold pins, with the reason in words a user can act on. */
export class NotBpffsError extends Error {
  constructor(readonly dir: string, reason: string) {
    super(`${dir} cannot hold BPF pins: ${reason}`);
    this.name = 'NotBpffsError';
  }
}

function fsName(dir: string): string {
  const type = fs.statfsSync(dir).type;
  return KNOWN_FS[type] ?? `filesystem 0x${type.toString(16)}`;
}

/** The deepest existing ancestor of `dir` (or `dir` itself). */
function existingAncestor(dir: string): string {
  let at = path.resolve(dir);
  while (!fs.existsSync(at)) {
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  return at;
}

/**
 * Creates a pin directory, only ever on bpffs. Checked first because `mkdir -p` under a
 * /sys/fs/bpf that has no bpffs mounted fails with ENOENT, and Node's recursive mkdirSync
 * retries that forever.
 */
export function makePinDir(dir: string): string {
  const at = existingAncestor(dir);
  if (!isBpffs(at)) {
    const hint = at === '/sys/fs/bpf' || at.startsWith('/sys/fs/bpf/') ? 'mount it with `mount -t bpf bpf /sys/fs/bpf`' : 'pin directories must be on a bpffs mount';
    throw new NotBpffsError(dir, `${at} is on ${fsName(at)}, not bpffs (${hint})`);
  }
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Makes `root` a bpffs mount point, mounting one when it is not (root only). A fresh machine
 * has /sys/fs/bpf as an empty sysfs directory with nothing mounted on it.
 */
export function mountBpffs(root: string, source = 'bpf'): string {
  if (isBpffs(root)) return root;
  if (!fs.existsSync(root)) {
    const parent = existingAncestor(root);
    if (fsName(parent) === 'sysfs') throw new NotBpffsError(root, `it does not exist and ${parent} is sysfs, where directories cannot be made`);
    fs.mkdirSync(root, { recursive: true });
  }
  try {
    execFileSync('mount', ['-t', 'bpf', source, root], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new NotBpffsError(root, `bpffs is not mounted there and \`mount -t bpf ${source} ${root}\` failed: ${stderr || (err as Error).message}`);
  }
  if (!isBpffs(root)) throw new NotBpffsError(root, 'mount reported success but no bpffs is there');
  return root;
}
