// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import type { DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { Components } from '../../selectors.js';
import type { Iperf3DataSourceOptions, Iperf3SecureJsonData } from '../../types.js';
import { ProvisioningYamlButton } from './ProvisioningYamlButton.js';

const options = {
  name: 'iperf3',
  type: 'acme-iperf3-datasource',
  uid: 'iperf3',
  isDefault: true,
  jsonData: { collectorUrl: 'http://collector:8686', servers: [{ host: '192.0.2.10' }] },
  secureJsonFields: { iperf3Password: true },
  secureJsonData: { apiToken: 'typed-not-saved' },
} as unknown as DataSourceSettings<Iperf3DataSourceOptions, Iperf3SecureJsonData>;

describe('ProvisioningYamlButton', () => {
  it('opens the settings as a provisioning file, every secret as an environment reference', async () => {
    render(<ProvisioningYamlButton options={options} />);
    expect(screen.queryByTestId(Components.ConfigEditor.yaml)).not.toBeInTheDocument();
    const user = userEvent.setup();
    await user.click(screen.getByRole('button', { name: /Show provisioning YAML/ }));
    const text = (await screen.findByTestId(Components.ConfigEditor.yaml)).textContent ?? '';
    expect(text).not.toContain('typed-not-saved');
    expect(parse(text).datasources[0]).toEqual({
      name: 'iperf3',
      type: 'acme-iperf3-datasource',
      uid: 'iperf3',
      access: 'proxy',
      isDefault: true,
      editable: true,
      jsonData: { collectorUrl: 'http://collector:8686', servers: [{ host: '192.0.2.10' }] },
      // the token bound to the collector's origin in the same value, as the backend requires
      secureJsonData: { apiToken: 'http://collector:8686 ${IPERF3_API_TOKEN}', iperf3Password: '${IPERF3_PASSWORD}' },
    });
    await user.click(screen.getAllByRole('button', { name: 'Close' }).at(-1)!);
    expect(screen.queryByTestId(Components.ConfigEditor.yaml)).not.toBeInTheDocument();
  });
});
