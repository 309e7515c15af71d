import { ConfigSection, ConfigSubSection } from '@grafana/plugin-ui';
import { Checkbox, Field, Input, InlineSwitch, SecretInput, Stack, TextArea } from '@grafana/ui';
import { DIRECTIONS, type Direction } from '../../../contract/metrics.js';
import { DEFAULT_CLIENT_OPTIONS, type SettingsInput } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import { parseNumberInput, type FieldErrorMap } from './settingsValidation.js';

type ClientOptionsInput = NonNullable<SettingsInput['clientOptions']>;

interface Props {
  value: ClientOptionsInput | undefined;
  errors: FieldErrorMap;
  passwordConfigured: boolean;
  passwordValue: string;
  onChange: (value: ClientOptionsInput) => void;
  onPasswordChange: (password: string) => void;
  onPasswordReset: () => void;
}

interface NumberOption {
  key: 'time' | 'connectTimeout' | 'parallel' | 'omit';
  label: string;
  description: string;
  width: number;
}

const NUMBER_OPTIONS: NumberOption[] = [
  { key: 'time', label: 'Duration (s)', description: `-t, 1 to 1800 s, default ${DEFAULT_CLIENT_OPTIONS.time}`, width: 12 },
  { key: 'connectTimeout', label: 'Connect timeout (ms)', description: `--connect-timeout, 100 to 60000 ms, default ${DEFAULT_CLIENT_OPTIONS.connectTimeout}`, width: 14 },
  { key: 'parallel', label: 'Parallel streams', description: `-P, 1 to 128, default ${DEFAULT_CLIENT_OPTIONS.parallel}`, width: 12 },
  { key: 'omit', label: 'Omit (s)', description: '--omit: skip TCP slow start, 0 to 60 s', width: 12 },
];

type SizeKey = 'window' | 'bytes' | 'blockcount';
const SIZE_OPTIONS: Array<{ key: SizeKey; label: string; description: string; placeholder: string }> = [
  { key: 'window', label: 'Window', description: '-w socket buffer, e.g. 256K (empty = system default)', placeholder: 'system default' },
  { key: 'bytes', label: 'Bytes', description: '-n, e.g. 100M; overrides the duration', placeholder: 'unset' },
  { key: 'blockcount', label: 'Block count', description: '-k; overrides duration and bytes', placeholder: 'unset' },
];

const emptyToNull = (text: string) => (text.trim() === '' ? null : text);

export function ClientOptionsSection({ value = {}, errors, passwordConfigured, passwordValue, onChange, onPasswordChange, onPasswordReset }: Props) {
  const set = (patch: Partial<Record<keyof ClientOptionsInput, unknown>>) => {
    const next: Record<string, unknown> = { ...value, ...patch };
    // an unset option falls back to the default: keep jsonData free of undefined keys
    for (const k of Object.keys(next)) if (next[k] === undefined) delete next[k];
    onChange(next as ClientOptionsInput);
  };
  const err = (path: string) => ({ invalid: !!errors[`clientOptions.${path}`], error: errors[`clientOptions.${path}`] });
  const directions: Direction[] = value.directions ?? [...DEFAULT_CLIENT_OPTIONS.directions];
  const tcp = value.tcp ?? {};
  const udp = value.udp ?? {};
  const auth = value.auth ?? null;
  const udpEnabled = udp.enabled ?? DEFAULT_CLIENT_OPTIONS.udp.enabled;

  const toggleDirection = (d: Direction, on: boolean) =>
    set({ directions: DIRECTIONS.filter((x) => (x === d ? on : directions.includes(x))) });

  return (
    <ConfigSection
      title="Client options"
      description="How devices run iperf3 (defaults and ranges as in OpenWISP's iperf3 check)."
      isCollapsible
      isInitiallyOpen
      data-testid={Components.ConfigEditor.clientOptions}
    >
      <Stack gap={2} wrap="wrap">
        {NUMBER_OPTIONS.map((o) => (
          <Field key={o.key} label={o.label} description={o.description} {...err(o.key)}>
            <Input
              id={`iperf3-client-${o.key}`}
              width={o.width}
              inputMode="numeric"
              placeholder={String(DEFAULT_CLIENT_OPTIONS[o.key])}
              value={value[o.key] === undefined ? '' : String(value[o.key])}
              onChange={(e) => set({ [o.key]: parseNumberInput(e.currentTarget.value) })}
            />
          </Field>
        ))}
      </Stack>
      <Stack gap={2} wrap="wrap">
        {SIZE_OPTIONS.map((o) => (
          <Field key={o.key} label={o.label} description={o.description} {...err(o.key)}>
            <Input
              id={`iperf3-client-${o.key}`}
              width={16}
              placeholder={o.placeholder}
              value={value[o.key] ?? ''}
              onChange={(e) => set({ [o.key]: emptyToNull(e.currentTarget.value) })}
            />
          </Field>
        ))}
      </Stack>
      <Field label="Directions" description="upload: device to server; download: server to device (-R)" {...err('directions')}>
        {/* a fragment: Field hands `invalid` to an input child, which a layout element would put on the DOM */}
        <>
          <Stack gap={2}>
            {DIRECTIONS.map((d) => (
              <Checkbox key={d} label={d === 'upload' ? 'Upload' : 'Download'} value={directions.includes(d)} onChange={(e) => toggleDirection(d, e.currentTarget.checked)} />
            ))}
          </Stack>
        </>
      </Field>

      <ConfigSubSection title="TCP">
        <Stack gap={2}>
          <Field label="TCP bitrate" description="-b, 0 = unlimited" {...err('tcp.bitrate')}>
            <Input id="iperf3-client-tcp-bitrate" width={14} placeholder={DEFAULT_CLIENT_OPTIONS.tcp.bitrate} value={tcp.bitrate ?? ''} onChange={(e) => set({ tcp: { ...tcp, bitrate: e.currentTarget.value === '' ? undefined : e.currentTarget.value } })} />
          </Field>
          <Field label="TCP length" description={`-l buffer length, default ${DEFAULT_CLIENT_OPTIONS.tcp.length}`} {...err('tcp.length')}>
            <Input id="iperf3-client-tcp-length" width={14} placeholder={DEFAULT_CLIENT_OPTIONS.tcp.length ?? ''} value={tcp.length ?? ''} onChange={(e) => set({ tcp: { ...tcp, length: e.currentTarget.value === '' ? undefined : e.currentTarget.value } })} />
          </Field>
        </Stack>
      </ConfigSubSection>

      <ConfigSubSection title="UDP">
        <Field label="UDP test" description="run a UDP test after TCP (jitter and loss)">
          <InlineSwitch id="iperf3-client-udp-enabled" label="UDP test" showLabel value={udpEnabled} onChange={(e) => set({ udp: { ...udp, enabled: e.currentTarget.checked } })} />
        </Field>
        {udpEnabled && (
          <Stack gap={2}>
            <Field label="UDP bitrate" description={`-b, default ${DEFAULT_CLIENT_OPTIONS.udp.bitrate}`} {...err('udp.bitrate')}>
              <Input id="iperf3-client-udp-bitrate" width={14} placeholder={DEFAULT_CLIENT_OPTIONS.udp.bitrate} value={udp.bitrate ?? ''} onChange={(e) => set({ udp: { ...udp, bitrate: e.currentTarget.value === '' ? undefined : e.currentTarget.value } })} />
            </Field>
            <Field label="UDP length" description="-l datagram size (empty = iperf3 default)" {...err('udp.length')}>
              <Input id="iperf3-client-udp-length" width={14} placeholder="unset" value={udp.length ?? ''} onChange={(e) => set({ udp: { ...udp, length: emptyToNull(e.currentTarget.value) } })} />
            </Field>
          </Stack>
        )}
      </ConfigSubSection>

      <ConfigSubSection title="iperf3 authentication" description="For servers started with --rsa-private-key-path and --authorized-users-path (iperf3 built with OpenSSL).">
        <Field label="Authentication">
          <InlineSwitch
            id="iperf3-client-auth-enabled"
            label="Authentication"
            showLabel
            value={auth !== null}
            onChange={(e) => set({ auth: e.currentTarget.checked ? { username: '', pkcs1Padding: false } : null })}
          />
        </Field>
        {auth !== null && (
          <>
            <Field label="Username" {...err('auth.username')}>
              <Input id="iperf3-client-auth-username" width={30} value={auth.username ?? ''} onChange={(e) => set({ auth: { ...auth, username: e.currentTarget.value } })} />
            </Field>
            <Field label="Password" description="passed to iperf3 as IPERF3_PASSWORD, never on the command line">
              <SecretInput
                id="iperf3-client-auth-password"
                width={30}
                isConfigured={passwordConfigured}
                value={passwordValue}
                onChange={(e) => onPasswordChange(e.currentTarget.value)}
                onReset={onPasswordReset}
              />
            </Field>
            <Field label="RSA public key" description="the server's public key (PEM)" {...err('auth.rsaPublicKey')}>
              <TextArea
                id="iperf3-client-auth-rsa-public-key"
                rows={4}
                placeholder="-----BEGIN PUBLIC KEY-----"
                value={auth.rsaPublicKey ?? ''}
                onChange={(e) => set({ auth: { ...auth, rsaPublicKey: e.currentTarget.value === '' ? undefined : e.currentTarget.value } })}
              />
            </Field>
            <Field label="PKCS#1 padding" description="servers older than iperf3 3.17 (--use-pkcs1-padding)">
              <InlineSwitch
                id="iperf3-client-auth-pkcs1"
                label="PKCS#1 padding"
                showLabel
                value={auth.pkcs1Padding ?? false}
                onChange={(e) => set({ auth: { ...auth, pkcs1Padding: e.currentTarget.checked } })}
              />
            </Field>
          </>
        )}
      </ConfigSubSection>
    </ConfigSection>
  );
}
