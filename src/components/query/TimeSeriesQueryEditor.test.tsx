// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { SERVERS } from '../../../tests/support/collectorConfig.js';
import { LatestQueryEditor } from './LatestQueryEditor.js';
import { TimeSeriesQueryEditor } from './TimeSeriesQueryEditor.js';

describe('TimeSeriesQueryEditor', () => {
  it('shows the default metric of a query that has none, and writes metrics and filters into the query', async () => {
    const onChange = vi.fn();
    render(<TimeSeriesQueryEditor query={{ refId: 'A', queryType: 'timeseries', devices: ['r1'] }} onChange={onChange} servers={{ value: SERVERS }} variables={[]} />);
    expect(screen.getByText('TCP throughput (received)')).toBeInTheDocument();
    const user = userEvent.setup();
    await user.click(screen.getByLabelText('Metrics'));
    await user.click(within(await screen.findByLabelText('Select options menu')).getByText('UDP loss'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'timeseries', devices: ['r1'], metrics: ['tcp_received_bps', 'udp_lost_percent'] });
    await user.click(screen.getByRole('radio', { name: 'Upload' }));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'timeseries', devices: ['r1'], direction: 'upload' });
  });
});

describe('LatestQueryEditor', () => {
  it('offers the derived metrics and keeps the filters of the query', async () => {
    const onChange = vi.fn();
    render(
      <LatestQueryEditor query={{ refId: 'A', queryType: 'latest', metrics: ['result'], direction: 'download' }} onChange={onChange} servers={{ value: SERVERS }} variables={[]} />,
    );
    const user = userEvent.setup();
    await user.click(screen.getByLabelText('Metrics'));
    await user.click(within(await screen.findByLabelText('Select options menu')).getByText('Time since last successful run'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'latest', metrics: ['result', 'last_success_age_s'], direction: 'download' });
  });
});
