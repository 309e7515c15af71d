/**
 * "Run now" for the devices the query selects, in the query editor (dashboards and Explore).
 * Editors and Admins start it; a Viewer sees it disabled with the reason (the plugin backend
 * refuses a Viewer's POST with 403 whatever the browser shows). It follows the runs through the
 * backend's runs/progress resource: queued, running (which test), done (the result) or failed
 * (the error class), and refreshes the panel (onRunQuery) once every device has finished.
 */
import { formattedValueToString, getValueFormat } from '@grafana/data';
import { config } from '@grafana/runtime';
import { Alert, Button, Icon, Stack, Text, Tooltip } from '@grafana/ui';
import { useEffect, useRef, useState } from 'react';
import { MAX_RUN_NOW_DEVICES, type DeviceInfo, type LatestValue, type RunProgress } from '../../../contract/api.js';
import { ALL_DEVICES, labelFilter, type LabelMatcher } from '../../../contract/query.js';
import type { DataSource } from '../../datasource.js';
import { Components } from '../../selectors.js';
import type { Iperf3DataQuery } from '../../types.js';

/** How often the progress is asked for, and for how long at most (a round of a big fleet takes hours). */
export const POLL_INTERVAL_MS = 2000;
export const FOLLOW_AT_MOST_MS = 60 * 60_000;
/** Polls that may fail in a row (the collector restarting) before following stops. */
const POLL_FAILURES_TOLERATED = 3;

const CHANGING_ROLES = new Set(['Editor', 'Admin']);

/** The signed-in user's organization role, as Grafana's boot data gives it to plugins. */
export function currentOrgRole(): string {
  return (config.bootData?.user as { orgRole?: string } | undefined)?.orgRole ?? '';
}

export function canStartRuns(role: string): boolean {
  return CHANGING_ROLES.has(role);
}

/**
 * The device ids a Run now starts: the query's devices and label matchers with dashboard
 * variables replaced; `*` is every enabled device of the inventory.
 */
export function runNowTargets(devices: string[], matchers: LabelMatcher[], inventory: DeviceInfo[] | undefined): string[] {
  const passes = (() => {
    try {
      return labelFilter(matchers);
    } catch {
      // an invalid regex: the query editor shows it; nothing matches until it is fixed
      return () => false;
    }
  })();
  const known = new Map((inventory ?? []).map((d) => [d.id, d]));
  if (devices.includes(ALL_DEVICES)) return (inventory ?? []).filter((d) => d.enabled && passes(d.labels)).map((d) => d.id);
  return devices.filter((id) => {
    const device = known.get(id);
    // an id the inventory does not list (yet) is sent as is: the collector names it if unknown
    return device === undefined || passes(device.labels);
  });
}

function errorText(e: unknown): string {
  const data = (e as { data?: { message?: string } })?.data;
  if (data?.message) return data.message;
  return e instanceof Error ? e.message : String(e);
}

const bps = (v: number) => formattedValueToString(getValueFormat('bps')(v, 1));

/** "upload 94.1 Mb/s, download 93.0 Mb/s; UDP jitter 0.05 ms, loss 0 %" */
export function describeResults(values: LatestValue[]): string {
  const of = (metric: string) => values.filter((v) => v.metric === metric && v.failed === 0);
  const tcp = of('tcp_received_bps').map((v) => `${v.direction} ${bps(v.value)}`);
  const jitter = of('udp_jitter_ms').map((v) => `${v.direction} jitter ${v.value.toFixed(2)} ms`);
  const loss = of('udp_lost_percent').map((v) => `${v.direction} loss ${Number(v.value.toFixed(2))} %`);
  const udp = [...jitter, ...loss];
  return [tcp.join(', '), udp.length > 0 ? `UDP ${udp.join(', ')}` : ''].filter((s) => s !== '').join('; ') || 'no values stored';
}

/** One line per device: what it is doing now. */
export function describeProgress(p: RunProgress): string {
  const run = p.run;
  switch (p.state) {
    case 'queued':
      return 'queued: waiting for a free iperf3 server';
    case 'running': {
      const c = run?.current;
      return c ? `running: ${c.protocol.toUpperCase()} ${c.direction} (test ${c.index} of ${c.of})` : 'running: connecting to the device';
    }
    case 'done':
      return `done: ${describeResults(p.results)}`;
    case 'failed':
      return `${run?.status ?? 'failed'}: ${run?.errorClass ?? 'error'}${run?.message ? ` (${run.message})` : ''}`;
  }
}

const STATE_ICON = { queued: 'clock-nine', running: 'sync', done: 'check', failed: 'exclamation-triangle' } as const;
const STATE_COLOR = { queued: 'secondary', running: 'primary', done: 'success', failed: 'error' } as const;

interface Props {
  datasource: DataSource;
  query: Iperf3DataQuery;
  inventory: DeviceInfo[] | undefined;
  onRunQuery: () => void;
  /** the signed-in user's org role; read from Grafana's boot data when not given */
  role?: string;
  /** tests shorten it */
  pollIntervalMs?: number;
}

type Phase =
  | { kind: 'idle' }
  | { kind: 'starting' }
  | { kind: 'following'; after: number; devices: string[]; progress: RunProgress[]; since: number; pollError?: string }
  | { kind: 'finished'; progress: RunProgress[]; note?: string }
  | { kind: 'error'; message: string };

export function RunNow({ datasource, query, inventory, onRunQuery, role = currentOrgRole(), pollIntervalMs = POLL_INTERVAL_MS }: Props) {
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      clearTimeout(timer.current);
    };
  }, []);

  const interpolated = datasource.applyTemplateVariables(query, {});
  const matchers = (interpolated.labelMatchers ?? []).map((m) => ({ ...m, op: m.op ?? '=' }));
  const targets = runNowTargets(interpolated.devices ?? [], matchers, inventory);
  const allowed = canStartRuns(role);
  const busy = phase.kind === 'starting' || phase.kind === 'following';
  const tooMany = targets.length > MAX_RUN_NOW_DEVICES;
  const reason = !allowed
    ? `Starting runs needs the Editor or Admin role in this organization (${role ? `your role is ${role}` : 'no role is known for you'}); ask an Editor or Admin.`
    : targets.length === 0
      ? 'Select the devices to test first.'
      : tooMany
        ? `The query selects ${targets.length} devices; Run now tests at most ${MAX_RUN_NOW_DEVICES} at once: narrow it with devices or label matchers.`
        : undefined;

  const poll = (after: number, devices: string[], since: number, failures: number) => {
    timer.current = setTimeout(async () => {
      let failuresNow = failures;
      let next: Phase;
      try {
        const { devices: progress } = await datasource.getRunProgress(devices, after);
        failuresNow = 0;
        const finished = progress.every((p) => p.state === 'done' || p.state === 'failed');
        next = finished ? { kind: 'finished', progress } : { kind: 'following', after, devices, progress, since };
      } catch (e) {
        failuresNow += 1;
        next = { kind: 'following', after, devices, progress: [], since, pollError: errorText(e) };
      }
      if (!mounted.current) return;
      if (next.kind === 'following' && next.pollError && failuresNow > POLL_FAILURES_TOLERATED) {
        setPhase({ kind: 'error', message: `Lost track of the runs: ${next.pollError}. They go on in the collector; run the query later to see them.` });
        return;
      }
      if (next.kind === 'following' && Date.now() - since > FOLLOW_AT_MOST_MS) {
        setPhase({ kind: 'finished', progress: next.progress, note: 'Stopped following after an hour; the runs go on in the collector.' });
        onRunQuery();
        return;
      }
      setPhase((current) => (next.kind === 'following' && next.pollError && current.kind === 'following' ? { ...next, progress: current.progress } : next));
      if (next.kind === 'finished') onRunQuery();
      else poll(after, devices, since, failuresNow);
    }, pollIntervalMs);
  };

  const start = async () => {
    clearTimeout(timer.current);
    setPhase({ kind: 'starting' });
    try {
      const { queued, after } = await datasource.runNow(targets);
      if (!mounted.current) return;
      const since = Date.now();
      setPhase({ kind: 'following', after, devices: queued, since, progress: queued.map((device) => ({ device, state: 'queued', run: null, results: [] })) });
      poll(after, queued, since, 0);
    } catch (e) {
      if (mounted.current) setPhase({ kind: 'error', message: errorText(e) });
    }
  };

  const button = (
    <Button
      data-testid={Components.QueryEditor.runNow}
      icon={busy ? 'spinner' : 'play'}
      variant="secondary"
      size="sm"
      disabled={reason !== undefined || busy}
      onClick={start}
    >
      {busy ? 'Running…' : `Run now (${targets.length} device${targets.length === 1 ? '' : 's'})`}
    </Button>
  );
  const progress = phase.kind === 'following' || phase.kind === 'finished' ? phase.progress : [];

  return (
    <Stack direction="column" gap={1}>
      <Stack gap={1} alignItems="center">
        {reason ? (
          <Tooltip content={reason}>
            <span>{button}</span>
          </Tooltip>
        ) : (
          button
        )}
        <Text variant="bodySmall" color="secondary" data-testid={Components.QueryEditor.runNowReason}>
          {reason ?? 'tests the selected devices now, ahead of the schedule'}
        </Text>
      </Stack>
      {phase.kind === 'error' && <Alert severity="error" title="Run now" data-testid={Components.QueryEditor.runNowError}>{phase.message}</Alert>}
      {progress.length > 0 && (
        <ul aria-label="Run now progress" data-testid={Components.QueryEditor.runNowProgress} style={{ listStyle: 'none', padding: 0, margin: 0 }}>
          {progress.map((p) => (
            <li key={p.device} data-state={p.state}>
              <Stack gap={1} alignItems="center">
                <Text color={STATE_COLOR[p.state]}>
                  <Icon name={STATE_ICON[p.state]} />
                </Text>
                <Text weight="medium">{p.device}</Text>
                <Text color={p.state === 'failed' ? 'error' : undefined}>{describeProgress(p)}</Text>
              </Stack>
            </li>
          ))}
        </ul>
      )}
      {phase.kind === 'following' && phase.pollError && (
        <Text variant="bodySmall" color="warning">
          Could not read the progress ({phase.pollError}); trying again.
        </Text>
      )}
      {phase.kind === 'finished' && (
        <Text variant="bodySmall" color="secondary">
          {phase.note ?? 'Finished: the panel has been refreshed.'}
        </Text>
      )}
    </Stack>
  );
}
