import type { Command } from './command';

// Placeholder until the datapath subcommand lands.
export const command: Command = {
  summary: 'datapath (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel datapath: not built yet');
    return 2;
  },
};
