// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { Iperf3DataQueryOf } from '../../types.js';
import { RunsQueryEditor } from './RunsQueryEditor.js';

function renderEditor(query: Iperf3DataQueryOf<'runs'>) {
  const onChange = vi.fn();
  render(<RunsQueryEditor query={query} onChange={onChange} servers={{}} variables={[]} />);
  return { onChange, user: userEvent.setup() };
}

describe('RunsQueryEditor', () => {
  it('filters by status, keeping the rest of the query', async () => {
    const { onChange, user } = renderEditor({ refId: 'A', queryType: 'runs', devices: ['r1'], status: ['failed'] });
    expect(screen.getByText('failed')).toBeInTheDocument();
    await user.click(screen.getByLabelText('Status'));
    await user.click(await screen.findByText('interrupted'));
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'runs', devices: ['r1'], status: ['failed', 'interrupted'] });
  });

  it('writes the limit when the field is left, empty for the default', async () => {
    const { onChange, user } = renderEditor({ refId: 'A', queryType: 'runs', limit: 20 });
    const limit = screen.getByRole('spinbutton');
    expect(limit).toHaveValue(20);
    expect(limit).toHaveAttribute('placeholder', '500');
    await user.clear(limit);
    await user.type(limit, '50');
    expect(onChange).not.toHaveBeenCalled();
    await user.tab();
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'runs', limit: 50 });
    await user.clear(limit);
    await user.tab();
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'runs', limit: undefined });
  });
});
