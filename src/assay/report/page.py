"""The page: sections of figures and tables around the sample browser, plotly.js inlined, and a
few lines of vanilla JS for the browser's filters (also read from the URL hash:
`report.html#status=rejected&reason=pii&kind=qa&q=refund`)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2em} table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ddd;padding:2px 8px;text-align:left} .grid{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.note{color:#666} .controls{position:sticky;top:0;background:#fff;padding:8px 0;z-index:5}
details.sample{border:1px solid #ddd;border-radius:4px;margin:4px 0;padding:4px 8px}
details.sample[hidden]{display:none} summary{cursor:pointer} .tag{background:#eef;border-radius:3px;padding:0 4px}
.tag.accepted{background:#dfd} .tag.rejected{background:#fdd} .first{color:#666} .score{font-weight:bold}
.chunk{background:#fafafa;border-left:3px solid #ccc;padding:4px 8px;white-space:pre-wrap;margin:4px 0}
.meta{color:#888;font-size:12px} mark{background:#ff8} .turn{margin:2px 0;white-space:pre-wrap}
.turn.user b{color:#06c} .turn.assistant b{color:#080} .round{border-left:3px solid #99c;padding:2px 8px;margin:4px 0}
pre.diff{background:#f6f6f6;padding:6px;white-space:pre-wrap} .add{color:#060;background:#e6ffe6}
.del{color:#900;background:#ffe6e6} .hunk{color:#66a} .err{color:#900}
"""

JS = """
(function(){
  var rows = Array.prototype.slice.call(document.querySelectorAll('details.sample'));
  var text = rows.map(function(r){ return r.textContent.toLowerCase(); });
  var ids = ['kind', 'status', 'reason', 'q'];
  function field(name){ return document.getElementById('f-' + name); }
  function apply(){
    var f = {}; ids.forEach(function(n){ f[n] = field(n) ? field(n).value.trim() : ''; });
    var shown = 0;
    rows.forEach(function(r, i){
      var ok = (!f.kind || r.dataset.kind === f.kind) && (!f.status || r.dataset.status === f.status) &&
        (!f.reason || r.dataset.reasons.split(' ').indexOf(f.reason) >= 0) &&
        (!f.q || text[i].indexOf(f.q.toLowerCase()) >= 0);
      r.hidden = !ok; if (ok) shown++;
    });
    var out = document.getElementById('shown'); if (out) out.textContent = shown + ' of ' + rows.length;
    var hash = ids.filter(function(n){ return f[n]; })
      .map(function(n){ return n + '=' + encodeURIComponent(f[n]); }).join('&');
    if (('#' + hash) !== location.hash && (hash || location.hash)) history.replaceState(null, '', '#' + hash);
  }
  new URLSearchParams(location.hash.slice(1)).forEach(function(v, k){ if (field(k)) field(k).value = v; });
  ids.forEach(function(n){ if (field(n)) field(n).addEventListener('input', apply); });
  apply();
})();
"""


def table(frame: pd.DataFrame | dict[str, Any], empty: str = "nothing yet") -> str:
    """An escaped HTML table (a dict becomes key | value rows)."""
    if isinstance(frame, dict):
        frame = pd.DataFrame({"metric": list(frame), "value": [str(v) for v in frame.values()]})
    if not len(frame):
        return f'<p class="note">{html.escape(empty)}</p>'
    return frame.to_html(index=False, escape=True, border=0, na_rep="")


def section(title: str, *parts: str, note: str = "") -> str:
    """A titled section; `note` is plain text (escaped), `parts` are HTML fragments."""
    text = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return f'<section><h2 id="{html.escape(title.lower().replace(" ", "-"))}">{html.escape(title)}</h2>{text}{"".join(parts)}</section>'


def grid(*parts: str) -> str:
    return f'<div class="grid">{"".join(f"<div>{p}</div>" for p in parts)}</div>'


def page(title: str, sections: list[str], plotly_js: str) -> str:
    """The whole self-contained document."""
    nav = "".join(f'<a href="#{html.escape(s)}">{html.escape(s.replace("-", " "))}</a> | ' for s in
                  ("funnel", "rejections", "scores", "coverage-and-mix", "tokens-and-cost", "samples", "all-metrics"))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{CSS}</style><script>{plotly_js}</script></head><body><h1>{html.escape(title)}</h1>'
            f'<nav>{nav}</nav>{"".join(sections)}<script>{JS}</script></body></html>\n')
