#!/usr/bin/env node
/**
 * Builds the plugin frontend as Grafana loads it: dist/module.js, one AMD module whose
 * dependencies are the packages Grafana shares with plugins (the externals of plugin-tools'
 * webpack config). esbuild bundles to CommonJS; the bundle is then wrapped in `define(...)`
 * with exactly the externals it uses, and the source map is shifted by the wrapper's line.
 *
 *   node scripts/build-frontend.mjs            production build (minified)
 *   node scripts/build-frontend.mjs --watch    rebuild on change (npm run dev)
 *   node scripts/build-frontend.mjs --dev      unminified
 *
 * Also copies the docs' screenshots (docs/img/*.png, written by `npm run screenshots`) to
 * dist/img/screenshots/, where plugin.json's info.screenshots point.
 */
import * as esbuild from 'esbuild';
import { copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist');
const watch = process.argv.includes('--watch');
const dev = watch || process.argv.includes('--dev');

/** What Grafana provides to plugins at run time (plugin-tools' bundler/externals.ts). */
const EXTERNAL_NAMES = new Set([
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'react-router-dom',
  'd3',
  'angular',
]);
const EXTERNAL_PATTERNS = [/^@grafana\/ui/i, /^@grafana\/runtime/i, /^@grafana\/data/i];

export function isExternal(path) {
  return EXTERNAL_NAMES.has(path) || EXTERNAL_PATTERNS.some((re) => re.test(path));
}

/**
 * react/jsx-runtime is not shared by every Grafana version, and bundling React's own copy
 * would create elements for the bundled React version rather than Grafana's. Build the JSX
 * runtime on the host's createElement instead, which every React version understands.
 */
const JSX_RUNTIME = `
import { createElement, Fragment } from 'react';
export { Fragment };
export function jsx(type, props, key) {
  return createElement(type, key === undefined ? props : Object.assign({}, props, { key: key }));
}
export const jsxs = jsx;
export const jsxDEV = jsx;
`;

/**
 * zod re-exports every locale as `z.locales`, which defeats tree shaking (~400 KiB). The
 * editor only speaks English (zod's default, configured from locales/en.js directly), so
 * the locales index is replaced by one that offers just that.
 */
const ZOD_LOCALES = `export { default as en } from './en.js';`;

const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/]/.test(args.importer) ? { path: join(dirname(args.importer), '../locales/index.js'), namespace: 'zod-locales' } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (args) => ({ contents: ZOD_LOCALES, loader: 'js', resolveDir: dirname(args.path) }));
  },
};

const grafanaExternals = {
  name: 'grafana-externals',
  setup(build) {
    build.onResolve({ filter: /^react\/jsx(-dev)?-runtime$/ }, (args) => ({ path: args.path, namespace: 'jsx-runtime' }));
    build.onLoad({ filter: /.*/, namespace: 'jsx-runtime' }, () => ({ contents: JSX_RUNTIME, loader: 'js', resolveDir: root }));
    build.onResolve({ filter: /^[^./]/ }, (args) => (isExternal(args.path) ? { path: args.path, external: true } : undefined));
  },
};

/** Wraps esbuild's CommonJS output into `define([deps], factory)` on a single first line. */
export function wrapAmd(code, map, deps) {
  const params = deps.map((_, i) => `__dep${i}`);
  const table = deps.map((d, i) => `${JSON.stringify(d)}:__dep${i}`).join(',');
  const header =
    `define(${JSON.stringify(deps)},function(${params.join(',')}){` +
    `var __deps={${table}};` +
    `var require=function(n){if(!(n in __deps))throw new Error("module.js: "+n+" is not provided by Grafana");return __deps[n];};` +
    `var module={exports:{}},exports=module.exports;`;
  const footer = `\nreturn module.exports;});\n//# sourceMappingURL=module.js.map\n`;
  const body = code.replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
  const shifted = { ...map, mappings: `;${map.mappings}` };
  return { code: `${header}\n${body}${footer}`, map: JSON.stringify(shifted) };
}

/** docs/img/*.png -> dist/img/screenshots/ (plugin.json info.screenshots). */
export async function copyScreenshots() {
  const from = join(root, 'docs', 'img');
  const to = join(outDir, 'img', 'screenshots');
  const pngs = (await readdir(from).catch(() => [])).filter((f) => f.endsWith('.png'));
  await mkdir(to, { recursive: true });
  await Promise.all(pngs.map((f) => copyFile(join(from, f), join(to, f))));
}

async function emit(result) {
  const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
  const mapFile = result.outputFiles.find((f) => f.path.endsWith('.js.map'));
  const output = Object.values(result.metafile.outputs).find((o) => o.entryPoint);
  const deps = [...new Set(output.imports.filter((i) => i.external).map((i) => i.path))].sort();
  const wrapped = wrapAmd(js.text, JSON.parse(mapFile.text), deps);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'module.js'), wrapped.code);
  await writeFile(join(outDir, 'module.js.map'), wrapped.map);
  await copyScreenshots();
  const kib = (Buffer.byteLength(wrapped.code) / 1024).toFixed(0);
  process.stderr.write(`${relative(root, join(outDir, 'module.js'))}: ${kib} KiB, externals: ${deps.join(', ')}\n`);
}

const options = {
  absWorkingDir: root,
  entryPoints: ['src/module.ts'],
  outfile: join(outDir, 'module.js'),
  bundle: true,
  format: 'cjs',
  platform: 'browser',
  target: ['es2022'],
  jsx: 'automatic',
  minify: !dev,
  sourcemap: 'external',
  sourcesContent: true,
  legalComments: 'none',
  metafile: true,
  write: false,
  logLevel: 'warning',
  define: { 'process.env.NODE_ENV': JSON.stringify(dev ? 'development' : 'production') },
  plugins: [zodEnglishOnly, grafanaExternals, { name: 'amd-wrap', setup: (b) => b.onEnd((r) => (r.errors.length === 0 ? emit(r) : undefined)) }],
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (watch) {
    const ctx = await esbuild.context(options);
    await ctx.watch();
    process.stderr.write('watching src/ for changes\n');
  } else {
    await esbuild.build(options);
  }
}
