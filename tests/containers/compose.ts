/**
 * docker-compose.yml run with podman directly from its own definitions, as `docker compose up`
 * wires it: one network `<project>_default` on which every service is reachable by its name,
 * named volumes `<project>_<volume>`, containers `<project>-<service>-1`; each service's image
 * (built from its `build:` with the given Dockerfile and context), command, entrypoint,
 * working_dir, environment, volumes (bind mounts resolved against the compose file's folder),
 * ports, restart policy and healthcheck; `depends_on` conditions awaited in order
 * (service_started, service_healthy, service_completed_successfully). Compose's `$$` is a `$`;
 * `${VAR:-default}` is interpolated from the environment.
 *
 * Health checks: podman schedules them with systemd timers, which this machine lacks, so the
 * compose healthcheck is registered with the container and run here with
 * `podman healthcheck run` at its interval, as Docker's daemon would.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { composeFileSchema, type ComposeFile } from '../provisioning/composeSchema.js';
import { podman, podmanOk, podmanSync } from './podman.js';

type Service = ComposeFile['services'][string];

export interface ComposeProject {
  name: string;
  dir: string;
  file: ComposeFile;
}

export function loadCompose(path: string): ComposeProject {
  const file = composeFileSchema.parse(parse(readFileSync(path, 'utf8')));
  const dir = dirname(resolve(path));
  return { name: file.name ?? 'project', dir, file };
}

/** Compose interpolation: `$$` is a literal `$`, `${VAR}` and `${VAR:-default}` come from the environment. */
export function interpolate(value: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.split('$$').map((part) => {
    const replaced = part.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback: string | undefined) => {
      const v = env[name];
      return v === undefined || (v === '' && fallback !== undefined) ? (fallback ?? '') : v;
    });
    if (/\$[A-Za-z_{]/.test(replaced)) throw new Error(`unsupported interpolation in ${JSON.stringify(value)}`);
    return replaced;
  }).join('$');
}

const list = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : typeof v === 'string' ? ['/bin/sh', '-c', v] : v);

export function durationMs(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  let ms = 0;
  for (const m of value.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)) ms += Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms'];
  return ms;
}

export const containerName = (project: ComposeProject, service: string) => `${project.name}-${service}-1`;
export const volumeName = (project: ComposeProject, volume: string) => `${project.name}_${volume}`;
export const networkName = (project: ComposeProject) => `${project.name}_default`;
const LABEL = 'com.docker.compose.project';

/** The image a service runs: its `image`, or `<project>-<service>` for a build without one. */
export function serviceImage(project: ComposeProject, service: string): string {
  return project.file.services[service].image ?? `${project.name}-${service}`;
}

/** Builds every image of the given services that has a `build:` (each image once). */
export async function buildImages(project: ComposeProject, services: string[], log: (line: string) => void = () => {}, extraArgs: string[] = []): Promise<Record<string, number>> {
  const times: Record<string, number> = {};
  for (const service of services) {
    const { build } = project.file.services[service];
    if (!build) continue;
    const image = serviceImage(project, service);
    if (times[image] !== undefined) continue;
    const context = resolve(project.dir, typeof build === 'string' ? build : build.context);
    const dockerfile = typeof build === 'string' || !build.dockerfile ? join(context, 'Dockerfile') : resolve(context, build.dockerfile);
    log(`building ${image} from ${dockerfile}`);
    // --pull=never: the bases are the local ones (make-bases.sh); nothing is pulled
    const result = await podman(['build', '--pull=never', '--layers', ...extraArgs, '-t', image, '-f', dockerfile, context]);
    if (result.code !== 0) throw new Error(`building ${image} failed:\n${(result.stdout + result.stderr).slice(-4000)}`);
    times[image] = Math.round(result.ms);
  }
  return times;
}

export interface UpOptions {
  /** services left out (with everything only they depend on still started) */
  exclude?: string[];
  /** extra `-p` publications per service, e.g. { collector: ['127.0.0.1::8686'] } */
  publish?: Record<string, string[]>;
  /** extra `podman run` options per service (inserted before the image) */
  extraRunArgs?: Record<string, string[]>;
  log?: (line: string) => void;
  /** how long a one-shot service may take (default 10 min: plugin-build runs npm ci) */
  completionTimeoutMs?: number;
}

/** The `podman run` arguments of a service, from its compose definition. */
export function runArgs(project: ComposeProject, service: string, publish: string[] = [], extra: string[] = []): string[] {
  const s: Service = project.file.services[service];
  const args = ['run', '--detach', '--name', containerName(project, service), '--label', `${LABEL}=${project.name}`, '--label', `com.docker.compose.service=${service}`];
  args.push('--network', networkName(project), '--network-alias', service, '--hostname', service);
  if (s.working_dir) args.push('--workdir', s.working_dir);
  const env = Array.isArray(s.environment) ? s.environment : Object.entries(s.environment ?? {}).map(([k, v]) => `${k}=${String(v)}`);
  for (const e of env) args.push('--env', interpolate(e));
  for (const volume of s.volumes ?? []) {
    const [source, target, mode] = interpolate(volume).split(':');
    const host = source.startsWith('.') || isAbsolute(source) ? resolve(project.dir, source) : volumeName(project, source);
    args.push('--volume', `${host}:${target}${mode ? `:${mode}` : ''}`);
  }
  for (const port of [...(s.ports ?? []).map((p) => interpolate(p)), ...publish]) args.push('--publish', port);
  if (s.restart) args.push('--restart', s.restart);
  if (s.healthcheck) {
    const { test } = s.healthcheck;
    const cmd = typeof test === 'string' ? test : test[0] === 'CMD-SHELL' ? test[1] : JSON.stringify(test.slice(1));
    args.push('--health-cmd', cmd);
    args.push('--health-interval', `${durationMs(s.healthcheck.interval, 30_000) / 1000}s`);
    args.push('--health-timeout', `${durationMs(s.healthcheck.timeout, 30_000) / 1000}s`);
    args.push('--health-retries', String(s.healthcheck.retries ?? 3));
    args.push('--health-start-period', `${durationMs(s.healthcheck.start_period, 0) / 1000}s`);
  }
  const entrypoint = list(s.entrypoint);
  if (entrypoint) args.push('--entrypoint', JSON.stringify(entrypoint.map((a) => interpolate(a))));
  args.push(...extra);
  args.push(serviceImage(project, service));
  for (const a of list(s.command) ?? []) args.push(interpolate(a));
  return args;
}

/**
 * `podman run` of a service. Docker creates a missing `working_dir` in the container; podman
 * 4.3 refuses to start in one the image lacks (plugin-build's /build), so the container is
 * created, the folder made in its own filesystem, then started.
 */
export async function runService(project: ComposeProject, service: string, publish: string[] = [], extra: string[] = []): Promise<void> {
  const args = runArgs(project, service, publish, extra);
  const workdir = project.file.services[service].working_dir;
  if (!workdir) {
    await podmanOk(args);
    return;
  }
  const name = containerName(project, service);
  await podmanOk(['create', ...args.slice(2)]);
  const root = await podmanOk(['mount', name]);
  try {
    mkdirSync(join(root, workdir), { recursive: true });
  } finally {
    await podmanOk(['unmount', name]);
  }
  await podmanOk(['start', name]);
}

function dependencies(s: Service): [string, string][] {
  if (!s.depends_on) return [];
  if (Array.isArray(s.depends_on)) return s.depends_on.map((d) => [d, 'service_started']);
  return Object.entries(s.depends_on).map(([d, v]) => [d, v.condition]);
}

/** Services in start order (dependencies first); a service with `profiles` only when one of them is active, as Compose does. */
export function startOrder(project: ComposeProject, exclude: string[] = [], profiles: string[] = []): string[] {
  const order: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (order.includes(name)) return;
    if (path.includes(name)) throw new Error(`depends_on cycle: ${[...path, name].join(' -> ')}`);
    for (const [dep] of dependencies(project.file.services[name])) visit(dep, [...path, name]);
    order.push(name);
  };
  const active = (name: string) => project.file.services[name].profiles?.some((p) => profiles.includes(p)) ?? true;
  for (const name of Object.keys(project.file.services)) if (!exclude.includes(name) && active(name)) visit(name, []);
  return order;
}

export async function inspect(project: ComposeProject, service: string, format: string): Promise<string> {
  return podmanOk(['container', 'inspect', '--format', format, containerName(project, service)]);
}

/** Runs the compose healthcheck at its interval until it passes (as a `service_healthy` dependant waits). */
export async function waitHealthy(project: ComposeProject, service: string, timeoutMs?: number): Promise<number> {
  const hc = project.file.services[service].healthcheck;
  if (!hc) throw new Error(`${service} has no healthcheck`);
  const started = performance.now();
  const interval = durationMs(hc.interval, 30_000);
  const limit = timeoutMs ?? durationMs(hc.start_period, 0) + interval * ((hc.retries ?? 3) + 1);
  let last = '';
  for (;;) {
    const result = await podman(['healthcheck', 'run', containerName(project, service)]);
    if (result.code === 0) return performance.now() - started;
    last = (result.stdout + result.stderr).trim();
    const state = await inspect(project, service, '{{.State.Status}}').catch(() => 'gone');
    if (state !== 'running') throw new Error(`${service} is ${state} before it became healthy; logs:\n${await logs(project, service)}`);
    if (performance.now() - started > limit) throw new Error(`${service} not healthy within ${limit} ms (${last}); logs:\n${await logs(project, service)}`);
    await new Promise((r) => setTimeout(r, Math.min(interval, 1000)));
  }
}

/** Waits for a one-shot service to exit 0. */
export async function waitCompleted(project: ComposeProject, service: string, timeoutMs: number): Promise<void> {
  const code = await podmanOk(['wait', containerName(project, service)], { timeoutMs });
  if (code !== '0') throw new Error(`${service} exited ${code}; logs:\n${await logs(project, service)}`);
}

export async function logs(project: ComposeProject, service: string): Promise<string> {
  const r = await podman(['logs', containerName(project, service)]);
  return (r.stdout + r.stderr).slice(-6000);
}

/** Creates the network and the named volumes, then starts the services in order. Returns ms per service until its condition held. */
export async function up(project: ComposeProject, options: UpOptions = {}): Promise<Record<string, number>> {
  const log = options.log ?? (() => {});
  const exclude = options.exclude ?? [];
  const order = startOrder(project, exclude);
  await podmanOk(['network', 'create', '--label', `${LABEL}=${project.name}`, networkName(project)]);
  const volumes = new Set(order.flatMap((s) => (project.file.services[s].volumes ?? []).map((v) => v.split(':')[0]).filter((v) => !v.startsWith('.') && !isAbsolute(v))));
  for (const volume of volumes) await podmanOk(['volume', 'create', '--label', `${LABEL}=${project.name}`, volumeName(project, volume)]);
  const ready = new Map<string, Promise<void>>();
  const times: Record<string, number> = {};
  const start = (service: string): Promise<void> => {
    const existing = ready.get(service);
    if (existing) return existing;
    const promise = (async () => {
      const deps = dependencies(project.file.services[service]);
      await Promise.all(deps.map(([dep]) => start(dep)));
      for (const [dep, condition] of deps) {
        if (condition === 'service_healthy') await waitHealthy(project, dep);
        if (condition === 'service_completed_successfully') await waitCompleted(project, dep, options.completionTimeoutMs ?? 600_000);
      }
      log(`starting ${service}`);
      const started = performance.now();
      await runService(project, service, options.publish?.[service], options.extraRunArgs?.[service]);
      times[service] = performance.now() - started;
    })();
    ready.set(service, promise);
    return promise;
  };
  await Promise.all(order.map(start));
  return times;
}

/** Removes every container, volume and the network of the project (also after a failed `up`). */
export function down(project: ComposeProject): void {
  const filter = `label=${LABEL}=${project.name}`;
  for (const service of Object.keys(project.file.services)) podmanSync(['rm', '--force', '--ignore', '--time', '2', containerName(project, service)]);
  podmanSync(['container', 'prune', '--force', '--filter', filter]);
  for (const volume of Object.keys(project.file.volumes ?? {})) podmanSync(['volume', 'rm', '--force', volumeName(project, volume)]);
  podmanSync(['network', 'rm', '--force', networkName(project)]);
}
