// @vitest-environment jsdom
/**
 * The warnings tests/setup/jsdom.ts fails a test on, as React itself logs them: each element
 * below makes React warn once (React logs a warning once per process, so each is distinct).
 */
import { createElement } from 'react';
import { render } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { domWarning } from './domWarnings.js';

afterEach(() => vi.restoreAllMocks());

function warningsOf(element: Parameters<typeof render>[0]): (string | null)[] {
  const calls: unknown[][] = [];
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void calls.push(args));
  render(element).unmount();
  expect(calls.length, 'React logged nothing').toBeGreaterThan(0);
  return calls.map(domWarning);
}

describe('React warnings about props on DOM elements', () => {
  it('a boolean on a non-boolean attribute (a Field\'s invalid cloned onto a div)', () => {
    expect(warningsOf(createElement('div', { invalid: false } as object))).toEqual([expect.stringContaining('non-boolean attribute `invalid`')]);
  });

  it('an unknown camel-case prop, which React logs as a format string', () => {
    expect(warningsOf(createElement('div', { fooBar: 'x' } as object))).toEqual([expect.stringContaining('React does not recognize the `fooBar` prop')]);
  });

  it('a DOM property under its JavaScript name', () => {
    expect(warningsOf(createElement('label', { for: 'x' } as object))).toEqual([expect.stringContaining('Invalid DOM property `for`')]);
  });

  it('an unknown event handler', () => {
    expect(warningsOf(createElement('div', { onFoo: () => {} } as object))).toEqual([expect.stringContaining('Unknown event handler property `onFoo`')]);
  });

  it('not other errors', () => {
    expect(domWarning(['Warning: something else %s', 'entirely'])).toBeNull();
    expect(domWarning([new Error('boom')])).toBeNull();
  });
});
