//! The terminal rendering: one table per service, then the findings.

use std::fmt::Write as _;

use super::{EndpointReport, Report};
use crate::findings::Severity;

/// Renders `report` as aligned text; `colour` adds ANSI colours.
pub fn render(report: &Report, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(
        out,
        "{} services, {} endpoints, {} requests; findings: {}",
        s.services,
        s.endpoints,
        s.requests,
        if s.findings.is_empty() {
            "none".to_owned()
        } else {
            s.findings
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    for service in &report.services {
        let _ = writeln!(out);
        let covered = match &service.contract {
            Some(c) => format!("contract {c}"),
            None => "no contract".to_owned(),
        };
        let _ = writeln!(
            out,
            "{} ({} requests, {})",
            paint("1", &service.name),
            service.requests,
            covered
        );
        let rows: Vec<[String; 7]> = service.endpoints.iter().map(row).collect();
        let header = [
            "METHOD",
            "TEMPLATE",
            "REQUESTS",
            "2xx/4xx/5xx",
            "P50 MS",
            "AUTH",
            "CONF",
        ]
        .map(str::to_owned);
        let mut widths = header.clone().map(|h| h.chars().count());
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String; 7]| {
            let mut l = String::from("  ");
            for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w - c.chars().count();
                // Numbers right-aligned, text left-aligned.
                if matches!(i, 2 | 4 | 6) {
                    l.push_str(&" ".repeat(pad));
                    l.push_str(c);
                } else {
                    l.push_str(c);
                    l.push_str(&" ".repeat(pad));
                }
                l.push_str("  ");
            }
            l.trim_end().to_owned()
        };
        let _ = writeln!(out, "{}", paint("2", &line(&header)));
        for r in &rows {
            let _ = writeln!(out, "{}", line(r));
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", paint("1", "Findings"));
        for f in &report.findings {
            let sev = match f.severity {
                Severity::High => paint("31;1", "high"),
                Severity::Medium => paint("33", "medium"),
                Severity::Low => paint("36", "low"),
                Severity::Info => paint("2", "info"),
            };
            let kind = super::rule_id(f);
            let _ = writeln!(out, "  {sev:<6} {kind:<22} {}: {}", f.service, f.message);
        }
    }
    if !report.anomalies.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", paint("1", "Anomalies"));
        for a in &report.anomalies {
            let sev = match a.severity {
                crate::anomaly::AnomalySeverity::High => paint("31;1", "high"),
                crate::anomaly::AnomalySeverity::Medium => paint("33", "medium"),
                crate::anomaly::AnomalySeverity::Low => paint("36", "low"),
            };
            let what = match (&a.method, a.template.as_ref().or(a.path_key.as_ref())) {
                (Some(m), Some(t)) => format!("{} {m} {t}", a.service),
                _ => a.service.clone(),
            };
            let _ = writeln!(
                out,
                "  {sev:<6} {:<22} {what} [{} .. {}{}]: {}",
                a.kind.as_str(),
                a.start,
                a.end,
                if a.provisional {
                    ", window still open"
                } else {
                    ""
                },
                a.explanation
            );
        }
    }
    out
}

fn row(e: &EndpointReport) -> [String; 7] {
    let class = |c: char| -> u64 {
        e.statuses
            .iter()
            .filter(|(k, _)| k.starts_with(c))
            .map(|(_, v)| v)
            .sum()
    };
    let auth = e
        .auth_schemes
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",");
    [
        e.method.clone(),
        e.template.clone(),
        e.requests.to_string(),
        format!("{}/{}/{}", class('2'), class('4'), class('5')),
        e.latency_us
            .p50
            .map_or("-".to_owned(), |us| format!("{:.1}", us as f64 / 1000.0)),
        auth,
        format!("{:.2}", e.confidence),
    ]
}
