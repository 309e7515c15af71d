// @vitest-environment jsdom
import '../../../tests/setup/jsdom.js';
import { render, screen } from '@testing-library/react';
import { userEvent } from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { CollectorSection } from './CollectorSection.js';

function renderSection(props: { collectorUrl?: string; tokenConfigured?: boolean; errors?: Record<string, string> } = {}) {
  const handlers = { onUrlChange: vi.fn(), onTokenChange: vi.fn(), onTokenReset: vi.fn() };
  render(<CollectorSection collectorUrl={props.collectorUrl} tokenConfigured={props.tokenConfigured ?? false} tokenValue="" errors={props.errors ?? {}} {...handlers} />);
  return { ...handlers, user: userEvent.setup() };
}

describe('CollectorSection', () => {
  it('reports what is typed as the collector URL and shows its error at the field', async () => {
    const { onUrlChange, user } = renderSection({ errors: { collectorUrl: 'must be an http:// or https:// URL' } });
    expect(screen.getByText('must be an http:// or https:// URL')).toBeInTheDocument();
    await user.type(screen.getByRole('textbox', { name: /Collector URL/ }), 'h');
    expect(onUrlChange).toHaveBeenLastCalledWith('h');
  });

  it('takes a new API token, and shows a saved one as configured with a reset', async () => {
    const { onTokenChange, user } = renderSection();
    await user.type(screen.getByLabelText(/API token/), 't');
    expect(onTokenChange).toHaveBeenLastCalledWith('t');
  });

  it('resets a configured token without ever showing it', async () => {
    const { onTokenReset, user } = renderSection({ tokenConfigured: true });
    expect(screen.getByDisplayValue('configured')).toBeDisabled();
    await user.click(screen.getByRole('button', { name: 'Reset' }));
    expect(onTokenReset).toHaveBeenCalledTimes(1);
  });
});
