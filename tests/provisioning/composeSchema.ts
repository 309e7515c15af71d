/**
 * The subset of the Compose specification (compose-spec/compose-spec, schema/compose-spec.json)
 * that docker-compose.yml uses, strict so that a misspelt key fails, plus the references
 * Compose resolves at start-up (services in depends_on, named volumes).
 */
import { z } from 'zod';

const durationSchema = z.string().regex(/^(\d+(\.\d+)?(us|ms|s|m|h))+$/, 'a Compose duration such as 10s or 1m30s');
const stringList = z.array(z.string().min(1)).min(1);

export const composeServiceSchema = z
  .strictObject({
    /** services of a profile start only with `--profile <name>` */
    profiles: z.array(z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)).min(1).optional(),
    image: z.string().min(1).optional(),
    build: z.union([z.string().min(1), z.strictObject({ context: z.string().min(1), dockerfile: z.string().min(1).optional() })]).optional(),
    command: z.union([z.string().min(1), stringList]).optional(),
    entrypoint: z.union([z.string().min(1), stringList]).optional(),
    working_dir: z.string().regex(/^\//, 'an absolute path in the container').optional(),
    environment: z.union([z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.union([z.string(), z.number(), z.boolean()])), z.array(z.string())]).optional(),
    volumes: z.array(z.string().regex(/^[^:]+:\/[^:]*(:(ro|rw))?$/, 'short syntax source:/target[:ro]')).optional(),
    ports: z.array(z.string()).optional(),
    depends_on: z
      .union([
        z.array(z.string()),
        z.record(z.string(), z.strictObject({ condition: z.enum(['service_started', 'service_healthy', 'service_completed_successfully']), restart: z.boolean().optional() })),
      ])
      .optional(),
    healthcheck: z
      .strictObject({
        test: z.union([z.string(), z.array(z.string()).min(2)]),
        interval: durationSchema.optional(),
        timeout: durationSchema.optional(),
        retries: z.number().int().min(1).optional(),
        start_period: durationSchema.optional(),
      })
      .optional(),
    restart: z.enum(['no', 'always', 'on-failure', 'unless-stopped']).optional(),
  })
  .refine((s) => s.image !== undefined || s.build !== undefined, { message: 'a service needs image or build' });

export const composeFileSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/).optional(),
    services: z.record(z.string().regex(/^[a-zA-Z0-9._-]+$/), composeServiceSchema),
    volumes: z.record(z.string(), z.null().or(z.strictObject({}))).optional(),
  })
  .superRefine((file, ctx) => {
    const services = Object.keys(file.services);
    const volumes = Object.keys(file.volumes ?? {});
    for (const [name, service] of Object.entries(file.services)) {
      const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      for (const dep of deps) {
        if (!services.includes(dep)) ctx.addIssue({ code: 'custom', path: ['services', name, 'depends_on'], message: `unknown service ${dep}` });
      }
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (!source.startsWith('.') && !source.startsWith('/') && !volumes.includes(source)) {
          ctx.addIssue({ code: 'custom', path: ['services', name, 'volumes'], message: `named volume ${source} is not declared under volumes` });
        }
      }
    }
  });
export type ComposeFile = z.infer<typeof composeFileSchema>;

/** The exec-form CMD / ENTRYPOINT / ENV of a Dockerfile's last stage. */
export function dockerfileInstructions(text: string): { cmd?: string[]; entrypoint?: string[]; env: Record<string, string>; from: string } {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim());
  const lastFrom = lines.map((l, i) => (/^FROM\s/i.test(l) ? i : -1)).filter((i) => i >= 0).at(-1) ?? 0;
  const stage = lines.slice(lastFrom);
  const exec = (keyword: string) => {
    const line = stage.filter((l) => l.toUpperCase().startsWith(`${keyword} `)).at(-1);
    return line === undefined ? undefined : (JSON.parse(line.slice(keyword.length + 1)) as string[]);
  };
  const env: Record<string, string> = {};
  for (const line of stage.filter((l) => /^ENV\s/i.test(l))) {
    for (const m of line.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)) env[m[1]] = m[2];
  }
  return { cmd: exec('CMD'), entrypoint: exec('ENTRYPOINT'), env, from: stage[0].split(/\s+/)[1] };
}
