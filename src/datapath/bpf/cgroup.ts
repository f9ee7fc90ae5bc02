import * as fs from 'fs';
import * as path from 'path';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export function isCgroup2(dir: string): boolean {
  try {
    return fs.statfsSync(dir).type === CGROUP2_SUPER_MAGIC && fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** The first cgroup2 mount point (hybrid hosts mount it at /sys/fs/cgroup/unified). */
export function cgroup2Root(mounts = '/proc/self/mounts'): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(mounts, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    if (fsType === 'cgroup2' && mountPoint) return mountPoint.replace(/\\040/g, ' ');
  }
  return undefined;
}

/** Finds the directory of a cgroup id under root (breadth-first; undefined when gone). */
export function cgroupPathOf(id: number, root = cgroup2Root()): string | undefined {
  if (!root) return undefined;
  const queue = [root];
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    try {
      if (fs.statSync(dir).ino === id) return dir;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) queue.push(path.join(dir, e.name));
    } catch {
      // A cgroup removed while walking: skip it.
    }
  }
  return undefined;
}
