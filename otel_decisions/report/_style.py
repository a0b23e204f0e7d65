"""The report's stylesheet, inlined into the page (a report file must open offline, alone)."""

from __future__ import annotations

from typing import Final

__all__ = ["CSS"]

CSS: Final = """
:root {
  --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc; --card: #ffffff;
  --good: #16a34a; --bad: #dc2626; --warn: #b45309; --grey: #94a3b8; --accent: #2563eb;
  color-scheme: light;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--ink); line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
    sans-serif;
}
.page { max-width: 1040px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 28px; margin: 0 0 12px; line-height: 1.2; overflow-wrap: anywhere; }
h2 { font-size: 20px; margin: 0 0 4px; }
.kicker {
  text-transform: uppercase; letter-spacing: .08em; font-size: 12px; color: var(--muted);
  margin: 0;
}
.meta, .lead, .note { color: var(--muted); font-size: 13px; margin: 4px 0 12px; }
.note { margin-top: 8px; }
.empty { color: var(--muted); font-style: italic; margin: 8px 0; }
section, header.top {
  background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 22px;
  margin: 0 0 18px;
}
nav.toc { margin: 0 0 18px; font-size: 13px; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
.cards {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
  margin: 8px 0 12px;
}
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.big { display: block; font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.cap { color: var(--muted); font-size: 13px; }
.good { color: var(--good); } .bad { color: var(--bad); } .warn { color: var(--warn); }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; list-style: none; }
.chip {
  display: inline-block; border-radius: 999px; padding: 2px 10px; font-size: 13px;
  background: #f1f5f9; border: 1px solid var(--line);
}
.chip.completed { background: #dcfce7; border-color: #bbf7d0; color: #166534; }
.chip.failed { background: #fee2e2; border-color: #fecaca; color: #991b1b; }
.legend {
  display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; color: var(--muted); margin: 0 0 6px;
}
.swatch {
  display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px;
}
.chart-box { overflow-x: auto; }
svg.chart { display: block; width: 100%; height: auto; min-width: 560px; font-size: 13px; }
svg .label { fill: var(--ink); }
svg .value { fill: var(--muted); font-variant-numeric: tabular-nums; }
svg .axis { fill: var(--muted); font-size: 11px; }
svg .head { fill: var(--muted); font-size: 12px; font-weight: 600; }
svg .group { fill: var(--ink); font-weight: 600; }
svg .cell-text { font-size: 12px; font-variant-numeric: tabular-nums; }
svg .risk { fill: var(--bad); font-size: 12px; font-weight: 600; }
svg .mono {
  fill: var(--muted); font-size: 12px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
}
svg .grid { stroke: #eef2f7; stroke-width: 1; }
svg .rule { stroke: var(--line); stroke-width: 1; }
svg .baseline { stroke: #cbd5e1; stroke-width: 1; }
svg g.bar:hover rect, svg g.bucket:hover rect, svg g.option-row:hover rect { opacity: .85; }
.table-box { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.risky td:first-child { box-shadow: inset 3px 0 0 var(--bad); }
code, .id {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12px;
}
code.id {
  background: #f1f5f9; border-radius: 4px; padding: 1px 4px; user-select: all;
  overflow-wrap: anywhere;
}
code.dec { color: var(--muted); }
ol.suggestions { list-style: none; margin: 0; padding: 0; }
li.suggestion {
  border: 1px solid var(--line); border-left: 4px solid var(--grey); border-radius: 8px;
  padding: 10px 14px; margin: 0 0 10px;
}
li.suggestion.high { border-left-color: var(--bad); }
li.suggestion.medium { border-left-color: #f59e0b; }
li.suggestion.low { border-left-color: var(--grey); }
.s-head { display: flex; flex-wrap: wrap; gap: 8px; align-items: baseline; }
.badge {
  font-size: 11px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em;
  border-radius: 4px; padding: 1px 6px; background: #e2e8f0;
}
.badge.high { background: #fee2e2; color: #991b1b; }
.badge.medium { background: #fef3c7; color: #92400e; }
.type { font-weight: 600; }
.target { color: var(--muted); overflow-wrap: anywhere; }
.reason, .rec { margin: 4px 0; overflow-wrap: anywhere; }
.rec::before { content: "→ "; color: var(--muted); }
.evidence { font-size: 13px; color: var(--muted); margin-top: 6px; }
ul.ids { list-style: none; margin: 4px 0 0; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 12px; }
td ul.ids { display: block; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
footer p { margin: 4px 0; }
@media (max-width: 640px) {
  .page { padding: 12px 10px 32px; }
  section, header.top { padding: 14px; }
  h1 { font-size: 22px; }
}
@media print {
  body { background: #fff; }
  section, header.top { break-inside: avoid; border: none; padding: 0; }
  nav.toc { display: none; }
}
"""
