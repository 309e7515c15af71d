/**
 * Devices for the scheduling benchmark: an SSH connector whose sessions "run" iperf3 by
 * waiting a fixed time and answering with real iperf3 3.12 output captured in
 * collector/iperf3/fixtures, so that the real parser and store do their real work.
 */
import { readFileSync } from 'node:fs';
import type { DeviceConnector, DeviceSession, ExecOptions, ExecResult } from '../collector/model.js';
import { sleep } from './stats.js';

const FIXTURES = new URL('../collector/iperf3/fixtures/', import.meta.url);

function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

export interface SimulatedTiming {
  /** how long an SSH connection takes to open */
  connectMs: number;
  /** how long every iperf3 invocation takes, whatever its -t */
  testMs: number;
}

export class SimulatedConnector implements DeviceConnector {
  private readonly outputs = {
    'tcp-upload': fixture('tcp-upload.json'),
    'tcp-download': fixture('tcp-download.json'),
    'udp-upload': fixture('udp-upload.json'),
    'udp-download': fixture('udp-download.json'),
  };
  connections = 0;

  constructor(private readonly timing: SimulatedTiming) {}

  async connect(): Promise<DeviceSession> {
    await sleep(this.timing.connectMs);
    this.connections++;
    const { outputs, timing } = this;
    return {
      async exec(argv: string[], _options: ExecOptions): Promise<ExecResult> {
        if (argv[0] !== 'iperf3') throw new Error(`the simulated device only runs iperf3, got ${argv[0]}`);
        const key = `${argv.includes('-u') ? 'udp' : 'tcp'}-${argv.includes('-R') ? 'download' : 'upload'}` as keyof typeof outputs;
        await sleep(timing.testMs);
        return { stdout: outputs[key], stderr: '', exitCode: 0, timedOut: false };
      },
      async writeTempFile(): Promise<string> {
        throw new Error('the scheduling benchmark runs without iperf3 authentication');
      },
      async removeFile(): Promise<void> {},
      close(): void {},
    };
  }
}
