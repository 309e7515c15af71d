// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SERVERS } from '../../../tests/support/collectorConfig.js';
import { SeriesFilters, serverOptions, type SeriesFilter } from './SeriesFilters.js';

function renderFilters(filter: SeriesFilter, servers = { value: SERVERS }) {
  const onChange = vi.fn();
  render(<SeriesFilters filter={filter} servers={servers} variables={['$server']} onChange={onChange} />);
  return { onChange, user: userEvent.setup() };
}

describe('SeriesFilters', () => {
  it('names servers by label and host:port, after the dashboard variables', () => {
    expect(serverOptions(SERVERS, ['$server']).map((o) => [o.label, o.value])).toEqual([
      ['$server', '$server'],
      ['Milan (192.0.2.10:5201)', '192.0.2.10:5201'],
      ['[2001:db8::10]:5201', '[2001:db8::10]:5201'],
    ]);
  });

  it('sets and clears the direction', async () => {
    const { onChange, user } = renderFilters({ direction: 'upload' });
    expect(screen.getByRole('radio', { name: 'Upload' })).toBeChecked();
    await user.click(screen.getByRole('radio', { name: 'Download' }));
    expect(onChange).toHaveBeenLastCalledWith({ direction: 'download' });
    await user.click(screen.getByRole('radio', { name: 'Both' }));
    expect(onChange).toHaveBeenLastCalledWith({ direction: undefined });
  });

  it('picks a server or a variable, and splits by server', async () => {
    const { onChange, user } = renderFilters({});
    await user.click(screen.getByLabelText('Server'));
    await user.click(await screen.findByText('Milan (192.0.2.10:5201)'));
    expect(onChange).toHaveBeenLastCalledWith({ server: '192.0.2.10:5201' });
    await user.click(screen.getByLabelText('Server'));
    await user.click(await screen.findByText('$server'));
    expect(onChange).toHaveBeenLastCalledWith({ server: '$server' });
    await user.click(screen.getByRole('switch'));
    expect(onChange).toHaveBeenLastCalledWith({ splitByServer: true });
  });

  it('shows the saved server and split', () => {
    renderFilters({ server: '192.0.2.10:5201', splitByServer: true });
    expect(screen.getByText('Milan (192.0.2.10:5201)')).toBeInTheDocument();
    expect(screen.getByRole('switch')).toBeChecked();
  });
});
