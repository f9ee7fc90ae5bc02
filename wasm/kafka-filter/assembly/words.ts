/**
 * A list of numbers in unmanaged memory, reused request after request: emptying it is a store,
 * and appending touches neither the allocator (once grown) nor the garbage collector.
 */
export class Words<T> {
  length: i32 = 0;
  private data: usize = heap.alloc(16 * sizeof<T>());
  private cap: i32 = 16;

  push(v: T): void {
    if (this.length == this.cap) {
      this.cap *= 2;
      this.data = heap.realloc(this.data, <usize>this.cap * sizeof<T>());
    }
    store<T>(this.data + (<usize>this.length << alignof<T>()), v);
    this.length++;
  }

  /** The element at i (0 <= i < length). */
  @operator("[]")
  get(i: i32): T {
    return load<T>(this.data + (<usize>i << alignof<T>()));
  }
}
