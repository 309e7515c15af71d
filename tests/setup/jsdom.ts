/**
 * What @grafana/ui expects from a browser and jsdom lacks (the same list as plugin-tools'
 * jest-setup). Import it first in a `// @vitest-environment jsdom` test file.
 */
import '@testing-library/jest-dom/vitest';
import { afterEach, expect } from 'vitest';
import { cleanup } from '@testing-library/react';

if (typeof window.matchMedia !== 'function') {
  Object.defineProperty(window, 'matchMedia', {
    writable: true,
    value: (query: string) => ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => {},
      removeListener: () => {},
      addEventListener: () => {},
      removeEventListener: () => {},
      dispatchEvent: () => false,
    }),
  });
}

if (typeof window.ResizeObserver !== 'function') {
  window.ResizeObserver = class {
    observe() {}
    unobserve() {}
    disconnect() {}
  };
}

if (typeof window.IntersectionObserver !== 'function') {
  window.IntersectionObserver = class {
    readonly root = null;
    readonly rootMargin = '';
    readonly thresholds = [];
    observe() {}
    unobserve() {}
    disconnect() {}
    takeRecords() {
      return [];
    }
  } as unknown as typeof IntersectionObserver;
}

// uPlot and some charts ask for a 2D context at import time; jsdom has none.
HTMLCanvasElement.prototype.getContext = (() => null) as unknown as HTMLCanvasElement['getContext'];

// React's own warnings that a component put a prop on the DOM that does not belong there (for
// example a Field's `invalid` cloned onto a <div>): a test in which React warns so fails
const DOM_WARNINGS = [/for a non-boolean attribute/, /React does not recognize the `\w+` prop on a DOM element/, /Invalid DOM property/, /Unknown event handler property/];
const domWarnings: string[] = [];
const consoleError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  const text = args.map(String).join(' ');
  if (DOM_WARNINGS.some((w) => w.test(text))) domWarnings.push(text.split('\n')[0]);
  consoleError(...args);
};

afterEach(() => {
  cleanup();
  const warned = domWarnings.splice(0);
  expect(warned, 'React warned about props on DOM elements').toEqual([]);
});
