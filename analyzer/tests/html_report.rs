//! The HTML report in a real browser: headless Chromium loads the page from
//! disk, runs its script and dumps the DOM, which must show the inventory,
//! the findings and the charts, and must honour a filter in the URL
//! fragment. Skips (loudly) without Chromium, except under `cargo xtask
//! test`, which installs it and where a missing browser fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
