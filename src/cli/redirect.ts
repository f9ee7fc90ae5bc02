import type { Command } from './command';

// Placeholder until the redirect subcommand lands.
export const command: Command = {
  summary: 'redirect (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel redirect: not built yet');
    return 2;
  },
};
