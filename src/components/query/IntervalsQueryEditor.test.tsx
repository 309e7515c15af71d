// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { IntervalsQueryEditor } from './IntervalsQueryEditor.js';

describe('IntervalsQueryEditor', () => {
  it('writes the run id when the field is left; empty means the latest finished run', async () => {
    const onChange = vi.fn();
    render(<IntervalsQueryEditor query={{ refId: 'A', queryType: 'intervals', devices: ['r1'] }} onChange={onChange} servers={{}} variables={[]} />);
    const runId = screen.getByRole('spinbutton');
    expect(runId).toHaveAttribute('placeholder', 'latest');
    await user().type(runId, '42');
    expect(onChange).not.toHaveBeenCalled();
    await user().tab();
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'intervals', devices: ['r1'], runId: 42 });
    await user().clear(runId);
    await user().tab();
    expect(onChange).toHaveBeenLastCalledWith({ refId: 'A', queryType: 'intervals', devices: ['r1'], runId: undefined });
  });
});

const user = () => userEvent.setup();
