// SPDX-License-Identifier: Apache-2.0
// The latency chart: one box plot per system on a logarithmic time axis, written as plain SVG
// (no browser, no dependency). Whiskers span p1–p99, the box p25–p75, the bar is the median,
// and dots mark the min and max.
import { percentile } from './stats.js';

export interface ChartRow {
  label: string;
  /** Timed samples in ms; rows without samples are drawn as "missing" with `note`. */
  samples?: number[];
  note?: string;
  /** Draws the row in the accent colour (nsbox rows). */
  accent?: boolean;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function latencyChart(title: string, subtitle: string, rows: ChartRow[]): string {
  const labelWidth = 430;
  const plotWidth = 560;
  const rowHeight = 26;
  const top = 64;
  const width = labelWidth + plotWidth + 40;
  const height = top + rows.length * rowHeight + 50;
  const all = rows.flatMap((row) => row.samples ?? []);
  // Decades that cover every sample.
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.1, Math.min(...all, 1)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...all, 10))));
  const x = (ms: number) => labelWidth + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotWidth;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escape(title)}</text>`,
    `<text x="10" y="42" fill="#555">${escape(subtitle)}</text>`,
  ];
  // Grid: 1, 2, 5 per decade.
  for (let decade = lo; decade < hi * 1.01; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const value = decade * step;
      if (value > hi * 1.01) break;
      const gx = x(value).toFixed(1);
      out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${top + rows.length * rowHeight}" stroke="${step === 1 ? '#bbb' : '#e5e5e5'}"/>`);
      out.push(`<text x="${gx}" y="${top + rows.length * rowHeight + 16}" text-anchor="middle" fill="#444">${value >= 1 ? value : value.toFixed(1)}</text>`);
    }
  }
  out.push(`<text x="${labelWidth + plotWidth / 2}" y="${top + rows.length * rowHeight + 36}" text-anchor="middle" fill="#444">milliseconds (log scale)</text>`);
  rows.forEach((row, i) => {
    const cy = top + i * rowHeight + rowHeight / 2;
    const colour = row.accent ? '#1f6fd1' : '#666';
    out.push(`<text x="${labelWidth - 10}" y="${cy + 4}" text-anchor="end">${escape(row.label)}</text>`);
    if (!row.samples?.length) {
      out.push(`<text x="${labelWidth + 6}" y="${cy + 4}" fill="#a33">${escape(row.note ?? 'missing')}</text>`);
      return;
    }
    const sorted = [...row.samples].sort((a, b) => a - b);
    const [p1, p25, p50, p75, p99] = [0.01, 0.25, 0.5, 0.75, 0.99].map((q) => x(percentile(sorted, q)));
    const f = (n: number) => n.toFixed(1);
    out.push(`<line x1="${f(p1)}" y1="${cy}" x2="${f(p99)}" y2="${cy}" stroke="${colour}"/>`);
    out.push(`<line x1="${f(p1)}" y1="${cy - 5}" x2="${f(p1)}" y2="${cy + 5}" stroke="${colour}"/>`);
    out.push(`<line x1="${f(p99)}" y1="${cy - 5}" x2="${f(p99)}" y2="${cy + 5}" stroke="${colour}"/>`);
    out.push(`<rect x="${f(p25)}" y="${cy - 8}" width="${f(Math.max(1, p75 - p25))}" height="16" fill="${colour}" fill-opacity="0.25" stroke="${colour}"/>`);
    out.push(`<line x1="${f(p50)}" y1="${cy - 9}" x2="${f(p50)}" y2="${cy + 9}" stroke="${colour}" stroke-width="2.5"/>`);
    out.push(`<circle cx="${f(x(sorted[0]))}" cy="${cy}" r="2" fill="${colour}"/>`);
    out.push(`<circle cx="${f(x(sorted[sorted.length - 1]))}" cy="${cy}" r="2" fill="${colour}"/>`);
    out.push(`<text x="${f(p99 + 8)}" y="${cy + 4}" fill="#333">${percentile(sorted, 0.5).toFixed(2)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
