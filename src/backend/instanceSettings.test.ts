/** The API token is used only with the collector origin it was saved for (docs/security.md). */
import { describe, expect, it } from 'vitest';
import { bindApiToken, parseBoundApiToken, urlOrigin } from '../../contract/settings.js';
import { parseDataSourceConfig } from './instanceSettings.js';

const parse = (collectorUrl: string, apiToken: string) =>
  parseDataSourceConfig({ uid: 'ds', jsonData: Buffer.from(JSON.stringify({ collectorUrl })), decryptedSecureJsonData: { apiToken } });

describe('API token bound to the collector URL', () => {
  it('stores the origin and the token in one value, and reads both back', () => {
    expect(bindApiToken('HTTP://Collector:80/api/', ' tok en ')).toBe('http://collector tok en');
    expect(bindApiToken('not a url', 'tok')).toBe('unbound tok');
    expect(bindApiToken(undefined, 'tok')).toBe('unbound tok');
    expect(parseBoundApiToken('http://collector tok en')).toEqual({ origin: 'http://collector', token: 'tok en' });
    expect(parseBoundApiToken('https://c.example:8443/x  tok')).toEqual({ origin: 'https://c.example:8443', token: 'tok' });
    expect(parseBoundApiToken('unbound tok')).toEqual({ origin: null, token: 'tok' });
    expect(parseBoundApiToken('bare-token')).toEqual({ origin: null, token: 'bare-token' });
    expect(urlOrigin('ftp://x')).toBeNull();
  });

  it('uses a token bound to the same origin, whatever the path or the spelling of the default port', () => {
    const config = parse('http://collector:80/base', bindApiToken('http://COLLECTOR/', 's3cret'));
    expect(config.apiToken).toBe('s3cret');
    expect(config.collectorUrl).toBe('http://collector:80/base');
  });

  it('refuses a token saved for another origin, naming the field and the fix', () => {
    for (const url of ['http://evil.example:8686', 'https://collector:8686', 'http://collector:8687']) {
      expect(() => parse(url, bindApiToken('http://collector:8686', 's3cret'))).toThrow(
        `apiToken: was saved for http://collector:8686, but the collector URL is now ${new URL(url).origin}: re-enter the API token for the new URL (a token is never sent to another host)`,
      );
    }
  });

  it('refuses a bare token, and says how to provision one', () => {
    expect(() => parse('http://collector:8686', 's3cret')).toThrow(
      'apiToken: is not bound to a collector URL (saved before tokens were bound, or provisioned as a bare token): re-enter the API token for this URL in the data source settings, or provision it as apiToken: "http://collector:8686 <token>" (docs/provisioning.md)',
    );
    expect(() => parse('http://collector:8686', 'unbound s3cret')).toThrow('apiToken: is not bound to a collector URL');
  });

  it('never puts the token into an error', () => {
    for (const [url, token] of [['http://evil.example', bindApiToken('http://collector', 'tok-123456')], ['http://collector', 'tok-123456']]) {
      expect(() => parse(url, token)).toThrow(expect.objectContaining({ message: expect.not.stringContaining('tok-123456') }));
    }
    expect(() => parse('http://collector', ' ')).toThrow('apiToken: is required');
  });
});
