/**
 * Test ids and accessible names shared by the editors, the React Testing Library tests, the
 * browser test and the plugin-e2e specs (as in grafana/github-datasource).
 */
export const Components = {
  ConfigEditor: {
    collectorUrl: 'iperf3-config-collector-url',
    apiToken: 'iperf3-config-api-token',
    servers: 'iperf3-config-servers',
    serverHost: (index: number) => `iperf3-config-server-${index}-host`,
    serverPort: (index: number) => `iperf3-config-server-${index}-port`,
    serverLabel: (index: number) => `iperf3-config-server-${index}-label`,
    addServer: 'iperf3-config-add-server',
    removeServer: (index: number) => `iperf3-config-server-${index}-remove`,
    pools: 'iperf3-config-pools',
    pool: (pool: number) => `iperf3-config-pool-${pool}`,
    poolName: (pool: number) => `iperf3-config-pool-${pool}-name`,
    removePool: (pool: number) => `iperf3-config-pool-${pool}-remove`,
    addPool: 'iperf3-config-add-pool',
    poolServerHost: (pool: number, index: number) => `iperf3-config-pool-${pool}-server-${index}-host`,
    poolServerPort: (pool: number, index: number) => `iperf3-config-pool-${pool}-server-${index}-port`,
    poolServerLabel: (pool: number, index: number) => `iperf3-config-pool-${pool}-server-${index}-label`,
    removePoolServer: (pool: number, index: number) => `iperf3-config-pool-${pool}-server-${index}-remove`,
    addPoolServer: (pool: number) => `iperf3-config-pool-${pool}-add-server`,
    clientOptions: 'iperf3-config-client-options',
    schedule: 'iperf3-config-schedule',
    timezone: 'iperf3-config-schedule-timezone',
    nextRuns: 'iperf3-config-next-runs',
    showYaml: 'iperf3-config-show-yaml',
    yaml: 'iperf3-config-yaml',
  },
  QueryEditor: {
    queryType: 'iperf3-query-type',
    devices: 'iperf3-query-devices',
    metrics: 'iperf3-query-metrics',
    direction: 'iperf3-query-direction',
    server: 'iperf3-query-server',
    splitByServer: 'iperf3-query-split-by-server',
    status: 'iperf3-query-status',
    limit: 'iperf3-query-limit',
    runId: 'iperf3-query-run-id',
  },
  VariableEditor: {
    kind: 'iperf3-variable-kind',
    label: 'iperf3-variable-label',
    matchers: 'iperf3-variable-matchers',
  },
} as const;
