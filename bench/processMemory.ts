/** Memory of a running process as the kernel reports it in /proc/<pid>/status. */
import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  /** resident set size now, bytes */
  rss: number;
  /** peak resident set size, bytes */
  hwm: number;
  /** of rss: anonymous memory (heaps: V8's and malloc's), bytes */
  rssAnon: number;
  /** of rss: pages mapped from files (the executable's code, shared libraries), bytes */
  rssFile: number;
}

export function processMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${key}`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM'), rssAnon: kib('RssAnon'), rssFile: kib('RssFile') };
}
