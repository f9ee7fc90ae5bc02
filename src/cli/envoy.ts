import type { Command } from './command';

// Placeholder until the envoy subcommand lands.
export const command: Command = {
  summary: 'envoy (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel envoy: not built yet');
    return 2;
  },
};
