/**
 * Child process for the datapath tests: an echo server, or an interactive client driven by
 * stdin lines, so a test can open connections, attach or detach in between, and keep using
 * the same connections. It runs inside the test cgroup (and a netns) because a socket belongs
 * to the cgroup of the process that creates it.
 *
 *   node peer.js server|sink HOST PORT -> {"event":"listening","port":N}
 *   node peer.js client HOST PORT     -> one JSON line per command:
 *     open N [LOCALPORT] | exchange SIZE [ID] | rr SIZE COUNT | halfclose SIZE | sink SIZE COUNT | pipeline SIZE COUNT | close | quit
 */
import * as net from 'net';
import * as crypto from 'crypto';
import * as readline from 'readline';

function out(v: unknown): void {
  process.stdout.write(JSON.stringify(v) + '\n');
}

function server(host: string, port: number, sink: boolean): void {
  const srv = net.createServer((s) => {
    s.on('error', () => s.destroy());
    if (sink) {
      // Sink: stays silent until the client's FIN, then answers with the sha256 of all it
      // read, so the client's writes form one long one-way run.
      const h = crypto.createHash('sha256');
      s.on('data', (d) => h.update(d));
      s.on('end', () => s.end(h.digest('hex')));
      return;
    }
    // Echo, and answer a half-close with our own FIN once everything was echoed.
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  });
  srv.listen(port, host, () => out({ event: 'listening', port: (srv.address() as net.AddressInfo).port }));
}

/** Buffers a connection's incoming bytes so exchanges can wait for an exact count. */
class Conn {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: (() => void) | undefined;
  ended = false;
  error: Error | undefined;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.length;
      this.waiter?.();
    });
    sock.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
    sock.on('error', (e) => {
      this.error = e;
      this.waiter?.();
    });
  }

  async read(n: number): Promise<Buffer> {
    while (this.have < n) {
      if (this.ended || this.error) throw new Error(`connection ended after ${this.have} of ${n} bytes${this.error ? `: ${this.error.message}` : ''}`);
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = undefined;
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.have = all.length - n;
    return all.subarray(0, n);
  }

  async waitEnd(): Promise<void> {
    while (!this.ended) {
      if (this.error) throw this.error;
      await new Promise<void>((r) => (this.waiter = r));
      this.waiter = undefined;
    }
  }
}

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

async function exchange(c: Conn, size: number): Promise<boolean> {
  const payload = crypto.randomBytes(size);
  c.sock.write(payload);
  const back = await c.read(size);
  return sha(back) === sha(payload);
}

function client(host: string, port: number): void {
  let conns: Conn[] = [];
  const rl = readline.createInterface({ input: process.stdin });
  const queue: string[] = [];
  let busy = false;

  const run = async (line: string): Promise<void> => {
    const [cmd, a, b] = line.trim().split(/\s+/);
    const started = Date.now();
    try {
      if (cmd === 'open') {
        const opened = await Promise.all(
          Array.from(
            { length: Number(a) },
            () =>
              new Promise<Conn>((resolve, reject) => {
                const s = net.connect({ host, port, localPort: b === undefined ? undefined : Number(b) }, () => resolve(new Conn(s)));
                s.once('error', reject);
              }),
          ),
        );
        conns.push(...opened);
        out({ ok: true, localPorts: opened.map((c) => c.sock.localPort) });
      } else if (cmd === 'exchange') {
        const size = Number(a);
        const targets = b === undefined ? conns : [conns[Number(b)]];
        const results = await Promise.all(targets.map((c) => exchange(c, size)));
        out({ ok: results.every((r) => r), mismatches: results.filter((r) => !r).length, ms: Date.now() - started });
      } else if (cmd === 'rr') {
        // `rr SIZE COUNT` on an echo server: COUNT request/response round trips of SIZE bytes per
        // connection, each waiting for its whole echo before the next request.
        const [size, count] = [Number(a), Number(b)];
        const results = await Promise.all(
          conns.map(async (c) => {
            for (let i = 0; i < count; i++) if (!(await exchange(c, size))) return false;
            return true;
          }),
        );
        out({ ok: results.every((r) => r), mismatches: results.filter((r) => !r).length, ms: Date.now() - started });
      } else if (cmd === 'halfclose') {
        // Send a last payload and our FIN; the echo server must return the payload and then
        // its own FIN, with nothing lost across the half-closed state.
        const size = Number(a);
        const results = await Promise.all(
          conns.map(async (c) => {
            const payload = crypto.randomBytes(size);
            c.sock.end(payload);
            const back = await c.read(size);
            await c.waitEnd();
            return sha(back) === sha(payload);
          }),
        );
        out({ ok: results.every((r) => r), mismatches: results.filter((r) => !r).length });
      } else if (cmd === 'sink') {
        // `sink SIZE COUNT` on a sink server: COUNT separate writes of SIZE bytes (each waits
        // for its write callback, so each is its own sendmsg), FIN, then compare hashes.
        const [size, count] = [Number(a), Number(b)];
        const results = await Promise.all(
          conns.map(async (c) => {
            const h = crypto.createHash('sha256');
            for (let i = 0; i < count; i++) {
              const chunk = crypto.randomBytes(size);
              h.update(chunk);
              await new Promise<void>((r, j) => c.sock.write(chunk, (e) => (e ? j(e) : r())));
            }
            c.sock.end();
            const back = await c.read(64);
            return back.toString() === h.digest('hex');
          }),
        );
        out({ ok: results.every((r) => r), mismatches: results.filter((r) => !r).length, ms: Date.now() - started });
      } else if (cmd === 'pipeline') {
        // `pipeline SIZE COUNT` on an echo server: COUNT writes of 1..SIZE bytes, each its own
        // sendmsg, sent back to back while the echoes stream in, so both ends send at once
        // across hand-offs and sockhash leaves; the echo must match byte for byte.
        const [size, count] = [Number(a), Number(b)];
        const results = await Promise.all(
          conns.map(async (c) => {
            const parts = Array.from({ length: count }, () => crypto.randomBytes(1 + crypto.randomInt(size)));
            const payload = Buffer.concat(parts);
            const echoed = c.read(payload.length);
            for (const p of parts) await new Promise<void>((r, j) => c.sock.write(p, (e) => (e ? j(e) : r())));
            return sha(await echoed) === sha(payload);
          }),
        );
        out({ ok: results.every((r) => r), mismatches: results.filter((r) => !r).length, ms: Date.now() - started });
      } else if (cmd === 'close') {
        await Promise.all(conns.map((c) => new Promise<void>((r) => (c.sock.destroyed ? r() : (c.sock.once('close', () => r()), c.sock.destroy())))));
        conns = [];
        out({ ok: true });
      } else if (cmd === 'quit') {
        out({ ok: true });
        process.exit(0);
      } else {
        out({ ok: false, error: `unknown command ${cmd}` });
      }
    } catch (err) {
      out({ ok: false, error: (err as Error).message });
    }
  };

  rl.on('line', (line) => {
    queue.push(line);
    const pump = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (queue.length > 0) await run(queue.shift() as string);
      busy = false;
    };
    void pump();
  });
  rl.on('close', () => process.exit(0));
}

const [role, host, port] = process.argv.slice(2);
if (role === 'server' || role === 'sink') server(host, Number(port), role === 'sink');
else if (role === 'client') client(host, Number(port));
else {
  process.stderr.write('usage: peer.js server|client HOST PORT\n');
  process.exit(2);
}
