/**
 * Envoy matches `safe_regex` with Google RE2, whose syntax is not ECMAScript's: no lookaround,
 * no backreferences, different escapes. Validating with RE2 itself (compiled to wasm) is the only
 * way to be sure Envoy will accept what `policy check` accepted.
 */
// re2-wasm's types hide the compiled pattern; `wrapper` is the wasm-side object behind it.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { RE2 } = require('re2-wasm') as { RE2: new (pattern: string, flags: string) => { wrapper?: { delete(): void } } };

/*
 * re2-wasm's heap is a fixed 16 MB that the JS garbage collector never reclaims: each compiled
 * pattern stays there until deleted, and once the heap is full every later compile aborts with
 * OOM. A pattern that fails to compile cannot be deleted (the constructor throws before handing
 * it over), and each compile also leaks a small map of group names, so answers are memoised per
 * pattern: a `serve` re-checking every file on each reload then compiles only patterns it has not
 * seen. The bound keeps a stream of ever-new patterns from growing the memo without limit.
 */
const MEMO_LIMIT = 4096;
const memo = new Map<string, string | undefined>();

/** Undefined when `pattern` is valid RE2, else RE2's own explanation. */
export function re2SyntaxError(pattern: string): string | undefined {
  if (memo.has(pattern)) {
    const known = memo.get(pattern);
    // Re-inserted so the least recently checked pattern is the one evicted.
    memo.delete(pattern);
    memo.set(pattern, known);
    return known;
  }
  let problem: string | undefined;
  try {
    new RE2(pattern, 'u').wrapper?.delete();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // Only a verdict on the pattern is worth keeping; a wasm abort says nothing about it.
    if (!(err instanceof SyntaxError)) return message;
    // re2-wasm wraps RE2's message as "Invalid regular expression: /p/u: <reason>".
    problem = message.replace(/^Invalid regular expression: \/.*\/u: /s, '') || message;
  }
  if (memo.size >= MEMO_LIMIT) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(pattern, problem);
  return problem;
}
