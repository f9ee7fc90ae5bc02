import type { Command } from './command';

// Placeholder until the policy subcommand lands.
export const command: Command = {
  summary: 'policy (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel policy: not built yet');
    return 2;
  },
};
