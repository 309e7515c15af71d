// @vitest-environment jsdom
import '../tests/setup/jsdom.js';
import { type DataQueryRequest, type DataSourceInstanceSettings, type ScopedVars } from '@grafana/data';
import { setBackendSrv, setTemplateSrv, type BackendSrv, type TemplateSrv } from '@grafana/runtime';
import { lastValueFrom } from 'rxjs';
import { beforeEach, describe, expect, it } from 'vitest';
import { resourceFetch, RUN_NOW_AFTER } from '../tests/support/collectorConfig.js';
import { DataSource } from './datasource.js';
import type { DeviceVariableQuery, Iperf3DataQuery, Iperf3DataSourceOptions } from './types.js';
import { DeviceVariableSupport, listVariableValues } from './variables/DeviceVariableSupport.js';

/**
 * Interpolates `$name` the way Grafana's TemplateSrv does for a format function: the
 * function gets the current value(s) and the variable, whose current value is `$__all`
 * when "All" is selected.
 */
function templateSrv(vars: Record<string, { value: string | string[]; all?: string[] }>): TemplateSrv {
  return {
    getVariables: () => Object.keys(vars).map((name) => ({ name })),
    replace(target = '', scopedVars: ScopedVars = {}, format?: string | ((value: unknown, variable: unknown) => string)) {
      return target.replace(/\$(\w+)/g, (match, name: string) => {
        const scoped = scopedVars[name];
        const v = vars[name];
        if (!scoped && !v) return match;
        const selected = scoped ? scoped.value : v.value;
        const value = selected === '$__all' ? v.all : selected;
        const variable = { name, current: { value: selected } };
        if (typeof format === 'function') return format(value, variable);
        return Array.isArray(value) ? `{${value.join(',')}}` : String(value);
      });
    },
  } as unknown as TemplateSrv;
}

const UID = 'iperf3-ds';
const ds = () =>
  new DataSource({ uid: UID, id: 1, name: 'iperf3', type: 'acme-iperf3-datasource', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings<Iperf3DataSourceOptions>);

let calls: Array<{ url: string; method?: string; data?: unknown }>;
beforeEach(() => {
  calls = [];
  setBackendSrv({ fetch: resourceFetch(UID, calls) } as unknown as BackendSrv);
  setTemplateSrv(
    templateSrv({
      device: { value: ['router-hq-1', 'router-hq-2'], all: ['router-hq-1', 'router-hq-2', 'cpe-branch-7'] },
      one: { value: 'cpe-branch-7' },
      everything: { value: '$__all', all: ['router-hq-1', 'router-hq-2'] },
      site: { value: ['hq', 'a.b'] },
      server: { value: '192.0.2.10:5201' },
    }),
  );
});

describe('applyTemplateVariables', () => {
  const base = { refId: 'A', queryType: 'timeseries', metrics: ['tcp_received_bps'] } as Iperf3DataQuery;

  it('splits multi-value variables into the devices array and drops duplicates', () => {
    const q = ds().applyTemplateVariables({ ...base, devices: ['$device', 'router-hq-1', '$one'] }, {});
    expect(q.devices).toEqual(['router-hq-1', 'router-hq-2', 'cpe-branch-7']);
  });

  it('sends "All" as the values the variable lists (no custom all value), without looking at `current`', () => {
    expect(ds().applyTemplateVariables({ ...base, devices: ['router-hq-1', '$everything'] }, {}).devices).toEqual(['router-hq-1', 'router-hq-2']);
  });

  it('uses the scoped value of a repeated panel', () => {
    const q = ds().applyTemplateVariables({ ...base, devices: ['$device'] }, { device: { text: 'router-hq-2', value: 'router-hq-2' } });
    expect(q.devices).toEqual(['router-hq-2']);
  });

  it('interpolates label matchers (regex-escaped for =~) and the server filter', () => {
    const q = ds().applyTemplateVariables(
      {
        ...base,
        devices: ['*'],
        labelMatchers: [
          { label: 'site', op: '=~', value: '$site' },
          { label: 'org', value: 'acme' } as never,
        ],
        server: '$server',
      } as Iperf3DataQuery,
      {},
    );
    expect(q.labelMatchers).toEqual([
      { label: 'site', op: '=~', value: '(hq|a\\.b)' },
      { label: 'org', op: '=', value: 'acme' },
    ]);
    expect((q as { server?: string }).server).toBe('192.0.2.10:5201');
  });

  it('keeps hidden queries from running', () => {
    expect(ds().filterQuery({ ...base, hide: true })).toBe(false);
    expect(ds().filterQuery(base)).toBe(true);
  });

  it('offers failed and interrupted runs as annotations by default', () => {
    expect(ds().annotations?.getDefaultQuery?.()).toMatchObject({ queryType: 'runs', status: ['failed', 'interrupted'], devices: ['*'] });
  });
});

describe('resources', () => {
  it('posts "run now" to the runs resource', async () => {
    await expect(ds().runNow(['router-hq-1'])).resolves.toEqual({ queued: ['router-hq-1'], after: RUN_NOW_AFTER });
    expect(calls.at(-1)).toMatchObject({ url: `/api/datasources/uid/${UID}/resources/runs`, method: 'POST', data: { devices: ['router-hq-1'] } });
  });
});

describe('variable support', () => {
  const request = (q: Partial<DeviceVariableQuery>) =>
    ({ targets: [{ refId: 'variable', ...q }], scopedVars: {} }) as unknown as DataQueryRequest<DeviceVariableQuery>;

  it('lists devices as a text/value frame', async () => {
    const support = ds().variables as DeviceVariableSupport;
    const res = await lastValueFrom(support.query(request({ kind: 'devices' })));
    const frame = res.data[0];
    expect(frame.fields.map((f: { name: string }) => f.name)).toEqual(['text', 'value']);
    expect(frame.fields[1].values).toEqual(['router-hq-1', 'router-hq-2', 'cpe-branch-7']);
  });

  it('filters devices by label matchers, with variables in them', async () => {
    const values = await listVariableValues(ds(), { refId: 'v', kind: 'devices', labelMatchers: [{ label: 'site', op: '=~', value: '$site' }] });
    expect(values.map((v) => v.value)).toEqual(['router-hq-1', 'router-hq-2']);
    const branch = await listVariableValues(ds(), { refId: 'v', kind: 'devices', labelMatchers: [{ label: 'site', op: '!=', value: 'hq' }] });
    expect(branch.map((v) => v.value)).toEqual(['cpe-branch-7']);
  });

  it('lists the values of a label (sites), sorted and unique', async () => {
    const values = await listVariableValues(ds(), { refId: 'v', kind: 'labelValues', label: 'site' });
    expect(values).toEqual([
      { text: 'branch', value: 'branch' },
      { text: 'hq', value: 'hq' },
    ]);
  });

  it('asks for the label when listing label values without one', async () => {
    await expect(listVariableValues(ds(), { refId: 'v', kind: 'labelValues' })).rejects.toThrow('label values: choose which label to list, e.g. site');
  });

  it('lists servers by label and host:port', async () => {
    const values = await listVariableValues(ds(), { refId: 'v', kind: 'servers' });
    expect(values).toEqual([
      { text: 'Milan (192.0.2.10:5201)', value: '192.0.2.10:5201' },
      { text: '[2001:db8::10]:5201', value: '[2001:db8::10]:5201' },
    ]);
  });
});
