// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { isQueryMetric, isStoredMetric, METRIC_NAMES, type QueryMetricName } from '../../../contract/metrics.js';
import { MetricPicker, metricOptions } from './MetricPicker.js';

async function openMenu() {
  const user = userEvent.setup();
  await user.click(screen.getByLabelText('Metrics'));
  return { user, menu: await screen.findByLabelText('Select options menu') };
}

describe('MetricPicker', () => {
  it('groups the stored metrics as TCP, UDP and Run, each metric once', () => {
    const groups = metricOptions('timeseries');
    expect(groups.map((g) => g.label)).toEqual(['TCP', 'UDP (jitter, loss)', 'Run (result, duration)']);
    expect(groups.flatMap((g) => g.options?.map((o: { value?: string }) => o.value))).toEqual(METRIC_NAMES);
  });

  it('adds the derived metrics as their own group for latest values', () => {
    const groups = metricOptions('latest');
    expect(groups.at(-1)).toMatchObject({ label: 'Derived', options: [expect.objectContaining({ value: 'last_success_age_s', label: 'Time since last successful run' })] });
  });

  it('shows the picked metrics and writes a new pick after them', async () => {
    const onChange = vi.fn();
    render(<MetricPicker<QueryMetricName> queryType="latest" value={['result']} accepts={isQueryMetric} onChange={onChange} />);
    expect(screen.getByText('Test result')).toBeInTheDocument();
    const { user, menu } = await openMenu();
    await user.click(within(menu).getByText('Time since last successful run'));
    expect(onChange).toHaveBeenLastCalledWith(['result', 'last_success_age_s']);
  });

  it('offers no derived metric to a time series', async () => {
    render(<MetricPicker queryType="timeseries" value={['result']} accepts={isStoredMetric} onChange={() => {}} />);
    const { menu } = await openMenu();
    expect(within(menu).getByText('UDP jitter')).toBeInTheDocument();
    expect(within(menu).queryByText('Derived')).not.toBeInTheDocument();
    expect(within(menu).queryByText('Time since last successful run')).not.toBeInTheDocument();
  });
});
