import { describe, expect, it } from 'vitest';
import { parseNumberInput, validateJsonData } from './settingsValidation.js';

describe('validateJsonData', () => {
  it('has no errors for a URL and a server', () => {
    expect(validateJsonData({ collectorUrl: 'http://collector:8686', servers: [{ host: '192.0.2.1' }] })).toEqual({});
  });

  it('maps each invalid field to the first message the shared schemas give', () => {
    expect(validateJsonData({ servers: [{ host: '300.1.1.1', port: 0 }], schedule: { timezone: 'Mars/Olympus' } })).toEqual({
      collectorUrl: "is required: the collector's address, e.g. http://collector:8080",
      'servers.0.host': 'must be an IPv4 address, an IPv6 address or a DNS name',
      'servers.0.port': 'must be a whole number from 1 to 65535',
      'schedule.timezone': 'not an IANA time zone, e.g. "Europe/Rome" or "UTC"',
    });
    expect(validateJsonData({ collectorUrl: 'http://c' })).toEqual({ servers: 'add at least one iperf3 server' });
  });
});

describe('parseNumberInput', () => {
  it('turns digits into a number, empty into unset, and keeps anything else as typed', () => {
    expect(parseNumberInput(' 42 ')).toBe(42);
    expect(parseNumberInput('-1.5')).toBe(-1.5);
    expect(parseNumberInput('  ')).toBeUndefined();
    expect(parseNumberInput('12x')).toBe('12x');
  });
});
