import { describe, expect, it } from 'vitest';
import { Telemetry } from './telemetry.js';

describe('Telemetry', () => {
  it('counts runs by status and error class', async () => {
    const t = new Telemetry();
    t.runFinished('ok', null);
    t.runFinished('failed', 'server-busy');
    t.runFinished('failed', 'server-busy');
    const text = await t.metrics();
    expect(text).toContain('iperf3_collector_runs_total{status="ok",error_class=""} 1');
    expect(text).toContain('iperf3_collector_runs_total{status="failed",error_class="server-busy"} 2');
  });

  it('keeps a histogram of test durations by protocol, direction and result', async () => {
    const t = new Telemetry();
    t.testFinished('tcp', 'upload', 10.4, true);
    t.testFinished('udp', 'download', 0.7, false);
    const text = await t.metrics();
    expect(text).toContain('iperf3_collector_test_duration_seconds_bucket{le="12",protocol="tcp",direction="upload",result="ok"} 1');
    expect(text).toContain('iperf3_collector_test_duration_seconds_bucket{le="10",protocol="tcp",direction="upload",result="ok"} 0');
    expect(text).toContain('iperf3_collector_test_duration_seconds_sum{protocol="tcp",direction="upload",result="ok"} 10.4');
    expect(text).toContain('iperf3_collector_test_duration_seconds_count{protocol="udp",direction="download",result="failed"} 1');
  });

  it('reports the queue length, busy seconds and busy state per server', async () => {
    const t = new Telemetry();
    t.setQueueLength(42);
    t.addServerBusySeconds('10.0.0.1:5201', 10);
    t.addServerBusySeconds('10.0.0.1:5201', 2.5);
    t.setServerBusy('10.0.0.1:5201', true);
    t.setServerBusy('[2001:db8::1]:5201', true);
    t.setServerBusy('[2001:db8::1]:5201', false);
    const text = await t.metrics();
    expect(text).toContain('iperf3_collector_queue_length 42');
    expect(text).toContain('iperf3_collector_server_busy_seconds_total{server="10.0.0.1:5201"} 12.5');
    expect(text).toContain('iperf3_collector_server_busy{server="10.0.0.1:5201"} 1');
    expect(text).toContain('iperf3_collector_server_busy{server="[2001:db8::1]:5201"} 0');
  });

  it('includes process metrics, keeps registries apart, and names the exposition format', async () => {
    const a = new Telemetry();
    const b = new Telemetry();
    a.setQueueLength(1);
    b.setQueueLength(2);
    expect(await a.metrics()).toContain('iperf3_collector_queue_length 1');
    expect(await b.metrics()).toContain('iperf3_collector_queue_length 2');
    expect(await a.metrics()).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(a.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
