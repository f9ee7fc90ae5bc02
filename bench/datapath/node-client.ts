/**
 * The Node side of `make bench-datapath`, speaking netbench's protocol (8-byte header: shape,
 * size, little-endian u32s), so the same C server answers both clients.
 *   node node-client.js rr HOST PORT SIZE SECONDS     -> {"ops":..,"p50us":..,"p99us":..}
 *   node node-client.js bulk HOST PORT WRITE SECONDS  -> {"MBps":..}
 */
import * as net from 'net';

const [shape, host, portText, sizeText, secondsText] = process.argv.slice(2);
const port = Number(portText);
const size = Number(sizeText);
const seconds = Number(secondsText);

function header(kind: number): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(kind, 0);
  h.writeUInt32LE(size, 4);
  return h;
}

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

async function rr(): Promise<void> {
  const s = await connect();
  s.write(header(1));
  const payload = Buffer.alloc(size, 7);
  const lat: number[] = [];
  let pending = 0;
  let warm = 200;
  let sentAt = 0n;
  let start = 0n;
  let ops = 0;
  const end = (): void => {
    const el = Number(process.hrtime.bigint() - start) / 1e9;
    lat.sort((a, b) => a - b);
    console.log(JSON.stringify({ ops: ops / el, p50us: lat[Math.floor(lat.length / 2)], p99us: lat[Math.floor(lat.length * 0.99)] }));
    s.destroy();
  };
  const send = (): void => {
    pending = size;
    sentAt = process.hrtime.bigint();
    s.write(payload);
  };
  s.on('data', (d: Buffer) => {
    pending -= d.length;
    if (pending > 0) return;
    const now = process.hrtime.bigint();
    if (warm > 0) {
      if (--warm === 0) start = now;
    } else {
      ops++;
      lat.push(Number(now - sentAt) / 1000);
      if (Number(now - start) / 1e9 >= seconds) return end();
    }
    send();
  });
  send();
}

async function bulk(): Promise<void> {
  const s = await connect();
  s.write(header(2));
  const chunk = Buffer.alloc(size, 7);
  let sent = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  const ack = new Promise<bigint>((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      const all = Buffer.concat(parts);
      if (all.length < 8) reject(new Error('no ack'));
      else resolve(all.readBigUInt64LE(0));
    });
  });
  // Write as fast as the socket drains; each write() is one sendmsg of `size` bytes.
  for (;;) {
    let ok = true;
    for (let i = 0; i < 16 && ok; i++) {
      ok = s.write(chunk);
      sent += size;
    }
    if (process.hrtime.bigint() >= deadline) break;
    if (!ok) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  const acked = await ack;
  const el = Number(process.hrtime.bigint() - start) / 1e9;
  if (acked !== BigInt(sent)) throw new Error(`bulk mismatch: sent ${sent}, acked ${acked}`);
  console.log(JSON.stringify({ MBps: sent / el / 1e6 }));
}

(shape === 'rr' ? rr() : shape === 'bulk' ? bulk() : Promise.reject(new Error('usage: node-client.js rr|bulk HOST PORT SIZE SECONDS'))).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
