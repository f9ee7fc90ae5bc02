/**
 * Kafka wire encoding (requests and responses), written from Apache Kafka's message schemas
 * (clients/src/main/resources/common/message/*.json), independently of the filter.
 */

/** First flexible version of the API keys encoded here (99: none of their versions here is). */
const FLEXIBLE: Record<number, number> = { 0: 9, 1: 12, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4, 18: 3, 19: 5, 20: 4, 21: 2, 32: 4, 47: 99 };

export function flexible(key: number, version: number): boolean {
  return version >= (FLEXIBLE[key] ?? 99);
}

export class W {
  private readonly parts: Buffer[] = [];
  constructor(public flex = false) {}
  i8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeInt8(v);
    this.parts.push(b);
    return this;
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint | number): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  uvarint(v: number): this {
    const out: number[] = [];
    while (v >= 0x80) {
      out.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    out.push(v);
    return this.raw(Buffer.from(out));
  }
  len(n: number, long: boolean): this {
    if (this.flex) return this.uvarint(n + 1);
    return long ? this.i32(n) : this.i16(n);
  }
  str(s: string | null): this {
    if (s === null) return this.len(-1, false);
    const b = Buffer.from(s);
    return this.len(b.length, false).raw(b);
  }
  bytes(b: Buffer | null): this {
    if (b === null) return this.len(-1, true);
    return this.len(b.length, true).raw(b);
  }
  array<T>(items: readonly T[] | null, each: (w: this, item: T) => void): this {
    if (items === null) return this.flex ? this.uvarint(0) : this.i32(-1);
    if (this.flex) this.uvarint(items.length + 1);
    else this.i32(items.length);
    for (const it of items) each(this, it);
    return this;
  }
  tags(): this {
    return this.flex ? this.uvarint(0) : this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function frame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** A request frame: header v1 (v2 in flexible versions), then the body. */
export function request(key: number, version: number, corr: number, clientId: string | null, body: (w: W) => void): Buffer {
  const flex = flexible(key, version);
  const h = new W(false).i16(key).i16(version).i32(corr).str(clientId);
  const w = new W(flex);
  if (flex) w.tags();
  body(w);
  return frame(Buffer.concat([h.build(), w.build()]));
}

/** A response frame: header v0 (v1 in flexible versions). */
export function response(key: number, version: number, corr: number, body: (w: W) => void): Buffer {
  const flex = flexible(key, version) && key !== 18;
  const w = new W(flex).i32(corr);
  if (flex) w.tags();
  body(w);
  return frame(w.build());
}

export type Topics = ReadonlyArray<readonly [string, readonly number[]]>;
export const uuid = (n: number): Buffer => Buffer.alloc(16, n);

export function produce(version: number, corr: number, topics: Topics, acks = -1, clientId: string | null = 'cli'): Buffer {
  return request(0, version, corr, clientId, (w) => {
    if (version >= 3) w.str(null);
    w.i16(acks).i32(30000);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p).bytes(Buffer.from('records')).tags());
      w.tags();
    });
    w.tags();
  });
}

export function produceResponse(version: number, corr: number, topics: Topics, code: number): Buffer {
  return response(0, version, corr, (w) => {
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => {
        w.i32(p).i16(code).i64(-1);
        if (version >= 2) w.i64(-1);
        if (version >= 5) w.i64(-1);
        if (version >= 8) w.array([], () => {}).str(null);
        w.tags();
      });
      w.tags();
    });
    if (version >= 1) w.i32(0);
    w.tags();
  });
}

export function fetch(
  version: number,
  corr: number,
  topics: ReadonlyArray<readonly [string | Buffer, readonly number[]]>,
  clientId: string | null = 'cli',
): Buffer {
  return request(1, version, corr, clientId, (w) => {
    if (version <= 14) w.i32(-1);
    w.i32(500).i32(1);
    if (version >= 3) w.i32(1 << 20);
    if (version >= 4) w.i8(0);
    if (version >= 7) w.i32(0).i32(-1);
    w.array(topics, (w, [topic, parts]) => {
      if (typeof topic === 'string') w.str(topic);
      else w.raw(topic);
      w.array(parts, (w, p) => {
        w.i32(p);
        if (version >= 9) w.i32(-1);
        w.i64(0);
        if (version >= 12) w.i32(-1);
        if (version >= 5) w.i64(-1);
        w.i32(1 << 20);
        w.tags();
      });
      w.tags();
    });
    if (version >= 7) w.array([], () => {});
    if (version >= 11) w.str('');
    w.tags();
  });
}

export function fetchResponse(version: number, corr: number, topics: ReadonlyArray<readonly [string | Buffer, readonly number[]]>, code: number): Buffer {
  return response(1, version, corr, (w) => {
    if (version >= 1) w.i32(0);
    if (version >= 7) w.i16(0).i32(0);
    w.array(topics, (w, [topic, parts]) => {
      if (typeof topic === 'string') w.str(topic);
      else w.raw(topic);
      w.array(parts, (w, p) => {
        w.i32(p).i16(code).i64(-1);
        if (version >= 4) w.i64(-1);
        if (version >= 5) w.i64(-1);
        if (version >= 4) w.array([], () => {});
        if (version >= 11) w.i32(-1);
        w.bytes(Buffer.alloc(0));
        w.tags();
      });
      w.tags();
    });
    w.tags();
  });
}

export function listOffsets(version: number, corr: number, topics: Topics): Buffer {
  return request(2, version, corr, 'cli', (w) => {
    w.i32(-1);
    if (version >= 2) w.i8(0);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => {
        w.i32(p);
        if (version >= 4) w.i32(-1);
        w.i64(-1);
        if (version === 0) w.i32(1);
        w.tags();
      });
      w.tags();
    });
    w.tags();
  });
}

export function listOffsetsResponse(version: number, corr: number, topics: Topics, code: number): Buffer {
  return response(2, version, corr, (w) => {
    if (version >= 2) w.i32(0);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => {
        w.i32(p).i16(code);
        if (version === 0) w.array([], () => {});
        else w.i64(-1).i64(-1);
        if (version >= 4) w.i32(-1);
        w.tags();
      });
      w.tags();
    });
    w.tags();
  });
}

/** topics: names, null (all topics), or [id, name|null] pairs for v10+. */
export function metadata(
  version: number,
  corr: number,
  topics: ReadonlyArray<string | readonly [Buffer, string | null]> | null,
  clientId: string | null = 'cli',
): Buffer {
  return request(3, version, corr, clientId, (w) => {
    w.array(topics, (w, t) => {
      if (version >= 10) {
        const [id, name] = typeof t === 'string' ? [Buffer.alloc(16), t] : t;
        w.raw(id).str(name);
      } else w.str(t as string);
      w.tags();
    });
    if (version >= 4) w.i8(1);
    if (version >= 8 && version <= 10) w.i8(0);
    if (version >= 8) w.i8(0);
    w.tags();
  });
}

export function metadataResponse(version: number, corr: number, topicEntries: (w: W) => void): Buffer {
  return response(3, version, corr, (w) => {
    if (version >= 3) w.i32(0);
    w.array([[1, 'broker-1', 9092]] as const, (w, [id, host, port]) => {
      w.i32(id).str(host).i32(port);
      if (version >= 1) w.str(null);
      w.tags();
    });
    if (version >= 2) w.str('cluster-x');
    if (version >= 1) w.i32(1);
    topicEntries(w);
    if (version >= 8 && version <= 10) w.i32(-2147483648);
    w.tags();
  });
}

export function deniedMetadataTopics(version: number, topics: ReadonlyArray<string | readonly [Buffer, string | null]>, code: number): (w: W) => void {
  return (w) =>
    w.array(topics, (w, t) => {
      w.i16(code);
      if (version >= 10) {
        if (typeof t === 'string') w.str(t).raw(Buffer.alloc(16));
        else w.str(t[1]).raw(t[1] === null ? t[0] : Buffer.alloc(16));
      } else w.str(t as string);
      if (version >= 1) w.i8(0);
      w.array([], () => {});
      if (version >= 8) w.i32(-2147483648);
      w.tags();
    });
}

export function offsetCommit(version: number, corr: number, topics: Topics): Buffer {
  return request(8, version, corr, 'cli', (w) => {
    w.str('group-1');
    if (version >= 1) w.i32(1).str('member-1');
    if (version >= 7) w.str(null);
    if (version >= 2 && version <= 4) w.i64(-1);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => {
        w.i32(p).i64(42);
        if (version >= 6) w.i32(-1);
        if (version === 1) w.i64(-1);
        w.str('');
        w.tags();
      });
      w.tags();
    });
    w.tags();
  });
}

export function offsetCommitResponse(version: number, corr: number, topics: Topics, code: number): Buffer {
  return response(8, version, corr, (w) => {
    if (version >= 3) w.i32(0);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p).i16(code).tags());
      w.tags();
    });
    w.tags();
  });
}

export function offsetFetch(version: number, corr: number, topics: Topics | null): Buffer {
  return request(9, version, corr, 'cli', (w) => {
    w.str('group-1');
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p));
      w.tags();
    });
    if (version >= 7) w.i8(0);
    w.tags();
  });
}

export function offsetFetchResponse(version: number, corr: number, topics: Topics, code: number): Buffer {
  return response(9, version, corr, (w) => {
    if (version >= 3) w.i32(0);
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => {
        w.i32(p).i64(-1);
        if (version >= 5) w.i32(-1);
        w.str('').i16(code).tags();
      });
      w.tags();
    });
    if (version >= 2) w.i16(code);
    w.tags();
  });
}

export function findCoordinator(version: number, corr: number, keys: string[], keyType = 0): Buffer {
  return request(10, version, corr, 'cli', (w) => {
    if (version <= 3) {
      w.str(keys[0]);
      if (version >= 1) w.i8(keyType);
    } else w.i8(keyType).array(keys, (w, k) => w.str(k));
    w.tags();
  });
}

export function findCoordinatorResponse(version: number, corr: number, keys: string[], code: number): Buffer {
  return response(10, version, corr, (w) => {
    if (version === 0) w.i16(code).i32(-1).str('').i32(-1);
    else if (version <= 3) w.i32(0).i16(code).str(null).i32(-1).str('').i32(-1);
    else w.i32(0).array(keys, (w, k) => w.str(k).i32(-1).str('').i32(-1).i16(code).str(null).tags());
    w.tags();
  });
}

export function heartbeat(version: number, corr: number): Buffer {
  return request(12, version, corr, 'cli', (w) => {
    w.str('group-1').i32(1).str('member-1');
    if (version >= 3) w.str(null);
    w.tags();
  });
}

export function heartbeatResponse(version: number, corr: number, code: number): Buffer {
  return response(12, version, corr, (w) => {
    if (version >= 1) w.i32(0);
    w.i16(code).tags();
  });
}

export function joinGroup(version: number, corr: number): Buffer {
  return request(11, version, corr, 'cli', (w) => {
    w.str('group-1').i32(10000);
    if (version >= 1) w.i32(30000);
    w.str('');
    if (version >= 5) w.str(null);
    w.str('consumer');
    w.array(['range'], (w, n) =>
      w
        .str(n)
        .bytes(Buffer.from([0, 1]))
        .tags(),
    );
    if (version >= 8) w.str(null);
    w.tags();
  });
}

export function joinGroupResponse(version: number, corr: number, code: number): Buffer {
  return response(11, version, corr, (w) => {
    if (version >= 2) w.i32(0);
    w.i16(code).i32(-1);
    if (version >= 7) w.str(null).str(null);
    else w.str('');
    w.str('');
    if (version >= 9) w.i8(0);
    w.str('')
      .array([], () => {})
      .tags();
  });
}

export function syncGroup(version: number, corr: number): Buffer {
  return request(14, version, corr, 'cli', (w) => {
    w.str('group-1').i32(1).str('member-1');
    if (version >= 3) w.str(null);
    if (version >= 5) w.str('consumer').str('range');
    w.array([], () => {});
    w.tags();
  });
}

export function syncGroupResponse(version: number, corr: number, code: number): Buffer {
  return response(14, version, corr, (w) => {
    if (version >= 1) w.i32(0);
    w.i16(code);
    if (version >= 5) w.str(null).str(null);
    w.bytes(Buffer.alloc(0)).tags();
  });
}

export function leaveGroup(version: number, corr: number): Buffer {
  return request(13, version, corr, 'cli', (w) => {
    w.str('group-1');
    if (version <= 2) w.str('member-1');
    else w.array(['member-1'], (w, m) => w.str(m).str(null).tags());
    w.tags();
  });
}

export function leaveGroupResponse(version: number, corr: number, code: number): Buffer {
  return response(13, version, corr, (w) => {
    if (version >= 1) w.i32(0);
    w.i16(code);
    if (version >= 3) w.array([], () => {});
    w.tags();
  });
}

export function apiVersions(version: number, corr: number, clientId: string | null = 'cli'): Buffer {
  return request(18, version, corr, clientId, (w) => {
    if (version >= 3) w.str('meshaccel-test').str('1.0').tags();
  });
}

export function apiVersionsResponse(corr: number): Buffer {
  return response(18, 0, corr, (w) => w.i16(0).array([[0, 0, 9]] as const, (w, [k, a, b]) => w.i16(k).i16(a).i16(b)));
}

export function createTopics(version: number, corr: number, names: string[]): Buffer {
  return request(19, version, corr, 'cli', (w) => {
    w.array(names, (w, n) => {
      w.str(n).i32(1).i16(1);
      w.array([], () => {});
      w.array([['cleanup.policy', 'delete']] as const, (w, [k, v]) => w.str(k).str(v).tags());
      w.tags();
    });
    w.i32(1000);
    if (version >= 1) w.i8(0);
    w.tags();
  });
}

export function deleteTopics(version: number, corr: number, topics: ReadonlyArray<string | Buffer>): Buffer {
  return request(20, version, corr, 'cli', (w) => {
    if (version >= 6) w.array(topics, (w, t) => (typeof t === 'string' ? w.str(t).raw(Buffer.alloc(16)) : w.str(null).raw(t)).tags());
    else w.array(topics as string[], (w, t) => w.str(t));
    w.i32(1000);
    w.tags();
  });
}

export function deleteRecords(version: number, corr: number, topics: Topics): Buffer {
  return request(21, version, corr, 'cli', (w) => {
    w.array(topics, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p).i64(10).tags());
      w.tags();
    });
    w.i32(1000);
    w.tags();
  });
}

export function describeConfigs(version: number, corr: number, topic: string): Buffer {
  return request(32, version, corr, 'cli', (w) => {
    w.array([topic], (w, t) =>
      w
        .i8(2)
        .str(t)
        .array(null, () => {})
        .tags(),
    );
    if (version >= 1) w.i8(0);
    if (version >= 3) w.i8(0);
    w.tags();
  });
}

/** A carrier request the filter puts in a denied request's place. */
export function carrierApiVersions(corr: number): Buffer {
  return request(18, 0, corr, null, () => {});
}
