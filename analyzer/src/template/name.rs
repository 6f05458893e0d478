//! Parameter names from the segment before them: `/users/{userId}`,
//! `/categories/{categoryId}`, `/plans/by-slug/{slug}`.

use super::ParamKind;

/// Name of a parameter after literal segment `parent` (`None` when the
/// parameter follows another parameter or starts the path). With
/// `by_kind`, the name also says the kind (`fileUuid` next to `fileId`),
/// for positions that hold parameters of several kinds.
pub(crate) fn param_name(parent: Option<&str>, kind: ParamKind, by_kind: bool) -> String {
    let suffix = match (kind, by_kind) {
        (ParamKind::Date, _) => "Date",
        (ParamKind::Email, _) => "Email",
        (ParamKind::Uuid, true) => "Uuid",
        (ParamKind::Hex, true) => "Hex",
        (ParamKind::Token, true) => "Token",
        (ParamKind::String, true) => "Name",
        _ => "Id",
    };
    let Some(parent) = parent.filter(|p| p.chars().any(|c| c.is_ascii_alphabetic())) else {
        return lower_first(suffix);
    };
    // `by-slug`, `by_name`: the parameter is what comes after `by`.
    if let Some(rest) = parent
        .strip_prefix("by-")
        .or_else(|| parent.strip_prefix("by_"))
        .filter(|r| !r.is_empty())
    {
        return camel(rest);
    }
    let base = camel(&singular(parent));
    if base.is_empty() {
        return lower_first(suffix);
    }
    format!("{base}{suffix}")
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `api-keys` → `apiKeys`; drops characters that can't be in a name.
fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if out.is_empty() {
                if c.is_ascii_digit() {
                    continue;
                }
                out.push(c.to_ascii_lowercase());
            } else if upper {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
            upper = false;
        } else {
            upper = true;
        }
    }
    out
}

/// English singular of a plural resource name, for the common patterns.
fn singular(word: &str) -> String {
    let w = word;
    let lower = w.to_ascii_lowercase();
    if let Some(stem) = lower.strip_suffix("ies").filter(|s| s.len() >= 2) {
        return format!("{}y", &w[..stem.len()]);
    }
    // houses, warehouses: only the `s` goes.
    if lower.ends_with("ouses") {
        return w[..w.len() - 1].to_owned();
    }
    for es in ["sses", "shes", "ches", "xes", "zes", "uses"] {
        if lower.ends_with(es) && lower.len() > es.len() {
            return w[..w.len() - 2].to_owned();
        }
    }
    if lower.ends_with('s') && !lower.ends_with("ss") && !lower.ends_with("us") && lower.len() > 3 {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_parent() {
        let n = |p, k| param_name(p, k, false);
        assert_eq!(n(Some("users"), ParamKind::Integer), "userId");
        assert_eq!(n(Some("categories"), ParamKind::Uuid), "categoryId");
        assert_eq!(n(Some("addresses"), ParamKind::Integer), "addressId");
        assert_eq!(n(Some("api-keys"), ParamKind::Integer), "apiKeyId");
        assert_eq!(n(Some("audit_logs"), ParamKind::Hex), "auditLogId");
        assert_eq!(n(Some("status"), ParamKind::Integer), "statusId");
        assert_eq!(n(Some("statuses"), ParamKind::Integer), "statusId");
        assert_eq!(n(Some("warehouses"), ParamKind::Integer), "warehouseId");
        assert_eq!(n(Some("inventory"), ParamKind::Integer), "inventoryId");
        assert_eq!(n(Some("by-slug"), ParamKind::String), "slug");
        assert_eq!(n(Some("reports"), ParamKind::Date), "reportDate");
        assert_eq!(n(None, ParamKind::String), "id");
        assert_eq!(n(Some("v1"), ParamKind::Integer), "v1Id");
        assert_eq!(n(Some("123"), ParamKind::Integer), "id");
        assert_eq!(param_name(Some("files"), ParamKind::Uuid, true), "fileUuid");
        assert_eq!(
            param_name(Some("files"), ParamKind::Integer, true),
            "fileId"
        );
    }
}
