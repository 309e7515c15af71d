import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

/** Imports that would cross a runtime boundary (see README "Layout"). */
const boundary = (message, ...group) => ({ group, message });
const NOT_COLLECTOR = boundary(
  'The plugin reaches the collector only over HTTP: import the shared types from contract/.',
  '**/collector/**',
);
const NOT_PLUGIN = boundary('The collector never imports the plugin: import the shared types from contract/.', '**/src/**');
const NOT_TESTS = boundary('Product code never imports test helpers.', '**/tests/**', '**/bench/**');

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'collector/dist/', 'coverage/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    files: ['contract/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [NOT_COLLECTOR, NOT_PLUGIN, NOT_TESTS] }],
    },
  },
  {
    files: ['collector/**'],
    ignores: ['**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NOT_PLUGIN, NOT_TESTS] }] },
  },
  {
    files: ['collector/**/*.test.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NOT_PLUGIN] }] },
  },
  {
    files: ['src/backend/**'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NOT_COLLECTOR,
            NOT_TESTS,
            boundary(
              'The backend runs in Node, not in the browser: it never imports the frontend.',
              '../components/**',
              '../variables/**',
              '../datasource*',
              '../module*',
            ),
          ],
        },
      ],
    },
  },
  {
    files: ['src/**/*.test.{ts,tsx}'],
    rules: { 'no-restricted-imports': ['error', { patterns: [NOT_COLLECTOR] }] },
  },
  {
    files: ['src/**'],
    ignores: ['src/backend/**', '**/*.test.{ts,tsx}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            NOT_COLLECTOR,
            NOT_TESTS,
            boundary('The frontend runs in the browser: it talks to the backend through Grafana only.', '**/backend/**'),
          ],
        },
      ],
    },
  },
);
