/** A `meshaccel` subcommand: returns the process exit status. */
export interface Command {
  summary: string;
  run(argv: string[]): Promise<number>;
}
