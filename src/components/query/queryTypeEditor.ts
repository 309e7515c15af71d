import type { ServerInfo } from '../../../contract/api.js';
import type { QueryType } from '../../../contract/queryTypes.js';
import type { Iperf3DataQueryOf } from '../../types.js';

/** A collector list the editor loads through the backend: undefined value while loading. */
export interface Loaded<T> {
  value?: T;
  error?: string;
}

/** What the editor of one query type gets: its own narrowed query, and the shared lists. */
export interface QueryTypeEditorProps<T extends QueryType> {
  query: Iperf3DataQueryOf<T>;
  /** a final choice (a pick, a toggle, leaving a field): the query editor runs the query */
  onChange: (query: Iperf3DataQueryOf<T>) => void;
  servers: Loaded<ServerInfo[]>;
  /** dashboard variables (`$name`); none in the alert rule editor */
  variables: string[];
}
