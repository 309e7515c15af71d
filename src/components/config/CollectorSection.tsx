import { ConfigSection } from '@grafana/plugin-ui';
import { Field, Input, SecretInput } from '@grafana/ui';
import { Components } from '../../selectors.js';
import type { FieldErrorMap } from './settingsValidation.js';

interface Props {
  collectorUrl: string | undefined;
  tokenConfigured: boolean;
  tokenValue: string;
  /** the saved token cannot be used with this URL (another origin) */
  tokenError?: string;
  errors: FieldErrorMap;
  onUrlChange: (url: string) => void;
  onTokenChange: (token: string) => void;
  onTokenReset: () => void;
}

export function CollectorSection(props: Props) {
  return (
    <ConfigSection title="Collector" description="The collector service that runs the iperf3 tests over SSH and stores the results.">
      <Field label="Collector URL" description="Base URL of the collector's HTTP API" required invalid={!!props.errors.collectorUrl} error={props.errors.collectorUrl}>
        <Input
          id="iperf3-collector-url"
          data-testid={Components.ConfigEditor.collectorUrl}
          width={50}
          placeholder="http://collector:8080"
          value={props.collectorUrl ?? ''}
          onChange={(e) => props.onUrlChange(e.currentTarget.value)}
        />
      </Field>
      <Field
        label="API token"
        description="Bearer token of the collector API; stored encrypted, never shown again, and only ever sent to the collector URL it was entered for"
        invalid={!!props.tokenError}
        error={props.tokenError}
      >
        <SecretInput
          id="iperf3-api-token"
          data-testid={Components.ConfigEditor.apiToken}
          width={50}
          placeholder="token"
          isConfigured={props.tokenConfigured}
          value={props.tokenValue}
          onChange={(e) => props.onTokenChange(e.currentTarget.value)}
          onReset={props.onTokenReset}
        />
      </Field>
    </ConfigSection>
  );
}
