/**
 * POSIX shell quoting. Every argument is wrapped in single quotes, inside which the shell
 * interprets nothing; a single quote itself is written as '\'' (close, escaped quote, reopen).
 * Works the same in dash, bash and busybox ash.
 */

/** Quotes one argument for a POSIX shell. NUL cannot be passed in an argument at all. */
export function quoteArg(arg: string): string {
  if (arg.includes('\0')) throw new Error('a shell argument cannot contain a NUL character');
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** Quotes an argument vector into one command line that the shell splits back into exactly `argv`. */
export function quoteArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(' ');
}
