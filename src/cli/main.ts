import type { Command } from './command';
import { HelpRequested, UsageError } from './args';

// Each subcommand is loaded only when named, so `meshaccel status` never pays for loading
// Envoy's protos or the BPF addon.
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve')).command,
  status: async () => (await import('./status')).command,
  policy: async () => (await import('./policy')).command,
  envoy: async () => (await import('./envoy')).command,
  datapath: async () => (await import('./datapath')).command,
  redirect: async () => (await import('./redirect')).command,
  kafka: async () => (await import('./kafka')).command,
};

async function usage(): Promise<string> {
  const lines = ['usage: meshaccel <command> [options]', '', 'commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${(await load()).summary}`);
  lines.push('', "Run `meshaccel <command> --help` for a command's options.");
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(await usage());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`meshaccel: unknown command "${name}"\n\n${await usage()}`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.usage);
      return 0;
    }
    if (err instanceof UsageError) {
      console.error(`meshaccel ${name}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

/** `node dist/src/cli/main.js ...` runs the CLI as bin/meshaccel does. */
export function runAsProgram(argv = process.argv.slice(2)): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`meshaccel: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  );
}

if (require.main === module) runAsProgram();
