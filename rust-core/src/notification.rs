//! Notification templates. The engine stores them with the configuration (a
//! background job may start with no JavaScript loaded) and renders them, so
//! Android and iOS show the same text.
//!
//! Placeholders: `{percentage}`, `{uploadedSize}`, `{totalSize}`,
//! `{completedFiles}`, `{totalFiles}`, `{completedTransfers}`,
//! `{totalTransfers}`. Anything else in braces is left as written.

use crate::config::Config;
use crate::error::{err, ErrorCode, Result};
use crate::model::Summary;

/// Longest template accepted, in characters.
pub const MAX_TEMPLATE_CHARS: usize = 500;

pub(crate) fn check_templates(config: &Config) -> Result<()> {
    for (name, t) in [
        ("notificationTitle", &config.notification_title),
        ("notificationText", &config.notification_text),
    ] {
        if t.as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TEMPLATE_CHARS)
        {
            return Err(err(
                ErrorCode::InvalidConfig,
                format!("{name} must be at most {MAX_TEMPLATE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

/// Fills the placeholders of `template` from `summary` (cancelled uploads
/// aside). The percentage is rounded down, so 100 means everything is sent.
pub fn render(template: &str, summary: &Summary) -> String {
    let files = summary.uploads - summary.cancelled;
    let percentage = if summary.total_bytes == 0 {
        if files > 0 && summary.completed == files {
            100
        } else {
            0
        }
    } else {
        (u128::from(summary.uploaded_bytes.min(summary.total_bytes)) * 100
            / u128::from(summary.total_bytes)) as u64
    };
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let v = match &after[..close] {
                "percentage" => percentage.to_string(),
                "uploadedSize" => human_size(summary.uploaded_bytes),
                "totalSize" => human_size(summary.total_bytes),
                "completedFiles" => summary.completed.to_string(),
                "totalFiles" => files.to_string(),
                "completedTransfers" => summary.completed_transfers.to_string(),
                "totalTransfers" => summary.transfers.to_string(),
                _ => return None,
            };
            Some((v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `999 B`, `1.5 kB`, `12.3 MB`, `4.0 GB`: decimal units, as the phones show sizes.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            uploads: 5,
            completed: 2,
            cancelled: 1,
            total_bytes: 4_000_000,
            uploaded_bytes: 1_000_000,
            transfers: 2,
            completed_transfers: 1,
            ..Summary::default()
        }
    }

    #[test]
    fn fills_every_placeholder() {
        let t = "{percentage}% · {uploadedSize} of {totalSize} · {completedFiles}/{totalFiles} files · {completedTransfers}/{totalTransfers}";
        assert_eq!(
            render(t, &summary()),
            "25% · 1.0 MB of 4.0 MB · 2/4 files · 1/2"
        );
    }

    #[test]
    fn unknown_and_unclosed_braces_stay() {
        assert_eq!(render("{x} {percentage} {", &summary()), "{x} 25 {");
        assert_eq!(render("{{percentage}}", &summary()), "{25}");
        assert_eq!(render("", &summary()), "");
    }

    #[test]
    fn percentage_edges() {
        let mut s = Summary::default();
        assert_eq!(render("{percentage}", &s), "0");
        s.uploads = 1;
        s.completed = 1;
        assert_eq!(render("{percentage}", &s), "100");
        s.total_bytes = 3;
        s.uploaded_bytes = 2;
        assert_eq!(render("{percentage}", &s), "66");
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(human_size(12_345_678), "12.3 MB");
        assert_eq!(human_size(u64::MAX), "18446.7 PB");
    }

    #[test]
    fn long_templates_are_refused() {
        let mut c = Config::new("http://h/s", "http://h/u", "http://h/c");
        c.notification_text = Some("x".repeat(MAX_TEMPLATE_CHARS + 1));
        assert_eq!(c.validate().unwrap_err().code(), ErrorCode::InvalidConfig);
        c.notification_text = Some("{percentage}%".into());
        c.validate().unwrap();
    }
}
