//! The anomaly timelines of the HTML report: one inline SVG per endpoint
//! with anomalies (and one per service for its service-wide anomalies).
//!
//! Every timeline shares one time axis, the report's traffic and its
//! anomalies with a small margin, with ticks on whole UTC minutes, hours or
//! days. Each anomaly kind of the endpoint gets a lane; each anomaly is a
//! bar from its start to its end (at least [`MIN_BAR`] wide, so a
//! single-response anomaly shows), coloured by severity, with a `<title>`
//! tooltip carrying the window, the caller, the explanation and the
//! baseline against the observed value. A provisional anomaly (judged on a
//! window still open at the end of the run) is drawn paler. Endpoints are ranked by their most
//! severe anomaly, then by how many they have; at most [`MAX_TIMELINES`]
//! are drawn, each with at most [`MAX_TIMELINE_BARS`] bars.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use shadowtap_proto::Timestamp;

use super::escape;
use crate::anomaly::{Anomaly, AnomalyKind};
use crate::report::{
    anomaly_change, anomaly_endpoint, anomaly_window, utc_seconds, Report, ANOMALY_SEVERITIES,
    STILL_OPEN,
};

/// Most anomaly timelines on a page (endpoints and services' service-wide
/// anomalies, most severe first); the rest are counted, not drawn.
pub const MAX_TIMELINES: usize = 50;
/// Most bars in one timeline (most severe first, then earliest).
pub const MAX_TIMELINE_BARS: usize = 200;
/// The narrowest bar, in SVG units: per-response anomalies last an instant.
const MIN_BAR: f64 = 3.0;

/// The anomalies of one endpoint, or the service-wide ones of a service.
pub(super) struct TimelineGroup<'r> {
    pub(super) service: &'r str,
    /// `METHOD template`; `None` for service-wide anomalies.
    pub(super) endpoint: Option<String>,
    method: &'r str,
    anomalies: Vec<&'r Anomaly>,
}

/// Anomalies grouped by endpoint (service-wide ones by service), the
/// groups with the most severe anomaly first, then the most anomalies.
pub(super) fn groups(report: &Report) -> Vec<TimelineGroup<'_>> {
    let mut by_endpoint: BTreeMap<(&str, Option<String>), Vec<&Anomaly>> = BTreeMap::new();
    for a in &report.anomalies {
        by_endpoint
            .entry((a.service.as_str(), anomaly_endpoint(a)))
            .or_default()
            .push(a);
    }
    let mut groups: Vec<TimelineGroup<'_>> = by_endpoint
        .into_iter()
        .map(|((service, endpoint), anomalies)| TimelineGroup {
            service,
            method: if endpoint.is_some() {
                anomalies[0].method.as_deref().unwrap_or("")
            } else {
                ""
            },
            endpoint,
            anomalies,
        })
        .collect();
    // Stable: groups that tie stay in service and endpoint order.
    groups.sort_by_key(|g| {
        (
            Reverse(g.anomalies.iter().map(|a| a.severity).max()),
            Reverse(g.anomalies.len()),
        )
    });
    groups
}

/// The time axis shared by every timeline, in nanoseconds: the report's
/// traffic and its anomalies, with a margin of 2% on each side (and at
/// least a minute in all).
fn time_domain(report: &Report) -> (u64, u64) {
    let starts = report.anomalies.iter().map(|a| a.start);
    let ends = report.anomalies.iter().map(|a| a.end);
    let lo = starts
        .chain(report.summary.first_seen)
        .map(Timestamp::as_nanos)
        .min()
        .unwrap_or(0);
    let hi = ends
        .chain(report.summary.last_seen)
        .map(Timestamp::as_nanos)
        .max()
        .unwrap_or(lo)
        .max(lo);
    const HALF_MINUTE: u64 = 30_000_000_000;
    let (lo, hi) = if hi - lo < 2 * HALF_MINUTE {
        let mid = lo + (hi - lo) / 2;
        (mid.saturating_sub(HALF_MINUTE), mid + HALF_MINUTE)
    } else {
        (lo, hi)
    };
    let margin = (hi - lo) / 50;
    (lo.saturating_sub(margin), hi.saturating_add(margin))
}

/// The timelines of the first [`MAX_TIMELINES`] `groups`, under a heading
/// that explains them.
pub(super) fn render(report: &Report, groups: &[TimelineGroup<'_>], out: &mut String) {
    let (lo, hi) = time_domain(report);
    let _ = writeln!(
        out,
        "<h3 id=\"timelines\">Timelines</h3>\n<p class=\"meta\">One timeline per endpoint with anomalies \
         (a service's service-wide anomalies get their own), one lane per kind, each anomaly a bar from \
         its start to its end coloured by severity; hover a bar for its explanation. Time in UTC, \
         {} to {}.</p>",
        utc_seconds(Timestamp(lo)),
        utc_seconds(Timestamp(hi)),
    );
    if groups.len() > MAX_TIMELINES {
        let _ = writeln!(
            out,
            "<p class=\"meta\" id=\"timelines-left-out\">{} more endpoints with anomalies are not charted \
             (only the {MAX_TIMELINES} with the most severe and most anomalies are); the table lists every anomaly.</p>",
            groups.len() - MAX_TIMELINES
        );
    }
    for (i, g) in groups.iter().take(MAX_TIMELINES).enumerate() {
        out.push_str(&timeline(g, i + 1, lo, hi));
        out.push('\n');
    }
}

/// One timeline as a `<figure>` with an inline SVG (see the module docs).
fn timeline(g: &TimelineGroup<'_>, id: usize, lo: u64, hi: u64) -> String {
    const WIDTH: f64 = 960.0;
    const LABEL: f64 = 170.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 6.0;
    const LANE: f64 = 22.0;
    const BAR: f64 = 12.0;
    const AXIS: f64 = 22.0;
    let plot = WIDTH - LABEL - RIGHT;
    let span = hi.saturating_sub(lo).max(1) as f64;
    let x = |t: Timestamp| LABEL + (t.as_nanos().clamp(lo, hi) - lo) as f64 / span * plot;

    let mut drawn = g.anomalies.clone();
    drawn.sort_by_key(|a| (Reverse(a.severity), a.start));
    let left_out = drawn.len().saturating_sub(MAX_TIMELINE_BARS);
    drawn.truncate(MAX_TIMELINE_BARS);
    let kinds: Vec<AnomalyKind> = AnomalyKind::ALL
        .into_iter()
        .filter(|k| drawn.iter().any(|a| a.kind == *k))
        .collect();
    let bottom = TOP + kinds.len() as f64 * LANE;
    let height = bottom + AXIS;

    let what = g.endpoint.as_deref().unwrap_or("service-wide");
    let label = format!("{} {what}", g.service);
    let mut counts = Vec::new();
    for s in ANOMALY_SEVERITIES {
        let n = g.anomalies.iter().filter(|a| a.severity == s).count();
        if n > 0 {
            counts.push(format!("{n} {}", s.as_str()));
        }
    }
    let mut caption = format!(
        "{} — {what}: {} {} ({})",
        g.service,
        g.anomalies.len(),
        if g.anomalies.len() == 1 {
            "anomaly"
        } else {
            "anomalies"
        },
        counts.join(", ")
    );
    if left_out > 0 {
        let _ = write!(
            caption,
            "; the {MAX_TIMELINE_BARS} most severe drawn, {left_out} more in the table"
        );
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<figure class=\"timeline\" id=\"tl-{id}\" data-search=\"{}\" data-method=\"{}\">\
         <figcaption>{}</figcaption>\
         <svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{}\">",
        escape(&label.to_lowercase()),
        escape(g.method),
        escape(&caption),
        escape(&format!("Anomaly timeline of {label}")),
    );
    for (i, kind) in kinds.iter().enumerate() {
        let y = TOP + i as f64 * LANE;
        let _ = write!(
            svg,
            "<rect class=\"lane\" x=\"{LABEL}\" y=\"{y}\" width=\"{plot}\" height=\"{}\"/>\
             <text class=\"lanelabel\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LANE - 2.0,
            LABEL - 8.0,
            y + LANE / 2.0 + 3.0,
            kind.as_str(),
        );
    }
    let (step_s, ticks) = time_ticks(lo, hi);
    let span_s = (hi - lo) / 1_000_000_000;
    for t in ticks {
        let tx = fmt1(x(Timestamp(t)));
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{tx}\" x2=\"{tx}\" y1=\"{TOP}\" y2=\"{}\"/>\
             <text x=\"{tx}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            bottom + 4.0,
            bottom + 16.0,
            tick_label(Timestamp(t), step_s, span_s),
        );
    }
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LABEL}\" x2=\"{}\" y1=\"{bottom}\" y2=\"{bottom}\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">UTC</text>",
        LABEL + plot,
        LABEL - 8.0,
        bottom + 16.0,
    );
    // Least severe first, so the most severe bars are drawn on top.
    for a in drawn.iter().rev() {
        let lane = kinds.iter().position(|k| *k == a.kind).unwrap_or(0);
        let width = (x(a.end) - x(a.start)).max(MIN_BAR);
        let bx = x(a.start).min(LABEL + plot - width);
        let y = TOP + lane as f64 * LANE + (LANE - 2.0 - BAR) / 2.0;
        let mut tip = format!(
            "{} {}, {}",
            a.severity.as_str(),
            a.kind.as_str(),
            anomaly_window(a)
        );
        if a.provisional {
            let _ = write!(tip, " ({STILL_OPEN})");
        }
        if let Some(caller) = &a.caller {
            let _ = write!(tip, ", caller {caller}");
        }
        let _ = write!(tip, ": {} ({})", a.explanation, anomaly_change(a));
        let _ = write!(
            svg,
            "<rect class=\"an an-{}{}\" x=\"{}\" y=\"{y}\" width=\"{}\" height=\"{BAR}\" rx=\"2\">\
             <title>{}</title></rect>",
            a.severity.as_str(),
            if a.provisional { " provisional" } else { "" },
            fmt1(bx),
            fmt1(width),
            escape(&tip),
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// A coordinate with one decimal.
fn fmt1(v: f64) -> String {
    format!("{v:.1}")
}

/// Tick steps for a time axis, seconds.
const TICK_STEPS_S: [u64; 20] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 172_800, 604_800,
];

/// The step (seconds) and the times (nanoseconds) of at most eight ticks
/// between `lo` and `hi`, on whole multiples of the step in UTC.
fn time_ticks(lo: u64, hi: u64) -> (u64, Vec<u64>) {
    const MAX_TICKS: u64 = 8;
    let span_s = hi.saturating_sub(lo) / 1_000_000_000;
    let step_s = TICK_STEPS_S
        .into_iter()
        .find(|s| span_s / s < MAX_TICKS)
        .unwrap_or_else(|| (span_s / MAX_TICKS / 86_400 + 1) * 86_400);
    let step = step_s * 1_000_000_000;
    let first = lo.div_ceil(step) * step;
    let ticks = std::iter::successors(Some(first), |t| t.checked_add(step))
        .take_while(|t| *t <= hi)
        .collect();
    (step_s, ticks)
}

/// `HH:MM` (`HH:MM:SS` for steps under a minute); with `MM-DD ` in front
/// when the axis spans more than a day, and the date only for whole-day
/// steps.
fn tick_label(t: Timestamp, step_s: u64, span_s: u64) -> String {
    let s = utc_seconds(t);
    let part = |r: std::ops::Range<usize>| s.get(r).unwrap_or("").to_owned();
    match (span_s > 86_400, step_s) {
        (true, 86_400..) => part(5..10),
        (true, _) => format!("{} {}", part(5..10), part(11..16)),
        (false, ..60) => part(11..19),
        (false, _) => part(11..16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anomaly::AnomalySeverity;
    use crate::report::html::render;
    use crate::report::testing::{anomaly, anomaly_report, report};

    /// The `<figure>` of timeline `id`.
    fn figure(page: &str, id: usize) -> &str {
        let start = page
            .find(&format!("<figure class=\"timeline\" id=\"tl-{id}\""))
            .unwrap_or_else(|| panic!("timeline {id}"));
        let rest = &page[start..];
        &rest[..rest.find("</figure>").expect("figure end")]
    }

    /// `(class, x, width)` of the anomaly bars in `svg`.
    fn bars(svg: &str) -> Vec<(String, f64, f64)> {
        let attr = |tag: &str, name: &str| -> String {
            let at = tag.find(&format!(" {name}=\"")).expect(name) + name.len() + 3;
            tag[at..at + tag[at..].find('"').expect("quote")].to_owned()
        };
        svg.split("<rect class=\"an ")
            .skip(1)
            .map(|chunk| {
                let tag = format!(
                    " class=\"an {}",
                    &chunk[..chunk.find('>').expect("tag end")]
                );
                (
                    attr(&tag, "class"),
                    attr(&tag, "x").parse().expect("x"),
                    attr(&tag, "width").parse().expect("width"),
                )
            })
            .collect()
    }

    #[test]
    fn timelines_have_lanes_bars_and_one_axis() {
        let page = render(&anomaly_report());
        // Timelines: the users endpoint (two high), the service-wide
        // burst (one high), the orders endpoint (one medium).
        assert_eq!(page.matches("<figure class=\"timeline\"").count(), 3);
        let users = figure(&page, 1);
        assert!(
            users.contains(
                "<figcaption>api — GET /users/{userId}: 2 anomalies (2 high)</figcaption>"
            ),
            "{users}"
        );
        assert!(
            users.contains(">error_spike_5xx</text>") && users.contains(">bola_enumeration</text>")
        );
        assert_eq!(users.matches("<rect class=\"lane\"").count(), 2);
        let b = bars(users);
        assert_eq!(b.len(), 2);
        assert!(b.iter().all(|(class, _, _)| class == "an an-high"), "{b:?}");
        // Drawn in lane order of ALL and by time: the spike (ten minutes
        // from 22:15) left of the enumeration (five minutes from 22:43).
        let (spike, bola) = (&b[1], &b[0]);
        assert!(spike.1 < bola.1, "{b:?}");
        assert!((spike.2 - 2.0 * bola.2).abs() < 0.2, "{b:?}");
        assert!(spike.2 > 100.0, "{b:?}");
        assert!(users.contains("<title>high bola_enumeration, 2023-11-14T22:43:20Z – 2023-11-14T22:48:20Z, caller 0a1b2c3d4e5f: caller 0a1b2c3d4e5f touched 180 distinct ids in one window (callers usually touch up to 4) (4 → 180 distinct object ids per caller and window)</title>"), "{users}");
        // One shared hour-long axis, ticks every ten minutes.
        for tick in ["22:20", "22:30", "23:10"] {
            assert!(
                users.contains(&format!(">{tick}</text>")),
                "{tick}: {users}"
            );
        }
        assert!(page.contains("Time in UTC, 2023-11-14T22:12:08Z to 2023-11-14T23:14:32Z."));
        let wide = figure(&page, 2);
        assert!(
            wide.contains("data-search=\"api service-wide\" data-method=\"\""),
            "{wide}"
        );
        assert!(wide.contains(">auth_failure_burst</text>"));
        let burst = bars(wide);
        assert_eq!(burst.len(), 1);
        assert_eq!(burst[0].0, "an an-high provisional");
        assert!(
            wide.contains("2023-11-14T23:08:20Z (window still open): 60.0% of the service"),
            "{wide}"
        );
        // A single response still gets a visible bar.
        let orders = bars(figure(&page, 3));
        assert_eq!(orders.len(), 1);
        assert_eq!((orders[0].0.as_str(), orders[0].2), ("an an-medium", 3.0));
        assert!(!page.contains("timelines-left-out"));
    }

    #[test]
    fn timelines_are_capped_most_severe_first() {
        let endpoints = 60;
        let mut r = report(Vec::new(), Vec::new());
        for i in 0..endpoints {
            let severity = if i % 12 == 5 {
                AnomalySeverity::High
            } else {
                AnomalySeverity::Low
            };
            let mut a = anomaly(crate::anomaly::AnomalyKind::ResponseSizeShift, severity);
            a.template = Some(format!("/e{i:02}"));
            r.anomalies.push(a);
        }
        // One endpoint with more anomalies than a timeline draws.
        for i in 0..(MAX_TIMELINE_BARS as u64 + 7) {
            let mut a = anomaly(
                crate::anomaly::AnomalyKind::ResponseSizeOutlier,
                AnomalySeverity::Medium,
            );
            a.template = Some("/busy".to_owned());
            a.start = Timestamp(a.start.as_nanos() + i * 1_000_000_000);
            a.end = a.start;
            r.anomalies.push(a);
        }
        let page = render(&r);
        assert_eq!(
            page.matches("<tr class=\"anomaly\"").count(),
            r.anomalies.len()
        );
        assert_eq!(
            page.matches("<figure class=\"timeline\"").count(),
            MAX_TIMELINES
        );
        assert!(page.contains(
            "<p class=\"meta\" id=\"timelines-left-out\">11 more endpoints with anomalies are not charted"
        ));
        // The five high ones first, then the busy endpoint, then low ones.
        for (id, template) in [(1, "/e05"), (5, "/e53"), (6, "/busy"), (7, "/e00")] {
            assert!(
                figure(&page, id).contains(&format!("GET {template}:")),
                "{id} {template}"
            );
        }
        let busy = figure(&page, 6);
        assert_eq!(bars(busy).len(), MAX_TIMELINE_BARS);
        assert!(
            busy.contains(&format!(
                "; the {MAX_TIMELINE_BARS} most severe drawn, 7 more in the table</figcaption>"
            )),
            "{busy}"
        );
        // Uncharted endpoints are in the table, without a link.
        let row = page
            .lines()
            .find(|l| l.starts_with("<tr class=\"anomaly\"") && l.contains("/e59"))
            .expect("the last endpoint's row");
        assert!(!row.contains("<a href"), "{row}");
    }

    #[test]
    fn time_axis_ticks_and_labels() {
        const S: u64 = 1_000_000_000;
        let lo = 1_700_000_000 * S; // 2023-11-14T22:13:20Z
                                    // Ten minutes: two-minute ticks.
        let (step, ticks) = time_ticks(lo, lo + 600 * S);
        assert_eq!(step, 120);
        assert_eq!(ticks.len(), 5);
        assert_eq!(tick_label(Timestamp(ticks[0]), step, 600), "22:14");
        // Thirty seconds: five-second ticks, with seconds.
        let (step, ticks) = time_ticks(lo, lo + 30 * S);
        assert_eq!(step, 5);
        assert_eq!(tick_label(Timestamp(ticks[1]), step, 30), "22:13:25");
        // Two days: twelve-hour ticks, with the date.
        let (step, ticks) = time_ticks(lo, lo + 2 * 86_400 * S);
        assert_eq!(step, 43_200);
        assert_eq!(
            tick_label(Timestamp(ticks[0]), step, 2 * 86_400),
            "11-15 00:00"
        );
        // Ninety days: whole days, at most eight ticks.
        let (step, ticks) = time_ticks(lo, lo + 90 * 86_400 * S);
        assert_eq!(step % 86_400, 0);
        assert!(ticks.len() <= 8 && ticks.len() >= 6, "{}", ticks.len());
        assert_eq!(tick_label(Timestamp(ticks[0]), step, 90 * 86_400).len(), 5);
    }
}
