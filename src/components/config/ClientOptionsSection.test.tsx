// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { useState } from 'react';
import { describe, expect, it, vi } from 'vitest';
import type { SettingsInput } from '../../../contract/settings.js';
import { ClientOptionsSection } from './ClientOptionsSection.js';

type ClientOptions = NonNullable<SettingsInput['clientOptions']>;

function renderSection(initial: ClientOptions | undefined, errors: Record<string, string> = {}, passwordConfigured = false) {
  const changes: ClientOptions[] = [];
  const password = { onPasswordChange: vi.fn(), onPasswordReset: vi.fn() };
  function Harness() {
    const [value, setValue] = useState(initial);
    return (
      <ClientOptionsSection
        value={value}
        errors={errors}
        passwordConfigured={passwordConfigured}
        passwordValue=""
        onChange={(v) => (changes.push(v), setValue(v))}
        {...password}
      />
    );
  }
  render(<Harness />);
  return { last: () => changes.at(-1), ...password, user: userEvent.setup() };
}

describe('ClientOptionsSection', () => {
  it('shows the schema defaults as placeholders', () => {
    renderSection(undefined);
    expect(screen.getByLabelText(/^Duration/)).toHaveAttribute('placeholder', '10');
    expect(screen.getByLabelText(/^Connect timeout/)).toHaveAttribute('placeholder', '1000');
    expect(screen.getByLabelText(/^TCP length/)).toHaveAttribute('placeholder', '128K');
    expect(screen.getByLabelText(/^UDP bitrate/)).toHaveAttribute('placeholder', '30M');
  });

  it('writes a typed number as a number, and an emptied one as unset', async () => {
    const { last, user } = renderSection({ parallel: 2 });
    const parallel = screen.getByLabelText(/^Parallel streams/);
    await user.type(parallel, '0');
    expect(last()).toEqual({ parallel: 20 });
    await user.clear(parallel);
    expect(last()).toEqual({});
  });

  it('shows errors at their fields', () => {
    renderSection({ time: 0, udp: { bitrate: 'x' } }, { 'clientOptions.time': 'must be at least 1 s', 'clientOptions.udp.bitrate': 'use iperf3 syntax' });
    expect(screen.getByText('must be at least 1 s')).toBeInTheDocument();
    expect(screen.getByText('use iperf3 syntax')).toBeInTheDocument();
  });

  it('keeps one direction at a time when the other is unticked', async () => {
    const { last, user } = renderSection({});
    await user.click(screen.getByLabelText('Upload'));
    expect(last()).toEqual({ directions: ['download'] });
  });

  it('hides the UDP fields when the UDP test is off', async () => {
    const { last, user } = renderSection({ udp: { bitrate: '10M' } });
    await user.click(screen.getByLabelText('UDP test'));
    expect(last()).toEqual({ udp: { bitrate: '10M', enabled: false } });
    expect(screen.queryByLabelText(/^UDP bitrate/)).not.toBeInTheDocument();
  });

  it('turns authentication on and off, the password through its own callbacks', async () => {
    const { last, onPasswordChange, user } = renderSection({});
    expect(screen.queryByLabelText(/^Username/)).not.toBeInTheDocument();
    await user.click(screen.getByLabelText('Authentication'));
    expect(last()).toEqual({ auth: { username: '', pkcs1Padding: false } });
    await user.type(screen.getByLabelText(/^Password/), 'p');
    expect(onPasswordChange).toHaveBeenLastCalledWith('p');
    expect(JSON.stringify(last())).not.toContain('"p"');
    await user.click(screen.getByLabelText('Authentication'));
    expect(last()).toEqual({ auth: null });
  });

  it('resets a configured password', async () => {
    const { onPasswordReset, user } = renderSection({ auth: { username: 'probe' } }, {}, true);
    expect(screen.getByLabelText(/^Password/)).toHaveValue('configured');
    await user.click(screen.getByRole('button', { name: 'Reset' }));
    expect(onPasswordReset).toHaveBeenCalledTimes(1);
  });
});
