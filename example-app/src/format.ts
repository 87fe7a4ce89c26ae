/** Display helpers. */

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 -> "1.5 KB" (powers of 1024, one decimal above bytes). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${UNITS[0]}` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Share of `done` in `total`, 0..1 (an empty total counts as done only when `finished`). */
export function fraction(done: number, total: number, finished = false): number {
  if (total <= 0) {
    return finished ? 1 : 0;
  }
  return Math.min(1, Math.max(0, done / total));
}

export function percent(f: number): string {
  return `${Math.floor(f * 100)}%`;
}
