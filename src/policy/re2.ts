/**
 * Envoy matches `safe_regex` with Google RE2, whose syntax is not ECMAScript's: no lookaround,
 * no backreferences, different escapes. Validating with RE2 itself (compiled to wasm) is the only
 * way to be sure Envoy will accept what `policy check` accepted.
 */
// re2-wasm ships no usable types for this entry point; the constructor is all we need.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { RE2 } = require('re2-wasm') as { RE2: new (pattern: string, flags: string) => unknown };

/** Undefined when `pattern` is valid RE2, else RE2's own explanation. */
export function re2SyntaxError(pattern: string): string | undefined {
  try {
    new RE2(pattern, 'u');
    return undefined;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // re2-wasm wraps RE2's message as "Invalid regular expression: /p/u: <reason>".
    const reason = message.replace(/^Invalid regular expression: \/.*\/u: /s, '');
    return reason || message;
  }
}
