// `npm run test:containers`: docker-compose.yml built and run with podman (compose-podman.test.ts).
// The project's vitest configuration with only this folder included (`npm test` excludes it for
// its cost, docs/provisioning.md); long timeouts are set per test.
import { defineConfig } from 'vitest/config';
import base from '../../vitest.config.js';

export default defineConfig({
  ...base,
  root: new URL('../..', import.meta.url).pathname,
  test: {
    ...base.test,
    include: ['tests/containers/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    coverage: { enabled: false },
    outputFile: { junit: 'test-output/junit-containers.xml' },
  },
});
