// A dependency-free SVG chart of a benchmark run: throughput per concurrency and latency
// percentiles at one connection, one bar per configuration.
import type { Summary } from './run.js';

const COLORS: Record<string, string> = { direct: '#7f8c8d', nginx: '#2e86de', zkroute: '#e67e22', 'zkroute-workers': '#c0392b', 'undici-floor': '#8e44ad' };

function bars(x0: number, y0: number, width: number, height: number, title: string, groups: { label: string; values: { config: string; value: number }[] }[], unit: string): string {
  const max = Math.max(...groups.flatMap((g) => g.values.map((v) => v.value)), 1e-9);
  const groupWidth = width / groups.length;
  const barWidth = (groupWidth * 0.8) / Math.max(...groups.map((g) => g.values.length));
  let out = `<text x="${x0}" y="${y0 - 10}" font-size="14" font-weight="bold">${title}</text>`;
  out += `<line x1="${x0}" y1="${y0 + height}" x2="${x0 + width}" y2="${y0 + height}" stroke="#333"/>`;
  groups.forEach((g, gi) => {
    g.values.forEach((v, vi) => {
      const h = (v.value / max) * (height - 20);
      const x = x0 + gi * groupWidth + groupWidth * 0.1 + vi * barWidth;
      out += `<rect x="${x.toFixed(1)}" y="${(y0 + height - h).toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[v.config]}"/>`;
      out += `<text x="${(x + barWidth / 2).toFixed(1)}" y="${(y0 + height - h - 3).toFixed(1)}" font-size="9" text-anchor="middle">${v.value >= 100 ? Math.round(v.value) : v.value.toFixed(2)}</text>`;
    });
    out += `<text x="${(x0 + gi * groupWidth + groupWidth / 2).toFixed(1)}" y="${y0 + height + 14}" font-size="11" text-anchor="middle">${g.label}</text>`;
  });
  out += `<text x="${x0 + width}" y="${y0 - 10}" font-size="11" text-anchor="end">${unit}</text>`;
  return out;
}

export function renderChart(summary: readonly Summary[]): string {
  const configs = ['direct', 'nginx', 'zkroute', 'zkroute-workers', 'undici-floor'].filter((c) => summary.some((s) => s.config === c));
  const throughput = [...new Set(summary.filter((s) => s.connections > 1 || s.body === 'small').map((s) => `${s.body}|${s.connections}`))].map((key) => {
    const [body, c] = key.split('|');
    return { label: `${body}, ${c} conn${c === '1' ? '' : 's'}`, values: configs.map((config) => ({ config, value: summary.find((s) => s.body === body && String(s.connections) === c && s.config === config)?.rps ?? 0 })) };
  });
  const at1 = (config: string) => summary.find((s) => s.body === 'small' && s.connections === 1 && s.config === config);
  const latency = (['p50Ms', 'p90Ms', 'p99Ms'] as const).map((p) => ({ label: p.slice(0, 3), values: configs.map((config) => ({ config, value: at1(config)?.[p] ?? 0 })) }));
  const legend = configs.map((c, i) => `<rect x="${20 + i * 150}" y="355" width="12" height="12" fill="${COLORS[c]}"/><text x="${36 + i * 150}" y="366" font-size="12">${c}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="380" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
${bars(20, 40, 520, 260, 'Throughput (req/s, higher is better)', throughput, 'req/s')}
${bars(590, 40, 290, 260, 'Latency at 1 connection (lower is better)', latency, 'ms')}
${legend}
</svg>
`;
}
