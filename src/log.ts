/**
 * Logging for every layer: a `Logger` with four levels, and `clientText()`, the one place where
 * text a client controls (node ids, type URLs, NACK messages, user agents...) is made safe to
 * print. Anything such text reaches (log lines, `meshaccel status`, gRPC status details) goes
 * through it, so a node id cannot forge a log line, move a terminal's cursor or grow a trailer
 * past what a client accepts.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/**
 * What the server and library log through. `debug` and `error` are optional so that loggers
 * written for the two-level interface keep working; `withLevels()` fills them in.
 */
export interface Logger {
  debug?(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error?(message: string): void;
}

export type LeveledLogger = Required<Logger>;

/** A logger with all four levels: a missing `debug` drops, a missing `error` goes to `warn`. */
export function withLevels(log: Logger): LeveledLogger {
  return {
    debug: log.debug ? (m) => log.debug!(m) : () => undefined,
    info: (m) => log.info(m),
    warn: (m) => log.warn(m),
    error: log.error ? (m) => log.error!(m) : (m) => log.warn(m),
  };
}

export const silentLogger: LeveledLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Timestamped lines on stdout (debug, info) and stderr (warn, error), from `minLevel` up. */
export function consoleLogger(minLevel: LogLevel = 'info'): LeveledLogger {
  const min = LOG_LEVELS.indexOf(minLevel);
  const line = (level: LogLevel, m: string): string => `${new Date().toISOString()}${level === 'info' ? '' : ` ${level.toUpperCase()}`} ${m}`;
  const at = (level: LogLevel, write: (s: string) => void) => (m: string) => {
    if (LOG_LEVELS.indexOf(level) >= min) write(line(level, m));
  };
  return {
    debug: at('debug', (s) => console.log(s)),
    info: at('info', (s) => console.log(s)),
    warn: at('warn', (s) => console.error(s)),
    error: at('error', (s) => console.error(s)),
  };
}

export function parseLogLevel(text: string): LogLevel | undefined {
  return (LOG_LEVELS as readonly string[]).includes(text) ? (text as LogLevel) : undefined;
}

/** How much of a client string is shown by default; enough for any legitimate node id. */
export const CLIENT_TEXT_MAX = 200;

// C0 and C1 controls, DEL, the backslash (so escapes are unambiguous), line and paragraph
// separators, and the bidirectional overrides that reorder what a terminal shows.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\\\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

function escapeChar(c: string): string {
  if (c === '\\') return '\\\\';
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

// The same set without the backslash: for text whose client parts were already escaped.
const UNSAFE_KEEPING_BACKSLASH = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * A message that embeds client strings already passed through clientText(), made one line and
 * bounded as a whole: the safety net for messages composed of parts, so an escape is not
 * escaped twice.
 */
export function oneLine(message: string, max: number): string {
  const escaped = message.replace(UNSAFE_KEEPING_BACKSLASH, escapeChar);
  return escaped.length > max ? `${escaped.slice(0, max)}...(cut)` : escaped;
}

/**
 * A client-controlled string made safe to print: cut to `max` characters (saying how many were
 * dropped) and with control characters, escape sequences and line breaks written as `\xNN`,
 * so the result is one line of plain text whatever the client sent.
 */
export function clientText(value: unknown, max = CLIENT_TEXT_MAX): string {
  const s = typeof value === 'string' ? value : String(value);
  const cut = s.length > max ? s.slice(0, max) : s;
  // A cut must not leave half of a surrogate pair behind.
  const whole = cut.length > 0 && /[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut;
  const escaped = whole.replace(UNSAFE, escapeChar).replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, escapeChar);
  return s.length > whole.length ? `${escaped}...(${s.length - whole.length} more characters)` : escaped;
}
