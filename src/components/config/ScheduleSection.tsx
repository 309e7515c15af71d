import { ConfigSection } from '@grafana/plugin-ui';
import { InternalTimeZones } from '@grafana/data';
import { Field, InlineSwitch, Input, Stack, Text, TimeZonePicker } from '@grafana/ui';
import { isValidCron, isValidTimezone, nextRuns, scheduleSchema, type SettingsInput } from '../../../contract/settings.js';
import { Components } from '../../selectors.js';
import type { FieldErrorMap } from './settingsValidation.js';

type ScheduleInput = NonNullable<SettingsInput['schedule']>;

const DEFAULTS = scheduleSchema.parse({});
const PREVIEW_COUNT = 5;

interface Props {
  value: ScheduleInput | undefined;
  errors: FieldErrorMap;
  onChange: (value: ScheduleInput) => void;
  /** the preview's starting point; tests pin it */
  now?: Date;
}

/** "Tue, 25 Nov 2026, 02:00" in the schedule's own time zone. */
export function formatRunTime(date: Date, timezone: string): string {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone: timezone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  }).format(date);
}

/** The picker calls UTC by Grafana's internal name "utc"; the collector's settings say "UTC". */
export function pickerZone(timezone: string): string {
  return timezone.toUpperCase() === 'UTC' ? InternalTimeZones.utc : timezone;
}

export function collectorZone(zone: string | undefined): string | undefined {
  if (zone === undefined || zone === '') return undefined;
  return zone === InternalTimeZones.utc ? 'UTC' : zone;
}

export function ScheduleSection({ value = {}, errors, onChange, now }: Props) {
  const cron = value.cron ?? DEFAULTS.cron;
  const timezone = value.timezone ?? DEFAULTS.timezone;
  const preview = isValidCron(cron) && isValidTimezone(timezone) ? nextRuns(cron, timezone, PREVIEW_COUNT, now) : [];
  const set = (patch: Partial<ScheduleInput>) => onChange({ ...value, ...patch });

  return (
    <ConfigSection title="Schedule" description="When the collector tests every device." data-testid={Components.ConfigEditor.schedule}>
      <Stack gap={2}>
        <Field label="Cron" description={'five fields: minute hour day month weekday; "0 2 * * *" = 02:00 every night'} invalid={!!errors['schedule.cron']} error={errors['schedule.cron']}>
          <Input id="iperf3-schedule-cron" width={24} placeholder={DEFAULTS.cron} value={value.cron ?? ''} onChange={(e) => set({ cron: e.currentTarget.value === '' ? undefined : e.currentTarget.value })} />
        </Field>
        <Field label="Time zone" description="the cron's clock; type a city or abbreviation" invalid={!!errors['schedule.timezone']} error={errors['schedule.timezone']}>
          {/* a fragment: Field hands `invalid` to an input child, which the <div> would put on the DOM */}
          <>
            <div data-testid={Components.ConfigEditor.timezone}>
              <TimeZonePicker
                inputId="iperf3-schedule-timezone"
                width={40}
                // Grafana's own "utc" entry; every other entry is an IANA name the collector takes as is
                includeInternal={[InternalTimeZones.utc]}
                value={pickerZone(timezone)}
                onChange={(zone) => set({ timezone: collectorZone(zone) })}
              />
            </div>
          </>
        </Field>
        <Field label="Run at start" description="also run once when the collector starts">
          <InlineSwitch id="iperf3-schedule-run-at-start" label="Run at start" showLabel value={value.runAtStart ?? false} onChange={(e) => set({ runAtStart: e.currentTarget.checked })} />
        </Field>
      </Stack>
      <div data-testid={Components.ConfigEditor.nextRuns}>
        {preview.length > 0 ? (
          <>
            <Text element="p" variant="bodySmall" color="secondary">
              Next runs ({timezone}):
            </Text>
            <ul aria-label="Next runs">
              {preview.map((d) => (
                <li key={d.toISOString()}>
                  <Text variant="bodySmall">{formatRunTime(d, timezone)}</Text>
                </li>
              ))}
            </ul>
          </>
        ) : (
          <Text element="p" variant="bodySmall" color="warning">
            Fix the cron expression and time zone to see the next runs.
          </Text>
        )}
      </div>
    </ConfigSection>
  );
}
