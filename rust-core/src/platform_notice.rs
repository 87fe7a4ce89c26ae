//! What the platforms' progress notification shows (Android's job and
//! foreground-service notification), decided here so that Kotlin only copies
//! fields into a `Notification.Builder`.

use crate::ffi::TransferSummary;
use crate::model;
use crate::notification::render;

/// Title used when the configuration has no `notification.title`.
pub const DEFAULT_NOTIFICATION_TITLE: &str = "Uploading {completedFiles} of {totalFiles} files";
/// Text used when the configuration has no `notification.text`.
pub const DEFAULT_NOTIFICATION_TEXT: &str = "{uploadedSize} of {totalSize} ({percentage}%)";

/// One rendering of the progress notification.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct NotificationContent {
    pub title: String,
    pub text: String,
    /// 0..=100, rounded down (100 only when every byte is sent).
    pub percentage: u8,
    /// Nothing to measure yet (no sizes known): show a spinning bar.
    pub indeterminate: bool,
    /// Uploads are pending, initialized or running: the background work
    /// (job, service) should go on. Paused, failed and finished ones do not
    /// count.
    pub work_remains: bool,
}

/// Renders the notification from the configured templates (`None`: the
/// defaults above) and a summary of every upload. Pure; any thread.
#[uniffi::export]
pub fn notification_content(
    title_template: Option<String>,
    text_template: Option<String>,
    summary: TransferSummary,
) -> NotificationContent {
    let s = model::Summary::from(&summary);
    let title = render(
        title_template
            .as_deref()
            .unwrap_or(DEFAULT_NOTIFICATION_TITLE),
        &s,
    );
    let text = render(
        text_template
            .as_deref()
            .unwrap_or(DEFAULT_NOTIFICATION_TEXT),
        &s,
    );
    let percentage = render("{percentage}", &s)
        .parse::<u8>()
        .unwrap_or(0)
        .min(100);
    NotificationContent {
        title,
        text,
        percentage,
        indeterminate: s.total_bytes == 0 && s.active() > 0,
        work_remains: s.active() > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::AggregateState;

    fn summary(pending: u32, completed: u32, total: u64, uploaded: u64) -> TransferSummary {
        TransferSummary {
            transfer_id: None,
            state: AggregateState::Running,
            files: pending + completed,
            completed_files: completed,
            pending,
            initialized: 0,
            running: 0,
            paused: 0,
            failed: 0,
            cancelled: 0,
            total_bytes: total,
            uploaded_bytes: uploaded,
            transfers: 1,
            completed_transfers: 0,
        }
    }

    #[test]
    fn defaults_fill_title_text_and_percentage() {
        let c = notification_content(None, None, summary(2, 1, 4_000_000, 1_000_000));
        assert_eq!(c.title, "Uploading 1 of 3 files");
        assert_eq!(c.text, "1.0 MB of 4.0 MB (25%)");
        assert_eq!(c.percentage, 25);
        assert!(c.work_remains);
        assert!(!c.indeterminate);
    }

    #[test]
    fn app_templates_win_and_finished_work_does_not_remain() {
        let c = notification_content(
            Some("Album {completedTransfers}/{totalTransfers}".into()),
            Some("{percentage} percent".into()),
            summary(0, 3, 10, 10),
        );
        assert_eq!(c.title, "Album 0/1");
        assert_eq!(c.text, "100 percent");
        assert_eq!(c.percentage, 100);
        assert!(!c.work_remains);
    }

    #[test]
    fn unknown_sizes_are_indeterminate_only_while_work_remains() {
        assert!(notification_content(None, None, summary(1, 0, 0, 0)).indeterminate);
        assert!(!notification_content(None, None, summary(0, 0, 0, 0)).indeterminate);
    }
}
