import { DataSourcePlugin } from '@grafana/data';
import { ConfigEditor } from './components/ConfigEditor.js';
import { QueryEditor } from './components/QueryEditor.js';
import { DataSource } from './datasource.js';
import type { Iperf3DataQuery, Iperf3DataSourceOptions, Iperf3SecureJsonData } from './types.js';

export const plugin = new DataSourcePlugin<DataSource, Iperf3DataQuery, Iperf3DataSourceOptions, Iperf3SecureJsonData>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
