import type { Command } from './command';

export const command: Command = {
  summary: 'serve (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel serve: not built yet');
    return 2;
  },
};
