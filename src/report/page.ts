/**
 * HTML building blocks of report.html: escaping, tables, chart figures, the thumbnail grid and
 * the page shell with its inline stylesheet. No scripts, no external URLs: the page opens from disk.
 */

export interface ReportSection {
  id: string;
  title: string;
  html: string;
}

export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export function formatNumber(value: unknown, digits = 4): string {
  if (typeof value !== 'number') return value === null || value === undefined ? '–' : String(value);
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const size = Math.abs(value);
  // metrics (0..1) keep `digits` decimals; timings, rates and MiB read better short
  if (size >= 100) return value.toFixed(0);
  if (size >= 10) return value.toFixed(1);
  return size < 1e-3 ? value.toExponential(2) : value.toFixed(digits);
}

/** A table; cells are escaped text unless wrapped as `{ html }`. */
export function table(headers: string[], rows: (unknown | { html: string })[][], className = ''): string {
  const cell = (v: unknown) =>
    typeof v === 'object' && v !== null && 'html' in v
      ? String((v as { html: string }).html)
      : escapeHtml(formatNumber(v));
  return (
    `<table${className ? ` class="${className}"` : ''}><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`).join('')}</tbody></table>`
  );
}

/**
 * Several vega SVGs inline in one document must not share element ids (clip paths, gradients):
 * every id and its references get a per-chart prefix. The XML declaration, if any, is dropped.
 */
export function scopeSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/^<\?xml[^>]*>\s*/, '')
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_m, id: string) => `url(#${prefix}-${id})`)
    .replace(
      /(xlink:)?href="#([^"]+)"/g,
      (_m, xl: string | undefined, id: string) => `${xl ?? ''}href="#${prefix}-${id}"`,
    );
}

export function figure(name: string, svg: string, caption: string): string {
  return (
    `<figure class="chart" data-chart="${escapeHtml(name)}">${scopeSvgIds(svg, `chart-${name}`)}` +
    `<figcaption>${escapeHtml(caption)} <a href="charts/${escapeHtml(name)}.png">PNG</a> · <a href="charts/${escapeHtml(name)}.svg">SVG</a></figcaption></figure>`
  );
}

export function note(text: string): string {
  return `<p class="note">${escapeHtml(text)}</p>`;
}

export interface SampleCard {
  id: string;
  label: string;
  predicted: string;
  correct: boolean;
  probabilities: { class: string; p: number }[];
  thumbnail: string | null;
}

/** One card per validation sample: the image, its true and predicted class and every class probability. */
export function sampleGrid(cards: SampleCard[]): string {
  if (cards.length === 0) return note('No samples in this group.');
  return `<div class="grid">${cards
    .map((c) => {
      const image = c.thumbnail
        ? `<img src="${c.thumbnail}" alt="galaxy ${escapeHtml(c.id)}" width="96" height="96">`
        : '<div class="noimg">no pixels</div>';
      const probs = c.probabilities
        .map(
          (p) =>
            `<li class="${p.class === c.predicted ? 'top' : ''}"><span>${escapeHtml(p.class)}</span><meter min="0" max="1" value="${p.p.toFixed(3)}"></meter><b>${p.p.toFixed(2)}</b></li>`,
        )
        .join('');
      return (
        `<div class="sample ${c.correct ? 'right' : 'wrong'}" data-id="${escapeHtml(c.id)}">${image}` +
        `<div class="caption">#${escapeHtml(c.id)}<br>true <b>${escapeHtml(c.label)}</b><br>predicted <b>${escapeHtml(c.predicted)}</b></div>` +
        `<ul class="probs">${probs}</ul></div>`
      );
    })
    .join('')}</div>`;
}

const STYLE = `
body{font-family:"DejaVu Sans",Verdana,system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1b2a4a;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
header .sub{opacity:.85;font-size:13px}
nav{padding:8px 24px;background:#eef1f6;font-size:13px;position:sticky;top:0}nav a{margin-right:14px;color:#1b2a4a}
main{padding:8px 24px 40px;max-width:1200px}section{margin:24px 0;padding-bottom:8px;border-bottom:1px solid #e3e3e3}
h2{font-size:18px;color:#1b2a4a}h3{font-size:15px}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.headline div{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 14px}
.headline b{display:block;font-size:20px}
.charts{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure.chart{margin:0;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}figure.chart svg{max-width:100%;height:auto}
figcaption{font-size:12px;color:#555;margin-top:4px}
table{border-collapse:collapse;font-size:13px;background:#fff;margin:8px 0}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left}
th{background:#eef1f6}td{font-variant-numeric:tabular-nums}tr.best td{background:#e8f5e9}
.grid{display:flex;flex-wrap:wrap;gap:10px}.sample{background:#fff;border:2px solid #ccc;border-radius:6px;padding:6px;width:150px;font-size:11px}
.sample.right{border-color:#4caf50}.sample.wrong{border-color:#e53935}
.sample img{image-rendering:pixelated;display:block;margin:0 auto 4px}.noimg{width:96px;height:96px;background:#eee;margin:0 auto;line-height:96px;text-align:center;color:#888}
.probs{list-style:none;padding:0;margin:4px 0 0}.probs li{display:flex;gap:4px;align-items:center}.probs span{width:58px;overflow:hidden;text-overflow:ellipsis}
.probs meter{width:44px}.probs li.top b{color:#1b2a4a}
.note{color:#777;font-style:italic}pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}
`;

/** The whole document: header, navigation, one <section> per report part. */
export function reportPage(options: {
  title: string;
  subtitle: string;
  headline: { label: string; value: string }[];
  sections: ReportSection[];
}): string {
  const { title, subtitle, headline, sections } = options;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${escapeHtml(title)}</h1><div class="sub">${escapeHtml(subtitle)}</div></header>
<nav>${sections.map((s) => `<a href="#${escapeHtml(s.id)}">${escapeHtml(s.title)}</a>`).join('')}</nav>
<main>
<div class="headline">${headline.map((h) => `<div>${escapeHtml(h.label)}<b>${escapeHtml(h.value)}</b></div>`).join('')}</div>
${sections.map((s) => `<section id="${escapeHtml(s.id)}"><h2>${escapeHtml(s.title)}</h2>\n${s.html}\n</section>`).join('\n')}
</main>
</body>
</html>
`;
}
