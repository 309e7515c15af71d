import { expect, test } from '@grafana/plugin-e2e';
import { Components } from '../../src/selectors.js';
import type { Iperf3DataSourceOptions } from '../../src/types.js';

const PROVISIONING_FILE = process.env.IPERF3_PROVISIONING_FILE ?? 'iperf3.yaml';

test('"Save & test" on the provisioned data source shows the backend health message', async ({ readProvisionedDataSource, gotoDataSourceConfigPage }) => {
  const ds = await readProvisionedDataSource<Iperf3DataSourceOptions>({ fileName: PROVISIONING_FILE });
  const configPage = await gotoDataSourceConfigPage(ds.uid);
  await expect(configPage.saveAndTest()).toBeOK();
  await expect(configPage).toHaveAlert('success');
});

test('a new data source shows invalid settings at the field, and Save & test reports the failure', async ({ createDataSourceConfigPage, readProvisionedDataSource, page }) => {
  const ds = await readProvisionedDataSource({ fileName: PROVISIONING_FILE });
  const configPage = await createDataSourceConfigPage({ type: ds.type });
  await expect(page.getByText('collector URL is required, e.g. http://collector:8080')).toBeVisible();
  await page.getByTestId(Components.ConfigEditor.collectorUrl).fill('http://127.0.0.1:9');
  await page.getByTestId(Components.ConfigEditor.addServer).click();
  await page.getByTestId(Components.ConfigEditor.serverHost(0)).fill('999.1.1.1');
  await expect(page.getByText('must be an IPv4 address, an IPv6 address or a DNS name')).toBeVisible();
  await page.getByTestId(Components.ConfigEditor.serverHost(0)).fill('iperf3-server');
  await expect(configPage.saveAndTest()).not.toBeOK();
  await expect(configPage).toHaveAlert('error');
});

test('the provisioning YAML never shows the token', async ({ readProvisionedDataSource, gotoDataSourceConfigPage, page }) => {
  const ds = await readProvisionedDataSource({ fileName: PROVISIONING_FILE });
  await gotoDataSourceConfigPage(ds.uid);
  await page.getByTestId(Components.ConfigEditor.showYaml).click();
  await expect(page.getByTestId(Components.ConfigEditor.yaml)).toContainText('apiToken: http://collector:8686 ${IPERF3_API_TOKEN}');
});
