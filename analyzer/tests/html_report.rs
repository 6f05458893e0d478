//! The HTML report in a real browser: headless Chromium loads the page from
//! disk, runs its script and dumps the DOM, which must show the inventory,
//! the findings and the charts, and must honour a filter in the URL
//! fragment. The demo has no anomalies (three seconds cannot make a
//! baseline), so the anomaly section is checked on the demo's report with
//! anomalies added on its endpoints; a probe script appended to that page
//! records script errors and measures the rendered timeline bars. Skips
//! (loudly) without Chromium, except under `cargo xtask test`, which
//! installs it and where a missing browser fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shadowtap_analyzer::anomaly::{Anomaly, AnomalyKind, AnomalySeverity};
use shadowtap_analyzer::report::{html, Report};
use shadowtap_proto::Timestamp;
use support::{analyze_demo, external_tool, output_within, scratch};

/// The browser: `SHADOWTAP_CHROMIUM` or `chromium` on PATH.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("SHADOWTAP_CHROMIUM")
        .map(Into::into)
        .or_else(|| which("chromium"))
        .filter(|p: &PathBuf| p.is_file());
    external_tool(test, "chromium", found)
}

/// The full path of `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The DOM of `page` (with `fragment`) after its scripts ran.
fn dump_dom(browser: &Path, page: &Path, fragment: &str, profile: &str) -> String {
    let profile = scratch(profile);
    let out = output_within(
        Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--virtual-time-budget=2000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(format!("file://{}{fragment}", page.display())),
        Duration::from_secs(90),
    );
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// The start tags of the inventory rows, with the row's template.
fn endpoint_rows(dom: &str) -> Vec<(&str, &str)> {
    dom.split("<tr class=\"endpoint\"")
        .skip(1)
        .map(|chunk| {
            let tag = &chunk[..chunk.find('>').expect("tag end")];
            let code = chunk.split("<code>").nth(1).expect("template cell");
            (tag, &code[..code.find("</code>").expect("code end")])
        })
        .collect()
}

fn write_page(name: &str) -> PathBuf {
    let page = scratch(name);
    std::fs::write(&page, analyze_demo("html")).expect("page written");
    page
}

#[test]
fn browser_shows_inventory_findings_and_charts() {
    let Some(browser) = chromium("browser_shows_inventory_findings_and_charts") else {
        return;
    };
    let page = write_page("report.html");
    let dom = dump_dom(&browser, &page, "", "profile-plain");
    // The script ran: it shows the controls and fills in the counter.
    assert!(
        dom.contains("<span id=\"shown\">25 of 25 endpoints, 25 of 25 findings shown</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<form id=\"controls\" onsubmit=\"return false\">"),
        "{dom}"
    );
    let rows = endpoint_rows(&dom);
    assert_eq!(rows.len(), 25);
    assert!(rows.iter().all(|(tag, _)| !tag.contains("hidden")));
    assert!(rows
        .iter()
        .any(|(tag, template)| *template == "/api/v1/users/{userId}"
            && tag.contains("data-method=\"GET\"")));
    // Findings, with severity badges.
    assert_eq!(dom.matches("<tr class=\"finding\"").count(), 25);
    assert!(dom.contains("GET /api/v1/users/{userId} is not in the contract (13 requests)"));
    assert!(dom.contains("<span class=\"sev sev-low\">low</span>"));
    // Charts: three SVGs per endpoint, with bars.
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 75);
    assert!(dom.matches("<rect class=\"s2xx\"").count() >= 20);
    assert!(dom.contains("<title>404: 4</title>"));
    let _ = std::fs::remove_file(&page);
}

#[test]
fn browser_applies_the_filter_from_the_fragment() {
    let Some(browser) = chromium("browser_applies_the_filter_from_the_fragment") else {
        return;
    };
    let page = write_page("filtered.html");
    let dom = dump_dom(
        &browser,
        &page,
        "#filter=users&method=GET",
        "profile-filter",
    );
    assert!(
        dom.contains("<span id=\"shown\">4 of 25 endpoints, 3 of 25 findings shown</span>"),
        "{dom}"
    );
    let rows = endpoint_rows(&dom);
    assert_eq!(rows.len(), 25);
    for (tag, template) in rows {
        let wanted = template.contains("users") && tag.contains("data-method=\"GET\"");
        assert_eq!(!tag.contains(" hidden"), wanted, "{tag} {template}");
    }
    let _ = std::fs::remove_file(&page);
}

/// The demo's report with four anomalies on its service: a 5xx spike and
/// an enumeration on `GET /api/v1/users/{userId}`, one oversized response
/// on `GET /api/v1/users`, and a service-wide burst of refusals, in the
/// five-minute windows around the capture.
fn demo_with_anomalies() -> Report {
    let mut report: Report =
        serde_json::from_str(&analyze_demo("json")).expect("the JSON report parses");
    let first = report.summary.first_seen.expect("first_seen").as_nanos();
    const WINDOW: u64 = 300_000_000_000;
    let window = first / WINDOW * WINDOW;
    let service = report.services[0].name.clone();
    let anomaly = |kind, severity, template: Option<&str>, start: u64, end: u64| Anomaly {
        kind,
        severity,
        service: service.clone(),
        method: template.map(|_| "GET".to_owned()),
        path_key: template.map(str::to_owned),
        template: template.map(str::to_owned),
        caller: None,
        start: Timestamp(start),
        end: Timestamp(end),
        baseline: 0.01,
        observed: 0.5,
        measure: "5xx share".to_owned(),
        counts: [("requests".to_owned(), 40)].into(),
        explanation: format!("{} test anomaly", kind.as_str()),
        provisional: false,
    };
    let users = Some("/api/v1/users/{userId}");
    let mut bola = anomaly(
        AnomalyKind::BolaEnumeration,
        AnomalySeverity::High,
        users,
        window + WINDOW,
        window + 2 * WINDOW,
    );
    bola.caller = Some("0a1b2c3d4e5f".to_owned());
    report.anomalies = vec![
        anomaly(
            AnomalyKind::ErrorSpike5xx,
            AnomalySeverity::High,
            users,
            window,
            window + WINDOW,
        ),
        anomaly(
            AnomalyKind::ResponseSizeOutlier,
            AnomalySeverity::Medium,
            Some("/api/v1/users"),
            first + 1_000_000_000,
            first + 1_000_000_000,
        ),
        bola,
        anomaly(
            AnomalyKind::AuthFailureBurst,
            AnomalySeverity::High,
            None,
            window + WINDOW,
            window + 2 * WINDOW,
        ),
    ];
    for a in &report.anomalies {
        *report
            .summary
            .anomalies
            .entry(a.kind.as_str().to_owned())
            .or_insert(0) += 1;
    }
    report
}

/// Records uncaught errors and `console.error` calls, before any other
/// script runs.
const ERROR_HOOK: &str = "<script>window.probeErrors=[];\
window.addEventListener('error',function(e){window.probeErrors.push(String(e.message));});\
var probeConsoleError=console.error;console.error=function(){\
window.probeErrors.push(Array.prototype.join.call(arguments,' '));\
probeConsoleError.apply(console,arguments);};</script>";

/// After the page's script: the errors, and the rendered width of every
/// timeline and bar, as JSON in `<pre id="probe">`.
const PROBE: &str = "<script>(function(){\
function w(e){return e.getBoundingClientRect().width;}\
var p=document.createElement('pre');p.id='probe';\
p.textContent=JSON.stringify({errors:window.probeErrors,\
timelines:Array.prototype.map.call(document.querySelectorAll('figure.timeline svg'),w),\
bars:Array.prototype.map.call(document.querySelectorAll('figure.timeline rect.an'),function(r){\
return {cls:r.getAttribute('class'),width:w(r)};})});\
document.body.appendChild(p);}());</script>";

/// The HTML page of [`demo_with_anomalies`], with the probes.
fn write_anomaly_page(name: &str) -> PathBuf {
    let page = html::render(&demo_with_anomalies())
        .replacen("<head>\n", &format!("<head>\n{ERROR_HOOK}\n"), 1)
        .replacen("</body>", &format!("{PROBE}\n</body>"), 1);
    let path = scratch(name);
    std::fs::write(&path, page).expect("page written");
    path
}

/// The probe's findings in a dumped DOM.
fn probe(dom: &str) -> serde_json::Value {
    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + 16;
    let json = &dom[start..start + dom[start..].find("</pre>").expect("probe end")];
    serde_json::from_str(&json.replace("&amp;", "&")).expect("probe JSON")
}

#[test]
fn browser_shows_anomalies_and_timelines() {
    let Some(browser) = chromium("browser_shows_anomalies_and_timelines") else {
        return;
    };
    let page = write_anomaly_page("anomalies.html");
    let dom = dump_dom(&browser, &page, "", "profile-anomalies");
    let probe = probe(&dom);
    assert_eq!(probe["errors"], serde_json::json!([]), "{probe}");
    assert!(
        dom.contains(
            "<span id=\"shown\">25 of 25 endpoints, 25 of 25 findings, 4 of 4 anomalies shown</span>"
        ),
        "{dom}"
    );
    assert!(dom.contains("<section id=\"anomalies\">"), "{dom}");
    assert!(dom.contains("<dt>Anomalies</dt><dd>4</dd>"), "{dom}");
    assert_eq!(dom.matches("<tr class=\"anomaly\"").count(), 4);
    assert!(dom.contains("<td>auth_failure_burst test anomaly</td>"));
    // Three timelines (the users endpoint, the service-wide one, the users
    // list), all laid out with a width.
    assert_eq!(dom.matches("<figure class=\"timeline\"").count(), 3);
    let timelines = probe["timelines"].as_array().expect("timelines");
    assert_eq!(timelines.len(), 3, "{probe}");
    assert!(
        timelines.iter().all(|w| w.as_f64().unwrap_or(0.0) > 100.0),
        "{probe}"
    );
    // Every bar is drawn with a width; the ten-minute spike and
    // enumeration are wider than the single response.
    let bars = probe["bars"].as_array().expect("bars");
    assert_eq!(bars.len(), 4, "{probe}");
    let width = |class: &str| -> Vec<f64> {
        bars.iter()
            .filter(|b| b["cls"] == class)
            .filter_map(|b| b["width"].as_f64())
            .collect()
    };
    let (high, medium) = (width("an an-high"), width("an an-medium"));
    assert_eq!((high.len(), medium.len()), (3, 1), "{probe}");
    assert!(medium[0] > 0.0, "{probe}");
    assert!(high.iter().all(|w| *w > medium[0]), "{probe}");
    assert!(dom.contains("<title>high bola_enumeration,"), "{dom}");
    let _ = std::fs::remove_file(&page);
}

#[test]
fn browser_filters_anomalies_and_timelines() {
    let Some(browser) = chromium("browser_filters_anomalies_and_timelines") else {
        return;
    };
    let page = write_anomaly_page("anomalies-filtered.html");
    let dom = dump_dom(
        &browser,
        &page,
        "#filter=userid",
        "profile-anomalies-filter",
    );
    assert_eq!(probe(&dom)["errors"], serde_json::json!([]));
    assert!(
        dom.contains(
            "<span id=\"shown\">3 of 25 endpoints, 3 of 25 findings, 2 of 4 anomalies shown</span>"
        ),
        "{dom}"
    );
    // Only the users endpoint's timeline stays.
    let figures: Vec<&str> = dom
        .split("<figure class=\"timeline\"")
        .skip(1)
        .map(|chunk| &chunk[..chunk.find('>').expect("tag end")])
        .collect();
    assert_eq!(figures.len(), 3);
    for tag in figures {
        let wanted = tag.contains("/api/v1/users/{userid}");
        assert_eq!(!tag.contains(" hidden"), wanted, "{tag}");
    }
    let _ = std::fs::remove_file(&page);
}
