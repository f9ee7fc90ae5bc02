/** A growable byte buffer in unmanaged memory. */
export class Bytes {
  ptr: usize = 0;
  len: usize = 0;
  cap: usize = 0;

  reserve(n: usize): void {
    if (this.len + n <= this.cap) return;
    let c: usize = this.cap < 256 ? 256 : this.cap * 2;
    while (c < this.len + n) c *= 2;
    this.ptr = this.ptr == 0 ? heap.alloc(c) : heap.realloc(this.ptr, c);
    this.cap = c;
  }

  append(src: usize, n: usize): void {
    if (n == 0) return;
    this.reserve(n);
    memory.copy(this.ptr + this.len, src, n);
    this.len += n;
  }

  /** Drops the first n bytes. */
  consume(n: usize): void {
    if (n >= this.len) {
      this.len = 0;
      return;
    }
    memory.copy(this.ptr, this.ptr + n, this.len - n);
    this.len -= n;
  }

  /** Gives back memory a large frame needed once it has been forwarded. */
  shrink(): void {
    if (this.len == 0 && this.cap > 65536) {
      heap.free(this.ptr);
      this.ptr = 0;
      this.cap = 0;
    }
  }

  free(): void {
    if (this.ptr != 0) heap.free(this.ptr);
    this.ptr = 0;
    this.len = 0;
    this.cap = 0;
  }
}

/** A copy of writer output, owned by whoever keeps it. */
export function copyOf(src: usize, n: usize): usize {
  const q = heap.alloc(n == 0 ? 1 : n);
  memory.copy(q, src, n);
  return q;
}
