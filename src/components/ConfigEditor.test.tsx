// @vitest-environment jsdom
import '../../tests/setup/jsdom.js';
import type { DataSourceSettings } from '@grafana/data';
import { render, screen, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { parse } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Components } from '../selectors.js';
import type { Iperf3DataSourceOptions, Iperf3SecureJsonData } from '../types.js';
import { ConfigEditor } from './ConfigEditor.js';

type Options = DataSourceSettings<Iperf3DataSourceOptions, Iperf3SecureJsonData>;

function settings(jsonData: Iperf3DataSourceOptions = {}, secureJsonFields: Record<string, boolean> = {}): Options {
  return {
    id: 1,
    uid: 'iperf3',
    orgId: 1,
    name: 'iperf3',
    type: 'acme-iperf3-datasource',
    typeName: 'iperf3',
    typeLogoUrl: '',
    access: 'proxy',
    url: '',
    user: '',
    database: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData,
    secureJsonFields,
    secureJsonData: {},
  } as Options;
}

/** Holds the options like Grafana's settings page does, and records every change. */
function renderEditor(initial: Options) {
  const changes: Options[] = [];
  function Harness() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          changes.push(o);
          setOptions(o);
        }}
      />
    );
  }
  render(<Harness />);
  return { changes, last: () => changes[changes.length - 1], user: userEvent.setup() };
}

const VALID = {
  collectorUrl: 'http://collector:8080',
  servers: [{ host: '192.0.2.10', port: 5201 }],
};

afterEach(() => vi.useRealTimers());

describe('ConfigEditor: collector', () => {
  it('writes the collector URL to jsonData and validates it at the field', async () => {
    const { last, user } = renderEditor(settings({ servers: VALID.servers }));
    expect(screen.getByText(/is required: the collector's address/)).toBeInTheDocument();
    const url = screen.getByTestId(Components.ConfigEditor.collectorUrl);
    await user.type(url, 'ftp://x');
    expect(last().jsonData.collectorUrl).toBe('ftp://x');
    expect(screen.getByText(/must be an http:\/\/ or https:\/\/ URL/)).toBeInTheDocument();
    await user.clear(url);
    await user.type(url, 'http://collector:8080');
    expect(last().jsonData.collectorUrl).toBe('http://collector:8080');
    expect(screen.queryByText(/must be an http/)).not.toBeInTheDocument();
  });

  it('writes the API token to secureJsonData only, bound to the origin of the collector URL', async () => {
    const { last, user } = renderEditor(settings(VALID));
    const token = screen.getByTestId(Components.ConfigEditor.apiToken);
    await user.type(token, 's3cret');
    expect(last().secureJsonData?.apiToken).toBe('http://collector:8080 s3cret');
    expect(token).toHaveValue('s3cret');
    expect(JSON.stringify(last().jsonData)).not.toContain('s3cret');
    // typed in this session, the token follows the URL it will be saved with
    const url = screen.getByTestId(Components.ConfigEditor.collectorUrl);
    await user.clear(url);
    await user.type(url, 'https://Collector.example:443/api');
    expect(last().secureJsonData?.apiToken).toBe('https://collector.example s3cret');
    expect(token).toHaveValue('s3cret');
  });

  it('asks to re-enter a saved token when the URL moves to another origin', async () => {
    const { last, user } = renderEditor(settings(VALID, { apiToken: true }));
    const url = screen.getByTestId(Components.ConfigEditor.collectorUrl);
    await user.type(url, '/v1');
    // same origin: nothing to do
    expect(screen.queryByText(/re-enter the API token/)).not.toBeInTheDocument();
    await user.clear(url);
    await user.type(url, 'http://elsewhere:8080');
    expect(screen.getByText('The API token was saved for http://collector:8080: re-enter the API token for the new URL (it is never sent to another host)')).toBeInTheDocument();
    // the saved (write-only) token is not moved along: nothing is written for it
    expect(last().secureJsonData?.apiToken).toBeUndefined();
    const collector = screen.getByText('Collector').closest('div')!.parentElement!;
    await user.click(within(collector).getByRole('button', { name: 'Reset' }));
    await user.type(screen.getByTestId(Components.ConfigEditor.apiToken), 'new-token');
    expect(last().secureJsonData?.apiToken).toBe('http://elsewhere:8080 new-token');
    expect(screen.queryByText(/re-enter the API token/)).not.toBeInTheDocument();
  });

  it('shows a configured token as configured (never its value) and resets it', async () => {
    const { last, user } = renderEditor(settings(VALID, { apiToken: true }));
    const collector = screen.getByText('Collector').closest('div')!.parentElement!;
    expect(within(collector).getByDisplayValue('configured')).toBeDisabled();
    await user.click(within(collector).getByRole('button', { name: 'Reset' }));
    expect(last().secureJsonFields.apiToken).toBe(false);
    expect(last().secureJsonData?.apiToken).toBe('');
  });
});

describe('ConfigEditor: iperf3 servers', () => {
  it('adds, edits and removes servers in jsonData.servers', async () => {
    const { last, user } = renderEditor(settings({ collectorUrl: VALID.collectorUrl }));
    expect(screen.getByText('add at least one iperf3 server')).toBeInTheDocument();
    await user.click(screen.getByTestId(Components.ConfigEditor.addServer));
    expect(last().jsonData.servers).toEqual([{ host: '', port: 5201 }]);
    expect(screen.getByText('host is required')).toBeInTheDocument();

    await user.type(screen.getByTestId(Components.ConfigEditor.serverHost(0)), 'iperf3.example.net');
    await user.type(screen.getByTestId(Components.ConfigEditor.serverLabel(0)), 'Milan');
    const port = screen.getByTestId(Components.ConfigEditor.serverPort(0));
    await user.clear(port);
    await user.type(port, '5202');
    expect(last().jsonData.servers).toEqual([{ host: 'iperf3.example.net', port: 5202, label: 'Milan' }]);
    expect(screen.queryByText('host is required')).not.toBeInTheDocument();

    await user.click(screen.getByTestId(Components.ConfigEditor.addServer));
    await user.type(screen.getByTestId(Components.ConfigEditor.serverHost(1)), '2001:db8::1');
    expect(last().jsonData.servers?.[1]).toEqual({ host: '2001:db8::1', port: 5201 });
    expect(screen.queryByText(/must be an IPv4 address/)).not.toBeInTheDocument();

    await user.click(screen.getByTestId(Components.ConfigEditor.removeServer(0)));
    expect(last().jsonData.servers).toEqual([{ host: '2001:db8::1', port: 5201 }]);
  });

  it('shows bad hosts and ports at the field', async () => {
    const { last, user } = renderEditor(settings(VALID));
    const host = screen.getByTestId(Components.ConfigEditor.serverHost(0));
    await user.clear(host);
    await user.type(host, '300.1.1.1');
    expect(screen.getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeInTheDocument();
    await user.clear(host);
    await user.type(host, 'fe80::zz');
    expect(screen.getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeInTheDocument();
    const port = screen.getByTestId(Components.ConfigEditor.serverPort(0));
    await user.clear(port);
    await user.type(port, '70000');
    expect(last().jsonData.servers?.[0].port).toBe(70000);
    expect(screen.getByText('must be a whole number from 1 to 65535')).toBeInTheDocument();
    await user.clear(port);
    await user.type(port, 'abc');
    expect(screen.getByText('must be a whole number from 1 to 65535')).toBeInTheDocument();
    await user.clear(port);
    // empty port = the default 5201
    expect(last().jsonData.servers?.[0].port).toBeUndefined();
    expect(screen.queryByText('must be a whole number from 1 to 65535')).not.toBeInTheDocument();
  });
});

describe('ConfigEditor: client options', () => {
  it('writes every numeric option to jsonData.clientOptions and shows range errors', async () => {
    const { last, user } = renderEditor(settings(VALID));
    const cases: Array<[RegExp, string, string, number, string]> = [
      [/^Duration/, 'time', '0', 30, 'must be at least 1 s'],
      [/^Connect timeout/, 'connectTimeout', '1', 3000, 'must be at least 100 ms (1 ms makes every test fail)'],
      [/^Parallel streams/, 'parallel', '129', 4, 'must be from 1 to 128'],
      [/^Omit/, 'omit', '61', 2, 'must be from 0 to 60 s'],
    ];
    for (const [label, key, bad, good, message] of cases) {
      const input = screen.getByLabelText(label);
      await user.type(input, bad);
      expect((last().jsonData.clientOptions as Record<string, unknown>)[key]).toBe(Number(bad));
      expect(screen.getByText(message)).toBeInTheDocument();
      await user.clear(input);
      await user.type(input, String(good));
      expect((last().jsonData.clientOptions as Record<string, unknown>)[key]).toBe(good);
      expect(screen.queryByText(message)).not.toBeInTheDocument();
    }
  });

  it('writes window, bytes and block count in iperf3 syntax, empty = unset', async () => {
    const { last, user } = renderEditor(settings(VALID));
    for (const [label, key] of [
      [/^Window/, 'window'],
      [/^Bytes/, 'bytes'],
      [/^Block count/, 'blockcount'],
    ] as const) {
      const input = screen.getByLabelText(label);
      await user.type(input, '12x');
      expect(screen.getByText(/use iperf3 syntax: a number with an optional K, M or G suffix/)).toBeInTheDocument();
      await user.clear(input);
      expect(last().jsonData.clientOptions?.[key]).toBeNull();
      await user.type(input, '256K');
      expect(last().jsonData.clientOptions?.[key]).toBe('256K');
      expect(screen.queryByText(/use iperf3 syntax/)).not.toBeInTheDocument();
    }
  });

  it('edits directions and requires at least one', async () => {
    const { last, user } = renderEditor(settings(VALID));
    await user.click(screen.getByLabelText('Download'));
    expect(last().jsonData.clientOptions?.directions).toEqual(['upload']);
    await user.click(screen.getByLabelText('Upload'));
    expect(last().jsonData.clientOptions?.directions).toEqual([]);
    expect(screen.getByText('pick at least one direction: upload, download')).toBeInTheDocument();
    await user.click(screen.getByLabelText('Download'));
    expect(last().jsonData.clientOptions?.directions).toEqual(['download']);
  });

  it('edits TCP and UDP bitrate and length, and UDP on/off', async () => {
    const { last, user } = renderEditor(settings(VALID));
    await user.type(screen.getByLabelText(/^TCP bitrate/), '100M');
    await user.type(screen.getByLabelText(/^TCP length/), '64K');
    expect(last().jsonData.clientOptions?.tcp).toEqual({ bitrate: '100M', length: '64K' });
    await user.type(screen.getByLabelText(/^UDP bitrate/), 'fast');
    expect(screen.getByText(/use iperf3 syntax: a number with an optional K, M, G or T suffix/)).toBeInTheDocument();
    await user.clear(screen.getByLabelText(/^UDP bitrate/));
    await user.type(screen.getByLabelText(/^UDP bitrate/), '50M');
    await user.type(screen.getByLabelText(/^UDP length/), '1400');
    expect(last().jsonData.clientOptions?.udp).toEqual({ bitrate: '50M', length: '1400' });
    await user.click(screen.getByLabelText('UDP test'));
    expect(last().jsonData.clientOptions?.udp?.enabled).toBe(false);
    expect(screen.queryByLabelText(/^UDP bitrate/)).not.toBeInTheDocument();
  });

  it('edits iperf3 authentication; the password goes to secureJsonData', async () => {
    const { last, user } = renderEditor(settings(VALID));
    expect(screen.queryByLabelText(/^Username/)).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Authentication'));
    expect(last().jsonData.clientOptions?.auth).toEqual({ username: '', pkcs1Padding: false });
    expect(screen.getByText('username is required for iperf3 authentication')).toBeInTheDocument();
    await user.type(screen.getByLabelText(/^Username/), 'probe');
    await user.type(screen.getByLabelText(/^Password/), 'pw');
    await user.type(screen.getByLabelText(/^RSA public key/), '-----BEGIN PUBLIC KEY-----');
    await user.click(screen.getByLabelText('PKCS#1 padding'));
    expect(last().jsonData.clientOptions?.auth).toEqual({ username: 'probe', pkcs1Padding: true, rsaPublicKey: '-----BEGIN PUBLIC KEY-----' });
    expect(last().secureJsonData?.iperf3Password).toBe('pw');
    expect(JSON.stringify(last().jsonData)).not.toContain('"pw"');
    expect(screen.queryByText('username is required for iperf3 authentication')).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Authentication'));
    expect(last().jsonData.clientOptions?.auth).toBeNull();
  });

  it('resets a configured iperf3 password', async () => {
    const { last, user } = renderEditor(settings({ ...VALID, clientOptions: { auth: { username: 'probe' } } }, { iperf3Password: true }));
    const password = screen.getByLabelText(/^Password/);
    expect(password).toHaveValue('configured');
    const field = password.closest('[class*="field"]') ?? password.parentElement!.parentElement!;
    await user.click(within(field.parentElement as HTMLElement).getByRole('button', { name: 'Reset' }));
    expect(last().secureJsonFields.iperf3Password).toBe(false);
    expect(last().secureJsonData?.iperf3Password).toBe('');
  });
});

describe('ConfigEditor: schedule', () => {
  it('edits cron, time zone and run-at-start, previewing the next runs', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2026-03-01T12:00:00Z') });
    const { last, user } = renderEditor(settings(VALID));
    const preview = screen.getByTestId(Components.ConfigEditor.nextRuns);
    // default: 02:00 UTC every night
    expect(within(preview).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'Mon, 2 Mar 2026, 02:00',
      'Tue, 3 Mar 2026, 02:00',
      'Wed, 4 Mar 2026, 02:00',
      'Thu, 5 Mar 2026, 02:00',
      'Fri, 6 Mar 2026, 02:00',
    ]);
    await user.type(screen.getByLabelText(/^Cron/), 'nonsense');
    expect(screen.getByText(/not a valid cron expression/)).toBeInTheDocument();
    expect(within(preview).queryByRole('listitem')).toBeNull();
    await user.clear(screen.getByLabelText(/^Cron/));
    await user.type(screen.getByLabelText(/^Cron/), '30 3 * * 1');
    await user.type(screen.getByLabelText('Time zone picker'), 'Rome');
    await user.click(await screen.findByText('Rome'));
    await user.click(screen.getByLabelText('Run at start'));
    expect(last().jsonData.schedule).toEqual({ cron: '30 3 * * 1', timezone: 'Europe/Rome', runAtStart: true });
    const items = within(screen.getByTestId(Components.ConfigEditor.nextRuns)).getAllByRole('listitem');
    expect(items[0].textContent).toBe('Mon, 2 Mar 2026, 03:30');
    expect(items[4].textContent).toBe('Mon, 30 Mar 2026, 03:30');
    expect(screen.getByText('Next runs (Europe/Rome):')).toBeInTheDocument();
  });
});

describe('ConfigEditor: a time zone the picker does not list', () => {
  it('says at the field that a provisioned zone is not an IANA name', () => {
    renderEditor(settings({ ...VALID, schedule: { timezone: 'Mars/Olympus' } }));
    expect(screen.getByText(/not an IANA time zone/)).toBeInTheDocument();
  });
});

describe('ConfigEditor: provisioning YAML', () => {
  it('shows the settings as provisioning YAML with secrets as environment references', async () => {
    const { user } = renderEditor(settings({ ...VALID, schedule: { cron: '0 3 * * *' } }, { apiToken: true }));
    await user.click(screen.getByTestId(Components.ConfigEditor.showYaml));
    const text = (await screen.findByTestId(Components.ConfigEditor.yaml)).textContent ?? '';
    const doc = parse(text);
    expect(doc.apiVersion).toBe(1);
    expect(doc.datasources[0]).toMatchObject({
      name: 'iperf3',
      type: 'acme-iperf3-datasource',
      uid: 'iperf3',
      access: 'proxy',
      jsonData: { collectorUrl: 'http://collector:8080', servers: [{ host: '192.0.2.10', port: 5201 }], schedule: { cron: '0 3 * * *' } },
      secureJsonData: { apiToken: 'http://collector:8080 ${IPERF3_API_TOKEN}' },
    });
    expect(doc.datasources[0].secureJsonData.iperf3Password).toBeUndefined();
  });

  it('never echoes a secret typed before saving', async () => {
    const { user } = renderEditor(settings(VALID));
    await user.type(screen.getByTestId(Components.ConfigEditor.apiToken), 'typed-secret');
    await user.click(screen.getByTestId(Components.ConfigEditor.showYaml));
    const text = (await screen.findByTestId(Components.ConfigEditor.yaml)).textContent ?? '';
    expect(text).not.toContain('typed-secret');
    expect(parse(text).datasources[0].secureJsonData).toEqual({ apiToken: 'http://collector:8080 ${IPERF3_API_TOKEN}' });
  });
});
