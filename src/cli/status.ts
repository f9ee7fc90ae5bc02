import type { Command } from './command';

export const command: Command = {
  summary: 'status (not built yet)',
  async run(): Promise<number> {
    console.error('meshaccel status: not built yet');
    return 2;
  },
};
