import type { GrpcImplementation } from '../envoy/builders/grpc-js-peers';

/**
 * The one option parser every subcommand uses: `--name value`, `--name=value`, boolean
 * `--flag`, repeated options collected in order, and positionals. Unknown options are errors,
 * so a typo never silently changes what a command does.
 */
export interface OptionSpec {
  /** Takes a value (`--port 1`); otherwise it is a boolean flag. */
  value?: boolean;
  /** May be given more than once; values are collected. */
  repeated?: boolean;
  description: string;
}

export interface ParsedArgs {
  options: Map<string, string[]>;
  flags: Set<string>;
  positionals: string[];
}

export class UsageError extends Error {}

/** `--help` was given: main prints the usage and exits 0, so no command handles it itself. */
export class HelpRequested extends Error {
  constructor(readonly usage: string) {
    super(usage);
  }
}

/** How a command names itself in its `--help` text. */
export interface CommandUsage {
  command: string;
  summary: string;
}

export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, OptionSpec>>, usage?: CommandUsage): ParsedArgs {
  const options = new Map<string, string[]>();
  const flags = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const opt = spec[name];
    if (!opt) throw new UsageError(`unknown option --${name}`);
    if (!opt.value) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
      value = argv[++i];
    }
    const list = options.get(name) ?? [];
    if (list.length > 0 && !opt.repeated) throw new UsageError(`--${name} given twice`);
    list.push(value);
    options.set(name, list);
  }
  if (usage && flags.has('help')) throw new HelpRequested(usageText(usage.command, usage.summary, spec));
  return { options, flags, positionals };
}

export function optionValue(args: ParsedArgs, name: string): string | undefined {
  return args.options.get(name)?.[0];
}

/** Values of a repeated option, with comma-separated lists split (`--ports 80,443 --ports 8080`). */
export function optionList(args: ParsedArgs, name: string): string[] {
  return (args.options.get(name) ?? [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** `allowZero` for a listening port where 0 means "pick a free one". */
export function parsePort(text: string, what: string, allowZero = false): number {
  const n = Number(text);
  const min = allowZero ? 0 : 1;
  if (!Number.isInteger(n) || n < min || n > 65535) throw new UsageError(`${what}: "${text}" is not a port (${min}-65535)`);
  return n;
}

export function usageText(command: string, summary: string, spec: Readonly<Record<string, OptionSpec>>): string {
  const lines = [`usage: meshaccel ${command}`, '', summary, ''];
  for (const [name, opt] of Object.entries(spec)) {
    const head = `  --${name}${opt.value ? ' VALUE' : ''}${opt.repeated ? ' (repeatable)' : ''}`;
    // A long option name still gets a gap before its description.
    lines.push(`${head.padEnd(34)}${head.length >= 34 ? '  ' : ''}${opt.description}`);
  }
  return lines.join('\n');
}

/** `--grpc-servers`: whether an XdsServer of @grpc/grpc-js-xds may serve the policies (the default). */
export function grpcServersOption(value: string | undefined): GrpcImplementation {
  const v = value ?? 'grpc-js';
  if (v !== 'grpc-js' && v !== 'other') throw new UsageError(`--grpc-servers: "${v}" is not grpc-js or other`);
  return v;
}
