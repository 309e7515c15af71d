import { ConfigSection } from '@grafana/plugin-ui';
import { Alert } from '@grafana/ui';
import { Components } from '../../selectors.js';
import { ServerRows, type ServerInput } from './ServerRows.js';
import type { FieldErrorMap } from './settingsValidation.js';

interface Props {
  servers: ServerInput[];
  errors: FieldErrorMap;
  onChange: (servers: ServerInput[]) => void;
}

const IDS = {
  host: Components.ConfigEditor.serverHost,
  port: Components.ConfigEditor.serverPort,
  label: Components.ConfigEditor.serverLabel,
  remove: Components.ConfigEditor.removeServer,
  add: Components.ConfigEditor.addServer,
};

export function ServersSection({ servers, errors, onChange }: Props) {
  return (
    <ConfigSection
      title="iperf3 servers"
      description="Reference servers the devices test against; each runs one test at a time, so more servers test a fleet faster. Devices without a pool use these."
    >
      <div data-testid={Components.ConfigEditor.servers}>
        {errors.servers && <Alert severity="warning" title={errors.servers} />}
        <ServerRows
          servers={servers}
          errors={errors}
          errorPrefix="servers"
          ids={IDS}
          removeLabel={(i) => `Remove server ${i + 1}`}
          addLabel="Add server"
          onChange={onChange}
        />
      </div>
    </ConfigSection>
  );
}
