import { expect, test } from '@grafana/plugin-e2e';

const PROVISIONING_FILE = process.env.IPERF3_PROVISIONING_FILE ?? 'iperf3.yaml';

test('the query editor lists the collector devices and the query returns TCP throughput', async ({ panelEditPage, readProvisionedDataSource, page }) => {
  const ds = await readProvisionedDataSource({ fileName: PROVISIONING_FILE });
  await panelEditPage.datasource.set(ds.name);
  const row = panelEditPage.getQueryEditorRow('A');
  await row.getByLabel('Devices').click();
  // the demo stack's device; its labels are shown under the id
  await expect(page.getByRole('option').first()).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(panelEditPage.refreshPanel()).toBeOK();
});

test('Explore runs a latest-value query', async ({ explorePage, readProvisionedDataSource }) => {
  const ds = await readProvisionedDataSource({ fileName: PROVISIONING_FILE });
  await explorePage.datasource.set(ds.name);
  const row = explorePage.getQueryEditorRow('A');
  await row.getByRole('radio', { name: 'Latest value' }).click();
  await expect(explorePage.runQuery()).toBeOK();
});

test('the alert rule editor offers only query types alerts can evaluate', async ({ alertRuleEditPage, readProvisionedDataSource }) => {
  const ds = await readProvisionedDataSource({ fileName: PROVISIONING_FILE });
  const query = alertRuleEditPage.getAlertRuleQueryRow('A');
  await query.datasource.set(ds.name);
  await expect(query.locator.getByRole('radio', { name: 'Time series' })).toBeVisible();
  await expect(query.locator.getByRole('radio', { name: 'Run log' })).toHaveCount(0);
  await expect(alertRuleEditPage.evaluate()).toBeOK();
});
