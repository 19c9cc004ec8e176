const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const dec1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

export function fmtInt(n: number | null | undefined): string {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : int.format(n);
}

export function fmtNum(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return Math.abs(n) >= 100 ? int.format(n) : dec1.format(n);
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms >= 10_000) return `${dec1.format(ms / 1000)} s`;
  return `${ms >= 100 ? int.format(ms) : dec1.format(ms)} ms`;
}

export function fmtPct(ratio: number | null | undefined): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '–';
  return `${int.format(ratio * 100)}%`;
}

export function fmtSeconds(s: number): string {
  if (s < 60) return `${int.format(s)} s`;
  if (s < 3600) return `${dec1.format(s / 60)} min`;
  return `${dec1.format(s / 3600)} h`;
}

/** "12 s ago", "3 min ago" for an ISO time. */
export function fmtAgo(iso: string | null, now = Date.now()): string {
  if (!iso) return '–';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '–';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 5) return 'just now';
  return `${fmtSeconds(s)} ago`;
}

export function fmtClock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** `1536` -> `1.5 KB`, `104857600` -> `100 MB` (binary units, as body limits are written). */
export function fmtBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : Number(v.toFixed(1))} ${units[u]}`;
}
