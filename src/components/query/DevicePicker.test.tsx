// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { DEVICES } from '../../../tests/support/collectorConfig.js';
import { describeDevice, DevicePicker } from './DevicePicker.js';

function renderPicker(value: string[], props: { devices?: typeof DEVICES; loadError?: string; variables?: string[] } = {}) {
  const onChange = vi.fn();
  render(<DevicePicker value={value} devices={'devices' in props ? props.devices : DEVICES} loadError={props.loadError} variables={props.variables ?? []} onChange={onChange} />);
  return { onChange, user: userEvent.setup() };
}

describe('DevicePicker', () => {
  it('describes a device by address, labels and state', () => {
    expect(describeDevice(DEVICES[0])).toBe('10.0.0.1:22 · site=hq, org=acme');
    expect(describeDevice(DEVICES[2])).toBe('cpe7.branch.example:2222 · site=branch, org=acme · disabled');
    expect(describeDevice({ ...DEVICES[0], labels: {} })).toBe('10.0.0.1:22');
  });

  it('lists All devices, dashboard variables and the inventory, and adds a pick', async () => {
    const { onChange, user } = renderPicker(['router-hq-1'], { variables: ['$device'] });
    await user.click(screen.getByLabelText('Devices'));
    expect(await screen.findByText('All devices')).toBeInTheDocument();
    expect(screen.getByText('$device')).toBeInTheDocument();
    await user.click(screen.getByText('cpe-branch-7'));
    expect(onChange).toHaveBeenLastCalledWith(['router-hq-1', 'cpe-branch-7']);
  });

  it('lets the newest choice win between All devices and single devices', async () => {
    const { onChange, user } = renderPicker(['router-hq-1']);
    await user.click(screen.getByLabelText('Devices'));
    await user.click(await screen.findByText('All devices'));
    expect(onChange).toHaveBeenLastCalledWith(['*']);
  });

  it('picks a single device in place of All devices', async () => {
    const { onChange, user } = renderPicker(['*']);
    await user.click(screen.getByLabelText('Devices'));
    await user.click(await screen.findByText('router-hq-2'));
    expect(onChange).toHaveBeenLastCalledWith(['router-hq-2']);
  });

  it('keeps ids the inventory does not list visible', () => {
    renderPicker(['gone-1', 'router-hq-1']);
    expect(screen.getByText('gone-1')).toBeInTheDocument();
    expect(screen.getByText('router-hq-1')).toBeInTheDocument();
  });

  it('says why the devices could not be loaded', () => {
    renderPicker(['*'], { devices: undefined, loadError: 'collector unreachable' });
    expect(screen.getByText('Could not load devices: collector unreachable')).toBeInTheDocument();
  });
});
