import * as fs from 'fs';

/**
 * Reading a configuration file that someone else names: `policy check`, `envoy check`, the
 * policy loader behind `serve`. Only a regular file of bounded size is read. A FIFO would block
 * the read until a writer comes (forever, for a CLI), /dev/zero or a socket would never end, and a
 * huge file would hold the event loop for seconds while it is parsed.
 */

/**
 * Largest configuration file read. Kubernetes objects are at most about 1.5 MB (etcd's limit),
 * and real policy or bootstrap files are kilobytes; 4 MiB leaves room for a generated file of
 * many workloads.
 */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;

/** Why a file was not read; the message is written for the user who named it. */
export class InputFileError extends Error {
  override readonly name = 'InputFileError';
}

function kindOf(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function notRegular(stat: fs.Stats): InputFileError {
  return new InputFileError(`not a regular file (${kindOf(stat)}); only regular files are read`);
}

function tooLarge(size: number, maxBytes: number): InputFileError {
  return new InputFileError(`${size} bytes, over the ${maxBytes}-byte limit for one file`);
}

/** The UTF-8 text of a regular file of at most `maxBytes`; throws InputFileError otherwise. */
export function readInputFile(file: string, maxBytes: number = MAX_INPUT_BYTES): string {
  let fd: number;
  try {
    // stat first so that a FIFO is never opened; O_NONBLOCK in case one is swapped in meanwhile
    // (opening a FIFO for reading blocks until a writer appears, and with it a CLI hangs).
    const before = fs.statSync(file);
    if (!before.isFile()) throw notRegular(before);
    if (before.size > maxBytes) throw tooLarge(before.size, maxBytes);
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw new InputFileError((err as Error).message);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw notRegular(stat);
    if (stat.size > maxBytes) throw tooLarge(stat.size, maxBytes);
    // Read to the end, but never past the cap: the file may be growing while it is read.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new InputFileError(`grew past the ${maxBytes}-byte limit for one file while being read`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw new InputFileError((err as Error).message);
  } finally {
    fs.closeSync(fd);
  }
}
