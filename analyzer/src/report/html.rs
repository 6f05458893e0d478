//! The HTML rendering: one self-contained page that opens in a browser
//! straight from disk.
//!
//! - **No external resources.** CSS and JS are inline, charts are inline
//!   SVG drawn here, and a `Content-Security-Policy` meta tag forbids the
//!   page from loading anything (`default-src 'none'`).
//! - **Works without JS.** Summary, contracts, the inventory table with its
//!   per-endpoint charts (status histogram, response-size and latency
//!   quantiles, in a `<details>` row under each endpoint) and the findings
//!   are all plain HTML. The script only adds the filter controls: a text
//!   filter over service, method and template, a method select and an
//!   "only endpoints with findings" checkbox. It reads its initial state
//!   from the URL fragment, so `report.html#filter=users&method=GET&findings=1`
//!   opens filtered. The text and method filters apply to the findings and
//!   the anomalies too.
//! - **Anomalies** get counts by kind and severity, a table (most severe
//!   first) and a timeline per endpoint: an inline SVG over the report's
//!   time range (the same axis for every endpoint), one lane per anomaly
//!   kind, one bar per anomaly from its start to its end, coloured by
//!   severity, with the explanation as the bar's tooltip. A service's
//!   service-wide anomalies get a timeline of their own (`html/timeline.rs`). At
//!   most [`MAX_TIMELINES`] timelines (the most severe endpoints first) and
//!   [`MAX_TIMELINE_BARS`] bars per timeline are drawn, and the page says
//!   how many were left out; the table always lists every anomaly.
//! - **The report rides along.** The whole [`Report`] is embedded as JSON in
//!   a `<script type="application/json" id="shadowtap-report">` data island,
//!   so the page is also the data. Every `<`, `>`, `&`, U+2028 and U+2029 in
//!   it is written as a `\u` escape, so no string can close the script
//!   element (`</script>`) or open a comment (`<!--`).
//!
//! Every piece of report text is HTML-escaped ([`escape`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    anomalies_by_severity, anomaly_change, anomaly_counts, anomaly_endpoint, auth_text,
    classes_text, millis, rule_id, status_classes, utc_seconds, EndpointFindings, EndpointReport,
    Quantiles, Report, STILL_OPEN,
};
use crate::findings::{FindingKind, Severity};

mod timeline;

pub use timeline::{MAX_TIMELINES, MAX_TIMELINE_BARS};

/// Most bars in a status histogram; further codes are summed into `other`.
const MAX_STATUS_BARS: usize = 12;

const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#fff;--head:#f3f5f9;--accent:#2f5fd0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:1.5rem;max-width:1400px}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta{color:var(--muted);margin:0}
.cards{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0;padding:0}
.cards div{border:1px solid var(--line);border-radius:6px;padding:.5rem .9rem;min-width:8rem}
.cards dt{color:var(--muted);font-size:.8rem}.cards dd{margin:0;font-size:1.3rem;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid var(--line);padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.92em}
tr.charts td{border-bottom:1px solid var(--line);padding:0 .5rem}
tr.charts summary{cursor:pointer;color:var(--accent);font-size:.85rem;padding:.2rem 0}
.chartrow{display:flex;flex-wrap:wrap;gap:1.5rem;padding:.3rem 0 .6rem}
.chart text{font-size:10px;fill:var(--muted)}.chart .title{font-size:11px;fill:var(--fg);font-weight:600}
.s2xx{fill:#2e9e5b}.s1xx,.s3xx{fill:#3b7dd8}.s4xx{fill:#e0912f}.s5xx{fill:#d64545}.sunanswered,.sother{fill:#9aa3b2}.size{fill:#6b7fd7}.lat{fill:#8a63c9}
.sev{display:inline-block;border-radius:3px;padding:0 .4rem;font-size:.8rem;font-weight:600;color:#fff}
.sev-high{background:#c62828}.sev-medium{background:#d9822b}.sev-low{background:#3b7dd8}.sev-info{background:#8a94a6}
#controls{display:flex;flex-wrap:wrap;gap:.75rem;align-items:center;margin:.5rem 0}
#controls input[type=search]{min-width:18rem;padding:.3rem .5rem}
#shown{color:var(--muted)}
tr.total td{font-weight:600}#anomaly-counts{width:auto;min-width:28rem}td.when{white-space:nowrap}
.timeline{margin:.75rem 0}.timeline figcaption{font-weight:600;margin:.2rem 0}.timeline svg{max-width:100%;height:auto}
.chart .lane{fill:#f6f7fa}.chart .grid{stroke:var(--line)}.chart .axis{stroke:var(--muted)}.chart text.lanelabel{fill:var(--fg);font-size:11px}
.an{fill-opacity:.85}.an-high{fill:#c62828}.an-medium{fill:#d9822b}.an-low{fill:#3b7dd8}.an.provisional{fill-opacity:.4}
[hidden]{display:none!important}
"#;

const SCRIPT: &str = r#"
(function () {
  'use strict';
  var controls = document.getElementById('controls');
  var text = document.getElementById('filter');
  var method = document.getElementById('method');
  var only = document.getElementById('only-findings');
  var shown = document.getElementById('shown');
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr.endpoint'));
  var findings = Array.prototype.slice.call(document.querySelectorAll('tr.finding'));
  var anomalies = Array.prototype.slice.call(document.querySelectorAll('tr.anomaly'));
  var timelines = Array.prototype.slice.call(document.querySelectorAll('figure.timeline'));
  function matches(el, q, m) {
    return (!q || el.getAttribute('data-search').indexOf(q) >= 0) &&
      (!m || el.getAttribute('data-method') === m);
  }
  function apply() {
    var q = text.value.trim().toLowerCase();
    var m = method.value;
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!q || r.getAttribute('data-search').indexOf(q) >= 0) &&
        (!m || r.getAttribute('data-method') === m) &&
        (!only.checked || r.getAttribute('data-findings') !== '0');
      r.hidden = !ok;
      var charts = document.getElementById(r.id + '-charts');
      if (charts) { charts.hidden = !ok; }
      if (ok) { n += 1; }
    });
    var f = 0;
    findings.forEach(function (r) {
      var ok = matches(r, q, m);
      r.hidden = !ok;
      if (ok) { f += 1; }
    });
    var a = 0;
    anomalies.forEach(function (r) {
      var ok = matches(r, q, m);
      r.hidden = !ok;
      if (ok) { a += 1; }
    });
    timelines.forEach(function (t) { t.hidden = !matches(t, q, m); });
    var counts = n + ' of ' + rows.length + ' endpoints, ' + f + ' of ' + findings.length + ' findings';
    if (anomalies.length) { counts += ', ' + a + ' of ' + anomalies.length + ' anomalies'; }
    shown.textContent = counts + ' shown';
  }
  function fromFragment() {
    var p = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    text.value = p.get('filter') || '';
    var m = (p.get('method') || '').toUpperCase();
    method.value = Array.prototype.some.call(method.options, function (o) { return o.value === m; }) ? m : '';
    only.checked = p.get('findings') === '1';
    apply();
  }
  text.addEventListener('input', apply);
  method.addEventListener('change', apply);
  only.addEventListener('change', apply);
  window.addEventListener('hashchange', fromFragment);
  controls.hidden = false;
  fromFragment();
}());
"#;

/// Renders `report` as one self-contained HTML page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<meta name=\"generator\" content=\"{}\">",
        escape(&report.generator)
    );
    out.push_str("<title>shadowtap report</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    summary(report, &mut out);
    contracts(report, &mut out);
    inventory(report, &mut out);
    findings(report, &mut out);
    anomalies(report, &mut out);
    out.push_str("<script type=\"application/json\" id=\"shadowtap-report\">");
    out.push_str(&script_json(report));
    out.push_str("</script>\n<script>");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    out
}

fn summary(report: &Report, out: &mut String) {
    let s = &report.summary;
    out.push_str("<header>\n<h1>API inventory</h1>\n<p class=\"meta\">");
    let _ = write!(out, "Generated by {}", escape(&report.generator));
    if let (Some(first), Some(last)) = (s.first_seen, s.last_seen) {
        let _ = write!(out, "; traffic from {first} to {last}");
    }
    out.push_str(
        ".</p>\n</header>\n<section id=\"summary\">\n<h2>Summary</h2>\n<dl class=\"cards\">\n",
    );
    let mut card = |label: &str, value: String| {
        let _ = writeln!(out, "<div><dt>{label}</dt><dd>{value}</dd></div>");
    };
    card("Services", s.services.to_string());
    card("Endpoints", s.endpoints.to_string());
    card("Requests", s.requests.to_string());
    for kind in FindingKind::ALL {
        let n = s.findings.get(kind.as_str()).copied().unwrap_or(0);
        card(&format!("Findings: {kind}"), n.to_string());
    }
    card("Anomalies", report.anomalies.len().to_string());
    out.push_str("</dl>\n</section>\n");
}

fn contracts(report: &Report, out: &mut String) {
    out.push_str("<section id=\"contracts\">\n<h2>Contracts</h2>\n");
    if report.contracts.is_empty() {
        out.push_str("<p>No contract was given: no findings are computed.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table>\n<thead><tr><th>File</th><th>Title</th><th>Version</th><th>Spec</th>\
         <th>SHA-256</th><th>Services</th><th class=\"num\">Operations</th></tr></thead>\n<tbody>\n",
    );
    for c in &report.contracts {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td>\
             <td><code title=\"{}\">{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&c.file),
            escape(&c.title),
            escape(&c.version),
            escape(&c.spec_version),
            escape(&c.sha256),
            escape(c.sha256.get(..12).unwrap_or(&c.sha256)),
            escape(&c.services.join(", ")),
            c.operations
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn inventory(report: &Report, out: &mut String) {
    let findings = EndpointFindings::of(report);
    out.push_str("<section id=\"inventory\">\n<h2>Inventory</h2>\n");
    out.push_str(
        "<form id=\"controls\" hidden onsubmit=\"return false\">\n\
         <input type=\"search\" id=\"filter\" placeholder=\"Filter by service, method, template\" \
         aria-label=\"Filter by service, method, template\">\n\
         <select id=\"method\" aria-label=\"Method\"><option value=\"\">All methods</option>",
    );
    let mut methods: Vec<&str> = report
        .services
        .iter()
        .flat_map(|s| s.endpoints.iter().map(|e| e.method.as_str()))
        .collect();
    methods.sort_unstable();
    methods.dedup();
    for m in methods {
        let _ = write!(out, "<option>{}</option>", escape(m));
    }
    out.push_str(
        "</select>\n<label><input type=\"checkbox\" id=\"only-findings\"> Only endpoints with findings</label>\n\
         <span id=\"shown\"></span>\n</form>\n",
    );
    out.push_str(
        "<table id=\"endpoints\">\n<thead><tr><th>Service</th><th>Method</th><th>Template</th>\
         <th class=\"num\">Requests</th><th>Status classes</th><th class=\"num\">p50 ms</th>\
         <th class=\"num\">p99 ms</th><th>Auth</th><th class=\"num\">Confidence</th>\
         <th class=\"num\">Findings</th></tr></thead>\n<tbody>\n",
    );
    let mut index = 0;
    for service in &report.services {
        for e in &service.endpoints {
            index += 1;
            let n = findings.count(&service.name, e);
            let search = format!("{} {} {}", service.name, e.method, e.template).to_lowercase();
            let (classes, auth) = (classes_text(e), auth_text(e));
            let _ = writeln!(
                out,
                "<tr class=\"endpoint\" id=\"ep-{index}\" data-search=\"{}\" data-method=\"{}\" data-findings=\"{n}\">\
                 <td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{:.2}</td>\
                 <td class=\"num\">{n}</td></tr>",
                escape(&search),
                escape(&e.method),
                escape(&service.name),
                escape(&e.method),
                escape(&e.template),
                e.requests,
                escape(&classes),
                millis(e.latency_us.p50),
                millis(e.latency_us.p99),
                escape(&auth),
                e.confidence,
            );
            let label = format!("{} {}", e.method, e.template);
            let _ = writeln!(
                out,
                "<tr class=\"charts\" id=\"ep-{index}-charts\"><td colspan=\"10\"><details>\
                 <summary>Charts: {}</summary><div class=\"chartrow\">{}{}{}</div></details></td></tr>",
                escape(&label),
                status_chart(e, &label),
                quantile_chart("Response size", "size", &e.response_bytes, &label, bytes),
                quantile_chart("Latency", "lat", &e.latency_us, &label, |us| {
                    format!("{} ms", millis(Some(us)))
                }),
            );
        }
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn findings(report: &Report, out: &mut String) {
    out.push_str("<section id=\"findings\">\n<h2>Findings</h2>\n");
    if report.findings.is_empty() {
        out.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table id=\"findings-table\">\n<thead><tr><th>Severity</th><th>Rule</th><th>Service</th>\
         <th>Endpoint</th><th>Message</th><th>Contract</th></tr></thead>\n<tbody>\n",
    );
    let mut sorted: Vec<_> = report.findings.iter().collect();
    sorted.sort_by_key(|f| (std::cmp::Reverse(f.severity), f.kind));
    for f in sorted {
        let endpoint = match (&f.method, &f.template) {
            (Some(m), Some(t)) => format!("{m} {t}"),
            _ => String::new(),
        };
        let search = format!("{} {endpoint}", f.service).to_lowercase();
        let contract = match (&f.spec_file, &f.spec_version) {
            (Some(file), Some(v)) => format!("{file} ({v})"),
            (Some(file), None) => file.clone(),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"finding\" data-search=\"{}\" data-method=\"{}\"><td>{}</td><td>{}</td>\
             <td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&search),
            escape(f.method.as_deref().unwrap_or("")),
            severity_badge(f.severity),
            escape(&rule_id(f)),
            escape(&f.service),
            escape(&endpoint),
            escape(&f.message),
            escape(&contract),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn severity_badge(s: Severity) -> String {
    badge(s.as_str())
}

/// A coloured severity label (`high`, `medium`, `low`, `info`).
fn badge(severity: &str) -> String {
    format!("<span class=\"sev sev-{0}\">{0}</span>", escape(severity))
}

fn anomalies(report: &Report, out: &mut String) {
    out.push_str("<section id=\"anomalies\">\n<h2>Anomalies</h2>\n");
    if report.anomalies.is_empty() {
        out.push_str("<p>None.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table id=\"anomaly-counts\">\n<thead><tr><th>Kind</th><th class=\"num\">High</th>\
         <th class=\"num\">Medium</th><th class=\"num\">Low</th><th class=\"num\">Total</th></tr></thead>\n<tbody>\n",
    );
    let mut totals = [0; 3];
    for (kind, n) in anomaly_counts(report) {
        for (t, n) in totals.iter_mut().zip(n) {
            *t += n;
        }
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            kind.as_str(),
            n[0],
            n[1],
            n[2],
            n.iter().sum::<usize>()
        );
    }
    let _ = writeln!(
        out,
        "<tr class=\"total\"><td>Total</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n</tbody>\n</table>",
        totals[0],
        totals[1],
        totals[2],
        report.anomalies.len()
    );

    let groups = timeline::groups(report);
    let charted: BTreeMap<(&str, Option<&str>), usize> = groups
        .iter()
        .take(MAX_TIMELINES)
        .enumerate()
        .map(|(i, g)| ((g.service, g.endpoint.as_deref()), i + 1))
        .collect();
    out.push_str(
        "<table id=\"anomalies-table\">\n<thead><tr><th>Severity</th><th>Kind</th><th>Service</th>\
         <th>Endpoint</th><th>Caller</th><th>Window (UTC)</th><th>Baseline → observed</th>\
         <th>Explanation</th></tr></thead>\n<tbody>\n",
    );
    for a in anomalies_by_severity(report) {
        let endpoint = anomaly_endpoint(a);
        let search = format!("{} {}", a.service, endpoint.as_deref().unwrap_or("")).to_lowercase();
        let mut cell = match &endpoint {
            Some(e) => format!("<code>{}</code>", escape(e)),
            None => "<em>service-wide</em>".to_owned(),
        };
        if let Some(id) = charted.get(&(a.service.as_str(), endpoint.as_deref())) {
            cell = format!("<a href=\"#tl-{id}\" title=\"Timeline\">{cell}</a>");
        }
        // Start and end on a line each, so neither breaks at its hyphens.
        let (start, end) = (utc_seconds(a.start), utc_seconds(a.end));
        let mut when = if start == end {
            start
        } else {
            format!("{start} –<br>{end}")
        };
        if a.provisional {
            let _ = write!(when, "<br><em>{STILL_OPEN}</em>");
        }
        let caller = a
            .caller
            .as_deref()
            .map(|c| format!("<code>{}</code>", escape(c)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "<tr class=\"anomaly\" data-search=\"{}\" data-method=\"{}\"><td>{}</td><td><code>{}</code></td>\
             <td>{}</td><td>{cell}</td><td>{caller}</td><td class=\"when\">{when}</td><td>{}</td><td>{}</td></tr>",
            escape(&search),
            escape(a.method.as_deref().unwrap_or("")),
            badge(a.severity.as_str()),
            a.kind.as_str(),
            escape(&a.service),
            escape(&anomaly_change(a)),
            escape(&a.explanation),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    timeline::render(report, &groups, out);
    out.push_str("</section>\n");
}

/// One bar of a chart: label, value, CSS class.
struct Bar {
    label: String,
    value: u64,
    class: String,
}

fn status_chart(e: &EndpointReport, label: &str) -> String {
    let mut codes: Vec<(&String, u64)> = e.statuses.iter().map(|(k, v)| (k, *v)).collect();
    let mut other = 0;
    if codes.len() > MAX_STATUS_BARS {
        // Keep the most frequent codes (in code order), sum the rest.
        codes.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        other = codes
            .split_off(MAX_STATUS_BARS - 1)
            .iter()
            .map(|(_, n)| n)
            .sum();
        codes.sort();
    }
    let mut bars: Vec<Bar> = codes
        .into_iter()
        .map(|(code, n)| {
            let class = status_classes(&[(code.clone(), n)].into())
                .into_keys()
                .next()
                .unwrap_or_default();
            Bar {
                label: code.clone(),
                value: n,
                class: format!("s{class}"),
            }
        })
        .collect();
    if other > 0 {
        bars.push(Bar {
            label: "other".to_owned(),
            value: other,
            class: "sother".to_owned(),
        });
    }
    bar_chart("Status codes", &bars, label, |n| n.to_string())
}

fn quantile_chart(
    title: &str,
    class: &str,
    q: &Quantiles,
    label: &str,
    show: impl Fn(u64) -> String,
) -> String {
    let bars: Vec<Bar> = [
        ("p50", q.p50),
        ("p90", q.p90),
        ("p99", q.p99),
        ("max", q.max),
    ]
    .into_iter()
    .filter_map(|(name, v)| {
        v.map(|value| Bar {
            label: name.to_owned(),
            value,
            class: class.to_owned(),
        })
    })
    .collect();
    bar_chart(title, &bars, label, show)
}

/// A small vertical bar chart as inline SVG.
fn bar_chart(title: &str, bars: &[Bar], label: &str, show: impl Fn(u64) -> String) -> String {
    const BAR: u64 = 34;
    const GAP: u64 = 8;
    const PLOT: u64 = 80;
    const TOP: u64 = 30;
    let width = (bars.len() as u64 * (BAR + GAP) + GAP).max(150);
    let height = TOP + PLOT + 18;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\
         <text class=\"title\" x=\"0\" y=\"12\">{}</text>",
        escape(&format!("{title} of {label}")),
        escape(title),
    );
    if bars.is_empty() {
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\">no data</text></svg>",
            TOP + PLOT / 2
        );
        return svg;
    }
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    for (i, b) in bars.iter().enumerate() {
        let x = GAP + i as u64 * (BAR + GAP);
        // At least one pixel, so a non-zero value is always visible.
        let h = if b.value == 0 {
            0
        } else {
            (b.value * PLOT / max).max(1)
        };
        let y = TOP + PLOT - h;
        let value = show(b.value);
        let _ = write!(
            svg,
            "<rect class=\"{}\" x=\"{x}\" y=\"{y}\" width=\"{BAR}\" height=\"{h}\"><title>{}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            escape(&b.class),
            escape(&b.label),
            escape(&value),
            x + BAR / 2,
            y.saturating_sub(3).max(TOP - 12),
            escape(&value),
            x + BAR / 2,
            TOP + PLOT + 13,
            escape(&b.label),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Bytes with a binary-ish unit (`512 B`, `1.5 kB`, `2.0 MB`).
fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        _ => format!("{:.1} MB", n as f64 / 1e6),
    }
}

/// The report as JSON that is safe inside a `<script>` element.
fn script_json(report: &Report) -> String {
    let json = serde_json::to_string(report).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            // Only ever inside JSON strings, where a \u escape means the same.
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Controls other than whitespace are not allowed in HTML text.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::AnomalySeverity;
    use crate::report::testing::{
        anomaly, anomaly_report, demo_report, drift_finding, endpoint, report, seg, service,
    };

    #[test]
    fn demo_page_has_the_tables_charts_and_data() {
        let page = render(demo_report());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("default-src 'none'"));
        assert!(page.contains("<dt>Endpoints</dt><dd>25</dd>"));
        assert!(page.contains("<dt>Findings: undocumented</dt><dd>21</dd>"));
        assert_eq!(page.matches("<tr class=\"endpoint\"").count(), 25);
        assert_eq!(page.matches("<tr class=\"finding\"").count(), 25);
        // Three charts under each endpoint.
        assert_eq!(page.matches("<svg class=\"chart\"").count(), 75);
        let row = page
            .lines()
            .find(|l| l.contains("<code>/api/v1/users/{userId}</code>") && l.contains(">GET<"))
            .expect("the users row");
        assert!(
            row.contains("data-search=\"127.0.0.1:8080 get /api/v1/users/{userid}\""),
            "{row}"
        );
        assert!(row.contains("<td>2xx: 9, 4xx: 4</td>"), "{row}");
        assert!(row.contains("data-findings=\"1\""), "{row}");
        assert!(page.contains("<rect class=\"s4xx\""));
        assert!(page.contains("<code title=\"b1633b6309c065c43d56be7c659b0f2c4be03be5a4013b7c3f74b32bd33f62eb\">b1633b6309c0</code>"));
        // Nothing is fetched: no URL but the SVG namespace.
        let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
        assert!(!page.contains(" src="));
        // No anomalies in three seconds of traffic: a card and an empty section.
        assert!(page.contains("<dt>Anomalies</dt><dd>0</dd>"));
        assert!(page
            .contains("<section id=\"anomalies\">\n<h2>Anomalies</h2>\n<p>None.</p>\n</section>"));
        assert!(!page.contains("<figure class=\"timeline\""));
    }

    #[test]
    fn anomalies_have_counts_and_a_table_linked_to_timelines() {
        let page = render(&anomaly_report());
        assert!(page.contains("<dt>Anomalies</dt><dd>4</dd>"));
        assert!(page.contains(
            "<tr><td><code>error_spike_5xx</code></td><td class=\"num\">1</td><td class=\"num\">0</td>\
             <td class=\"num\">0</td><td class=\"num\">1</td></tr>"
        ));
        assert!(page.contains(
            "<tr class=\"total\"><td>Total</td><td class=\"num\">3</td><td class=\"num\">1</td>\
             <td class=\"num\">0</td><td class=\"num\">4</td></tr>"
        ));
        // The table: most severe first, each row linking to its timeline.
        let rows: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("<tr class=\"anomaly\""))
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(
            rows[0].contains("data-search=\"api get /users/{userid}\" data-method=\"GET\""),
            "{}",
            rows[0]
        );
        assert!(rows[0].contains(
            "<td><span class=\"sev sev-high\">high</span></td><td><code>error_spike_5xx</code></td><td>api</td>\
             <td><a href=\"#tl-1\" title=\"Timeline\"><code>GET /users/{userId}</code></a></td><td></td>\
             <td class=\"when\">2023-11-14T22:15:00Z –<br>2023-11-14T22:25:00Z</td><td>0.4% → 45.0% 5xx share</td>\
             <td>5xx rate 45.0% against a usual 0.4% (18 of 40 requests)</td></tr>"
        ), "{}", rows[0]);
        assert!(
            rows[1].contains("<td><code>0a1b2c3d4e5f</code></td>"),
            "{}",
            rows[1]
        );
        assert!(rows[2].contains("data-method=\"\""), "{}", rows[2]);
        assert!(
            rows[2].contains("<td class=\"when\">2023-11-14T23:03:20Z –<br>2023-11-14T23:08:20Z<br><em>window still open</em></td>"),
            "{}",
            rows[2]
        );
        assert!(
            rows[2].contains("<a href=\"#tl-2\" title=\"Timeline\"><em>service-wide</em></a>"),
            "{}",
            rows[2]
        );
        assert!(
            rows[3].contains("<span class=\"sev sev-medium\">medium</span>"),
            "{}",
            rows[3]
        );
        assert!(rows[3].contains("<a href=\"#tl-3\""), "{}", rows[3]);
    }

    #[test]
    fn anomaly_text_is_escaped() {
        let mut a = anomaly(
            crate::anomaly::AnomalyKind::NewAuthScheme,
            AnomalySeverity::Medium,
        );
        a.service = "h<b>".to_owned();
        a.explanation = "</title><script>alert(1)</script>".to_owned();
        a.caller = Some("\"onload=x".to_owned());
        let mut r = report(Vec::new(), Vec::new());
        r.anomalies.push(a);
        let page = render(&r);
        assert_eq!(page.matches("<script").count(), 2);
        assert!(page.contains("<td>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
        assert!(
            page.contains(": &lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt; (0.4% → 45.0%")
        );
        assert!(page.contains("<td><code>&quot;onload=x</code></td>"));
        assert!(page.contains("data-search=\"h&lt;b&gt; get /users/{userid}\""));
    }

    #[test]
    fn embedded_report_round_trips_and_cannot_close_the_script() {
        let mut e = endpoint("GET", vec![seg("x</script><!--", None)], 3);
        e.auth_schemes = [("a\u{2028}b&c".to_owned(), 3)].into();
        let mut f = drift_finding("h", &e.template, "/f");
        f.message = "</script><script>alert(1)</script>".to_owned();
        let r = report(vec![service("h<b>", vec![e])], vec![f]);
        let page = render(&r);
        let start = page
            .find("<script type=\"application/json\" id=\"shadowtap-report\">")
            .expect("data island");
        let body = &page[start..];
        let body = &body[body.find('>').expect("tag end") + 1..];
        let json = &body[..body.find("</script>").expect("end")];
        assert!(!json.contains('<') && !json.contains('\u{2028}'), "{json}");
        let back: Report = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(back, r);
        // Exactly the page's own two scripts, and the text is escaped.
        assert_eq!(page.matches("<script").count(), 2);
        assert_eq!(page.matches("</script>").count(), 2);
        assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<td>h&lt;b&gt;</td>"));
    }

    #[test]
    fn many_status_codes_fold_into_other() {
        let mut e = endpoint("GET", vec![seg("x", None)], 1);
        e.statuses = (200u64..220).map(|c| (c.to_string(), c - 199)).collect();
        let svg = status_chart(&e, "GET /x");
        assert_eq!(svg.matches("<rect").count(), MAX_STATUS_BARS);
        // The 11 most frequent (209..=219, counts 10..=20) kept, 1..=9 summed.
        assert!(svg.contains("<title>other: 45</title>"), "{svg}");
        assert!(svg.contains("<title>219: 20</title>"), "{svg}");
    }

    #[test]
    fn empty_quantiles_say_no_data() {
        let svg = quantile_chart("Latency", "lat", &Quantiles::default(), "GET /", |n| {
            n.to_string()
        });
        assert!(svg.contains("no data") && !svg.contains("<rect"));
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500), "1.5 kB");
    }
}
