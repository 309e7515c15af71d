// @vitest-environment jsdom
/**
 * Template variables as Grafana 12 and 13 interpolate them: dashboards are Scenes, and
 * TemplateSrv.replace hands the work to @grafana/scenes' `sceneGraph.interpolate` on the active
 * scene. A custom format function gets the value(s) and a variable without `current` there;
 * "All" arrives as the variable's option values, or as the custom all value, unformatted.
 * The interpolated query then goes through the backend's own device selection, so the test
 * asserts the devices the query really selects.
 */
import '../../tests/setup/jsdom.js';
import type { DataSourceInstanceSettings, ScopedVars } from '@grafana/data';
import { setTemplateSrv, type TemplateSrv } from '@grafana/runtime';
import { CustomVariable, EmbeddedScene, SceneFlexLayout, SceneVariableSet, sceneGraph, type SceneObject } from '@grafana/scenes';
import { describe, expect, it } from 'vitest';
import type { DeviceInfo } from '../../contract/api.js';
import { selectDevices } from '../backend/deviceSelection.js';
import { DataSource } from '../datasource.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions } from '../types.js';

const device = (id: string, site: string): DeviceInfo => ({ id, host: `${id}.example`, port: 22, labels: { site }, pool: null, enabled: true, lastRun: null });
const FLEET: DeviceInfo[] = [device('hq-1', 'hq'), device('hq-2', 'hq'), device('branch.7', 'branch.7'), device('lab-9', 'lab')];

interface VariableSpec {
  name: string;
  options: string[];
  value: string | string[];
  isMulti?: boolean;
  includeAll?: boolean;
  allValue?: string;
}

/** A dashboard scene with these variables, already loaded (options known), active as Grafana's. */
function scene(variables: VariableSpec[]): SceneObject {
  const vars = variables.map(
    (v) =>
      new CustomVariable({
        name: v.name,
        query: v.options.join(','),
        options: v.options.map((o) => ({ label: o, value: o })),
        value: v.value,
        text: v.value,
        isMulti: v.isMulti ?? Array.isArray(v.value),
        includeAll: v.includeAll ?? false,
        allValue: v.allValue,
      }),
  );
  const root = new EmbeddedScene({ $variables: new SceneVariableSet({ variables: vars }), body: new SceneFlexLayout({ children: [] }) });
  // what Grafana's TemplateSrv does while a Scenes dashboard is open
  setTemplateSrv({
    getVariables: () => sceneGraph.getVariables(root).state.variables.map((v) => ({ name: v.state.name })),
    replace: (target?: string, scopedVars?: ScopedVars, format?: string | ((...args: unknown[]) => string)) =>
      sceneGraph.interpolate(root, target, scopedVars, format as Parameters<typeof sceneGraph.interpolate>[3]),
    containsTemplate: (target?: string) => /\$/.test(target ?? ''),
    updateTimeRange: () => undefined,
  } as unknown as TemplateSrv);
  return root;
}

const ds = () =>
  new DataSource({ uid: 'iperf3-ds', id: 1, name: 'iperf3', type: 'iperf3grafana-iperf3-datasource', jsonData: {}, meta: {} } as unknown as DataSourceInstanceSettings<Iperf3DataSourceOptions>);

const base = { refId: 'A', queryType: 'timeseries', metrics: ['tcp_received_bps'] } as Iperf3DataQuery;

/** The device ids the backend selects for the query the frontend sends. */
function selected(query: Partial<Iperf3DataQuery>, scopedVars: ScopedVars = {}): { sent: Iperf3DataQuery; devices: string[] } {
  const sent = ds().applyTemplateVariables({ ...base, ...query } as Iperf3DataQuery, scopedVars);
  const matchers = (sent.labelMatchers ?? []).map((m) => ({ ...m, op: m.op ?? '=' }));
  return { sent, devices: selectDevices(sent.devices ?? [], matchers, FLEET).devices.map((d) => d.id) };
}

describe('devices through sceneGraph.interpolate', () => {
  it('a single value', () => {
    scene([{ name: 'device', options: ['hq-1', 'hq-2', 'branch.7'], value: 'hq-2' }]);
    expect(selected({ devices: ['$device'] })).toMatchObject({ devices: ['hq-2'], sent: { devices: ['hq-2'] } });
  });

  it('several values, also next to fixed ids and with ${device} syntax', () => {
    scene([{ name: 'device', options: ['hq-1', 'hq-2', 'branch.7'], value: ['hq-1', 'branch.7'] }]);
    expect(selected({ devices: ['$device'] }).devices).toEqual(['hq-1', 'branch.7']);
    expect(selected({ devices: ['${device}', 'hq-2', 'hq-1'] }).sent.devices).toEqual(['hq-1', 'branch.7', 'hq-2']);
  });

  it('All without a custom all value: exactly the devices the variable lists, not the whole fleet', () => {
    // a variable narrowed to site hq lists two of the four devices
    scene([{ name: 'device', options: ['hq-1', 'hq-2'], value: ['$__all'], includeAll: true }]);
    expect(selected({ devices: ['$device'] }).devices).toEqual(['hq-1', 'hq-2']);
  });

  it('All with the custom all value * : every device, also those added after the dashboard loaded', () => {
    scene([{ name: 'device', options: ['hq-1', 'hq-2'], value: ['$__all'], includeAll: true, allValue: '*' }]);
    expect(selected({ devices: ['$device'] })).toMatchObject({ sent: { devices: ['*'] }, devices: FLEET.map((d) => d.id) });
  });

  it('a repeated panel: its own value from scopedVars', () => {
    scene([{ name: 'device', options: ['hq-1', 'hq-2', 'branch.7'], value: ['$__all'], includeAll: true }]);
    expect(selected({ devices: ['$device'] }, { device: { text: 'branch.7', value: 'branch.7' } }).devices).toEqual(['branch.7']);
  });
});

describe('label matchers through sceneGraph.interpolate', () => {
  it('= with a single value; =~ with several values, regex-escaped', () => {
    scene([
      { name: 'site', options: ['hq', 'branch.7', 'lab'], value: 'hq' },
      { name: 'sites', options: ['hq', 'branch.7', 'lab'], value: ['hq', 'branch.7'] },
    ]);
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=', value: '$site' }] }).devices).toEqual(['hq-1', 'hq-2']);
    const { sent, devices } = selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: '$sites' }] });
    expect(sent.labelMatchers).toEqual([{ label: 'site', op: '=~', value: '(hq|branch\\.7)' }]);
    expect(devices).toEqual(['hq-1', 'hq-2', 'branch.7']);
  });

  it('= and != with several values or All: any of the values, none of the values (regexes, escaped)', () => {
    scene([
      { name: 'sites', options: ['hq', 'branch.7', 'lab'], value: ['hq', 'branch.7'] },
      { name: 'every', options: ['hq', 'lab'], value: ['$__all'], includeAll: true },
      { name: 'star', options: ['hq', 'lab'], value: ['$__all'], includeAll: true, allValue: '*' },
    ]);
    const eq = selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=', value: '$sites' }] });
    expect(eq.sent.labelMatchers).toEqual([{ label: 'site', op: '=~', value: '(hq|branch\\.7)' }]);
    expect(eq.devices).toEqual(['hq-1', 'hq-2', 'branch.7']);
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '!=', value: '$sites' }] }).devices).toEqual(['lab-9']);
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=', value: '$every' }] }).devices).toEqual(['hq-1', 'hq-2', 'lab-9']);
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=', value: '$star' }] }).devices).toEqual(FLEET.map((d) => d.id));
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '!=', value: '$star' }] }).devices).toEqual([]);
    // a value that merely contains a comma is not split: only a multi-value variable becomes a regex
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=', value: 'hq,lab' }] }).sent.labelMatchers).toEqual([
      { label: 'site', op: '=', value: 'hq,lab' },
    ]);
  });

  it('=~ with All: every value the variable lists, or anything for a custom all value * or .*', () => {
    scene([{ name: 'site', options: ['hq', 'lab'], value: ['$__all'], includeAll: true }]);
    expect(selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: '$site' }] }).devices).toEqual(['hq-1', 'hq-2', 'lab-9']);
    for (const allValue of ['*', '.*']) {
      scene([{ name: 'site', options: ['hq', 'lab'], value: ['$__all'], includeAll: true, allValue }]);
      const { sent, devices } = selected({ devices: ['*'], labelMatchers: [{ label: 'site', op: '=~', value: '$site' }] });
      expect(sent.labelMatchers?.[0].value, allValue).toBe('.*');
      expect(devices, allValue).toEqual(FLEET.map((d) => d.id));
    }
  });
});
