/** Summary statistics and number formatting for the benchmark report. */

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function mean(samples: readonly number[]): number {
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

/** `12.3` style with a fixed number of decimals. */
export function fixed(value: number, decimals = 1): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : String(value);
}

export function mbit(bps: number): string {
  return fixed(bps / 1e6, 2);
}

export function pct(ratio: number, decimals = 1): string {
  return `${fixed(ratio * 100, decimals)} %`;
}

export function ms(value: number): string {
  return value >= 100 ? fixed(value, 0) : fixed(value, 1);
}

export function mib(bytes: number): string {
  return fixed(bytes / 1024 / 1024, 1);
}

export function sleep(msToWait: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msToWait));
}
