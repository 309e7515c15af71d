// `npm run test:containers`: docker-compose.yml built and run with podman (compose-podman.test.ts).
// Kept out of `npm test` for its cost (docs/provisioning.md); one file, long timeouts set per test.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: new URL('../..', import.meta.url).pathname,
  test: {
    include: ['tests/containers/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', 'junit'],
    outputFile: { junit: 'test-output/junit-containers.xml' },
  },
});
