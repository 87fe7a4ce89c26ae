//! Presigned part URLs: kept in memory only (they are bearer secrets), with
//! the expiry the URL itself states so they are refreshed before S3 refuses them.
//! Expiry runs on a clock that counts the device's sleep ([`BootTime`]).

use super::boot_clock::BootTime;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest margin before a URL's expiry at which it is refreshed rather than used.
const MAX_MARGIN: Duration = Duration::from_secs(60);
/// SigV4's longest presigned lifetime (7 days): a URL stating more is held
/// to it, so no stated value can overflow a time computation.
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone)]
pub(crate) struct CachedUrl {
    pub url: String,
    /// After this moment the URL is not used any more.
    pub usable_until: Option<BootTime>,
    /// The lifetime it stated when it was fetched, and when that ends.
    pub life: Option<(Duration, BootTime)>,
    /// The same end in wall-clock ms (persisted with hand-off tasks).
    pub expires_at_ms: Option<i64>,
}

impl std::fmt::Debug for CachedUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL is a bearer secret: where it goes, never its signature.
        f.debug_struct("CachedUrl")
            .field("url", &crate::redact::url_for_debug(&self.url))
            .field("usable_until", &self.usable_until)
            .field("life", &self.life)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

#[derive(Default, Debug)]
pub(crate) struct UrlCache {
    urls: HashMap<u32, CachedUrl>,
}

impl UrlCache {
    pub(crate) fn insert(&mut self, part: u32, url: String, fetched_at: BootTime) {
        let wall = SystemTime::now();
        let life = lifetime(&url, wall);
        let usable_until = life.map(|life| {
            // Keep a margin for the request to reach the server: a quarter
            // of the lifetime, at most a minute.
            let margin = (life / 4).min(MAX_MARGIN);
            fetched_at.checked_add(life.saturating_sub(margin))
        });
        // Unrepresentable (cannot happen within MAX_LIFETIME): no expiry known.
        let usable_until = usable_until.flatten();
        let expires_at_ms = life.and_then(|l| {
            let at = wall.checked_add(l)?.duration_since(UNIX_EPOCH).ok()?;
            i64::try_from(at.as_millis()).ok()
        });
        self.urls.insert(
            part,
            CachedUrl {
                url,
                usable_until,
                life: life.and_then(|l| Some((l, fetched_at.checked_add(l)?))),
                expires_at_ms,
            },
        );
    }

    /// A URL for a task the platform may start late: at least `margin` of
    /// its life must remain (at most half its stated lifetime, so a backend
    /// that signs short URLs still gets its parts handed off).
    pub(crate) fn usable_with_margin(
        &self,
        part: u32,
        now: BootTime,
        margin: Duration,
    ) -> Option<&CachedUrl> {
        self.urls
            .get(&part)
            .filter(|c| c.usable_until.is_none_or(|t| t > now))
            .filter(|c| {
                c.life.is_none_or(|(life, end)| {
                    end.saturating_duration_since(now) > margin.min(life / 2)
                })
            })
    }

    /// A URL for the part that can still be used now.
    pub(crate) fn usable(&self, part: u32, now: BootTime) -> Option<&str> {
        self.urls
            .get(&part)
            .filter(|c| c.usable_until.is_none_or(|t| t > now))
            .map(|c| c.url.as_str())
    }

    /// When the part's URL expires, in wall-clock ms, if it says.
    pub(crate) fn get_expiry_ms(&self, part: u32) -> Option<i64> {
        self.urls.get(&part).and_then(|c| c.expires_at_ms)
    }

    pub(crate) fn remove(&mut self, part: u32) {
        self.urls.remove(&part);
    }

    pub(crate) fn clear(&mut self) {
        self.urls.clear();
    }

    /// How long until the first cached URL stops being usable (to wake the scheduler).
    pub(crate) fn next_expiry(&self, now: BootTime) -> Option<Duration> {
        self.urls
            .values()
            .filter_map(|c| c.usable_until)
            .filter(|t| *t > now)
            .min()
            .map(|t| t.saturating_duration_since(now))
    }

    /// The same for [`UrlCache::usable_with_margin`]: how long until the
    /// first URL usable with `margin` now stops being so.
    pub(crate) fn next_expiry_with_margin(
        &self,
        now: BootTime,
        margin: Duration,
    ) -> Option<Duration> {
        self.urls
            .values()
            .filter_map(|c| {
                let plain = c.usable_until.map(|t| t.saturating_duration_since(now));
                let kept = c.life.map(|(life, end)| {
                    end.saturating_duration_since(now)
                        .saturating_sub(margin.min(life / 2))
                });
                match (plain, kept) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .filter(|left| !left.is_zero())
            .min()
    }
}

/// How long a presigned URL stays valid from `now`, from what it states:
/// SigV4 `X-Amz-Date` + `X-Amz-Expires`, or SigV2 `Expires` (a Unix time).
///
/// If the signing time lies in our future or far in the past (clock skew
/// between device and server), the stated lifetime alone is used, so a skewed
/// clock can never make every URL look expired and loop refreshing.
pub(crate) fn lifetime(url: &str, now: SystemTime) -> Option<Duration> {
    stated_lifetime(url, now).map(|d| d.min(MAX_LIFETIME))
}

fn stated_lifetime(url: &str, now: SystemTime) -> Option<Duration> {
    let parsed = url::Url::parse(url).ok()?;
    let mut amz_date = None;
    let mut amz_expires = None;
    let mut v2_expires = None;
    for (k, v) in parsed.query_pairs() {
        if k.eq_ignore_ascii_case("x-amz-date") {
            amz_date = parse_amz_date(&v);
        } else if k.eq_ignore_ascii_case("x-amz-expires") {
            amz_expires = v.parse::<u64>().ok().map(Duration::from_secs);
        } else if k == "Expires" {
            v2_expires = v.parse::<u64>().ok();
        }
    }
    if let Some(expires) = amz_expires {
        return Some(match amz_date {
            Some(signed) => match now.duration_since(signed) {
                Ok(age) if age <= expires => expires - age,
                // Already past its stated expiry by our clock: trust the
                // lifetime instead; a 403 will still trigger a refresh.
                Ok(_) => expires,
                Err(_) => expires,
            },
            None => expires,
        });
    }
    if let Some(at) = v2_expires {
        // Beyond what a time can hold: as long as a URL may live.
        let Some(at) = UNIX_EPOCH.checked_add(Duration::from_secs(at)) else {
            return Some(MAX_LIFETIME);
        };
        return at.duration_since(now).ok();
    }
    None
}

/// `YYYYMMDD'T'HHMMSS'Z'` to a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + se;
    UNIX_EPOCH.checked_add(Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_cached_urls_shows_no_signature() {
        let mut cache = UrlCache::default();
        cache.insert(
            1,
            "https://s3.example/b/k?partNumber=1&X-Amz-Signature=sig-0815-secret".into(),
            BootTime::now(),
        );
        let text = format!("{cache:?} {cache:#?}");
        assert!(!text.contains("sig-0815"), "{text}");
        assert!(text.contains("s3.example/b/k"), "{text}");
    }

    #[test]
    fn amz_date_parses() {
        let t = parse_amz_date("20261121T203000Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_795_293_000
        );
        assert!(parse_amz_date("2026-11-21").is_none());
        assert!(parse_amz_date("20261321T203000Z").is_none());
    }

    #[test]
    fn lifetime_from_sigv4_and_sigv2() {
        let signed = parse_amz_date("20261121T203000Z").unwrap();
        let url = "https://s3.example/b/k?partNumber=1&X-Amz-Date=20261121T203000Z&X-Amz-Expires=900&X-Amz-Signature=x";
        assert_eq!(
            lifetime(url, signed + Duration::from_secs(100)),
            Some(Duration::from_secs(800))
        );
        // Device clock behind the signer: the stated lifetime is used.
        assert_eq!(
            lifetime(url, signed - Duration::from_secs(5000)),
            Some(Duration::from_secs(900))
        );
        // Device clock far ahead: never "already expired".
        assert_eq!(
            lifetime(url, signed + Duration::from_secs(5000)),
            Some(Duration::from_secs(900))
        );
        let v2 = "https://s3.example/b/k?Expires=2000000000&Signature=x";
        assert_eq!(
            lifetime(v2, UNIX_EPOCH + Duration::from_secs(1_999_999_000)),
            Some(Duration::from_secs(1000))
        );
        assert_eq!(
            lifetime("https://x.example/upload/1", SystemTime::now()),
            None
        );
    }

    #[test]
    fn huge_stated_lifetimes_are_held_to_seven_days() {
        let now = SystemTime::now();
        for url in [
            "https://s/b/k?X-Amz-Date=20261121T203000Z&X-Amz-Expires=10000000000000000000",
            "https://s/b/k?X-Amz-Expires=18446744073709551615",
            "https://s/b/k?Expires=18446744073709551615&Signature=x",
            "https://s/b/k?Expires=9223372036854775808&Signature=x",
        ] {
            assert_eq!(lifetime(url, now), Some(MAX_LIFETIME), "{url}");
            let mut c = UrlCache::default();
            let at = BootTime::now();
            c.insert(1, url.to_string(), at);
            assert!(c.usable(1, at).is_some(), "{url}");
            assert!(c.next_expiry(at).unwrap() <= MAX_LIFETIME);
        }
    }

    /// A URL signed now, valid for `secs`.
    fn signed_now(secs: u64) -> String {
        let secs_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (days, rem) = (secs_now.div_euclid(86_400), secs_now.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "https://s/b/k?X-Amz-Date={y:04}{m:02}{d:02}T{:02}{:02}{:02}Z&X-Amz-Expires={secs}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }

    #[test]
    fn cache_refreshes_before_expiry() {
        let mut c = UrlCache::default();
        // The clock is injected: no waiting in the test.
        let now = BootTime::at(Duration::from_secs(1_000));
        let later = |s: u64| now.checked_add(Duration::from_secs(s)).unwrap();
        c.insert(1, signed_now(8), now);
        c.insert(2, "https://s/b/k?no-expiry".into(), now);
        assert!(c.usable(1, now).is_some());
        // Margin is a quarter of the lifetime: unusable after ~6 s.
        assert!(c.usable(1, later(7)).is_none());
        assert!(c.usable(2, later(7000)).is_some());
        let left = c.next_expiry(now).unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(6));
        // Hand-off wants a margin, capped at half the lifetime.
        let ms = |m: u64| now.checked_add(Duration::from_millis(m)).unwrap();
        assert!(c
            .usable_with_margin(1, now, Duration::from_secs(3))
            .is_some());
        assert!(c
            .usable_with_margin(1, ms(5500), Duration::from_secs(3))
            .is_none());
        assert!(c
            .usable_with_margin(1, ms(4500), Duration::from_secs(600))
            .is_none());
        assert!(c
            .usable_with_margin(1, now, Duration::from_secs(600))
            .is_some());
        // The wake for hand-off mode agrees with usable_with_margin: 8 s
        // of life less a 3 s margin (capped at 4 s) leaves 5 s.
        let margin = Duration::from_secs(3);
        let left = c.next_expiry_with_margin(now, margin).unwrap();
        assert!(left > Duration::from_secs(3) && left <= Duration::from_secs(5));
        let just_before = now.checked_add(left - Duration::from_millis(1)).unwrap();
        let at = now.checked_add(left).unwrap();
        assert!(c.usable_with_margin(1, just_before, margin).is_some());
        assert!(c.usable_with_margin(1, at, margin).is_none());
        assert_eq!(c.next_expiry_with_margin(at, margin), None);
        assert!(c.get_expiry_ms(1).is_some() && c.get_expiry_ms(2).is_none());
        c.remove(1);
        assert!(c.usable(1, now).is_none());
    }

    #[test]
    fn time_asleep_counts_towards_expiry() {
        // Fetched, then the device slept two hours: the clock URL expiry
        // runs on moved on by two hours, and the 15-minute URL is not used.
        let mut c = UrlCache::default();
        let fetched = BootTime::at(Duration::from_secs(50));
        c.insert(1, signed_now(900), fetched);
        let woke = fetched.checked_add(Duration::from_secs(7_200)).unwrap();
        assert!(c.usable(1, woke).is_none());
        assert_eq!(c.next_expiry(woke), None);
    }

    fn civil_from_days(z: i64) -> (i64, i64, i64) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }
}
