// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen, within } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { Components } from '../../selectors.js';
import { collectorZone, formatRunTime, pickerZone, ScheduleSection } from './ScheduleSection.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const previewItems = () => within(screen.getByTestId(Components.ConfigEditor.nextRuns)).queryAllByRole('listitem').map((li) => li.textContent);

describe('ScheduleSection', () => {
  it('formats a run time in the schedule time zone', () => {
    expect(formatRunTime(new Date('2026-03-02T02:00:00Z'), 'Europe/Rome')).toBe('Mon, 2 Mar 2026, 03:00');
  });

  it('previews the next five runs of the saved schedule in its time zone', () => {
    render(<ScheduleSection value={{ cron: '30 3 * * 1', timezone: 'Europe/Rome' }} errors={{}} onChange={() => {}} now={NOW} />);
    expect(previewItems()).toEqual([
      'Mon, 2 Mar 2026, 03:30',
      'Mon, 9 Mar 2026, 03:30',
      'Mon, 16 Mar 2026, 03:30',
      'Mon, 23 Mar 2026, 03:30',
      'Mon, 30 Mar 2026, 03:30',
    ]);
    expect(screen.getByText('Next runs (Europe/Rome):')).toBeInTheDocument();
  });

  it('previews the default schedule when none is saved', () => {
    render(<ScheduleSection value={undefined} errors={{}} onChange={() => {}} now={NOW} />);
    expect(previewItems()[0]).toBe('Mon, 2 Mar 2026, 02:00');
  });

  it('asks for a valid cron and time zone instead of a preview, with the errors at the fields', () => {
    render(<ScheduleSection value={{ cron: 'nonsense' }} errors={{ 'schedule.cron': 'not a valid cron expression' }} onChange={() => {}} now={NOW} />);
    expect(previewItems()).toEqual([]);
    expect(screen.getByText('Fix the cron expression and time zone to see the next runs.')).toBeInTheDocument();
    expect(screen.getByText('not a valid cron expression')).toBeInTheDocument();
  });

  it('picks the time zone with Grafana\'s time zone picker, searching by city', async () => {
    const onChange = vi.fn();
    render(<ScheduleSection value={{ cron: '0 3 * * *', timezone: 'Europe/Rome' }} errors={{}} onChange={onChange} now={NOW} />);
    // the picker titles a zone by its city
    expect(screen.getByTestId(Components.ConfigEditor.timezone)).toHaveTextContent('Rome');
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Time zone picker'), 'Tokyo');
    await user.click(await screen.findByText('Tokyo'));
    expect(onChange).toHaveBeenLastCalledWith({ cron: '0 3 * * *', timezone: 'Asia/Tokyo' });
  });

  it('shows the collector\'s UTC as the picker\'s own UTC entry and writes it back as UTC', async () => {
    expect([pickerZone('UTC'), pickerZone('utc'), pickerZone('Europe/Rome')]).toEqual(['utc', 'utc', 'Europe/Rome']);
    expect([collectorZone('utc'), collectorZone('Asia/Tokyo'), collectorZone(undefined), collectorZone('')]).toEqual(['UTC', 'Asia/Tokyo', undefined, undefined]);
    const onChange = vi.fn();
    render(<ScheduleSection value={{ timezone: 'Europe/Rome' }} errors={{}} onChange={onChange} now={NOW} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Time zone picker'), 'Coordinated');
    await user.click((await screen.findAllByText(/Coordinated Universal Time/))[0]);
    expect(onChange).toHaveBeenLastCalledWith({ timezone: 'UTC' });
  });

  it('writes cron and run-at-start, an emptied field as unset', async () => {
    const onChange = vi.fn();
    render(<ScheduleSection value={{ cron: '0 3 * * *' }} errors={{}} onChange={onChange} now={NOW} />);
    const user = userEvent.setup();
    await user.clear(screen.getByLabelText(/^Cron/));
    expect(onChange).toHaveBeenLastCalledWith({ cron: undefined });
    await user.click(screen.getByLabelText('Run at start'));
    expect(onChange).toHaveBeenLastCalledWith({ cron: '0 3 * * *', runAtStart: true });
  });
});
