/**
 * React's own warnings that a component put a prop on the DOM that does not belong there (for
 * example a Field's `invalid` cloned onto a <div>). React logs them as a format string and its
 * arguments ("React does not recognize the `%s` prop…"), so the message is formatted first.
 */
import { format } from 'node:util';

const DOM_WARNINGS = [
  /for a non-boolean attribute/,
  /React does not recognize the `[^`]+` prop on a DOM element/,
  /Invalid DOM property/,
  /Unknown event handler property/,
];

/** The first line of the warning when console.error's arguments are one of these, else null. */
export function domWarning(args: unknown[]): string | null {
  const text = typeof args[0] === 'string' ? format(...(args as [string, ...unknown[]])) : args.map(String).join(' ');
  return DOM_WARNINGS.some((w) => w.test(text)) ? text.split('\n')[0] : null;
}
