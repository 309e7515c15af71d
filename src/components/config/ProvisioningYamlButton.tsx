import type { DataSourceSettings } from '@grafana/data';
import { Button, ClipboardButton, Modal } from '@grafana/ui';
import { useState } from 'react';
import { Components } from '../../selectors.js';
import type { Iperf3DataSourceOptions, Iperf3SecureJsonData } from '../../types.js';
import { provisioningYaml } from './provisioningYaml.js';

interface Props {
  options: DataSourceSettings<Iperf3DataSourceOptions, Iperf3SecureJsonData>;
}

export function ProvisioningYamlButton({ options }: Props) {
  const [open, setOpen] = useState(false);
  const yaml = open ? provisioningYaml(options) : '';
  return (
    <>
      <Button data-testid={Components.ConfigEditor.showYaml} variant="secondary" icon="file-alt" onClick={() => setOpen(true)}>
        Show provisioning YAML
      </Button>
      <Modal title="Provisioning YAML" isOpen={open} onDismiss={() => setOpen(false)}>
        <p>
          Save as <code>provisioning/datasources/iperf3.yml</code>. Secrets are not shown: set the environment variables named in{' '}
          <code>secureJsonData</code>.
        </p>
        <pre data-testid={Components.ConfigEditor.yaml} style={{ maxHeight: '50vh', overflow: 'auto' }}>
          {yaml}
        </pre>
        <Modal.ButtonRow>
          <ClipboardButton icon="copy" getText={() => yaml}>
            Copy
          </ClipboardButton>
          <Button variant="secondary" onClick={() => setOpen(false)}>
            Close
          </Button>
        </Modal.ButtonRow>
      </Modal>
    </>
  );
}
