/**
 * What @grafana/ui expects from a browser and jsdom lacks (the same list as plugin-tools'
 * jest-setup). Import it first in a `// @vitest-environment jsdom` test file.
 */
import '@testing-library/jest-dom/vitest';
import { afterEach, expect } from 'vitest';
import { cleanup } from '@testing-library/react';
import { domWarning } from './domWarnings.js';

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

// a test in which React warns about props on DOM elements fails (./domWarnings.ts)
const domWarnings: string[] = [];
const consoleError = console.error.bind(console);
console.error = (...args: unknown[]) => {
  const warning = domWarning(args);
  if (warning) domWarnings.push(warning);
  consoleError(...args);
};

afterEach(() => {
  cleanup();
  const warned = domWarnings.splice(0);
  expect(warned, 'React warned about props on DOM elements').toEqual([]);
});
